"""What the evaluator hands to threat models and metrics: the model, the points, their clean logits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import Dataset

from ..plugins import PluginManager, get_manager


@runtime_checkable
class Metric(Protocol):
    """What a ``metric`` spec's factory returns (see :func:`rftbench.hookspecs.rftbench_add_metrics`)."""

    def label(self) -> str:
        """Key of the metric in ``result["metrics"]``, e.g. ``expected_robustness:linf:4/255``."""
        ...

    def compute(self, ctx: EvalContext) -> dict[str, Any]:
        """Compute the metric; returns a JSON-able mapping (``"flags"``, a list, is merged into the result's flags)."""
        ...


def batch_seed(seed: int, start: int) -> int:
    """The RNG seed of the batch whose first point has position ``start`` (independent of other batches)."""
    return (seed * 1_000_003 + start) % (2**63 - 1)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _to_tensor(image: Any) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image.float()
    from torchvision.transforms.functional import to_tensor  # PIL images from dataset sources

    return to_tensor(image)


def collate(batch: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(image, label)`` items; PIL images become float tensors in [0, 1]."""
    xs = torch.stack([_to_tensor(item[0]) for item in batch])
    ys = torch.as_tensor([int(item[1]) for item in batch], dtype=torch.long)
    return xs, ys


#: Above this many bytes of fp32 pixels, prepared points are kept as uint8 (when that is exact).
UINT8_ABOVE_BYTES = 64 * 2**20


@dataclass
class PreparedPoints:
    """The evaluated points decoded and transformed once: images (fp32, or uint8 when exact and large) and labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, positions: torch.Tensor) -> torch.Tensor:
        """fp32 images in [0, 1] at ``positions`` (uint8 ones divided by 255, as ``to_tensor`` does)."""
        x = self.images[positions]
        return x.float().div(255) if x.dtype == torch.uint8 else x


def _exact_uint8(x: torch.Tensor) -> torch.Tensor | None:
    """``x`` as uint8 when ``u8.float().div(255)`` gives it back bit for bit (8-bit images), else ``None``."""
    q = (x * 255).round_().clamp_(0, 255).to(torch.uint8)
    return q if torch.equal(q.float().div(255), x) else None


def prepare_points(data: Dataset, *, uint8_above: int = UINT8_ABOVE_BYTES) -> PreparedPoints:
    """Decode and transform every point of ``data`` once (what each evaluation pass then slices).

    Images are stacked as fp32; when their fp32 size passes ``uint8_above`` bytes and every image
    is exactly an 8-bit one (``k/255``, as PIL images and ``to_tensor`` give), they are kept as
    uint8 — 4× smaller, and the same fp32 values once divided back.
    """
    n = len(data)  # type: ignore[arg-type]
    if n == 0:
        return PreparedPoints(torch.empty(0), torch.empty(0, dtype=torch.long))
    items = [data[i] for i in range(n)]
    xs, ys = collate(items)
    if xs.numel() * 4 > uint8_above:
        q = _exact_uint8(xs)
        if q is not None:
            xs = q
    return PreparedPoints(xs, ys)


@dataclass
class EvalContext:
    """The evaluation in progress.

    ``data`` holds exactly the evaluated points (the first ``n_examples`` of the test set);
    ``clean_logits`` and ``labels`` are on the CPU in the same order; ``results`` is the
    result dict being built (``clean_acc`` and the ``threats`` measured so far).
    """

    model: nn.Module
    data: Dataset
    batch_size: int
    device: torch.device
    seed: int
    manager: PluginManager = field(default_factory=get_manager)
    output_dir: Path | None = None
    progress: bool = False
    clean_logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    results: dict[str, Any] = field(default_factory=dict)
    _points: PreparedPoints | None = field(default=None, repr=False)

    @property
    def points(self) -> PreparedPoints:
        """The evaluated points, decoded and transformed on first use and kept for every later pass."""
        if self._points is None:
            self._points = prepare_points(self.data)
        return self._points

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    @property
    def clean_correct(self) -> torch.Tensor:
        """Bool [N]: whether each point is classified correctly without perturbation."""
        assert self.clean_logits is not None and self.labels is not None
        return self.clean_logits.argmax(1) == self.labels

    @property
    def num_classes(self) -> int:
        assert self.clean_logits is not None
        return int(self.clean_logits.shape[1])

    def batches(self, indices: Sequence[int] | torch.Tensor | None = None, batch_size: int | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(x, y, index)`` batches on the device, in order; ``indices`` restricts to those points."""
        points = self.points
        if indices is None:
            positions = torch.arange(len(self))
        else:
            positions = torch.as_tensor(indices, dtype=torch.long).flatten()
        size = batch_size or self.batch_size
        for start in range(0, len(positions), size):
            index = positions[start:start + size]
            # gathered copies (never views of the prepared points: a pass may change its batch in place)
            yield points.take(index).to(self.device), points.labels[index].to(self.device), index

    def tensors(self, indices: Sequence[int] | torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All (or the ``indices``) points as two CPU tensors (for attacks that take the whole set)."""
        xs, ys = [], []
        for x, y, _ in self.batches(indices):
            xs.append(x.cpu())
            ys.append(y.cpu())
        if not xs:
            return torch.empty(0), torch.empty(0, dtype=torch.long)
        return torch.cat(xs), torch.cat(ys)

    def seeded(self, start: int = 0) -> contextlib.AbstractContextManager[None]:
        """Seed torch's RNG for the batch starting at ``start`` (restored on exit)."""
        return seeded(batch_seed(self.seed, start), self.device)

    def build_threat(self, name: str, **params: Any) -> Any:
        """Build a threat model by name through the plugin manager (for metrics that attack)."""
        return self.manager.get("threat_model", name).build(**params)
