"""The torch code of the parameter-efficient protocols (see :mod:`rftbench_plugins.protocols`), imported on first use.

``lora``, ``lp-lora`` and the generic ``peft`` protocol inject the Hugging Face ``peft``
library's layers into the backbone (``peft.inject_adapter_in_model``: the model stays a
:class:`rftbench.model.Classifier`, the classifier head is never wrapped and always learns).
``adapter`` adds bottleneck adapters written here (``peft`` has no Houlsby-style adapter for
vision models: its ``adaption_prompt`` is LLaMA-only), and ``bitfit`` trains biases only.

A protocol that changes the model's structure has ``prepare(model)``: the engine calls it once,
before training and before a checkpoint is loaded, and :func:`rftbench.load_model` calls it
before loading the trained weights (which hold the adapter weights, unmerged).

Target modules
--------------
Unless ``target_modules`` is given, the layers adapted are chosen by the first row of
:data:`FAMILIES` whose pattern matches a module of the backbone (patterns are searched in the
module names relative to the backbone); a backbone that no row fits gets the Linear and Conv2d
layers inside its blocks (:func:`rftbench_plugins.protocols.find_blocks`). ``target_modules``
entries are module names or name suffixes on a ``.`` boundary (``qkv``, ``attn.proj``, as in
``peft``) or regular expressions matched against the whole name; each must match at least one
Linear, Conv2d or MultiheadAttention module.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import typing
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rftbench.errors import ConfigError, close_matches
from rftbench_plugins.protocols import find_blocks
from rftbench_plugins.schedules import epochs_at

from ._peft_check import PIP, peft_missing  # noqa: F401 - re-exported


@dataclass(frozen=True)
class Family:
    """A default choice of target modules for one architecture family."""

    name: str
    lora: str  #: regex (searched) for the layers LoRA and generic PEFT methods adapt
    adapter: str  #: regex for the layers a bottleneck adapter follows (each block's output projections)


#: Default target modules, first match wins (docs/plugins.md has the table; a test checks it names every row).
FAMILIES: tuple[Family, ...] = (
    Family("ViT, DeiT, ConvNeXt (timm); ViT, DeiT (transformers ≥ 5); offline mini transformers",
           lora=r"(^|\.)(attn\.(qkv|proj)|attention\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(fc1|fc2))$",
           adapter=r"(^|\.)(attn\.proj|attention\.o_proj|mlp\.fc2)$"),
    Family("open_clip ViT", lora=r"(^|\.)resblocks\.\d+\.(attn|mlp\.c_fc|mlp\.c_proj)$",
           adapter=r"(^|\.)resblocks\.\d+\.(attn|mlp\.c_proj)$"),
    Family("ViT, DeiT, BEiT (transformers < 5)",
           lora=r"(^|\.)(attention\.attention\.(query|key|value)|attention\.output\.dense|intermediate\.dense|layer\.\d+\.output\.dense)$",
           adapter=r"(^|\.)(attention\.output\.dense|layer\.\d+\.output\.dense)$"),
    Family("HF ConvNeXt (transformers)", lora=r"(^|\.)pwconv[12]$", adapter=r"(^|\.)pwconv2$"),
    Family("ResNets: timm, torchvision, open_clip ModifiedResNet, HF ResNet, offline mini ResNets",
           lora=r"(^|\.)(layer\d+|stages\.\d+|stages\.\d+\.layers)\.\d+\.(conv\d+|layer\.\d+\.convolution)$",
           adapter="last-conv-of-block"),
)
GENERIC = "any other backbone: the Linear and Conv2d layers inside its blocks (adapter: the last one of each block)"


# --------------------------------------------------------------------------- peft, on demand


def import_peft(protocol: str) -> Any:
    """``import peft``, or a :class:`ConfigError` giving the pip command."""
    try:
        return importlib.import_module("peft")
    except ImportError:
        raise ConfigError(f"protocol: {protocol!r} needs the Hugging Face peft library, which is not installed; "
                          f"install it with: {PIP}") from None


def config_classes() -> dict[str, type]:
    """peft's config class per method name (lower case: ``lora``, ``loha``, ``ia3``…)."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    return {str(getattr(k, "value", k)).lower(): v for k, v in PEFT_TYPE_TO_CONFIG_MAPPING.items()}


#: Config fields rftbench sets itself (the generic protocol refuses them in ``config``).
RESERVED = {"peft_type", "task_type", "target_modules", "revision", "base_model_name_or_path", "inference_mode"}


def check_peft_config(method: str, config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` against peft's config class for ``method``; returns the values, coerced.

    Raises ``ValueError`` (pydantic turns it into a named field error) for an unknown method
    (close matches listed), an unknown or reserved key (close matches), a value of the wrong
    type, a prompt-learning method (those need a language model) or what peft's own checks refuse.
    """
    from pydantic import TypeAdapter, ValidationError

    classes = config_classes()
    if method not in classes:
        near = close_matches(method, sorted(classes))
        known = sorted(classes)
        listed = "" if near else f" (peft {_peft_version()} has {len(known)}: {', '.join(known[:14])} …)"
        raise ValueError(f"peft knows no method {method!r}" + (f"; did you mean: {', '.join(near)}?" if near else "") + listed)
    cls = classes[method]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - a foreign API: without hints, types are left to peft
        hints = {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in RESERVED:
            fix = "give target_modules as the protocol's own target_modules" if key == "target_modules" else "rftbench sets it"
            raise ValueError(f"config.{key}: not settable here ({fix})")
        if key not in fields:
            near = close_matches(key, sorted(set(fields) - RESERVED))
            raise ValueError(f"config.{key}: {cls.__name__} has no field {key!r}"
                             + (f"; did you mean: {', '.join(near)}?" if near else ""))
        if key in hints:
            try:
                value = TypeAdapter(hints[key]).validate_python(value, strict=False)
            except ValidationError as err:
                first = err.errors()[0]
                raise ValueError(f"config.{key}: {first['msg']} (got {value!r}; {cls.__name__}.{key} is {hints[key]})") from None
            except Exception:  # noqa: BLE001 - a type pydantic cannot check: peft checks it
                pass
        out[key] = value
    try:
        instance = cls(**out, target_modules=["__rftbench_probe__"]) if "target_modules" in fields else cls(**out)
    except (ValueError, TypeError) as err:
        raise ValueError(f"peft refuses this {cls.__name__}: {err}") from None
    if getattr(instance, "is_prompt_learning", False) or getattr(instance, "is_adaption_prompt", False):
        raise ValueError(f"{method!r} is a prompt-learning method of peft for language models; it has no layers to adapt "
                         "in a vision backbone (use lora, loha, lokr, ia3, oft, boft, vera, hra, …)")
    return out


def _peft_version() -> str:
    try:
        return importlib.import_module("peft").__version__
    except Exception:  # noqa: BLE001
        return "?"


# --------------------------------------------------------------------------- target modules

LAYER_TYPES = (nn.Linear, nn.Conv2d, nn.MultiheadAttention)


def layer_modules(backbone: nn.Module) -> dict[str, nn.Module]:
    """The backbone's adaptable layers (Linear, Conv2d, MultiheadAttention) by name; MHA's inner ``out_proj`` left out."""
    out: dict[str, nn.Module] = {}
    for name, module in backbone.named_modules():
        if isinstance(module, LAYER_TYPES) and name and not _inside_mha(backbone, name):
            out[name] = module
    return out


def _inside_mha(backbone: nn.Module, name: str) -> bool:
    parent = name.rpartition(".")[0]
    return bool(parent) and isinstance(backbone.get_submodule(parent), nn.MultiheadAttention)


def _grouped(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1


def default_targets(backbone: nn.Module, kind: str) -> tuple[str, list[str]]:
    """``(family, names)``: the layers ``kind`` (``lora`` or ``adapter``) adapts by default on this backbone."""
    layers = {n: m for n, m in layer_modules(backbone).items() if not _grouped(m)}
    for family in FAMILIES:
        lora = [n for n in layers if re.search(family.lora, n)]
        if not lora:
            continue
        if kind == "lora":
            return family.name, lora
        if family.adapter == "last-conv-of-block":
            return family.name, _last_per_block(lora)
        return family.name, [n for n in layers if re.search(family.adapter, n)]
    inside: list[str] = []
    blocks = find_blocks(backbone)
    for block, _ in blocks:
        names = [n for n in layers if n == block or n.startswith(f"{block}.")]
        inside.extend(names if kind == "lora" else names[-1:])
    return "generic", inside


def _last_per_block(names: list[str]) -> list[str]:
    last: dict[str, str] = {}
    for n in names:
        block = re.sub(r"\.(conv\d+|layer\.\d+\.convolution)$", "", n)
        last[block] = n  # named_modules order: the last registered conv of the block wins
    return list(last.values())


def matches(pattern: str, name: str) -> bool:
    """peft's rule (the name, or a suffix on a ``.`` boundary), or a regular expression matching the whole name."""
    if name == pattern or name.endswith("." + pattern):
        return True
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return False


def resolve_targets(backbone: nn.Module, patterns: list[str] | None, *, protocol: str, kind: str = "lora") -> list[str]:
    """The backbone-relative names of the layers to adapt: the family default, or every layer ``patterns`` match.

    A pattern that matches no layer is a :class:`ConfigError` listing the layer names that exist.
    """
    layers = layer_modules(backbone)
    if patterns is None:
        family, names = default_targets(backbone, kind)
        if not names:
            raise ConfigError(f"protocol: {protocol!r} found no Linear or Conv2d layer to adapt in {type(backbone).__name__} "
                              f"(family {family}); name them in protocol.target_modules")
        return names
    chosen: list[str] = []
    for pattern in patterns:
        hit = [n for n in layers if matches(pattern, n)]
        if not hit:
            near = close_matches(pattern, list(layers)) or close_matches(pattern, sorted({n.rsplit(".", 1)[-1] for n in layers}))
            shown = ", ".join(list(layers)[:24]) + (f" … ({len(layers)} in all)" if len(layers) > 24 else "")
            raise ConfigError(
                f"protocol.target_modules: {pattern!r} matches no layer of the backbone {type(backbone).__name__}"
                + (f"; did you mean: {', '.join(near)}?" if near else ".")
                + f" Layers that exist (Linear, Conv2d, MultiheadAttention): {shown}. Entries are module names, name "
                "suffixes such as 'qkv', or regular expressions matching a whole name"
            )
        chosen.extend(n for n in hit if n not in chosen)
    return chosen


def layer_width(module: nn.Module) -> int:
    """The largest useful rank of an update of this layer: min(fan-in, fan-out)."""
    if isinstance(module, nn.Linear):
        return min(module.in_features, module.out_features)
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return min(module.in_channels // module.groups * kh * kw, module.out_channels)
    if isinstance(module, nn.MultiheadAttention):
        return module.embed_dim
    return 1 << 30


def output_width(module: nn.Module) -> int:
    """The width (features or channels) of a layer's output."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    return module.embed_dim


def check_width(backbone: nn.Module, names: list[str], size: int, *, field: str, protocol: str, width=layer_width) -> None:
    """A rank (or bottleneck) larger than a target layer's width is a :class:`ConfigError` naming the layer."""
    too_small = [(n, width(backbone.get_submodule(n))) for n in names if width(backbone.get_submodule(n)) < size]
    if too_small:
        name, w = min(too_small, key=lambda t: t[1])
        raise ConfigError(
            f"protocol.{field} = {size} is larger than the width of {len(too_small)} target layer(s) of {protocol!r}, "
            f"the narrowest being {name} (width {w}); use {field} ≤ {w}, or leave those layers out with protocol.target_modules"
        )


# --------------------------------------------------------------------------- shared


def _head(model: nn.Module) -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith("head.")}


def tuner_parameter_names(backbone: nn.Module) -> set[str]:
    """Names (relative to the backbone) of the parameters peft's injected layers added."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    names: set[str] = set()
    for mname, module in backbone.named_modules():
        if not isinstance(module, BaseTunerLayer):
            continue
        for attr in module.adapter_layer_names:
            part = getattr(module, attr, None)
            if isinstance(part, nn.Module):
                names.update(f"{mname}.{attr}.{p}" for p, _ in part.named_parameters())
    return names


def inject(model: nn.Module, peft_config: Any, *, protocol: str, method: str) -> None:
    """``peft.inject_adapter_in_model`` into ``model.backbone``; peft's refusals become a :class:`ConfigError`."""
    peft = import_peft(protocol)
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peft.inject_adapter_in_model(peft_config, model.backbone)
    except (ValueError, TypeError, NotImplementedError, KeyError, RuntimeError) as err:
        raise ConfigError(f"protocol: peft's {method!r} cannot adapt this backbone ({type(model.backbone).__name__}): "
                          f"{err}; choose other layers with protocol.target_modules or another method") from None


class _Adapted:
    """A protocol that adds parameters to the backbone: the added ones and the head learn."""

    name = "?"

    def adapter_names(self, model: nn.Module) -> set[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def trainable(self, model: nn.Module, epoch: int, epochs: int) -> set[str]:
        names = {f"backbone.{n}" for n in self.adapter_names(model.backbone)}
        if not names:
            raise ConfigError(f"protocol: {self.name!r} found no adapter parameters: the model was not prepared "
                              f"(call protocol.prepare(model) first)")
        return names | _head(model)


# --------------------------------------------------------------------------- LoRA


class LoRA(_Adapted):
    """LoRA (Hu et al. 2022, arXiv 2106.09685) through peft: ``W x + (alpha / r) B A x`` on the target layers.

    ``B`` starts at zero, so the prepared model computes what the pretrained one does. Conv2d
    layers get peft's convolutional LoRA (``A``: a conv with the layer's kernel to ``r``
    channels, ``B``: a 1×1 conv back). The head is never adapted and always learns.
    """

    name = "lora"

    def __init__(self, r: int, alpha: float, dropout: float, target_modules: list[str] | None):
        self.r, self.alpha, self.dropout, self.target_modules = r, alpha, dropout, target_modules

    def prepare(self, model: nn.Module) -> None:
        peft = import_peft(self.name)
        targets = resolve_targets(model.backbone, self.target_modules, protocol=self.name)
        check_width(model.backbone, targets, self.r, field="r", protocol=self.name)
        config = peft.LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets,
                                 bias="none")
        inject(model, config, protocol=self.name, method="lora")

    def adapter_names(self, backbone: nn.Module) -> set[str]:
        return tuner_parameter_names(backbone)


class LPLoRA(LoRA):
    """LP-LoRA: a linear probe for ``lp_epochs`` (the LoRA branches exist but ``B = 0``), then LoRA, as LP-FT does (Kumar et al. 2022)."""

    name = "lp-lora"

    def __init__(self, lp_epochs: float | str, **lora: Any):
        super().__init__(**lora)
        self.lp_epochs = lp_epochs

    def trainable(self, model: nn.Module, epoch: int, epochs: int) -> set[str]:
        lora = super().trainable(model, epoch, epochs)
        if epoch < epochs_at(self.lp_epochs, epochs) - 1e-9:
            return _head(model)
        return lora


# --------------------------------------------------------------------------- any peft method


class GenericPeft(_Adapted):
    """Any method of the Hugging Face ``peft`` library, by name, with its config (validated against peft's class)."""

    name = "peft"

    def __init__(self, method: str, config: dict[str, Any], target_modules: list[str] | None):
        self.method, self.config, self.target_modules = method, dict(config), target_modules

    def prepare(self, model: nn.Module) -> None:
        import_peft(self.name)
        cls = config_classes()[self.method]
        values = dict(self.config)
        if any(f.name == "target_modules" for f in dataclasses.fields(cls)):
            values["target_modules"] = resolve_targets(model.backbone, self.target_modules, protocol=f"peft:{self.method}")
            field = next((f for f in dataclasses.fields(cls) if f.name == "r"), None)
            rank = values.get("r", field.default if field is not None else None)
            # a per-layer rank (LoRA, LoHa, LoKr, AdaLoRA…); VeRA and RandLoRA share their random bases across layers
            if isinstance(rank, int) and not isinstance(rank, bool) and rank > 0 and self.method not in ("vera", "randlora"):
                check_width(model.backbone, values["target_modules"], rank, field="config.r", protocol=f"peft:{self.method}")
            if any(f.name == "feedforward_modules" for f in dataclasses.fields(cls)):
                values.setdefault("feedforward_modules", [])  # (IA)³: scale the outputs of every target unless told
        elif self.target_modules is not None:
            raise ConfigError(f"protocol.target_modules: peft's {self.method!r} takes no target modules; remove the field")
        try:
            config = cls(**values)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"protocol.config: peft refuses this {cls.__name__}: {err}") from None
        inject(model, config, protocol=self.name, method=self.method)
        if not self.adapter_names(model.backbone):
            raise ConfigError(f"protocol: peft's {self.method!r} added no trainable parameter to this backbone; "
                              "choose other layers with protocol.target_modules or another method")

    def adapter_names(self, backbone: nn.Module) -> set[str]:
        return tuner_parameter_names(backbone)


# --------------------------------------------------------------------------- bottleneck adapters


class BottleneckAdapter(nn.Module):
    """A layer followed by a bottleneck adapter (Houlsby et al. 2019, arXiv 1902.00751): ``h + s · up(GELU(down(h)))``.

    ``h`` is the wrapped layer's output (the first element when it returns a tuple, as
    ``nn.MultiheadAttention`` does); ``down``/``up`` are Linear layers on the last dimension, or
    1×1 convolutions on the channels after a Conv2d. ``up`` starts at zero, so the adapter
    starts as the identity. Written here because ``peft`` has no bottleneck adapter for vision models.
    """

    def __init__(self, base: nn.Module, bottleneck: int, scale: float):
        super().__init__()
        width = output_width(base)
        self.base = base
        self.conv = isinstance(base, nn.Conv2d)
        layer = (lambda i, o: nn.Conv2d(i, o, 1)) if self.conv else nn.Linear
        weight = next(base.parameters())
        self.down = layer(width, bottleneck).to(device=weight.device, dtype=weight.dtype)
        self.up = layer(bottleneck, width).to(device=weight.device, dtype=weight.dtype)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.act = nn.GELU()
        self.scale = scale

    def _adapt(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.scale * self.up(self.act(self.down(h)))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.base(*args, **kwargs)
        if isinstance(out, tuple):
            return (self._adapt(out[0]), *out[1:])
        return self._adapt(out)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            # code that reads the wrapped layer's attributes (weight, in_features, embed_dim, batch_first…)
            return getattr(super().__getattr__("base"), name)


class Adapter(_Adapted):
    """Bottleneck adapters after the target layers (by default each block's output projections), plus the head."""

    name = "adapter"

    def __init__(self, bottleneck: int, scale: float, target_modules: list[str] | None):
        self.bottleneck, self.scale, self.target_modules = bottleneck, scale, target_modules

    def prepare(self, model: nn.Module) -> None:
        backbone = model.backbone
        targets = resolve_targets(backbone, self.target_modules, protocol=self.name, kind="adapter")
        check_width(backbone, targets, self.bottleneck, field="bottleneck", protocol=self.name, width=output_width)
        for name in targets:
            parent_name, _, leaf = name.rpartition(".")
            parent = backbone.get_submodule(parent_name) if parent_name else backbone
            setattr(parent, leaf, BottleneckAdapter(getattr(parent, leaf), self.bottleneck, self.scale))

    def adapter_names(self, backbone: nn.Module) -> set[str]:
        names: set[str] = set()
        for mname, module in backbone.named_modules():
            if isinstance(module, BottleneckAdapter):
                for part in ("down", "up"):
                    names.update(f"{mname}.{part}.{p}" for p, _ in getattr(module, part).named_parameters())
        return names


# --------------------------------------------------------------------------- BitFit

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORMS) or type(module).__name__.lower().endswith(("norm", "norm2d", "rmsnorm"))


class BitFit:
    """BitFit (Ben Zaken et al. 2022, arXiv 2106.10199): only the backbone's bias terms and the head learn.

    Biases are parameters whose name ends in ``bias`` (``bias``, ``in_proj_bias``); with
    ``include_norm`` (the paper's choice: BERT's LayerNorm biases are trained) the biases of
    normalisation layers count too, which on a ResNet (convolutions without bias) are its only ones.
    """

    def __init__(self, include_norm: bool):
        self.include_norm = include_norm

    def bias_names(self, backbone: nn.Module) -> set[str]:
        names: set[str] = set()
        for mname, module in backbone.named_modules():
            if not self.include_norm and _is_norm(module):
                continue
            prefix = f"{mname}." if mname else ""
            names.update(prefix + n for n, _ in module.named_parameters(recurse=False) if n.endswith("bias"))
        return names

    def trainable(self, model: nn.Module, epoch: int, epochs: int) -> set[str]:
        names = self.bias_names(model.backbone)
        if not names:
            what = "no bias" if self.include_norm else "no bias outside its normalisation layers"
            fix = "" if self.include_norm else "set protocol.include_norm=true (the paper's choice), or "
            raise ConfigError(f"protocol: 'bitfit' trains the backbone's biases, but {type(model.backbone).__name__} has {what}; "
                              f"{fix}choose lora, adapter or lp")
        return {f"backbone.{n}" for n in names} | _head(model)
