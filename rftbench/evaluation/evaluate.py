"""The suite runner: clean accuracy, accuracy under each threat model, then the metrics.

Every component of the suite is resolved and validated before any computation starts, so a
bad name or parameter fails fast and nothing is half-computed or half-written.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import Dataset, Subset

from ..attacks import attack_mode
from ..cards import format_validation_error
from ..config import Component
from ..errors import ConfigError, RftbenchError, UnknownNameError
from ..plugins import PluginManager, get_manager
from ..threat import Reporter, SetEvaluator, batch_evaluator, takes_early_stop
from . import masking
from .context import EvalContext

log = logging.getLogger("rftbench")

ADVERSARIAL_NORMS = ("linf", "l2", "l1")


class EvaluationError(RftbenchError):
    """The model, the data or the suite cannot be evaluated as asked; the message says why and how to fix it."""


def _as_component(item: Any) -> Component:
    if isinstance(item, Component):
        return item
    try:
        return Component.model_validate(item)
    except ValidationError as err:
        raise ConfigError(f"evaluation suite item {item!r} is not a component:\n{format_validation_error(err)}") from None


def resolve_suite(suite: Iterable[Any], manager: PluginManager | None = None) -> tuple[list[tuple[str, Any, Component]], list[tuple[str, Any, Component]]]:
    """Build every threat model and metric of ``suite``: ``(threats, metrics)``, each ``[(label, object, component)]``.

    Items are :class:`~rftbench.config.Component` (or their YAML forms: a name, or a mapping
    ``{name: …, param: …}``); names are looked up among threat models first, then metrics.
    All problems are gathered into one :class:`~rftbench.errors.ConfigError`.
    """
    manager = manager or get_manager()
    if isinstance(suite, (str, bytes, Path, Mapping)):  # iterating would read characters or keys as items
        raise ConfigError(
            f"suite={str(suite)[:80]!r}: a suite is a list of components, e.g. ['corruptions', {{'name': 'linf', 'eps': '4/255'}}]; "
            "for a named suite or a suite file use rftbench.evaluation.suites.named_suite(name_or_path)"
        )
    threats: list[tuple[str, Any, Component]] = []
    metrics: list[tuple[str, Any, Component]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(suite):
        component = _as_component(item)
        kind = next((k for k in ("threat_model", "metric") if component.name in manager.names(k)), None)
        if kind is None:
            available = manager.names("threat_model") + manager.names("metric")
            err = UnknownNameError("threat model or metric", component.name, available)
            problems.append(f"  evaluation.{i}: " + str(err).replace("\n", "\n    "))
            continue
        spec = manager.get(kind, component.name)
        try:
            built = spec.build(**component.params)
        except ValidationError as err:
            fields = [info.alias or name for name, info in getattr(spec.params, "model_fields", {}).items()]
            problems.append(f"  evaluation.{i} ({component.name}):\n" + format_validation_error(err, prefix="  ", fields=fields))
            continue
        except RftbenchError as err:
            problems.append(f"  evaluation.{i} ({component.name}): {err}")
            continue
        label = built.label()
        if label in seen or label == "clean":
            problems.append(f"  evaluation.{i}: {label!r} appears twice in the suite; remove the duplicate")
            continue
        seen.add(label)
        (threats if kind == "threat_model" else metrics).append((label, built, component))
    if problems:
        raise ConfigError("invalid evaluation suite:\n" + "\n".join(problems))
    return threats, metrics


#: The smallest image side common corruptions accept (the smallest a zoo card may declare).
MIN_SIDE = 8


def check_data(data: Dataset, n_examples: int | None, threats: Iterable[tuple[str, Any, Any]] = ()) -> Dataset:
    """The evaluation's view of ``data`` (its first ``n_examples``), after checking what depends on the data.

    Checked from the first example: an image tensor C×H×W with 1 or 3 channels and finite values
    in [0, 1], with sides of at least :data:`MIN_SIDE` pixels when ``threats`` (from
    :func:`resolve_suite`) include common corruptions; and ``n_examples`` at most the test set's
    size. ``rftbench run`` calls this before training, so a bad setting costs no training time.
    """
    try:
        size = len(data)  # type: ignore[arg-type]
    except TypeError:
        raise EvaluationError(f"the data ({type(data).__name__}) has no length; pass a map-style torch Dataset of (image, label)") from None
    if size == 0:
        raise EvaluationError("the test set is empty: nothing to evaluate")
    corruptions = any(getattr(t, "norm", None) == "corruption" for _, t, _ in threats)
    _check_image(data[0], MIN_SIDE if corruptions else 1)
    if n_examples is None:
        return data
    if n_examples < 1:
        raise ConfigError(f"n_examples={n_examples}: must be at least 1 (or None for the whole test set)")
    if n_examples > size:
        raise ConfigError(f"n_examples={n_examples} is larger than the test set ({size} images); use at most {size}, or omit it to use all")
    return Subset(data, list(range(n_examples)))


_check_data = check_data


def _check_image(example: Any, min_side: int) -> None:
    image = example[0] if isinstance(example, (tuple, list)) and example else None
    if not isinstance(image, torch.Tensor):
        raise EvaluationError(f"the test set's examples must be (image tensor, label) pairs, got {type(example).__name__} "
                              f"of {type(image).__name__}")
    shape = tuple(image.shape)
    if image.dim() != 3 or shape[0] not in (1, 3):
        raise EvaluationError(f"the test images have shape {shape}; expected C×H×W with 1 or 3 channels")
    if min(shape[1:]) < min_side:
        raise EvaluationError(f"the test images are {shape[1]}×{shape[2]} pixels; common corruptions need at least "
                              f"{min_side}×{min_side} (resize them, e.g. with the representation's transform)")
    if not image.is_floating_point() or not bool(torch.isfinite(image).all()) or float(image.min()) < -1e-6 \
            or float(image.max()) > 1 + 1e-6:
        raise EvaluationError(f"the test images must be floats in [0, 1] (models normalise inside); the first one has "
                              f"dtype {image.dtype}, range [{float(image.min()):.3g}, {float(image.max()):.3g}]")


def expected_input(model: nn.Module) -> tuple[int | None, int | None, str]:
    """``(channels, resolution, what says so)`` of the images ``model`` takes, where it says (else ``None``).

    A :class:`rftbench.model.Classifier` built from a card takes ``channels × resolution ×
    resolution`` (the card's ``input``); otherwise the channels are those of the first
    :class:`rftbench.model.Normalize` (which would silently broadcast a 1-channel image to 3) or
    the first ``Conv2d``, and the resolution is unknown.
    """
    from ..model import Normalize

    spec = getattr(model, "input", None)
    if spec is not None and isinstance(getattr(spec, "resolution", None), int):
        name = getattr(model, "representation", None)
        return int(spec.channels), int(spec.resolution), f"representation {name!r}" if name else "the model's card"
    for module in model.modules():
        if isinstance(module, Normalize):
            return int(module.mean.numel()), None, "the model (its input normalisation)"
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels), None, "the model (its first convolution)"
    return None, None, "the model"


def check_inputs(model: nn.Module, data: Dataset, device: torch.device | str = "cpu") -> None:
    """The test images fit ``model``: its channels and resolution (:func:`expected_input`) and one forward.

    Raises an :class:`EvaluationError` naming the images' shape and the shape the model takes
    rather than a result on images the model cannot read (1×5×5 for a 3×16×16 model) or a bug
    message from inside its forward.
    """
    image = data[0][0]
    shape = "×".join(str(s) for s in image.shape)
    channels, resolution, source = expected_input(model)
    need = (f"{channels if channels is not None else 'C'}×{resolution if resolution is not None else 'H'}×"
            f"{resolution if resolution is not None else 'W'}")
    fix = ("resize and convert them with the representation's transform (rftbench.data.make_transform(card, train=False), "
           "what `rftbench eval -d DATASET` applies)" if resolution is not None else "give images of the shape the model takes")
    if (channels is not None and image.shape[0] != channels) or (resolution is not None and tuple(image.shape[1:]) != (resolution, resolution)):
        raise EvaluationError(f"the test images are {shape} (C×H×W) but {source} takes {need} images; {fix}")
    try:
        with attack_mode(model), torch.no_grad():  # eval mode: batch statistics are neither used nor updated
            logits = model(image.unsqueeze(0).to(device))
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        raise EvaluationError(f"the model cannot take the test images ({shape}, C×H×W): {type(err).__name__}: "
                              f"{str(err).splitlines()[0][:300] if str(err) else ''}; {fix}") from None
    del logits  # what the logits look like is the clean pass's check (logits [batch, classes])


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise EvaluationError(f"the target ({type(model).__name__}) is not a classifier: expected a torch.nn.Module taking images in [0, 1] and returning logits")
    return model


def _check_device(model: nn.Module, device: str | torch.device) -> torch.device:
    from ..engine.hardware import parse_device

    device = parse_device(device)
    where = next((p.device for p in model.parameters()), None)
    if where is not None and where.type != device.type:
        raise EvaluationError(f"the model is on {where} but device={str(device)!r}: move it first (model.to({str(device)!r}))")
    return device


@torch.no_grad()
def _clean_pass(ctx: EvalContext) -> None:
    logits, labels = [], []
    for x, y, _ in ctx.batches():
        out = ctx.model(x)
        if out.ndim != 2:
            raise EvaluationError(f"the model returned a tensor of shape {tuple(out.shape)} for a batch of {len(x)} images; a classifier returns logits [batch, classes]")
        logits.append(out.float().cpu())
        labels.append(y.cpu())
    ctx.clean_logits, ctx.labels = torch.cat(logits), torch.cat(labels)
    if int(ctx.labels.max()) >= ctx.clean_logits.shape[1] or int(ctx.labels.min()) < 0:
        raise EvaluationError(
            f"labels go up to {int(ctx.labels.max())} but the model has {ctx.clean_logits.shape[1]} outputs: "
            "is this the model trained on this dataset?"
        )


def _norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1).float()
    return {"linf": lambda: flat.abs().amax(1), "l2": lambda: flat.norm(dim=1), "l1": lambda: flat.abs().sum(1)}[norm]()


_takes_early_stop = takes_early_stop  # the old private name


def _default_batch(ctx: EvalContext, threat: Any, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Correctness under ``threat.perturb``; adversarial threats attack only clean-correct points."""
    norm = getattr(threat, "norm", "other")
    correct = torch.zeros(len(y), dtype=torch.bool, device=x.device)
    if norm in ADVERSARIAL_NORMS:
        todo = ctx.clean_correct[index].to(x.device)
    else:
        todo = torch.ones_like(correct)
    out: dict[str, torch.Tensor] = {}
    if todo.any():
        xs, ys = x[todo], y[todo]
        x_adv = (threat.perturb(ctx.model, xs, ys, early_stop=True) if takes_early_stop(threat)
                 else threat.perturb(ctx.model, xs, ys)).detach()
        if x_adv.shape != xs.shape:
            raise EvaluationError(f"threat model {threat.label()!r} returned shape {tuple(x_adv.shape)} for inputs of shape {tuple(xs.shape)}")
        with torch.no_grad():
            correct[todo] = ctx.model(x_adv).argmax(1) == ys
        if norm in ADVERSARIAL_NORMS:
            eps = float(threat.eps)
            size = _norms(x_adv - xs, norm)
            over = (size > eps * (1 + 1e-3) + 1e-5) | (x_adv.flatten(1).amin(1) < -1e-6) | (x_adv.flatten(1).amax(1) > 1 + 1e-6)
            violations = torch.zeros_like(correct)
            violations[todo] = over
            out["_violations"] = violations
    out["correct"] = correct
    return out


def _nest(flat: Mapping[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def threat_outcomes(ctx: EvalContext, threat: Any, indices: torch.Tensor | None = None,
                    label: str | None = None) -> tuple[dict[str, torch.Tensor], Any]:
    """Per-point outcomes of ``threat`` on all points (or ``indices``), in order: ``({"correct": …, …}, runner)``.

    ``correct`` is a bool (or, for averaged threats, float) tensor on the CPU; other keys are
    what the threat reports per point (``after/<attack>``…). Each batch is seeded from the
    evaluation seed and the position of its first point, so results do not depend on what ran before.
    With a ``label`` and ``ctx.progress``, progress lines are printed (at least every 30 s).
    """
    from ..progress import Ticker

    runner = batch_evaluator(threat)  # the one rule: rftbench.threat
    parts: dict[str, list[torch.Tensor]] = defaultdict(list)
    size = len(ctx) if indices is None else int(torch.as_tensor(indices).numel())
    ticker = Ticker(label or "", size, enabled=bool(ctx.progress and label))
    if isinstance(runner, SetEvaluator):
        # the runner takes the whole set (CPU tensors) and batches it itself
        x, y = ctx.tensors(indices)
        index = torch.arange(len(ctx)) if indices is None else torch.as_tensor(indices).flatten()
        ticker.begin()
        with attack_mode(ctx.model), ctx.seeded(0):
            out = runner.evaluate_all(ctx.model, x, y, index=index, batch_size=ctx.batch_size, device=ctx.device)
        if "correct" not in out:
            raise EvaluationError(f"threat model {threat.label()!r}: evaluate_all() must return a 'correct' tensor")
        ticker.finish()
        return {k: v.detach().cpu() for k, v in out.items()}, runner
    done = 0
    with attack_mode(ctx.model):
        for x, y, index in ctx.batches(indices):
            with ctx.seeded(int(index[0])):
                if runner is not None:
                    out = runner.evaluate_batch(ctx.model, x, y, index=index)
                else:
                    out = _default_batch(ctx, threat, x, y, index)
            if "correct" not in out:
                raise EvaluationError(f"threat model {threat.label()!r}: evaluate_batch() must return a 'correct' tensor")
            for key, value in out.items():
                parts[key].append(value.detach().cpu())
            done += len(index)
            ticker.tick(done)
    ticker.finish()
    return {k: torch.cat(v) for k, v in parts.items()}, runner


def robust_correct(ctx: EvalContext, threat: Any, indices: torch.Tensor | None = None) -> torch.Tensor:
    """Bool per point: still classified correctly under ``threat`` (for metrics that attack a subset)."""
    outcomes, runner = threat_outcomes(ctx, threat, indices)
    reporter = runner if runner is not None else threat
    if isinstance(reporter, Reporter):
        reporter.report()  # reset what the threat accumulated
    return outcomes["correct"] > 0.5


def _run_threat(ctx: EvalContext, label: str, threat: Any) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, torch.Tensor]]:
    start = time.perf_counter()
    outcomes, runner = threat_outcomes(ctx, threat, label=label)
    n = len(outcomes["correct"])
    sums = {k: float(v.float().sum()) for k, v in outcomes.items()}
    result: dict[str, Any] = {"acc": sums.pop("correct") / n, "n": n, "norm": getattr(threat, "norm", "other"), "eps": float(getattr(threat, "eps", math.nan))}
    violations = int(sums.pop("_violations", 0))
    result.update(_nest({k: v / n for k, v in sums.items()}))
    flags: list[dict[str, Any]] = []
    if violations:
        flags.append(masking.flag("budget_violation", label, f"{violations} of {n} perturbed points lie outside the {result['norm']} ball of radius {result['eps']:.6g} or outside [0, 1]: the attack is broken"))
    reporter = runner if runner is not None else threat
    if isinstance(reporter, Reporter):
        extra = dict(reporter.report() or {})
        flags.extend({"threat": label, **f} for f in extra.pop("flags", []))
        result.update(extra)
    flags.extend(masking.check_attack_order(label, result))
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result, flags, outcomes


def evaluate(
    model: nn.Module,
    data: Dataset,
    suite: Iterable[Component | str | Mapping[str, Any]],
    *,
    batch_size: int = 128,
    n_examples: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    manager: PluginManager | None = None,
    output_dir: str | Path | None = None,
    progress: bool = True,
    points: Mapping[str, Any] | None = None,
    cost: Any = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``data`` under every threat model and metric of ``suite``.

    :param model: an ``nn.Module`` taking images in [0, 1] and returning logits (put in eval
        mode with frozen parameters for the duration; its state is restored afterwards).
    :param data: a map-style Dataset of ``(image, label)``; images are float tensors in [0, 1]
        or PIL images, of the shape the model takes (checked with :func:`check_inputs`: a
        card-built classifier takes ``channels × resolution × resolution``, its card's ``input``).
    :param suite: threat-model and metric components, e.g. ``["corruptions", {"name": "linf",
        "eps": "4/255", "attack": "autoattack"}, {"name": "expected_robustness"}]``.
    :param n_examples: evaluate on the first ``n_examples`` points (all when ``None``).
    :param seed: seeds torch's RNG for every threat model that draws from it (each batch from
        ``seed`` and the position of its first point, so results do not depend on what ran
        before): the same seed gives the same numbers. Two built-ins seed themselves instead:
        ``corruptions`` by its own ``seed`` parameter (``{name: corruptions, seed: 1}``) and
        ``autoattack`` by its ``seed`` parameter (pyautoattack's seeding, default 0); ``seed``
        does not change their results.
    :param output_dir: where plots and the per-example outcomes (``outcomes-<sha>.npz``, see
        :mod:`rftbench.outcomes`) are written (none when ``None``).
    :param points: the identity of the test points (``dataset``, ``card_sha256``…) stored with
        the per-example outcomes; the evaluator adds ``n``, ``subsample`` and ``labels_sha256``.
    :return: a JSON-able dict: ``n_examples``, ``clean_acc``, ``threats`` (label →
        ``{"acc": …, "n": …, "seconds": …, …}``), ``metrics`` (label → the metric's record),
        ``flags`` (gradient-masking and reliability warnings, each ``{"check", "threat",
        "message", "severity"}``), ``reliable`` (no warning flag), ``union`` and ``union_all``
        (when the suite defines them: the share of points correct under every L∞/L2/L1 threat,
        and under every threat, corruptions included; ``{"acc", "n", "of", "reliable"}``), ``seed``, ``plots``
        (written files), ``outcomes`` (with ``output_dir``: the per-example file's name,
        sha256, size and the points' identity) and ``seconds``.
    :param cost: an :class:`rftbench.engine.cost.EvalCost` measuring the clean pass and each
        threat and metric by label (passes, FLOPs, device-seconds, peak memory), or ``None``.
    """
    manager = manager or get_manager()
    model = _check_model(model)
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: must be at least 1")
    threats, metrics = resolve_suite(suite, manager)
    subset = check_data(data, n_examples, threats)
    device = _check_device(model, device)
    check_inputs(model, subset, device)
    ctx = EvalContext(model=model, data=subset, batch_size=batch_size, device=device, seed=seed, manager=manager,
                      output_dir=Path(output_dir) if output_dir is not None else None, progress=progress)
    started = time.perf_counter()
    # eval mode, parameters frozen; each module's mode and each parameter's flag restored afterwards
    measure = cost.measure if cost is not None else (lambda label: contextlib.nullcontext())
    with attack_mode(model):
        with measure("clean"):
            _clean_pass(ctx)
        result: dict[str, Any] = {
            "n_examples": len(ctx),
            "clean_acc": float(ctx.clean_correct.float().mean()),
            "threats": {},
            "metrics": {},
            "flags": [],
            "seed": seed,
        }
        ctx.results = result
        if any(getattr(t, "norm", "other") in ADVERSARIAL_NORMS for _, t, _ in threats) or metrics:
            result["flags"].extend(masking.check_model(ctx))
        per_example: dict[str, dict[str, torch.Tensor]] = {}
        for label, threat, _ in threats:
            _say(progress, f"threat {label} on {len(ctx)} points")
            with measure(label):
                record, flags, per_example[label] = _run_threat(ctx, label, threat)
            result["threats"][label] = record
            result["flags"].extend(flags)
        for label, metric, _ in metrics:
            _say(progress, f"metric {label}")
            t0 = time.perf_counter()
            with attack_mode(ctx.model), measure(label):
                record = dict(metric.compute(ctx))
            result["flags"].extend(record.pop("flags", []))
            record["seconds"] = round(time.perf_counter() - t0, 3)
            result["metrics"][label] = record
        unreliable = {f["threat"] for f in result["flags"] if f.get("severity") == "warning"}
        for label, record in result["threats"].items():
            record["reliable"] = label not in unreliable and None not in unreliable
        result["reliable"] = not unreliable
        result.update(_unions(ctx, result, per_example))
        result["plots"] = []
        if ctx.output_dir is not None:
            from .plots import write_plots

            result["plots"] = [str(p) for p in write_plots(result, ctx.output_dir, metrics=[m for _, m, _ in metrics])]
            result["outcomes"] = _write_outcomes(ctx, per_example, points)
        result["seconds"] = round(time.perf_counter() - started, 3)
        return result


def _unions(ctx: EvalContext, result: Mapping[str, Any], per_example: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, Any]:
    """The union accuracies (``union``: every L∞/L2/L1 threat; ``union_all``: corruptions included), from the per-point outcomes.

    Each ``{"acc", "n", "of", "reliable"}``: the share of points correct clean and under every
    threat in ``of`` (see :mod:`rftbench.outcomes`); left out when the suite does not define it.
    """
    from .. import outcomes as oc

    threats = result["threats"]
    return oc.union_summary(ctx.clean_correct.numpy(), {k: v["correct"].numpy() for k, v in per_example.items()},
                            norms={k: str(threats[k].get("norm")) for k in per_example},
                            reliable={k: bool(threats[k].get("reliable", True)) for k in per_example})


def _write_outcomes(ctx: EvalContext, per_example: Mapping[str, Mapping[str, torch.Tensor]],
                    points: Mapping[str, Any] | None) -> dict[str, Any]:
    """Write the per-example file (``outcomes-<sha>.npz``) into the output folder; returns its name, sha256, size and points."""
    from .. import outcomes as oc

    assert ctx.output_dir is not None and ctx.clean_logits is not None
    ident = {"subsample": "first", "subsample_seed": None, **dict(points or {})}
    # the evaluated points are the first n of the test split: a point's index is its position
    built = oc.from_evaluation(ctx.clean_logits.numpy(), ctx.labels.numpy(),
                               {k: {n: v.numpy() for n, v in out.items() if not n.startswith("_")} for k, out in per_example.items()},
                               points=ident, norms={k: str(ctx.results["threats"][k].get("norm")) for k in per_example})
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    return oc.write_outcomes(built, ctx.output_dir)


def _say(progress: bool, message: str) -> None:
    if progress:
        log.info("eval: %s", message)
