"""The training loop: epochs, protocol phases, schedules, accumulation, checkpoints, resume, guards.

Resuming is exact: each epoch's batch order depends only on ``(seed, epoch)``, and a
checkpoint holds the model, optimiser, GradScaler, the global RNGs (data augmentation), the
training threat's RNG, the loop position and the running statistics; each training example's
augmentation has its own seed ``(seed, epoch, index)`` (:mod:`rftbench.data`), so an interrupted
run resumed from any checkpoint ends with the same weights as an uninterrupted one, with or
without loader worker processes. A worker that dies stops the run with :class:`DataLoaderFailed`
(a checkpoint is saved at the last finished optimiser step).
"""

from __future__ import annotations

import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import Progress
from torch import nn

from ..config import RunConfig, WarningsConfig
from ..data import RunData
from ..errors import ConfigError, RftbenchError
from .checkpoint import CheckpointStore
from .hardware import Precision
from .optim import build_optimizer, set_lr
from .step import FusedStep, NonFiniteLossError, StepOutput
from .syncs import host_read, host_work

log = logging.getLogger("rftbench")

#: With ``log_every: auto``, the running statistics are read (one device sync) when this many
#: seconds have passed since the last read, so the progress bar's numbers refresh twice a second.
AUTO_LOG_SECONDS = 0.5
#: ... and at the latest after this many steps (bounds the per-step tensors held until the read).
MAX_PENDING = 1000


class RunInterrupted(RftbenchError):
    """Training stopped on request (Ctrl-C or SIGTERM) after saving a checkpoint."""


class _StopOnWarning(Exception):
    """Raised inside the loop when a warning fires with ``monitor.stop_on_warning``."""
class DataLoaderFailed(RftbenchError):
    """A training-data loader process died or raised; the message names the worker and what was kept."""


def average_across_processes(model: nn.Module) -> None:
    """All-reduce (mean) the gradients and floating-point buffers (batch-norm statistics) of ``model`` across
    the processes of the default ``torch.distributed`` group, one flat buffer per dtype."""
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    world = dist.get_world_size()
    tensors = [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [b for b in model.buffers() if b.is_floating_point()]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = _flatten_dense_tensors(group)
        dist.all_reduce(flat)
        flat /= world
        for t, value in zip(group, _unflatten_dense_tensors(flat, group)):
            t.copy_(value)


def describe_loader_error(err: BaseException) -> str:
    """One line naming the failed worker and its error, from a ``DataLoader`` exception's message."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    head = lines[0]
    if len(lines) > 1 and "Traceback" in lines[1]:  # "Caught X in DataLoader worker process N." + the worker's traceback
        return f"{head.rstrip('.')}: {lines[-1]}"
    return head


@dataclass
class Components:
    """The runtime objects a config's component names resolve to."""

    loss: Any
    protocol: Any
    threat: Any | None
    eps_schedule: Callable[[float, float], float]
    lr_schedule: Callable[[float, float], float]
    #: the loss spec's ``adversarial`` (the one source; ``None``: whether there is a training threat)
    adversarial: bool | None = None


@dataclass
class TrainState:
    """Where training is and what it measured so far (saved in every checkpoint)."""

    epoch: int = 0
    step: int = 0
    curves: dict[str, list[Any]] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0, "n": 0.0, "seconds": 0.0})
    train_seconds: float = 0.0
    images: int = 0
    resumed_from: list[int] = field(default_factory=list)
    #: the monitor's curve (``rftbench.engine.monitor.POINT_KEYS`` → one value per evaluation point)
    monitor: dict[str, list[Any]] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: the point whose weights ``monitor.keep: best-robust`` keeps (``best_weights``, CPU tensors)
    best: dict[str, Any] | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    #: why training ended early (``--stop-on-warning``): the warning
    stopped: dict[str, Any] | None = None
    #: cost counters per phase (``train``, ``monitor``; see rftbench.engine.cost)
    cost: dict[str, Any] = field(default_factory=dict)


def _format_eps(eps: float) -> str:
    return f"{eps * 255:.2f}/255" if eps < 1 else f"{eps:.3g}"


def freeze_for_epoch(model: nn.Module, names: set[str]) -> None:
    """Make exactly ``names`` trainable; put the model in train mode except fully frozen modules (eval)."""
    for name, p in model.named_parameters():
        p.requires_grad_(name in names)
    model.train()
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()


def prepare_model(model: nn.Module, protocol: Any) -> int:
    """Let a protocol that adds layers (LoRA, adapters) change ``model`` in place, once; returns the parameters it added.

    Calls ``protocol.prepare(model)`` when the protocol has one and the model was not prepared
    yet (the engine before training and before loading a checkpoint, :func:`rftbench.load_model`
    before loading trained weights); protocols without ``prepare`` leave the model as it is.
    """
    if not hasattr(protocol, "prepare") or getattr(model, "_rftbench_prepared", False):
        return 0
    before = sum(p.numel() for p in model.parameters())
    protocol.prepare(model)
    model._rftbench_prepared = True
    return sum(p.numel() for p in model.parameters()) - before


def parameter_counts(model: nn.Module, names: set[str], added: int = 0) -> dict[str, Any]:
    """What a run trains: ``trainable`` (parameters that learn in some epoch), ``total`` (all the model's, adapters
    and head included), ``added`` (by the protocol's ``prepare``) and ``share`` = trainable / total."""
    total = trainable = 0
    for n, p in model.named_parameters():
        total += p.numel()
        trainable += p.numel() if n in names else 0
    return {"trainable": trainable, "total": total, "added": added, "share": round(trainable / total, 6) if total else 0.0}


class Trainer:
    """Trains ``model`` on ``data`` as ``config`` says, with the resolved ``parts``.

    ``run_dir`` enables checkpoints (and resuming from them); ``callback(trainer, epoch, step)``
    is called after every optimiser step (tests use it to interrupt, as Ctrl-C does);
    ``on_epoch(trainer, epoch, row)`` after every epoch, once its curves are recorded and its
    checkpoint saved, with ``epoch`` the 0-based index (as in ``callback``) and ``row`` that
    epoch's curve values (``row["epoch"]`` is 1-based; ``val_loss``/``val_acc`` are ``None``
    without a val split). ``rftbench tune`` reports each epoch's validation loss through it.
    """

    def __init__(
        self,
        config: RunConfig,
        model: nn.Module,
        data: RunData,
        parts: Components,
        *,
        device: torch.device,
        precision: Precision,
        channels_last: bool,
        run_dir: str | Path | None = None,
        progress: bool = True,
        console: Console | None = None,
        callback: Callable[[Trainer, int, int], None] | None = None,
        on_epoch: Callable[[Trainer, int, dict[str, Any]], None] | None = None,
        manager: Any = None,
    ):
        self.config, self.model, self.data, self.parts = config, model, data, parts
        self.device, self.precision, self.channels_last = device, precision, channels_last
        self.epochs = config.epochs
        self.accumulation = (config.effective_batch_size or config.batch_size) // config.batch_size
        batches = data.train_batches.size // config.batch_size
        self.micro_per_epoch = (batches // self.accumulation) * self.accumulation
        if self.micro_per_epoch == 0:
            raise ConfigError(
                f"effective_batch_size = {config.effective_batch_size} needs {self.accumulation} batches of {config.batch_size} "
                f"per optimiser step, but the train split has only {data.train_batches.size} images; lower effective_batch_size"
            )
        self.store = CheckpointStore(run_dir, config.config_hash()) if run_dir is not None else None
        self.distributed = torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1
        self.rank = torch.distributed.get_rank() if self.distributed else 0
        self.progress, self.console, self.callback, self.on_epoch = progress, console, callback, on_epoch
        self._stop = False
        self._where = (0, 0)  # (epoch, micro-batch) being trained, for error messages

        added = prepare_model(model, parts.protocol)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.phases = [set(parts.protocol.trainable(model, e, self.epochs)) for e in range(self.epochs)]
        for e, names in enumerate(self.phases):
            if not names:
                raise ConfigError(
                    f"protocol: {config.protocol.name!r} leaves no parameter trainable in epoch {e + 1} of {self.epochs}; "
                    "choose a protocol that trains at least the head (lp, fft, lp-ft, partial)"
                )
        for schedule in (parts.eps_schedule, parts.lr_schedule):
            if hasattr(schedule, "validate"):
                schedule.validate(self.epochs)
        #: trainable and total parameter counts (written in the result record as ``parameters``)
        self.parameter_counts = parameter_counts(model, set().union(*self.phases), added)
        self.optimizer = build_optimizer(model, set().union(*self.phases), config.optimizer)
        self.scaler = torch.amp.GradScaler(device.type) if precision.use_scaler else None
        compiled = None
        if config.compile:
            if device.type == "cuda":
                compiled = torch.compile(model)
            else:
                log.warning("compile=true is a CUDA-only path; training on %s without torch.compile", device.type)
        self.step = FusedStep(
            model, parts.loss, parts.threat, self.optimizer, precision,
            channels_last=channels_last, accumulation=self.accumulation, scaler=self.scaler, compiled=compiled,
            check_finite=False, adversarial=parts.adversarial,
        )
        # Per-step statistics not yet read on the host: (output, epoch, step, ε, lr factor).
        self._pending: list[tuple[StepOutput, int, int, float, float]] = []
        self._last_read = time.perf_counter()
        if self.distributed:  # every process starts from rank 0's weights and averages gradients at each update
            for tensor in [*model.parameters(), *model.buffers()]:
                torch.distributed.broadcast(tensor.data, 0)
            self.step.sync_grads = lambda: average_across_processes(model)
        self.base_eps = float(parts.threat.eps) if parts.threat is not None else 0.0
        self.state = TrainState()
        self.resumed_threads: int | None = None  # the thread count of the run's first start, once resumed
        self.loader_generator = torch.Generator()
        data.train_loader.generator = self.loader_generator
        self._init_monitor(manager, compiled is not None)

    def _check_gap(self, points: dict[str, list[Any]], row: dict[str, Any], epoch: int) -> list[dict[str, Any]]:
        """``robust-collapse`` from the gap between the epoch's training-attack accuracy and the monitor's robust accuracy.

        Only where the two are comparable: adversarial training, ε at its full value this epoch, and the monitor's
        threat of the training threat's norm with an ε no larger (the monitor's attack then has no larger budget).
        """
        threat = self.parts.threat
        if self.monitor is None or threat is None or not self.step.adversarial or not points.get("robust_acc"):
            return []
        watched = self.monitor.threats[0][1]
        eps = row.get("eps")
        if (getattr(watched, "norm", None) != getattr(threat, "norm", None) or eps is None
                or eps < self.base_eps * (1 - 1e-6) or float(getattr(watched, "eps", math.inf)) > self.base_eps * (1 + 1e-6)):
            return []
        point = {"epoch": epoch + 1, "step": (epoch + 1) * self.steps_per_epoch}
        return self.warnings.check_gap(row.get("train_acc"), points["robust_acc"][-1], point)

    def _init_monitor(self, manager: Any, compiled: bool) -> None:
        """The in-training evaluation, the early warnings and the cost counters (rftbench.engine.monitor, .cost)."""
        from . import cost
        from .monitor import EarlyWarnings, Monitor

        mcfg = self.config.monitor
        self.monitor = None
        if mcfg is not None:
            self.monitor = Monitor(mcfg, self.data.val, device=self.device, manager=manager, channels_last=self.channels_last)
        self.warnings = EarlyWarnings(mcfg.warnings if mcfg is not None else WarningsConfig(), self.data.num_classes, self.epochs,
                                      n=len(self.monitor.y) if self.monitor is not None else None)
        self.stop_on_warning = bool(mcfg is not None and mcfg.stop_on_warning)
        self.steps_per_epoch = self.micro_per_epoch // self.accumulation
        self.clock = cost.DeviceClock(self.device)
        self.passes = None if compiled else cost.PassCounter(self.model)  # hooks and torch.compile: not counted
        self.step_flops = cost.StepFlops()
        self._phase_ids = [self.phases.index(names) for names in self.phases]  # equal trainable sets: one FLOP count
        self._eval_flops: dict[str, int] | None = None
        self.state.cost = {"train": cost.empty_phase(), "monitor": cost.empty_phase()}
        if self.passes is None:  # not counted: unknown, never 0
            for phase in self.state.cost.values():
                phase.update({k: None for k in cost.COUNTS})
            self.state.cost["monitor"]["flops"] = None

    # ------------------------------------------------------------------ state

    def request_stop(self) -> None:
        """Stop after the current optimiser step, saving a checkpoint (what Ctrl-C does)."""
        self._stop = True

    def _snapshot(self) -> dict[str, Any]:
        state = self.state
        threat_state = self.parts.threat.state_dict() if hasattr(self.parts.threat, "state_dict") else {}
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "python": random.getstate(),
            },
            "threat": threat_state,
            "threads": torch.get_num_threads(),  # a resume under threads: auto takes the same (engine.threads)
            "trainer": {
                "curves": state.curves, "running": state.running, "train_seconds": state.train_seconds,
                "images": state.images, "resumed_from": state.resumed_from,
                "monitor": state.monitor, "warnings": state.warnings, "best": state.best, "best_weights": state.best_weights,
                "stopped": state.stopped, "cost": state.cost,
            },
        }

    def _restore(self, snapshot: dict[str, Any], epoch: int, step: int) -> None:
        self.optimizer.load_state_dict(snapshot["optimizer"])
        if self.scaler is not None and snapshot.get("scaler"):
            self.scaler.load_state_dict(snapshot["scaler"])
        rng = snapshot["rng"]
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        random.setstate(rng["python"])
        if hasattr(self.parts.threat, "load_state_dict") and snapshot.get("threat"):
            self.parts.threat.load_state_dict(snapshot["threat"])
        self.resumed_threads = snapshot.get("threads")  # absent from older checkpoints
        t = snapshot["trainer"]
        self.state = TrainState(epoch, step, t["curves"], t["running"], t["train_seconds"], t["images"], list(t["resumed_from"]))
        for key in ("monitor", "warnings", "best", "best_weights", "stopped", "cost"):  # absent from older checkpoints
            if t.get(key) is not None:
                setattr(self.state, key, t[key])

    def save(self, epoch: int, step: int) -> Path | None:
        """Checkpoint at the position training resumes from (``epoch``, ``step`` micro-batches into it)."""
        if self.store is None or self.rank != 0:  # distributed: rank 0 writes, the others resume from its files
            return None
        return self.store.save(self.model, self._snapshot(), epoch=epoch, step=step,
                               extra={"monitor": self.state.monitor, "warnings": self.state.warnings} if self.monitor else None)

    def resume(self) -> bool:
        """Load the latest checkpoint if the run folder has one; returns whether it did."""
        if self.store is None or not self.store.exists():
            return False
        ckpt = self.store.load(self.model)
        self._restore(ckpt.state, ckpt.epoch, ckpt.step)
        self.state.resumed_from.append(ckpt.epoch * self.micro_per_epoch + ckpt.step)
        log.info("resuming from %s (epoch %d, step %d)", ckpt.path, ckpt.epoch, ckpt.step)
        return True

    # ------------------------------------------------------------------ loop

    def _validate(self) -> tuple[float | None, float | None]:
        """``(val_loss, val_acc)`` on the clean val split: mean cross-entropy (fp32) and accuracy; ``None`` without one."""
        if self.data.val is None:
            return None, None
        loader = self.data.eval_loader("val", batch_size=self.config.eval_batch_size)
        loader.generator = torch.Generator()
        self.model.eval()
        n = 0
        # sums on the device, read once at the end (fp64: the same arithmetic as summing on the host)
        loss = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        with host_work():  # the loader draws its base seed on the CPU
            batches = iter(loader)
        with torch.no_grad():
            for x, y in batches:
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self.precision.autocast():
                    logits = self.model(x)
                logits = logits.float()  # exact for fp16/bf16 logits: same argmax, an fp32 loss
                loss += F.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(1) == y).sum()
                n += len(y)
        with host_read():
            total, right = torch.stack([loss, correct.double()]).tolist()
        return total / max(n, 1), right / max(n, 1)

    def _read_stats(self) -> None:
        """Read the pending per-step statistics (one device sync) into ``state.running``.

        Raises :class:`NonFiniteLossError` naming the first step whose loss was NaN/inf; as no
        checkpoint is written without reading first, the last checkpoint on disk predates it.
        """
        pending, self._pending = self._pending, []
        self._last_read = time.perf_counter()
        if not pending:
            return
        with host_read():
            values = torch.cat([torch.stack([out.loss.float() for out, *_ in pending]).double(),
                                torch.stack([out.correct for out, *_ in pending]).double()]).tolist()
        running, k = self.state.running, len(pending)
        for j, (out, epoch, i, eps, lr_factor) in enumerate(pending):
            loss = values[j]
            if not math.isfinite(loss):
                kept = self.store.latest_pointer.read_text().strip() if self.store and self.store.exists() else None
                where = f"the last good checkpoint ({kept}) is kept in {self.store.root}" if kept else "no checkpoint was written yet"
                raise NonFiniteLossError(
                    f"training stopped: the training loss is {loss} at epoch {epoch + 1}, step {i + 1} (ε = {_format_eps(eps)}, "
                    f"lr factor {lr_factor:.3g}); {where}. Lower optimizer.lr_backbone / optimizer.lr_head, "
                    "or train with precision=fp32. No result was written."
                )
            running["loss"] += loss * out.n
            running["correct"] += values[k + j]
            running["n"] += out.n

    def _read_due(self) -> bool:
        every = self.config.log_every
        if len(self._pending) >= MAX_PENDING:
            return True
        if every == "auto":
            return time.perf_counter() - self._last_read >= AUTO_LOG_SECONDS
        return len(self._pending) >= every

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, eps: float, update: bool, epoch: int) -> Any:
        """One fused step, its passes counted and its FLOPs counted once per signature (rftbench.engine.cost)."""
        from .cost import phase

        train = self.state.cost["train"]
        signature = (tuple(x.shape[1:]), eps > 0, update, self._phase_ids[epoch])
        with phase(self.passes, self.clock, train):
            out, flops = self.step_flops.run(signature, len(x), self.step, x, y, eps, update=update)
        train["flops"] = int(train["flops"]) + flops
        if update:
            train["steps"] = int(train.get("steps") or 0) + 1
        return out

    def eval_image_flops(self) -> dict[str, int]:
        """FLOPs of one validation image's forward pass and input-gradient backward pass (measured once)."""
        from .cost import image_flops

        if self._eval_flops is None:
            x = self.monitor.x if self.monitor is not None else None
            if x is None:
                x = torch.stack([self.data.test[0][0]] * 2).to(self.device)
            self._eval_flops = image_flops(self.model, x)
        return self._eval_flops

    def _monitor_point(self, epoch: int, micro: int, check: bool = True) -> dict[str, Any]:
        """Evaluate on the monitor's subset, add the point to the curve, keep the best weights, check the warnings."""
        from .cost import phase

        assert self.monitor is not None
        state, cfg = self.state, self.monitor.config
        per_image = self.eval_image_flops()
        with phase(self.passes, self.clock, state.cost["monitor"], per_image):
            values = self.monitor.point(self.model)
        state.cost["monitor"]["points"] = int(state.cost["monitor"].get("points") or 0) + 1
        step = epoch * self.steps_per_epoch + micro // self.accumulation
        point = {"step": step, "epoch": round(epoch + micro / self.micro_per_epoch, 6), **values}
        for key in ("step", "epoch", "clean_acc", "robust_acc", "corruption_acc", "seconds"):
            if key in point:
                state.monitor.setdefault(key, []).append(point[key])
        if cfg.keep == "best-robust" and (state.best is None or point["robust_acc"] > state.best["robust_acc"]):
            state.best = {k: point[k] for k in ("step", "epoch", "clean_acc", "robust_acc")}
            state.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        if check:
            found = self.warnings.check_accuracy(point, point["clean_acc"]) + self.warnings.check_robust(state.monitor)
            self._raise_warnings(found)
            if state.stopped is not None:
                raise _StopOnWarning
        return point

    def _raise_warnings(self, found: list[dict[str, Any]]) -> None:
        for warning in found:
            self.state.warnings.append(warning)
            log.warning("warning %s (epoch %s): %s", warning["name"], warning["epoch"], warning["message"])
            if self.console is not None and self.progress:
                self.console.print(f"[yellow]warning[/yellow] {warning['name']}: {warning['message']}")
            if self.stop_on_warning and self.state.stopped is None:
                self.state.stopped = dict(warning)

    def _keep_best(self) -> None:
        """With ``monitor.keep: best-robust``, load the weights of the point with the best robust accuracy."""
        if self.monitor is None or self.monitor.config.keep != "best-robust" or self.state.best_weights is None:
            return
        device = next((p.device for p in self.model.parameters()), self.device)
        self.model.load_state_dict({k: v.to(device) for k, v in self.state.best_weights.items()})

    def _sigint(self, signum: int, frame: Any) -> None:
        if self._stop:
            raise KeyboardInterrupt
        self._stop = True
        what = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        log.warning("%s: finishing the current step and saving a checkpoint (press Ctrl-C again to abort)", what)

    def fit(self) -> TrainState:
        """Train to the last epoch (resuming first if a checkpoint exists); returns the final state.

        Ctrl-C (SIGINT) and SIGTERM (what SLURM and Kubernetes send) both finish the current step,
        save a checkpoint and raise :class:`RunInterrupted`; running again resumes.
        """
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._sigint)
        try:
            with self._progress() as bar:
                self._loop(bar)
        except _StopOnWarning:
            log.warning("stopping early (--stop-on-warning): %s", self.state.stopped["message"] if self.state.stopped else "")
        except RuntimeError as err:  # torch's SIGCHLD handler raises this wherever the main thread is when a worker dies
            if self.data.num_workers and "DataLoader worker" in str(err):
                raise self._loader_failed(err, *self._where) from None
            raise
        finally:
            self.data.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.passes is not None:
                self.passes.remove()
        self._keep_best()
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        return self.state

    def _progress(self) -> Progress:
        # a live bar on a terminal; off one (a log file, SLURM, CI) a plain line per epoch and every 30 s
        from ..progress import make_progress

        return make_progress(self.console, enabled=self.progress, images_per_step=self.config.batch_size)  # type: ignore[return-value]

    def _loader_failed(self, err: BaseException, epoch: int, position: int) -> DataLoaderFailed:
        kept = self.store.latest_pointer.read_text().strip() if self.store and self.store.exists() else None
        where = (f"the last checkpoint ({kept}) is kept in {self.store.root}; run the same command again to resume"
                 if kept and self.store else "no checkpoint was written yet; run the same command again to start over")
        return DataLoaderFailed(
            f"training stopped at epoch {epoch + 1}, step {position + 1}: a training-data worker failed "
            f"({describe_loader_error(err)}); {where}. If it ran out of memory, lower data.num_workers "
            "(data.num_workers=0 loads in the main process and shows the full traceback)."
        )

    def _batches(self, it: Any, epoch: int, start: int) -> Any:
        """The epoch's batches (from the loader iterator ``it``) from ``start``; a failed loader worker becomes :class:`DataLoaderFailed`."""
        position = start
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as err:  # noqa: BLE001 - what a worker raised (or the OS killing it) reaches us here
                if not self.data.num_workers:
                    raise
                if position > start and position % self.accumulation == 0:
                    self._read_stats()
                    self.save(epoch, position)  # the loop finished optimiser step `position`: nothing is lost
                raise self._loader_failed(err, epoch, position) from None
            self._where = (epoch, position)
            yield batch
            position += 1

    def _loop(self, bar: Progress) -> None:
        parts, state, cfg = self.parts, self.state, self.config
        num_classes = self.data.num_classes
        for epoch in range(state.epoch, self.epochs):
            start = state.step if epoch == state.epoch else 0
            if start == 0:
                state.running = {"loss": 0.0, "correct": 0.0, "n": 0.0, "seconds": 0.0}
            freeze_for_epoch(self.model, self.phases[epoch])
            self.step.refresh()
            self.data.train_batches.set_epoch(epoch, skip=start)
            self.loader_generator.manual_seed(cfg.seed * 7919 + epoch)
            task = bar.add_task(f"epoch {epoch + 1}/{self.epochs}", total=self.micro_per_epoch, completed=start, stats="")
            lr_factor = eps = 0.0
            tick = time.perf_counter()
            self._pending, self._last_read = [], time.perf_counter()
            with host_work():  # the loader draws its base seed on the CPU
                batches = iter(self.data.train_loader)
            for i, (x, y) in enumerate(self._batches(batches, epoch, start), start=start):
                if i >= self.micro_per_epoch:
                    break
                with host_work():  # the loader's labels, still on the CPU: no device sync
                    low, high = int(y.min()), int(y.max())
                if high >= num_classes or low < 0:
                    raise ConfigError(
                        f"dataset {cfg.dataset!r}: a training label is {high if high >= num_classes else low}, but the head has "
                        f"{num_classes} classes (the card's num_classes); fix num_classes in the dataset card"
                    )
                t = epoch + i / self.micro_per_epoch
                if i % self.accumulation == 0:
                    lr_factor = parts.lr_schedule(t, self.epochs)
                    set_lr(self.optimizer, lr_factor)
                eps = self.base_eps * parts.eps_schedule(t, self.epochs)
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                if self.data.device_augment is not None:
                    x = self.data.device_augment(x, epoch, i)
                update = (i + 1) % self.accumulation == 0
                out = self._train_step(x, y, eps, update, epoch)
                self._pending.append((out, epoch, i, eps, lr_factor))
                state.images += out.n
                if self._read_due():
                    self._read_stats()
                    running = state.running
                    stats = (
                        f"loss {running['loss'] / max(running['n'], 1):.3f}  acc {100 * running['correct'] / max(running['n'], 1):.1f}%  "
                        f"ε {_format_eps(eps)}  lr {self.optimizer.param_groups[0]['lr']:.2e}"
                    )
                    bar.update(task, completed=i + 1, stats=stats)
                else:
                    bar.update(task, completed=i + 1)
                if update:
                    every = self.monitor.config.every_steps if self.monitor is not None else None
                    if every and (epoch * self.steps_per_epoch + (i + 1) // self.accumulation) % every == 0:
                        pause = time.perf_counter()
                        try:
                            self._monitor_point(epoch, i + 1)
                        except _StopOnWarning:  # the partial epoch's training time still counts (its curves: none)
                            state.train_seconds += pause - tick
                            raise
                        tick += time.perf_counter() - pause  # evaluation time is not training time
                    if self.callback is not None:
                        self.callback(self, epoch, i + 1)
                    if self._stop:
                        self._read_stats()  # a NaN found here stops before the checkpoint is written
                        running = state.running
                        now = time.perf_counter()
                        running["seconds"] += now - tick
                        state.train_seconds += now - tick
                        self.save(epoch, i + 1)
                        where = f"; checkpoint saved in {self.store.root}" if self.store else ""
                        raise RunInterrupted(
                            f"interrupted at epoch {epoch + 1}, step {i + 1}{where}. Run the same command again to resume."
                        )
            self._read_stats()
            seconds = time.perf_counter() - tick
            running = state.running
            running["seconds"] += seconds
            state.train_seconds += seconds
            val_loss, val_acc = self._validate()
            curves = state.curves
            row: dict[str, Any] = {}
            for key, value in (
                ("epoch", epoch + 1),
                ("train_loss", running["loss"] / max(running["n"], 1)),
                ("train_acc", running["correct"] / max(running["n"], 1)),
                ("val_loss", val_loss),
                ("val_acc", val_acc),
                ("eps", eps),
                ("lr_factor", lr_factor),
                ("seconds", running["seconds"]),
                ("images_per_s", running["n"] / running["seconds"] if running["seconds"] else None),
            ):
                # a curve missing from a checkpoint of an older version starts padded, so all stay per-epoch
                curves.setdefault(key, [None] * epoch).append(value)
                row[key] = value
            if self.monitor is not None and not self.monitor.config.every_steps:
                self._monitor_point(epoch, self.micro_per_epoch, check=False)
            if self.monitor is not None and state.monitor.get("robust_acc"):  # the latest point (for tune: ASHA)
                from ..evaluation.pareto import pareto_auc

                row["val_robust_acc"] = state.monitor["robust_acc"][-1]
                if state.monitor.get("corruption_acc"):
                    row["val_corruption_acc"] = state.monitor["corruption_acc"][-1]
                row["val_pareto_auc"] = pareto_auc(state.monitor["clean_acc"], state.monitor["robust_acc"])
            found = self.warnings.check_accuracy({"epoch": epoch + 1, "step": (epoch + 1) * self.steps_per_epoch}, val_acc)
            found += self.warnings.check_robust(state.monitor) if self.monitor is not None else []
            found += self._check_gap(state.monitor, row, epoch)
            found += self.warnings.check_loss(curves, (epoch + 1) * self.steps_per_epoch)
            state.epoch, state.step = epoch + 1, 0
            self._raise_warnings(found)
            self.save(epoch + 1, 0)
            if self.on_epoch is not None:
                self.on_epoch(self, epoch, row)
            if state.stopped is not None:
                raise _StopOnWarning
