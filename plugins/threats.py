"""Built-in plugin ``threats``: the L∞, L2 and L1 threat models and the attack each one runs.

Each threat model's parameters are its budget ``eps`` (on the [0, 1] pixel scale; ``4/255``
accepted) and how it is probed: ``attack`` (any installed attack, see ``rftbench plugins --kind attack``, that supports
the norm), ``steps``, ``step_size``,
``restarts``, ``random_start``, ``seed`` and ``attack_params`` (the attack's own parameters, validated
against its spec; left out of the config when empty). Unset attack settings take the attack's defaults
when the config is resolved, so a resolved config says exactly what ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_serializer, model_validator

from rftbench import ThreatModelSpec, hookimpl
from rftbench.attacks import attacks_for, default_attack, get_attack
from rftbench.errors import UnknownNameError
from rftbench.plugins import current_manager
from rftbench.specs import Epsilon, Params, format_number

if TYPE_CHECKING:  # pragma: no cover - torch is imported when a threat model attacks, not at discovery
    import torch
    from torch import nn

    from rftbench.attacks import Objective


class ThreatParams(Params):
    """Budget and attack of an Lp threat model."""

    norm: ClassVar[str] = ""
    eps: Epsilon
    attack: str | None = Field(
        None, validate_default=True,
        description="an installed attack supporting this norm (default: apgd-ce for L∞/L2, apgd-l1 for L1)"
    )
    steps: int | None = Field(None, ge=0, le=100_000, description="attack iterations (default: the attack's own)")
    step_size: Epsilon | None = Field(None, description="step (initial step for APGD); default: the attack's rule")
    restarts: int = Field(1, ge=1, le=1000, description="random restarts (the first start follows random_start)")
    random_start: bool | None = Field(None, description="start from a random point of the ball (default: the attack's)")
    seed: int | None = Field(None, ge=0, description="seed of the attack's own RNG (default: the global torch RNG)")
    attack_params: dict[str, Any] = Field(
        default_factory=dict, description="the attack's own parameters, validated against its spec (omitted when empty)"
    )

    @model_serializer(mode="wrap")
    def _omit_empty_attack_params(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict) and not data.get("attack_params"):
            data.pop("attack_params", None)  # configs (and their hashes) without attack parameters read as before
        return data

    @model_validator(mode="before")
    @classmethod
    def _attack_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        manager = current_manager()
        name = data.get("attack") or default_attack(cls.norm, manager)
        try:
            spec = manager.get("attack", name) if name else None
        except Exception:  # noqa: BLE001 - unknown or conflicting: the field validator says why
            spec = None
        if spec is not None and cls.norm in spec.norms:
            data["attack"] = name
            if data.get("steps") is None:
                data["steps"] = spec.default_steps
            if data.get("random_start") is None:
                data["random_start"] = spec.random_start
        return data

    @field_validator("attack_params")
    @classmethod
    def _attack_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("attack")
        if not name:
            return value  # the attack itself is invalid: its own error says why
        spec = current_manager().get("attack", name)
        try:
            return spec.dump_params(spec.validate_params(value))
        except ValidationError as err:
            details = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(all)'}: {e['msg']}" for e in err.errors())
            raise ValueError(f"attack {name!r}: {details} (its parameters: "
                             f"{', '.join(r['name'] for r in spec.param_table()) or 'none'})") from None

    @field_validator("attack")
    @classmethod
    def _installed(cls, value: str | None) -> str:
        manager = current_manager()
        supported = attacks_for(cls.norm, manager)
        if value is None:
            raise ValueError(
                f"no installed attack supports the {cls.norm} norm (installed: {', '.join(manager.names('attack')) or 'none'}); "
                "install a plugin contributing one (rftbench_add_attacks), or check that the built-in `attacks` plugin is "
                "enabled (`rftbench plugins`; an rftbench installed before attacks became plugins needs `pip install -e .` again)"
            )
        try:
            spec = manager.get("attack", value)
        except UnknownNameError as err:
            hint = f" Did you mean: {', '.join(err.matches)}?" if err.matches else ""
            raise ValueError(f"unknown attack {value!r}.{hint} Attacks for {cls.norm}: {', '.join(supported) or '(none installed)'}") from None
        except Exception as err:  # noqa: BLE001 - a conflict between two plugins: their message says which
            raise ValueError(str(err).replace("\n", " ")) from None
        if cls.norm not in spec.norms:
            raise ValueError(
                f"attack {value!r} does not support the {cls.norm} norm (it supports "
                f"{', '.join(spec.norms)}); attacks for {cls.norm}: {', '.join(supported) or '(none installed)'}"
            )
        return value


class LinfParams(ThreatParams):
    norm: ClassVar[str] = "linf"
    eps: Annotated[Epsilon, Field(description="L∞ budget on the [0, 1] pixel scale, e.g. 4/255")] = 4 / 255

    @field_validator("eps")
    @classmethod
    def _pixel_scale(cls, value: float) -> float:
        if value > 1:
            hint = f"{value:g}/255" if value <= 255 else "a value in [0, 1]"
            raise ValueError(f"an L∞ budget is on the [0, 1] pixel scale and must be at most 1; write {hint}")
        return value


class L2Params(ThreatParams):
    norm: ClassVar[str] = "l2"
    eps: Annotated[Epsilon, Field(le=10_000, description="L2 budget on the [0, 1] pixel scale (the study: 2.0 at 224 px)")] = 2.0


class L1Params(ThreatParams):
    norm: ClassVar[str] = "l1"
    eps: Annotated[Epsilon, Field(le=1_000_000, description="L1 budget on the [0, 1] pixel scale (the study: 75 at 224 px)")] = 75.0


def format_eps(value: float, norm: str = "linf") -> str:
    """``4/255`` for an L∞ budget of whole 255ths in (0, 1], else the shortest float (``2``, ``0.4``, ``75``)."""
    if norm != "linf":
        return f"{value:g}"
    text = format_number(value)
    return text if isinstance(text, str) else f"{value:g}"


class LpThreat:
    """An Lp threat model: budget plus attack; satisfies :class:`rftbench.threat.ThreatModel`."""

    def __init__(
        self,
        norm: str,
        eps: float,
        attack: str,
        steps: int,
        step_size: float | None,
        restarts: int,
        random_start: bool,
        seed: int | None,
        attack_params: dict[str, Any] | None = None,
    ):
        self.norm, self.eps = norm, float(eps)
        self.attack = get_attack(attack, norm, params=attack_params)
        self.steps, self.step_size, self.restarts = steps, step_size, restarts
        self.random_start, self.seed = random_start, seed
        self._generator: torch.Generator | None = None

    def label(self) -> str:
        return f"{self.norm}:{format_eps(self.eps, self.norm)}"

    def __repr__(self) -> str:
        return f"LpThreat({self.label()}, attack={self.attack.name}, steps={self.steps}, random_start={self.random_start})"

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The attack's own RNG when a ``seed`` is set (created on first use), else ``None``."""
        import torch

        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def state_dict(self) -> dict[str, Any]:
        """RNG state to checkpoint (empty without a seed)."""
        return {"rng": self._generator.get_state()} if self._generator is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "rng" in state and self.seed is not None:
            import torch

            self._generator = torch.Generator().manual_seed(self.seed)
            self._generator.set_state(state["rng"])

    def perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float | None = None,
        objective: Objective | None = None,
        early_stop: bool = False,
        x_init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Adversarial copies of ``x`` within the budget (``eps`` overrides it, e.g. under an ε schedule).

        ``objective`` replaces the attack's cross-entropy (TRADES' KL); ``early_stop`` drops
        points once broken (evaluation); ``x_init`` is where the first start begins (TRADES' KL
        attack: x + 0.001·N(0, 1)). The model is put in eval mode with frozen parameters.
        """
        from rftbench.attacks import attack_mode

        budget = self.eps if eps is None else float(eps)
        with attack_mode(model):
            return self.attack(
                model, x, y, norm=self.norm, eps=budget, steps=self.steps, step_size=self.step_size,
                restarts=self.restarts, random_start=self.random_start, generator=self.generator(x.device),
                early_stop=early_stop, objective=objective, x_init=x_init,
            )


def _factory(norm: str):
    def build(**params: Any) -> LpThreat:
        return LpThreat(norm, **params)

    build.__name__ = f"build_{norm}_threat"
    return build


@hookimpl
def rftbench_add_threat_models() -> list[ThreatModelSpec]:
    return [
        ThreatModelSpec(
            name="linf", norm="linf", params=LinfParams, factory=_factory("linf"),
            description="L∞ ball of radius eps (the study: 4/255), probed by an installed attack (default APGD-CE)",
        ),
        ThreatModelSpec(
            name="l2", norm="l2", params=L2Params, factory=_factory("l2"),
            description="L2 ball of radius eps (the study: 2.0 at 224 px), probed by an installed attack (default APGD-CE)",
        ),
        ThreatModelSpec(
            name="l1", norm="l1", params=L1Params, factory=_factory("l1"),
            description="L1 ball of radius eps (the study: 75 at 224 px); probed by an installed L1 attack (default: AutoAttack's APGD-L1)",
        ),
    ]
