"""AutoAttack (Croce & Hein, ICML 2020), standard protocol, for L∞, L2 and L1; FAB minimum-norm margins.

Which implementation, and why: the attacks themselves are those of ``pyautoattack``, the PyPI
packaging of the authors' reference code (the one RobustBench reports), configured exactly as
its ``version="standard"``: APGD-CE, APGD-T (targeted DLR), FAB-T and Square (5,000 queries);
for L1 APGD uses 5 restarts with the large-ε schedule and APGD-T 5 targets. torchattacks 3.3
was the other candidate, but its APGD has no L1 and its ``AutoAttack`` cannot say which attack
broke which point; it serves instead as the independent implementation the tests compare with.

What is written here, and why: the driver that runs the attacks in sequence, each on the points
still robust, keeping the worst case per point (the same loop as pyautoattack's
``run_standard_evaluation``, whose per-attack accuracies stay inside the function). Owning the
loop lets the evaluator report the accuracy after each attack, which attack broke each point,
and turn AutoAttack's own warnings (zero gradients, Square beating the white-box attacks) into
flags in the result, at no extra cost.

Adjustments for few classes (documented, recorded as ``info`` notes): targeted attacks use
``min(default, classes - 1)`` target classes, and APGD-T is left out below 4 classes, where
the targeted DLR loss is undefined (it needs the 4th largest logit).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

NORM_NAMES = {"linf": "Linf", "l2": "L2", "l1": "L1"}
#: The attacks of AutoAttack's standard version, in the order they run.
STANDARD_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")
KNOWN_ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
#: The targeted DLR loss reads the 4th largest logit.
MIN_CLASSES_APGD_T = 4

__all__ = [
    "AttackError",
    "AutoAttack",
    "AutoAttackResult",
    "KNOWN_ATTACKS",
    "NORM_NAMES",
    "STANDARD_ATTACKS",
    "minimum_norm_perturbation",
]


class AttackError(ConfigError):
    """An attack asked for with settings it cannot run with; the message names the setting and the fix."""


def _library():
    try:
        import pyautoattack
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise AttackError("AutoAttack needs the `pyautoattack` package: pip install pyautoattack") from err
    return pyautoattack


def _check_norm(norm: str) -> str:
    if norm not in NORM_NAMES:
        raise AttackError(f"norm {norm!r} is not supported by AutoAttack; use one of {', '.join(NORM_NAMES)}")
    return NORM_NAMES[norm]


def _set_iterations(apgd: Any, n_iter: int) -> None:
    """Change an APGD attack's iterations with the step-size checkpoints its constructor derives from them."""
    apgd.n_iter = apgd.n_iter_orig = n_iter
    apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
    apgd.n_iter_min = max(int(0.06 * n_iter), 1)
    apgd.size_decr = max(int(0.03 * n_iter), 1)


class _Capture(logging.Handler):
    """Collects the warnings pyautoattack logs (its reliability checks) during one run."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured(logger: logging.Logger) -> Iterator[_Capture]:
    handler = _Capture()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # ours to report as flags, not to print
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@dataclass
class AutoAttackResult:
    """The outcome of :meth:`AutoAttack.run` on a batch.

    ``robust[i]``: point ``i`` is classified correctly after every attack; ``broken_by[i]``:
    ``"clean"`` (misclassified without attack), the attack that broke it, or ``None``;
    ``after``: accuracy over the batch after each attack, in order, ``"clean"`` first;
    ``notes``: adjustments made (few classes…); ``warnings``: pyautoattack's check messages.
    """

    x_adv: torch.Tensor
    robust: torch.Tensor
    broken_by: list[str | None]
    after: dict[str, float]
    still_robust_after: dict[str, torch.Tensor] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class AutoAttack:
    """AutoAttack with a worst case per point, usable as an attack (``perturb``) and by the evaluator.

    :param norm: ``linf``, ``l2`` or ``l1``.
    :param eps: the budget on the [0, 1] pixel scale.
    :param version: ``standard`` (the default: APGD-CE, APGD-T, FAB-T, Square), ``plus``, or
        ``custom`` with ``attacks``.
    :param seed: seeds every attack (the same seed, the same adversarial points).
    :param n_queries: Square's query budget (5,000 in the standard version).
    :param n_iter: iterations of APGD and FAB (100 in the standard version; fewer only for quick looks).
    """

    def __init__(
        self,
        norm: str,
        eps: float,
        *,
        version: str = "standard",
        attacks: Sequence[str] | None = None,
        seed: int = 0,
        n_queries: int | None = None,
        n_iter: int | None = None,
    ):
        self.norm = norm
        self.library_norm = _check_norm(norm)
        if not (eps > 0 and math.isfinite(eps)):
            raise AttackError(f"eps={eps!r}: AutoAttack needs a positive, finite budget")
        self.eps = float(eps)
        if version not in ("standard", "plus", "custom"):
            raise AttackError(f"version={version!r}: use standard, plus or custom")
        if version == "custom":
            if not attacks:
                raise AttackError("version='custom' needs attacks=[…], e.g. ['apgd-ce', 'square']")
            unknown = [a for a in attacks if a not in KNOWN_ATTACKS]
            if unknown:
                raise AttackError(f"unknown AutoAttack attack(s) {unknown}; known: {', '.join(KNOWN_ATTACKS)}")
        elif attacks:
            raise AttackError(f"attacks=… only applies to version='custom' (version={version!r} fixes its attacks)")
        self.version = version
        self.attacks = tuple(attacks) if attacks else None
        self.seed = int(seed)
        for name, value in (("n_queries", n_queries), ("n_iter", n_iter)):
            if value is not None and value < 1:
                raise AttackError(f"{name}={value}: must be at least 1 (or None for the standard value)")
        self.n_queries = n_queries
        self.n_iter = n_iter
        self._notes: dict[str, None] = {}
        self._warnings: dict[str, None] = {}
        self._attacks_run: dict[str, None] = {}

    # ------------------------------------------------------------------ configuration

    def configure(self, model: nn.Module, num_classes: int, device: torch.device) -> tuple[Any, list[str], list[str]]:
        """pyautoattack's AutoAttack configured for this model: ``(library object, attacks to run, notes)``."""
        lib = _library()
        aa = lib.AutoAttack(model, norm=self.library_norm, eps=self.eps, version=self.version,
                            attacks=list(self.attacks) if self.attacks else None, seed=self.seed, device=device)
        aa.verbose = False
        if self.n_queries is not None:
            aa.square.n_queries = self.n_queries
        if self.n_iter is not None:
            _set_iterations(aa.apgd, self.n_iter)
            _set_iterations(aa.apgd_targeted, self.n_iter)
            aa.fab.n_iter = self.n_iter
        attacks = list(aa.attacks_to_run)
        notes: list[str] = []
        if num_classes < 2:
            raise AttackError(f"the model has {num_classes} output; a classifier needs at least 2 classes")
        targeted = [a for a in attacks if a in ("apgd-t", "apgd-dlr")]
        if targeted and num_classes < MIN_CLASSES_APGD_T:
            dropped = [a for a in targeted if a == "apgd-t" or num_classes < 3]
            attacks = [a for a in attacks if a not in dropped]
            notes.append(f"{', '.join(a.upper() for a in dropped)} left out: the DLR loss needs at least "
                         f"{MIN_CLASSES_APGD_T if 'apgd-t' in dropped else 3} classes and the model has {num_classes}")
        if aa.apgd_targeted.n_target_classes > num_classes - 1 and "apgd-t" in attacks:
            notes.append(f"APGD-T uses {num_classes - 1} target classes instead of {aa.apgd_targeted.n_target_classes} (the model has {num_classes} classes)")
            aa.apgd_targeted.n_target_classes = num_classes - 1
        if aa.fab.n_target_classes > num_classes - 1 and "fab-t" in attacks:
            notes.append(f"FAB-T uses {num_classes - 1} target classes instead of {aa.fab.n_target_classes} (the model has {num_classes} classes)")
            aa.fab.n_target_classes = num_classes - 1
        return aa, attacks, notes

    # ------------------------------------------------------------------ running

    @staticmethod
    def _attack(aa: Any, name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One attack of the ensemble, set up as pyautoattack's ``run_standard_evaluation`` does."""
        if name in ("apgd-ce", "apgd-dlr"):
            aa.apgd.loss = "ce" if name == "apgd-ce" else "dlr"
            aa.apgd.seed = aa.get_seed()
            return aa.apgd.perturb(x, y)
        if name == "apgd-t":
            aa.apgd_targeted.seed = aa.get_seed()
            return aa.apgd_targeted.perturb(x, y)
        if name in ("fab", "fab-t"):
            aa.fab.targeted = name == "fab-t"
            if name == "fab-t":
                aa.fab.n_restarts = 1
            aa.fab.seed = aa.get_seed()
            return aa.fab.perturb(x, y)
        if name == "square":
            aa.square.seed = aa.get_seed()
            return aa.square.perturb(x, y)
        raise AttackError(f"unknown AutoAttack attack {name!r}")  # pragma: no cover - checked in __init__

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float | None = None,
            batch_size: int | None = None, device: torch.device | str | None = None) -> AutoAttackResult:
        """Run the ensemble on ``x`` (images in [0, 1]) with labels ``y``; each attack sees only the points still robust.

        With ``batch_size``, ``x`` may be a whole evaluation set (on the CPU): the clean pass and
        each attack run over the points still robust in chunks of ``batch_size`` moved to
        ``device`` (default: ``x``'s), as pyautoattack's ``run_standard_evaluation`` does; the
        result is on ``x``'s device.
        """
        if eps is not None and eps != self.eps:
            return AutoAttack(self.norm, eps, version=self.version, attacks=self.attacks, seed=self.seed,
                              n_queries=self.n_queries, n_iter=self.n_iter).run(model, x, y, batch_size=batch_size, device=device)
        x = x.detach().float()
        y = y.detach().long()
        home = x.device
        if device is not None:
            from ..engine.hardware import parse_device

            device = parse_device(device)
        else:
            device = home
        n = len(y)
        chunk = batch_size or max(n, 1)

        def chunks(idx: torch.Tensor) -> Iterator[torch.Tensor]:
            for start in range(0, len(idx), chunk):
                yield idx[start:start + chunk]

        with torch.no_grad():
            logits = torch.cat([model(x[c].to(device)).float().cpu() for c in chunks(torch.arange(n, device=home))]) if n else torch.empty(0, 2)
        aa, attacks, notes = self.configure(model, int(logits.shape[1]), device)
        robust = (logits.argmax(1) == y.cpu()).to(home)
        broken_by: list[str | None] = [None if r else "clean" for r in robust.tolist()]
        x_adv = x.clone()
        after = {"clean": float(robust.sum()) / max(n, 1)}
        still = {"clean": robust.clone()}
        with _captured(aa.logger) as capture:
            for name in attacks:
                idx = robust.nonzero().flatten()
                if len(idx) == 0:
                    after[name] = 0.0
                    still[name] = robust.clone()
                    continue
                for part in chunks(idx):
                    xb, yb = x[part].to(device), y[part].to(device)
                    adv = self._attack(aa, name, xb, yb).detach()
                    with torch.no_grad():
                        fooled = (model(adv).argmax(1) != yb).to(home)
                    hit = part[fooled]
                    robust[hit] = False
                    x_adv[hit] = adv[fooled.to(adv.device)].to(home)
                    for i in hit.tolist():
                        broken_by[i] = name
                after[name] = float(robust.sum()) / max(n, 1)
                still[name] = robust.clone()
        return AutoAttackResult(x_adv, robust, broken_by, after, still, notes, list(dict.fromkeys(capture.messages)))

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float | None = None) -> torch.Tensor:
        """Adversarial points: the first successful attack's point where one succeeded, else ``x``."""
        return self.run(model, x, y, eps=eps).x_adv

    # ------------------------------------------------------------------ the evaluator's interface

    def evaluate_batch(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-point correctness under the ensemble (``correct``) and after each attack (``after/<attack>``)."""
        return self._record(self.run(model, x, y))

    def evaluate_all(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, index: torch.Tensor | None = None,
                     batch_size: int = 128, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """As :meth:`evaluate_batch`, on a whole evaluation set (CPU tensors) processed in chunks.

        The evaluator prefers this: after APGD-CE the points still robust across the whole set are
        attacked together, so the later attacks (Square's 5,000 queries above all) make one pass
        over few large batches instead of one per evaluation batch.
        """
        return self._record(self.run(model, x, y, batch_size=batch_size, device=device))

    def _record(self, result: AutoAttackResult) -> dict[str, torch.Tensor]:
        self._notes.update(dict.fromkeys(result.notes))
        self._warnings.update(dict.fromkeys(result.warnings))
        self._attacks_run.update(dict.fromkeys(k for k in result.after if k != "clean"))
        out = {"correct": result.robust}
        out.update({f"after/{k}": v for k, v in result.still_robust_after.items()})
        return out

    def report(self) -> dict[str, Any]:
        """What the evaluation used and noticed since the last report (then forgotten)."""
        flags: list[dict[str, Any]] = [
            {"check": "few_classes", "severity": "info", "message": note} for note in self._notes
        ]
        for message in self._warnings:
            if "zero gradient" in message:
                flags.append({"check": "zero_gradients", "severity": "warning", "message": f"AutoAttack: {message}"})
            elif "Square Attack" not in message:  # the Square check is made on the whole set by the evaluator
                flags.append({"check": "autoattack", "severity": "warning", "message": f"AutoAttack: {message}"})
        out = {
            "attack": "autoattack",
            "version": self.version,
            "attacks": list(self._attacks_run),
            "implementation": f"pyautoattack {getattr(_library(), '__version__', '?')}",
            "flags": flags,
        }
        self._notes, self._warnings, self._attacks_run = {}, {}, {}
        return out


def minimum_norm_perturbation(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    norm: str = "linf",
    n_restarts: int = 1,
    n_iter: int = 100,
    seed: int = 0,
) -> torch.Tensor:
    """The input margin: norm of the smallest adversarial perturbation FAB finds for each point.

    ``y`` defaults to the predicted labels (the margin-consistency convention). Points FAB
    cannot break get ``inf``; points already misclassified w.r.t. ``y`` get 0. FAB (untargeted)
    is pyautoattack's ``FABAttack_PT``; restarts after the first start at random within the
    best radius found, and the smallest successful perturbation is kept.
    """
    lib_norm = _check_norm(norm)
    from pyautoattack.fab_pt import FABAttack_PT

    x = x.detach().float()
    with torch.no_grad():
        pred = model(x).argmax(1)
    y = pred if y is None else y.detach().long()
    best = torch.full((len(x),), math.inf, device=x.device)
    best[pred != y] = 0.0
    todo = (pred == y).nonzero().flatten()
    if len(todo) == 0:
        return best
    d = x[0].numel()
    radius = {"Linf": 1.0, "L2": math.sqrt(d), "L1": float(d)}[lib_norm]
    fab = FABAttack_PT(model, norm=lib_norm, n_restarts=1, n_iter=n_iter, eps=radius, seed=seed, device=x.device)
    p = {"Linf": math.inf, "L2": 2.0, "L1": 1.0}[lib_norm]
    torch.random.manual_seed(seed)
    with torch.no_grad():
        for restart in range(n_restarts):
            if restart:
                finite = best[todo].isfinite()
                fab.eps = float(best[todo][finite].max()) if finite.any() else radius
            adv = fab.attack_single_run(x[todo], y[todo], use_rand_start=restart > 0, is_targeted=False)
            fooled = model(adv).argmax(1) != y[todo]
            size = (adv - x[todo]).flatten(1).norm(p=p, dim=1)
            size = torch.where(fooled, size, torch.full_like(size, math.inf))
            best[todo] = torch.minimum(best[todo], size)
    return best


# ----------------------------------------------------------------------------- the attack registry


def _seed_from(generator: torch.Generator | None, seed: int | None = None) -> int:
    """A seed for pyautoattack (which seeds torch's global RNG itself) drawn from the caller's RNG."""
    if seed is not None:
        return int(seed)
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device if generator is not None else "cpu"))


def run_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str, eps: float, steps: int | None = None,
                   generator: torch.Generator | None = None, **_: object) -> torch.Tensor:
    """The registry's ``autoattack``: the standard ensemble, worst case per point (``steps`` ≠ 100 changes APGD/FAB iterations).

    Under the evaluator, a threat model using this attack is measured through
    :func:`autoattack_batch_runner` (the ``autoattack`` spec's ``evaluator``), which also reports
    the accuracy after each attack.
    """
    n_iter = None if steps in (None, STANDARD_ITERATIONS) else int(steps)
    return AutoAttack(norm, eps, seed=_seed_from(generator), n_iter=n_iter).perturb(model, x.float(), y)


def run_apgd_l1(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str, eps: float, steps: int = 100,
                restarts: int = 1, generator: torch.Generator | None = None, **_: object) -> torch.Tensor:
    """The registry's ``apgd-l1``: AutoAttack's L1-APGD on the cross-entropy (Croce & Hein 2021), large-ε schedule.

    Not in the engine's own APGD, which covers L∞ and L2: pyautoattack's L1 version is used as is.
    Returns the first adversarial point found per input, else the input.
    """
    if norm != "l1":
        raise AttackError(f"apgd-l1 attacks the l1 norm only, not {norm!r}; use apgd-ce for linf/l2")
    aa = AutoAttack("l1", eps, version="custom", attacks=["apgd-ce"], seed=_seed_from(generator), n_iter=steps)
    return aa.perturb(model, x.float(), y)


#: AutoAttack's iterations for APGD and FAB.
STANDARD_ITERATIONS = 100
run_autoattack.default_steps = STANDARD_ITERATIONS  # type: ignore[attr-defined]


def autoattack_batch_runner(threat: Any) -> AutoAttack:
    """The evaluator's view of a threat model whose attack is ``autoattack``: per-attack accuracies and flags.

    The ``autoattack`` spec's ``evaluator`` (an :class:`AutoAttack`, a :class:`rftbench.threat.SetEvaluator`).
    """
    steps = getattr(threat, "steps", None)
    return AutoAttack(threat.norm, threat.eps, seed=int(getattr(threat, "seed", None) or 0),
                      n_iter=None if steps in (None, STANDARD_ITERATIONS) else int(steps))

