"""Helpers for testing a plugin, like pytest's ``pytester`` for pytest plugins.

::

    from rftbench.testing import check, plugin_manager

    def test_my_loss():
        manager = plugin_manager(my_plugin)              # the built-ins + my plugin (+ the micro cards)
        check("loss", "my_loss", {"lambda": 0.5}, manager=manager).assert_ok()

- :func:`plugin_manager`: a fresh :class:`~rftbench.plugins.PluginManager` with the built-in
  plugins, the plugins you pass (modules or objects with hook functions, or entry-point names
  of installed distributions) and :data:`MICRO_REPRESENTATION` / :data:`TINY_DATASET`; it fails
  with every problem the loader found, so a plugin that does not load fails its own tests.
- :data:`MICRO_REPRESENTATION` (``micro_resnet.testing``: a ResNet of a few thousand parameters,
  16 px, random init, nothing downloaded) and :data:`TINY_DATASET` (``digits_tiny``: 10 classes
  of scikit-learn's bundled digits, 64 images per split, built in memory): a run on them
  trains and evaluates in seconds on a CPU.
- :func:`check`: runs one contribution through the engine and the evaluator the way
  ``rftbench run`` and ``rftbench eval`` use it and returns a :class:`ContractReport` listing
  each violation of its kind's contract (see :mod:`rftbench.hookspecs`), empty when it conforms.
"""

from __future__ import annotations

import math
import tempfile
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cards import DatasetCard, RepresentationCard
from .hookspecs import hookimpl
from .plugins import BUILTIN_DISTRIBUTION, PluginManager

_INPUT = {"resolution": 16, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "interpolation": "bilinear"}
_SPLITS = {"train": {"rule": "stratified"}, "val": {"rule": "stratified", "fraction": 0.2},
           "test": {"rule": "stratified", "fraction": 0.2}}

#: A test-only backbone (offline ``recipe`` source, a micro ResNet, random init): builds in milliseconds.
MICRO_REPRESENTATION = RepresentationCard(
    id="micro_resnet.testing", source="recipe", model="micro_resnet", family="convolutional", size="tiny",
    params_m=0.002, input=_INPUT, pretraining={"strategy": "none", "data": "none"},
    provenance={"license": "Apache-2.0", "notes": "rftbench.testing: a test-only micro backbone"}, tags=["testing"],
)
#: A tiny offline dataset: the first 64 images per split of scikit-learn's digits, 16 px.
TINY_DATASET = DatasetCard(
    id="digits_tiny", source="offline", args={"generator": "digits", "seed": 0, "limit": 64}, num_classes=10,
    resolution=16, splits=_SPLITS, provenance={"license": "CC-BY-4.0", "notes": "rftbench.testing"},
    tags=["testing", "no-hflip"],
)


class _TestingCards:
    """The plugin that contributes :data:`MICRO_REPRESENTATION` and :data:`TINY_DATASET`."""

    @hookimpl
    def rftbench_add_representations(self) -> list[RepresentationCard]:
        return [MICRO_REPRESENTATION]

    @hookimpl
    def rftbench_add_datasets(self) -> list[DatasetCard]:
        return [TINY_DATASET]


def plugin_manager(*plugins: Any, builtins: bool = True, strict: bool = True) -> PluginManager:
    """A fresh manager with the built-ins, ``plugins`` and the testing cards (never the process-wide one).

    Each of ``plugins`` is a module or object with hook functions (registered under its
    ``__name__``), or a string naming an entry point of an installed distribution (its
    ``rftbench`` entry-point name, e.g. the one ``rftbench plugin new`` wrote). With ``strict``,
    any problem the loader reports (an import error, a hook that raises, an invalid spec, a
    conflict) raises :class:`~rftbench.errors.PluginError` listing them all.
    """
    import importlib.metadata

    from .errors import PluginError

    manager = PluginManager()
    names = {p for p in plugins if isinstance(p, str)}
    if builtins or names:
        eps = importlib.metadata.entry_points(group="rftbench")
        wanted = set(names)
        if builtins:
            wanted |= {ep.name for ep in eps if ep.dist is not None and ep.dist.name == BUILTIN_DISTRIBUTION}
        missing = names - {ep.name for ep in eps}
        if missing:
            raise PluginError(f"no installed distribution declares the rftbench entry point(s) {', '.join(sorted(missing))}; "
                              "pip install -e your plugin first")
        manager.load_entrypoints(only=wanted, disable=())
    for plugin in plugins:
        if not isinstance(plugin, str):
            manager.register(plugin, getattr(plugin, "__name__", type(plugin).__name__))
    manager.register(_TestingCards(), "rftbench.testing")
    problems = manager.check()
    if strict and problems:
        raise PluginError("the plugins did not load cleanly:\n" + "\n".join(f"- {p}" for p in problems))
    return manager


@dataclass
class ContractReport:
    """What :func:`check` found: the contribution, each violation of its contract, and what it measured."""

    kind: str
    name: str
    violations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` listing the violations (for tests)."""
        assert self.ok, f"{self.kind} {self.name!r} violates its contract:\n" + "\n".join(f"- {v}" for v in self.violations)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.kind} {self.name!r}: conforms"
        return f"{self.kind} {self.name!r}: {len(self.violations)} violation(s)\n" + "\n".join(f"- {v}" for v in self.violations)


def check(kind: str, name: str, params: Mapping[str, Any] | None = None, *, manager: PluginManager | None = None,
          workdir: str | Path | None = None) -> ContractReport:
    """Run the contribution ``name`` of ``kind`` through the engine and the evaluator; report contract violations.

    What runs, per kind (on :data:`MICRO_REPRESENTATION` and :data:`TINY_DATASET`, CPU, seconds):

    - ``loss``, ``protocol``, ``schedule``: a one-epoch ``rftbench run`` with it (schedules as
      ε and LR schedule, per their ``targets``), checking the record and finite numbers; a
      schedule's values over training are also checked (finite, ≥ 0);
    - ``threat_model``, ``attack``: ``rftbench.evaluate`` with it (an attack through the ``linf``,
      ``l2`` or ``l1`` threat model of a norm it supports), checking the accuracy lies in [0, 1],
      no budget violation was flagged, ``perturb`` keeps shape, dtype and the [0, 1] box, and
      (Lp threat models) accepts ``objective=`` and ``x_init=`` and starts at ``x_init``;
    - ``metric``: ``rftbench.evaluate`` with it, checking its label and a JSON-able result;
    - ``architecture``: builds ``card`` (``params["card"]``, a :class:`RepresentationCard` whose
      ``source`` is the architecture) with ``pretrained=False`` and checks ``num_features`` and
      ``forward_features``; ``representation``: the same for a card of the zoo;
    - ``dataset_source``/``dataset``: loads the splits of a dataset card (``params["card"]`` for a
      source) and checks images in [0, 1], labels in range and ``targets``/``classes``;
    - ``executor``: starts it, runs two tasks and shuts it down; ``publisher``: builds it.

    ``params`` are the contribution's parameters (as a user writes them in a config).
    """
    manager = manager or plugin_manager()
    report = ContractReport(kind, name)
    params = dict(params or {})
    try:
        spec = manager.get(kind, name)
    except Exception as err:  # noqa: BLE001
        report.violations.append(f"cannot be looked up: {err}")
        return report
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp)
        try:
            _CHECKS[kind](manager, spec, params, root, report)
        except Exception as err:  # noqa: BLE001 - every failure is a finding
            report.violations.append(f"raised {type(err).__name__}: {err}\n{_short_traceback(err)}")
    return report


def _short_traceback(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)[-3:]
    return "".join(traceback.format_list(frames)).rstrip()


def _run(manager: PluginManager, root: Path, report: ContractReport, overrides: Iterable[str]) -> Any:
    from .runner import run

    base = [f"representation={MICRO_REPRESENTATION.id}", f"dataset={TINY_DATASET.id}", "epochs=1", "batch_size=32",
            "threat.steps=2", f"output_dir={root / 'runs'}", f"data_root={root / 'data'}", "device=cpu",
            "evaluation=[{name: linf, eps: 4/255, steps: 2}]"]
    record = run(overrides=base + list(overrides), manager=manager, rerun=True)
    report.details["record"] = record.id
    report.details["clean_acc"] = record.metrics.get("clean_acc")
    for key, value in record.timings.items():
        if isinstance(value, float) and not math.isfinite(value):
            report.violations.append(f"timing {key} is not finite")
    if record.status != "complete":
        report.violations.append(f"the run did not complete (status {record.status!r})")
    acc = record.metrics.get("clean_acc")
    if not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
        report.violations.append(f"the run's clean accuracy is {acc!r}, not a number in [0, 1]")
    return record


def _set(field_name: str, name: str, params: Mapping[str, Any]) -> list[str]:
    import json

    return [f"{field_name}={json.dumps({'name': name, **params})}"]


def _check_loss(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    loss = spec.build(**params)
    for attr in ("uses_clean", "uses_adv"):
        if not isinstance(getattr(loss, attr, None), bool):
            report.violations.append(f"the loss object has no bool `{attr}` (which logits it needs)")
    if not callable(getattr(loss, "attack_objective", None)) and spec.adversarial:
        report.violations.append("an adversarial loss needs attack_objective(model, x, y) (return None for cross-entropy)")
    _check_loss_values(loss, report)
    if not report.violations:
        _run(manager, root, report, _set("loss", spec.name, params))


def _check_loss_values(loss: Any, report: ContractReport) -> None:
    import torch

    y = torch.tensor([0, 1, 2, 1])
    clean = torch.randn(4, 3, requires_grad=True)
    adv = torch.randn(4, 3, requires_grad=True)
    value = loss(y, clean=clean if loss.uses_clean else None, adv=adv if loss.uses_adv else None)
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        report.violations.append(f"__call__ must return a scalar tensor, got {type(value).__name__} {getattr(value, 'shape', '')}")
        return
    if not torch.isfinite(value):
        report.violations.append(f"__call__ returned {value.item()} on random logits")
        return
    used = [t for t, u in ((clean, loss.uses_clean), (adv, loss.uses_adv)) if u]
    if not value.requires_grad:
        report.violations.append("the loss does not depend on the logits it says it uses (it is detached from them)")
        return
    value.backward()
    if any(t.grad is None or not t.grad.abs().sum() for t in used):
        report.violations.append("the loss does not depend on the logits it says it uses (no gradient reached them)")
    low = loss(y, clean=clean.detach().bfloat16() if loss.uses_clean else None, adv=adv.detach().bfloat16() if loss.uses_adv else None)
    if low.dtype != torch.float32:
        report.violations.append(f"on bf16 logits the loss is {low.dtype}; compute in fp32 (logits.float())")


def _check_schedule(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    schedule = spec.build(**params)
    if hasattr(schedule, "validate"):
        schedule.validate(10)
    values = [schedule(t / 4, 10) for t in range(41)]
    bad = [v for v in values if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0]
    if bad:
        report.violations.append(f"values over 10 epochs must be finite numbers ≥ 0; got {bad[:3]}")
    report.details["values"] = values[::4]
    overrides = []
    if "epsilon" in spec.targets:
        overrides += _set("eps_schedule", spec.name, params)
    if "lr" in spec.targets:
        overrides += _set("lr_schedule", spec.name, params)
    if not report.violations:
        _run(manager, root, report, overrides)


def _check_protocol(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    from .model import build_classifier

    from .engine import prepare_model

    protocol = spec.build(**params)
    model = build_classifier(MICRO_REPRESENTATION, TINY_DATASET.num_classes, pretrained=False, manager=manager)
    prepare_model(model, protocol)  # a protocol that adds layers (LoRA, adapters) adds them first
    names = {n for n, _ in model.named_parameters()}
    for epoch in range(2):
        chosen = protocol.trainable(model, epoch, 2)
        if not isinstance(chosen, (set, frozenset)):
            report.violations.append(f"trainable() must return a set of parameter names, got {type(chosen).__name__}")
            return
        unknown = sorted(set(chosen) - names)
        if unknown:
            report.violations.append(f"trainable() names parameters the model does not have: {unknown[:3]}")
    if not report.violations:
        _run(manager, root, report, _set("protocol", spec.name, params))


def _evaluate(manager: PluginManager, suite: list[Any], report: ContractReport) -> dict[str, Any]:
    import torch

    from .data import load_splits
    from .evaluation import evaluate
    from .model import build_classifier

    torch.manual_seed(0)
    model = build_classifier(MICRO_REPRESENTATION, TINY_DATASET.num_classes, pretrained=False, manager=manager)
    test = load_splits(TINY_DATASET, manager=manager, download=False)["test"]
    result = evaluate(model, test, suite, batch_size=32, n_examples=32, manager=manager, progress=False)
    flags = result.get("flags") or []
    for flag in flags:
        text = json_text(flag)
        if "budget_violation" in text:
            report.violations.append(f"the evaluator flagged: {text}")
    return result


def json_text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str)


def _check_threat(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    import torch

    threat = spec.build(**params)
    for attr in ("norm", "eps", "label", "perturb"):
        if not hasattr(threat, attr):
            report.violations.append(f"the threat-model object has no `{attr}`")
    if report.violations:
        return
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    x_adv = threat.perturb(model, x, y)
    if not isinstance(x_adv, torch.Tensor) or x_adv.shape != x.shape or x_adv.dtype != x.dtype:
        report.violations.append(f"perturb() must return a tensor shaped and typed like x ({tuple(x.shape)}, {x.dtype})")
        return
    if x_adv.min() < 0 or x_adv.max() > 1:
        report.violations.append("perturb() left the [0, 1] image box")
    _check_batch_evaluator(threat, model, x, y, report)
    if getattr(threat, "norm", None) in ("linf", "l2", "l1"):
        _check_x_init(spec, params, report)
    result = _evaluate(manager, [{"name": spec.name, **params}], report)
    for label, record in result["threats"].items():
        if not 0 <= record["acc"] <= 1:
            report.violations.append(f"accuracy under {label} is {record['acc']}, not in [0, 1]")
        report.details[label] = record["acc"]


def _check_batch_evaluator(threat: Any, model: Any, x: Any, y: Any, report: ContractReport) -> None:
    """The evaluator contract (:mod:`rftbench.threat`): what :func:`~rftbench.threat.batch_evaluator` finds must
    return a ``correct`` tensor per point from ``evaluate_batch`` (and ``evaluate_all``, when it has one)."""
    import torch

    from .attacks import attack_mode
    from .threat import BatchEvaluator, batch_evaluator

    attack = getattr(threat, "attack", None)
    if callable(getattr(getattr(attack, "run", None), "batch_runner", None)):
        report.violations.append("the attack's run function carries `batch_runner`, which is not read: give the attack spec "
                                 "`evaluator=` (evaluator(threat) -> rftbench.threat.BatchEvaluator) instead")
    for candidate in (threat, attack):
        if candidate is not None and callable(getattr(candidate, "evaluate_all", None)) and not isinstance(candidate, BatchEvaluator):
            report.violations.append(f"{type(candidate).__name__} has evaluate_all() but no evaluate_batch(model, x, y, *, index): "
                                     "it is never used (see rftbench.threat.SetEvaluator)")
    runner = batch_evaluator(threat)
    if runner is None:
        return
    index = torch.arange(len(y))
    calls = [("evaluate_batch", lambda: runner.evaluate_batch(model, x, y, index=index))]
    if callable(getattr(runner, "evaluate_all", None)):
        calls.append(("evaluate_all", lambda: runner.evaluate_all(model, x, y, index=index, batch_size=2, device="cpu")))
    with attack_mode(model):
        for what, call in calls:
            out = call()
            correct = out.get("correct") if isinstance(out, dict) else None
            if not isinstance(correct, torch.Tensor) or tuple(correct.shape) != (len(y),):
                report.violations.append(f"{what}() must return a mapping with 'correct', a tensor of shape ({len(y)},) "
                                         f"for a batch of {len(y)}; got {type(out).__name__}"
                                         + (f" with 'correct' {type(correct).__name__}" if isinstance(out, dict) else ""))
            elif correct.dtype != torch.bool and not bool(((correct >= 0) & (correct <= 1)).all()):
                report.violations.append(f"{what}()'s 'correct' must be bool or a share in [0, 1]")
    if callable(getattr(runner, "report", None)):
        runner.report()  # forget what the check accumulated


def _check_x_init(spec: Any, params: dict[str, Any], report: ContractReport) -> None:
    """``perturb(..., objective=, x_init=)`` must start at ``x_init``: with an objective whose gradient
    is zero at ``x`` (as TRADES' KL), an attack that starts at ``x`` returns ``x`` and training sees
    no adversarial example at all. Checked without a random start, which would hide the problem."""
    import torch

    fields = getattr(spec.params, "model_fields", {})
    threat = spec.build(**{**params, **({"random_start": False} if "random_start" in fields else {})})
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
    x = torch.rand(4, 3, 16, 16, generator=gen) * 0.5 + 0.25
    y = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        clean = model(x)

    def objective(logits: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return ((logits.float() - clean[index]) ** 2).sum(1)  # zero gradient at x: only a start elsewhere moves

    x_init = (x + 0.001 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    try:
        x_adv = threat.perturb(model, x, y, objective=objective, x_init=x_init)
    except TypeError as err:
        report.violations.append(f"perturb() must accept objective= and x_init= (the engine passes them in training): {err}")
        return
    if isinstance(x_adv, torch.Tensor) and x_adv.shape == x.shape and torch.equal(x_adv, x):
        report.violations.append(
            "perturb(..., x_init=) returned x unchanged for an objective whose gradient is zero at x: the attack ignores "
            "x_init (it must start there, e.g. TRADES' KL start x + 0.001·N(0, 1)); see rftbench_add_attacks"
        )


def _check_attack(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    threat = {"linf": {"name": "linf", "eps": "8/255"}, "l2": {"name": "l2", "eps": 0.5}, "l1": {"name": "l1", "eps": 8.0}}
    for norm in spec.norms:
        component = {**threat[norm], "attack": spec.name, "steps": min(spec.default_steps, 5) or spec.default_steps}
        threat_spec = manager.get("threat_model", norm)
        _check_threat(manager, threat_spec, {k: v for k, v in component.items() if k != "name"}, root, report)


def _check_metric(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    import json

    metric = spec.build(**params)
    for attr in ("label", "compute"):
        if not callable(getattr(metric, attr, None)):
            report.violations.append(f"the metric object has no `{attr}()`")
    if report.violations:
        return
    label = metric.label()
    result = _evaluate(manager, [{"name": spec.name, **params}], report)
    if label not in result["metrics"]:
        report.violations.append(f"label() is {label!r} but the result's metrics hold {sorted(result['metrics'])}")
        return
    try:
        json.dumps(result["metrics"][label])
    except (TypeError, ValueError) as err:
        report.violations.append(f"compute() must return a JSON-able mapping: {err}")
    report.details[label] = result["metrics"][label]


def _check_backbone(manager: PluginManager, card: RepresentationCard, report: ContractReport) -> None:
    import torch

    from .model import build_classifier

    model = build_classifier(card, 3, pretrained=False, manager=manager).eval()
    backbone = model.backbone
    r = card.input.resolution
    x = torch.rand(2, 3, r, r)
    with torch.no_grad():
        feats = backbone.forward_features(x)
        logits = model(x)
    if tuple(feats.shape) != (2, backbone.num_features):
        report.violations.append(f"forward_features returned {tuple(feats.shape)}, expected (2, num_features={backbone.num_features})")
    if tuple(logits.shape) != (2, 3):
        report.violations.append(f"the classifier over it returned {tuple(logits.shape)}, expected (2, 3)")
    if not torch.isfinite(feats).all():
        report.violations.append("forward_features returned non-finite values on images in [0, 1]")


def _check_architecture(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    card = params.get("card")
    if card is None:
        cards = [c for c in manager.items("representation") if c.source == spec.name]
        if not cards:
            report.violations.append("no representation card names this architecture as its source; pass params={'card': card}")
            return
        card = cards[0]
    if card.source != spec.name:
        report.violations.append(f"card {card.id!r} has source {card.source!r}, not {spec.name!r}")
        return
    _check_backbone(manager, card, report)


def _check_representation(manager: PluginManager, card: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    manager.get("architecture", card.source)
    _check_backbone(manager, card, report)


def _check_dataset_card(manager: PluginManager, card: DatasetCard, root: Path, report: ContractReport) -> None:
    import torch

    from .data import check_classes, load_splits
    from .evaluation.context import collate

    splits = load_splits(card, root=root / "data", manager=manager)
    check_classes(card, splits)
    if "test" not in splits or "train" not in splits:
        report.violations.append(f"the splits are {sorted(splits)}; train and test are required")
    for name, ds in splits.items():
        if not hasattr(ds, "targets"):
            report.violations.append(f"the {name} split has no `targets` (labels readable without loading images)")
        x, y = collate([ds[i] for i in range(min(4, len(ds)))])
        if x.min() < 0 or x.max() > 1:
            report.violations.append(f"{name} images leave [0, 1]")
        if y.min() < 0 or y.max() >= card.num_classes:
            report.violations.append(f"{name} labels leave range({card.num_classes})")
        report.details[name] = len(ds)
        del x, y
    torch.manual_seed(0)


def _check_dataset_source(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    card = params.get("card") or next((c for c in manager.items("dataset") if c.source == spec.name), None)
    if card is None:
        report.violations.append("no dataset card names this source; pass params={'card': card}")
        return
    _check_dataset_card(manager, card, root, report)


def _check_dataset(manager: PluginManager, card: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    _check_dataset_card(manager, card, root, report)


def _square(value: int) -> int:
    return value * value


def _check_executor(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    executor = spec.build(**params)
    for attr in ("start", "submit", "wait", "result", "shutdown"):
        if not callable(getattr(executor, attr, None)):
            report.violations.append(f"the executor object has no `{attr}()`")
    if report.violations:
        return
    executor.start(root)
    try:
        handles = executor.submit(_square, [2, 3])
        done: list[Any] = []
        for _ in range(600):
            done += executor.wait([h for h in handles if h not in done], 0.1)
            if len(done) == len(handles):
                break
        results = sorted(executor.result(h) for h in handles)
        if results != [4, 9]:
            report.violations.append(f"submit(fn, [2, 3]) gave {results}, expected fn's results [4, 9]")
    finally:
        executor.shutdown()


def _check_publisher(manager: PluginManager, spec: Any, params: dict[str, Any], root: Path, report: ContractReport) -> None:
    publisher = spec.build(**{"repo": "example/leaderboard", **params})
    if not isinstance(getattr(publisher, "target", None), str):
        report.violations.append("the publisher has no `target` string")
    for attr in ("identity", "publish"):
        if not callable(getattr(publisher, attr, None)):
            report.violations.append(f"the publisher has no `{attr}()`")


_CHECKS = {
    "loss": _check_loss,
    "schedule": _check_schedule,
    "protocol": _check_protocol,
    "threat_model": _check_threat,
    "attack": _check_attack,
    "metric": _check_metric,
    "architecture": _check_architecture,
    "representation": _check_representation,
    "dataset_source": _check_dataset_source,
    "dataset": _check_dataset,
    "executor": _check_executor,
    "publisher": _check_publisher,
}

__all__ = ["MICRO_REPRESENTATION", "TINY_DATASET", "ContractReport", "check", "plugin_manager"]
