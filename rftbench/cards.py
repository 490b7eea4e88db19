"""Zoo cards: the data that pins a representation or a dataset (validated by pydantic).

A card is a YAML file in ``registry/`` (or shipped by a plugin). Like a timm pretrained
config it is a flat record grouped by concern: what builds it, its weights, its input, its
pretraining and its provenance.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from .errors import CardError
from .paths import check_relative
from .yamlfile import read_mapping

CardId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]*(\.[a-z0-9][a-z0-9_\-+]*)?$", max_length=120)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Revision = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
#: A file name inside a folder: relative, no '..' (a card cannot write or read outside the cache).
RelativeFile = Annotated[str, StringConstraints(max_length=255), AfterValidator(check_relative)]

Family = Literal["convolutional", "attention", "hybrid"]
SizeClass = Literal["tiny", "small", "medium", "large"]
PretrainingStrategy = Literal[
    "supervised",
    "supervised-multistep",
    "self-supervised",
    "clip",
    "fusion",
    "adversarially-robust",
    "none",
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weights(_Strict):
    """Where the pretrained weights live and how they are pinned."""

    hub_id: str | None = Field(None, description="Hugging Face Hub repo id (timm/…, laion/…, google/…)")
    revision: Revision | None = Field(None, description="pinned Hub commit sha (40 hex digits)")
    url: str | None = Field(None, description="plain download URL (checkpoints not on the Hub)")
    sha256: Sha256 | None = Field(None, description="sha256 of the downloaded file")
    filename: RelativeFile | None = Field(None, description="file within the repo, or the name to save a URL download as")
    tag: str | None = Field(None, description="source-specific pretrained tag (open_clip's `pretrained=`)")
    recipe: str | None = Field(None, description="local recipe that builds the weights (offline backbones)")

    trust_on_first_fetch: bool = Field(
        False, description="no published sha256 exists: `rftbench zoo fetch` records the first download's hash, later loads verify it"
    )

    @model_validator(mode="after")
    def _url_needs_sha(self) -> Weights:
        if self.url and self.hub_id:
            raise ValueError("give either weights.url or weights.hub_id, not both")
        if self.url and not self.sha256 and not self.trust_on_first_fetch:
            raise ValueError(
                "a weights.url needs weights.sha256 so that the download can be verified "
                "(or weights.trust_on_first_fetch: true where no published hash exists)"
            )
        return self


class InputConfig(_Strict):
    """What the network expects: images in [0, 1] at this resolution, normalised inside the model."""

    resolution: int = Field(ge=8, le=1024)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = IMAGENET_STD
    interpolation: Literal["nearest", "bilinear", "bicubic"] = "bicubic"
    crop_pct: float = Field(1.0, gt=0, le=1)
    channels: Literal[1, 3] = 3
    channel_order: Literal["rgb", "bgr"] = Field("rgb", description="bgr: the model expects channels flipped (e.g. MobileViT)")


class Pretraining(_Strict):
    """How and on what the representation was pretrained."""

    strategy: PretrainingStrategy
    data: str = Field(min_length=1, description="e.g. in1k, in22k, laion2b, shapes-offline")
    volume: int | None = Field(None, ge=0, description="number of pretraining images")
    threat: str | None = Field(None, description="for adversarially-robust pretraining: e.g. 'linf 4/255'")


class Provenance(_Strict):
    """Licence and origin, for the leaderboard and for users' due diligence."""

    license: str = Field(min_length=1)
    paper: str | None = None
    origin: str | None = Field(None, description="where the weights come from (URL)")
    notes: str | None = None


class RepresentationCard(_Strict):
    """An architecture plus pinned pretrained weights plus preprocessing."""

    id: CardId
    source: str = Field(min_length=1, description="the architecture plugin that builds it: timm, open_clip, hf, url, recipe…")
    model: str = Field(min_length=1, description="the model name inside that source (e.g. timm's 'convnext_base')")
    family: Family
    size: SizeClass
    params_m: float = Field(gt=0, description="parameter count of the backbone, in millions")
    num_features: int | None = Field(None, gt=0, description="width of the penultimate features")
    args: dict[str, Any] = Field(default_factory=dict, description="source-specific build arguments (e.g. a transformers config, a checkpoint key map)")
    study_name: str | None = Field(None, description="the backbone's name in the reference study's published results, if it is one of its 40")
    pretraining: Pretraining
    weights: Weights = Weights()
    input: InputConfig
    provenance: Provenance
    aliases: list[str] = Field(default_factory=list, description="deprecated ids that resolve to this card")
    tags: list[str] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return self.id

    def flat(self) -> dict[str, Any]:
        """The card as one level of dotted keys, for filters and tables."""
        return _flatten(self.model_dump(mode="json"))


class SplitRule(_Strict):
    """How a split is obtained."""

    rule: Literal["official", "stratified", "carved", "generated"] = "official"
    fraction: float | None = Field(None, gt=0, lt=1, description="for stratified/carved splits: the share taken")
    size: int | None = Field(None, gt=0, description="optional stratified subsample size (e.g. the study's 1,000 test images)")


class DatasetCard(_Strict):
    """A downstream task with train/val/test splits."""

    id: CardId
    source: str = Field(min_length=1, description="the dataset-source plugin that loads it: torchvision, hf, imagefolder, offline…")
    args: dict[str, Any] = Field(default_factory=dict, description="source-specific arguments (class name, hub repo, …)")
    num_classes: int = Field(ge=2)
    resolution: int | None = Field(None, ge=8, description="native image size, if fixed")
    domain: str = Field("natural", description="natural, fine-grained, remote-sensing, synthetic, …")
    splits: dict[Literal["train", "val", "test"], SplitRule]
    revision: Revision | None = Field(None, description="pinned Hub commit where the source is the Hub")
    provenance: Provenance
    aliases: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return self.id

    def flat(self) -> dict[str, Any]:
        return _flatten(self.model_dump(mode="json"))

    @model_validator(mode="after")
    def _has_train_and_test(self) -> DatasetCard:
        missing = {"train", "test"} - set(self.splits)
        if missing:
            raise ValueError(f"splits must define {sorted(missing)}")
        return self


CARD_CLASSES: dict[str, type[BaseModel]] = {"representation": RepresentationCard, "dataset": DatasetCard}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and key != "args":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def strip_pydantic_prefix(message: str) -> str:
    """``"Value error, must be a multiple of 64"`` → ``"must be a multiple of 64"`` (other messages unchanged)."""
    for prefix in _PYDANTIC_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def format_validation_error(err: ValidationError, prefix: str = "", fields: Iterable[str] | None = None) -> str:
    """One line per problem: ``field.path: message (got: value)``.

    Pydantic's own prefixes ("Value error, ", "Assertion failed, ") are dropped: the message is the validator's.
    With ``fields`` (the model's field names), an unknown top-level key also gets
    ``Did you mean: …?`` and the list of valid ones (a typo in a loss parameter, say).
    """
    from .errors import close_matches

    valid = [f for f in fields] if fields is not None else None
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = strip_pydantic_prefix(e["msg"])
        if "ctx" in e and "expected" in e["ctx"]:
            msg += f" (allowed: {e['ctx']['expected']})"
        got = e.get("input")
        got_txt = "" if isinstance(got, dict) or e["type"] == "missing" else f" (got {got!r})"
        hint = ""
        if valid is not None and e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
            matches = close_matches(str(e["loc"][0]), valid)
            hint = (f". Did you mean: {', '.join(matches)}?" if matches else "") + f" Parameters: {', '.join(valid) or 'none'}"
        lines.append(f"  {prefix}{loc}: {msg}{got_txt}{hint}")
    return "\n".join(lines)


def load_card(path: str | Path, kind: str) -> BaseModel:
    """Load and validate one card file; a bad card raises :class:`CardError` naming file and field."""
    path = Path(path)
    cls = CARD_CLASSES[kind]
    data = read_mapping(path, CardError, f"a {kind} card")
    try:
        card = cls.model_validate(data)
    except ValidationError as err:
        raise CardError(f"{path}: invalid {kind} card:\n{format_validation_error(err)}") from None
    if card.id != path.stem:
        raise CardError(f"{path}: the card's id {card.id!r} must match its file name ({card.id}.yaml)")
    return card


def load_cards(folder: str | Path, kind: str) -> list[BaseModel]:
    """Every ``*.yaml`` card in ``folder`` (sorted), each validated; the first bad card raises."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CardError(f"{folder}: card folder does not exist")
    return [load_card(p, kind) for p in sorted(folder.glob("*.yaml"))]
