"""Pydantic specs: what a plugin contributes, and the value types shared by every spec.

A *spec* names one contribution (a loss, a protocol, a threat model…), describes it, declares
its user-settable parameters as a pydantic model (types, ranges, defaults) and carries the
factory that builds it. The plugin manager validates every spec when plugins are discovered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from ._context import blame, using

# --------------------------------------------------------------------------- value types


def parse_number(value: Any) -> Any:
    """Accept ``4/255``-style fractions (the literature's way of writing ε) besides plain numbers.

    Only finite numbers pass: ``4/inf``, ``nan``, ``1e999`` and ``true`` are refused, not read as 0, NaN or 1.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number (write e.g. 4/255 or 0.5)")
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                num, _, den = text.partition("/")
                result = float(num) / float(den)
                parts_finite = math.isfinite(float(num)) and math.isfinite(float(den))
            else:
                result = float(text)
                parts_finite = True
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{value!r} is not a number or a fraction like '4/255'") from None
        if not (parts_finite and math.isfinite(result)):
            raise ValueError(f"{value!r} is not a finite number (write e.g. 4/255 or 0.5)")
        return result
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


def admits_bool(annotation: Any) -> bool:
    """Whether a field's type accepts ``True``/``False`` as themselves (bool, Any, a union or Literal with bool)."""
    if annotation is bool or annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return admits_bool(get_args(annotation)[0])
    if origin is Literal:
        return any(isinstance(a, bool) for a in get_args(annotation))
    if origin is not None:
        return any(admits_bool(a) for a in get_args(annotation))
    return False


class NoBoolCoercion(BaseModel):
    """A model whose number and string fields refuse ``true``/``false`` (pydantic would read ``true`` as 1).

    Floats must also be finite: ``inf`` and ``nan`` are refused.
    """

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_bool(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and not admits_bool(field.annotation):
                raise ValueError(f"got {str(value).lower()}, a boolean; this field takes a {_kind(field.annotation)}")
        return value


def _kind(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return {"int": "whole number", "float": "number", "str": "string"}.get(text, f"value of type {text}")


def format_number(value: float) -> float | str:
    """Write ``k/255`` when a value is a whole number of 255ths (so configs read as in papers)."""
    if value and 0 < value <= 1:
        k = value * 255
        if abs(k - round(k)) < 1e-9:
            return f"{round(k)}/255"
    return value


#: A non-negative perturbation budget; accepts ``"4/255"``. Each threat model adds its own bound.
Epsilon = Annotated[
    float,
    BeforeValidator(parse_number),
    Field(ge=0.0, description="perturbation budget; '4/255' accepted"),
    PlainSerializer(format_number, return_type=Any, when_used="json"),
]

#: A plugin-contributed name: lower case, digits, '_', '-', '.'.
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=80)]


class Params(NoBoolCoercion):
    """Base class for a contribution's parameters: unknown keys, booleans for numbers and non-finite floats are refused.

    A parameter whose natural name is a Python keyword is declared with an alias
    (``lam: float = Field(1.0, alias="lambda")``); users write, and see, the alias everywhere
    (configs, ``--set``, resolved configs, records, result columns), and the field name is accepted too.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)


class NoParams(Params):
    """A contribution that takes no parameters."""


# --------------------------------------------------------------------------- specs

#: The one list of plugin kinds, in discovery order; ``KINDS``, the hooks (``hookspecs.HOOK_FOR_KIND``)
#: and the spec classes' ``kind`` derive from it (a test checks every kind has a hook and a class or card).
Kind = Literal[
    "architecture",
    "representation",
    "dataset_source",
    "dataset",
    "loss",
    "protocol",
    "schedule",
    "threat_model",
    "attack",
    "metric",
    "executor",
    "publisher",
]
KINDS: tuple[str, ...] = get_args(Kind)


def lazy(target: str) -> Callable[..., Any]:
    """A factory that imports ``"package.module:attr"`` only when called, then calls it.

    Keeps plugin discovery light: a plugin module can declare its specs without importing
    torch or other heavy dependencies, which its factories import when a run builds them.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"lazy({target!r}): expected 'package.module:attribute'")

    def factory(*args: Any, **kwargs: Any) -> Any:
        import importlib

        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj(*args, **kwargs)

    factory.__name__ = attr.rsplit(".", 1)[-1]
    factory.__qualname__ = factory.__name__
    factory.__module__ = module_name
    factory.__doc__ = f"Imports and calls {target} (lazily)."
    return factory


class Spec(BaseModel):
    """A contribution of code: name, description, typed parameters and a factory.

    The factory is called with the validated parameters as keyword arguments
    (``spec.build(**values)``); what it receives besides and what it returns is the
    contract of the spec's kind, documented in :mod:`rftbench.hookspecs`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    kind: ClassVar[str] = ""

    name: Name
    description: str = Field(min_length=1)
    params: type[BaseModel] = NoParams
    factory: Callable[..., Any]
    #: Filled in by the plugin manager: the plugin that contributed the spec, its distribution and version.
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None
    _manager: Any = PrivateAttr(default=None)

    def validate_params(self, values: Mapping[str, Any] | None = None) -> BaseModel:
        """Validate user values against the parameter model (raises pydantic.ValidationError).

        Keys may be written under a field's alias (``lambda`` for a field ``lam``) or its name.
        Validation runs with the contributing plugin manager active (see
        :func:`rftbench.plugins.current_manager`), so validators may look other contributions up.
        A plugin validator that trips over a value of an unexpected type (``TypeError``,
        ``KeyError``…, which pydantic passes through) becomes a :class:`ConfigError` naming the spec.
        """
        from pydantic import ValidationError

        from .errors import ConfigError

        try:
            with using(self._manager):
                return self.params.model_validate(dict(values or {}))
        except ValidationError:
            raise
        except (TypeError, LookupError, AttributeError, ArithmeticError) as err:
            shown = repr(dict(values or {}))
            shown = shown if len(shown) <= 300 else shown[:300] + "…"
            raise ConfigError(
                f"{self.name!r}{f' (plugin {self.plugin})' if self.plugin else ''}: invalid parameters {shown}: "
                f"{type(err).__name__}: {err}"
            ) from None

    def dump_params(self, params: BaseModel) -> dict[str, Any]:
        """Validated parameters as users write them: JSON values under their aliases (``lambda``, not ``lam``)."""
        return params.model_dump(mode="json", by_alias=True)

    def build(self, *args: Any, **values: Any) -> Any:
        """Validate ``values`` and call the factory with them (and ``args``, the kind's context).

        An exception raised by the factory is re-raised as a
        :class:`~rftbench.errors.PluginRuntimeError` naming the plugin, this contribution and
        its distribution (the original exception is its ``__cause__``).
        """
        params = self.validate_params(values)
        with using(self._manager), blame(self, "factory"):
            built = self.factory(*args, **{k: getattr(params, k) for k in type(params).model_fields})
        if self._manager is not None:
            self._manager.remember(built, self)  # run-time errors are blamed on this contribution (PluginManager.attribute)
        return built

    def param_table(self) -> list[dict[str, Any]]:
        """One row per parameter: name, type, default, bounds, description (for docs and the CLI)."""
        rows = []
        schema = self.params.model_json_schema()
        props = schema.get("properties", {})
        for pname, field in self.params.model_fields.items():
            prop = props.get(field.alias or pname, {})
            pname = field.alias or pname
            bounds = {k: prop[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum") if k in prop}
            rows.append(
                {
                    "name": pname,
                    "type": prop.get("type") or _type_name(field.annotation),
                    "default": None if field.is_required() else _jsonable(field.get_default(call_default_factory=True)),
                    "required": field.is_required(),
                    "bounds": bounds,
                    "description": field.description or "",
                }
            )
        return rows


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


class ArchitectureParams(Params):
    """Parameters every zoo architecture takes; a third-party architecture's ``params`` subclass it
    (``build_backbone`` passes ``pretrained`` through ``spec.build``)."""

    pretrained: bool = Field(True, description="load the card's pinned pretrained weights (False: random init, no download)")


class ArchitectureSpec(Spec):
    """Builds networks for representation cards whose ``source`` is this spec's name.

    ``rebuild(card, output) -> dict``, for architectures whose weights come from a pretraining
    recipe (``card.weights.recipe``): train the card's weights again, compare them with the shipped
    ones and, with ``output`` (a folder), copy the built file there; returns what ``rftbench zoo
    build`` reports (``reproduces``, ``file``, ``copied_to``, the recipe's accuracies…).
    """

    kind: ClassVar[str] = "architecture"
    rebuild: Callable[..., dict[str, Any]] | None = Field(
        None, description="rebuild(card, output) -> outcome: the card's weights from its recipe (`rftbench zoo build`)"
    )


class DatasetSourceSpec(Spec):
    """Loads the splits of dataset cards whose ``source`` is this spec's name."""

    kind: ClassVar[str] = "dataset_source"


class LossSpec(Spec):
    """A training objective (standard CE, Classic AT, TRADES, …).

    ``adversarial`` is the one source of whether the loss trains on adversarial examples: the
    engine reads it from the spec (no attack, and no training threat built, when ``False``). A
    loss object need not say it; one whose own ``adversarial`` attribute differs from the spec's
    is refused when built (:meth:`build` raises a :class:`~rftbench.errors.PluginRuntimeError`).
    """

    kind: ClassVar[str] = "loss"
    adversarial: bool = Field(True, description="whether the loss needs adversarial examples (the engine reads it here)")

    def build(self, *args: Any, **values: Any) -> Any:
        """Build the loss object; an object whose own ``adversarial`` disagrees with the spec's is refused."""
        from .errors import PluginRuntimeError

        loss = super().build(*args, **values)
        own = getattr(loss, "adversarial", None)
        if own is not None and bool(own) != self.adversarial:
            raise PluginRuntimeError(
                f"loss {self.name!r}{f' of plugin {self.plugin!r}' if self.plugin else ''}: the spec says adversarial={self.adversarial} "
                f"but the loss object says adversarial={own!r}; the engine reads the spec's: set LossSpec(adversarial=…) "
                "to what the loss needs and drop (or match) the object's attribute",
                plugin=self.plugin, distribution=self.distribution)
        return loss


class ProtocolSpec(Spec):
    """Which parameters learn, and how (LP, FFT, LP-FT, partial-k)."""

    kind: ClassVar[str] = "protocol"


class ScheduleSpec(Spec):
    """A value over training time, as a multiplier of a base value (ε or learning rate)."""

    kind: ClassVar[str] = "schedule"
    targets: tuple[Literal["epsilon", "lr"], ...] = ("epsilon", "lr")


class ThreatModelSpec(Spec):
    """A perturbation family with a budget, and the attack that measures or trains against it."""

    kind: ClassVar[str] = "threat_model"
    norm: Literal["linf", "l2", "l1", "corruption", "other"] = "other"


class AttackSpec(Spec):
    """An algorithm that finds a perturbation within a threat model's budget (PGD, APGD-CE, AutoAttack…).

    ``factory(**params)`` returns the attack's run function (see :mod:`rftbench.attacks`);
    ``evaluator(threat)``, when given, the object that measures evaluation batches of a threat
    model running this attack (see :func:`rftbench.threat.batch_evaluator`).
    """

    kind: ClassVar[str] = "attack"
    norms: tuple[Literal["linf", "l2", "l1"], ...] = Field(min_length=1, description="the norms the attack supports")
    default_steps: int = Field(10, ge=0, description="iterations when a threat model does not set `steps`")
    random_start: bool = Field(True, description="whether it starts from a random point of the ball by default")
    default_for: tuple[Literal["linf", "l2", "l1"], ...] = Field(
        (), description="norms for which it is the attack a threat model uses when none is named"
    )
    evaluator: Callable[[Any], Any] | None = Field(
        None, description="evaluator(threat) -> rftbench.threat.BatchEvaluator: measures the evaluation batches of a threat "
        "model running this attack itself (AutoAttack: the accuracy after each attack); None: the evaluator calls perturb"
    )


class MetricSpec(Spec):
    """A number (or a small record) computed on a trained model."""

    kind: ClassVar[str] = "metric"


class ExecutorSpec(Spec):
    """Runs the runs of a sweep (in-process, Ray, SLURM, …)."""

    kind: ClassVar[str] = "executor"


class PublisherSpec(Spec):
    """Publishes result entries (e.g. to the Hugging Face Hub leaderboard)."""

    kind: ClassVar[str] = "publisher"


SPEC_CLASSES: dict[str, type[Spec]] = {
    cls.kind: cls
    for cls in (
        ArchitectureSpec,
        DatasetSourceSpec,
        LossSpec,
        ProtocolSpec,
        ScheduleSpec,
        ThreatModelSpec,
        AttackSpec,
        MetricSpec,
        ExecutorSpec,
        PublisherSpec,
    )
}
