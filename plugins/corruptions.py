"""Built-in plugin ``corruptions``: the common-corruptions threat model.

``corruptions`` with ``severity`` 1–5 (default 3, the reference study's), over the study's 11
types (``gaussian_noise`` may be added through ``types``), in one of two modes:

- ``round_robin`` (the study's): test image ``i`` gets type ``types[i % len(types)]``;
- ``average``: every image under every type; the accuracy is the mean over types.

Both report the accuracy per type. Deterministic given ``seed``: an image's corruption depends
only on the seed, its index in the test set, the type and the severity. Corrupted images are
8-bit (``quantize``, the default), as imagecorruptions and ImageNet-C's files are.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from rftbench import Params, ThreatModelSpec, hookimpl
from rftbench._lazy import lazy_import
from rftbench.errors import close_matches
from rftbench.evaluation.corruption_names import ALL_TYPES, STUDY_TYPES

torch = lazy_import("torch")  # imported when images are first corrupted, not when plugins are listed
_corruptions = lazy_import("rftbench.evaluation.corruptions")

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def corrupt(*args: Any, **kwargs: Any) -> Any:
    """:func:`rftbench.evaluation.corruptions.corrupt` (imported on first use)."""
    return _corruptions.corrupt(*args, **kwargs)


def _no_grad(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return method(*args, **kwargs)

    return wrapper


class CorruptionParams(Params):
    severity: int = Field(3, ge=1, le=5, description="corruption severity, 1 (mild) to 5 (strong)")
    mode: Literal["round_robin", "average"] = Field("round_robin", description="one type per image (the study's) or every type on every image")
    types: tuple[str, ...] = Field(STUDY_TYPES, min_length=1, description="corruption types, in round-robin order")
    seed: int = Field(0, ge=0, description="seeds the random corruptions")
    quantize: bool = Field(True, description="8-bit corrupted images, as the reference imagecorruptions (np.uint8 truncation); false keeps floats")

    @field_validator("types", mode="before")
    @classmethod
    def _known_types(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for name in value:
            if name not in ALL_TYPES:
                hint = close_matches(name, ALL_TYPES)
                raise ValueError(
                    f"unknown corruption {name!r}" + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                    + f"; known: {', '.join(ALL_TYPES)}"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"a corruption type is listed twice in {list(value)}")
        return tuple(value)


class Corruptions:
    """The ``corruptions`` threat model (norm ``corruption``, ``eps`` = the severity)."""

    norm = "corruption"

    def __init__(self, severity: int, mode: str, types: tuple[str, ...], seed: int, quantize: bool = True):
        self.severity, self.mode, self.types, self.seed = severity, mode, tuple(types), seed
        self.quantize = quantize
        self.eps = float(severity)
        self._correct: dict[str, float] = {t: 0.0 for t in self.types}
        self._count: dict[str, int] = {t: 0 for t in self.types}

    def label(self) -> str:
        text = f"corruptions:{self.severity}"
        if self.mode == "average":
            text += ":average"
        if self.types != STUDY_TYPES:
            text += f"[{','.join(self.types)}]"
        return text

    def assignment(self, index: torch.Tensor) -> list[str]:
        """The round-robin type of each image index."""
        return [self.types[int(i) % len(self.types)] for i in index]

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float | None = None,
                index: torch.Tensor | None = None) -> torch.Tensor:
        """Round-robin corrupted copies of ``x`` (``index``: the images' test-set positions; default 0…B-1)."""
        severity = int(eps) if eps is not None else self.severity
        index = torch.arange(len(x)) if index is None else index.cpu()
        out = torch.empty_like(x)
        types = self.assignment(index)
        for name in dict.fromkeys(types):
            rows = torch.tensor([t == name for t in types], device=x.device)
            out[rows] = corrupt(x[rows], name, severity, seed=self.seed, index=index[rows.cpu()], quantize=self.quantize).to(x.dtype)
        return out

    @_no_grad
    def evaluate_batch(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image correctness (round robin) or share of types correct (average); per-type counts kept for ``report``."""
        index = index.cpu()
        if self.mode == "round_robin":
            correct = model(self.perturb(model, x, y, index=index)).argmax(1) == y
            for name, ok in zip(self.assignment(index), correct.tolist()):
                self._correct[name] += ok
                self._count[name] += 1
            return {"correct": correct}
        share = torch.zeros(len(y), device=x.device)
        for name in self.types:
            ok = model(corrupt(x, name, self.severity, seed=self.seed, index=index, quantize=self.quantize).to(x.dtype)).argmax(1) == y
            share += ok.float()
            self._correct[name] += float(ok.sum())
            self._count[name] += len(y)
        return {"correct": share / len(self.types)}

    def report(self) -> dict[str, Any]:
        per_type = {t: (self._correct[t] / self._count[t] if self._count[t] else None) for t in self.types}
        counts = dict(self._count)
        self._correct = {t: 0.0 for t in self.types}
        self._count = {t: 0 for t in self.types}
        return {"severity": self.severity, "mode": self.mode, "seed": self.seed, "quantize": self.quantize, "per_type": per_type, "per_type_n": counts}


@hookimpl
def rftbench_add_threat_models() -> list[ThreatModelSpec]:
    return [
        ThreatModelSpec(
            name="corruptions",
            description="Common corruptions (ImageNet-C constants) at a severity 1-5: the reference study's 11 types "
            "assigned round-robin, or their average; gaussian_noise available.",
            params=CorruptionParams,
            factory=Corruptions,
            norm="corruption",
        )
    ]
