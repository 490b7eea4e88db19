"""``rftbench zoo``: the registry of representations and datasets."""

from __future__ import annotations

import typer
from rich.table import Table

from ..errors import RftbenchError
from ..plugins import get_manager
from ..zoo import list_cards, parse_filters
from ._app import app, console, print_json, styled

zoo_app = typer.Typer(
    help="Browse the model zoo: representation cards (backbone + pinned weights) and dataset cards.",
    no_args_is_help=True,
)
app.add_typer(zoo_app, name="zoo")

KIND_OPTION = typer.Option(
    "representation", "--kind", "-k", help="Which cards: `representation` or `dataset`."
)


def _named_cards(kind: str, names: list[str]) -> list:
    """The cards named by ``names`` (ids or wildcards), each once, in order; a name matching nothing is an error."""
    manager = get_manager()
    cards: list = []
    for name in names:
        matched = list_cards(kind, name) if any(ch in name for ch in "*?[") else [manager.get(kind, name)]
        if not matched:
            raise RftbenchError(f"no {kind} card matches {name!r}; see `rftbench zoo list --kind {kind}`")
        cards += [c for c in matched if c not in cards]
    return cards


def _check_kind(kind: str) -> str:
    if kind not in ("representation", "dataset"):
        raise typer.BadParameter(f"{kind!r} is not a card kind; use representation or dataset", param_hint="--kind")
    return kind


@zoo_app.command("list")
def zoo_list(
    pattern: str = typer.Argument(None, help="Wildcard on card ids, as in timm: 'convnext*', '*in22k*'."),
    filters: list[str] = typer.Option(
        None, "--filter", "-f", help="key=value on card fields, wildcards allowed; repeat to combine. Keys: family, size, source, pretraining, data, license, or any dotted card field."
    ),
    kind: str = KIND_OPTION,
    family: str = typer.Option(None, "--family", help="convolutional, attention or hybrid (wildcards allowed)."),
    size: str = typer.Option(None, "--size", help="tiny, small, medium or large."),
    pretraining: str = typer.Option(None, "--pretraining", help="pretraining strategy: supervised, supervised-multistep, self-supervised, clip, fusion, adversarially-robust."),
    source: str = typer.Option(None, "--source", help="the plugin that builds or loads it: timm, open_clip, hf, url, torchvision, …"),
    as_json: bool = typer.Option(False, "--json", help="Print the matching cards as JSON."),
    wide: bool = typer.Option(False, "--wide", "-w", help="Show every column, however wide (columns that do not fit the terminal are dropped otherwise)."),
) -> None:
    """List zoo cards, e.g. `rftbench zoo list 'convnext*' --family convolutional --size large`."""
    _check_kind(kind)
    chosen = parse_filters(filters)
    for key, value in (("family", family), ("size", size), ("pretraining", pretraining), ("source", source)):
        if value is not None:
            chosen[key] = value
    cards = list_cards(kind, pattern, chosen)
    if as_json:
        print_json([c.model_dump(mode="json") for c in cards])
        return
    manager = get_manager()
    from ._fit import FitColumn, print_fitted

    if kind == "representation":
        title = f"representations ({len(cards)})"
        data = {
            "id": [c.id for c in cards], "source": [c.source for c in cards], "family": [c.family for c in cards],
            "size": [c.size for c in cards], "params (M)": [f"{c.params_m:g}" for c in cards],
            "pretraining": [c.pretraining.strategy for c in cards], "data": [c.pretraining.data for c in cards],
            "res": [str(c.input.resolution) for c in cards],
        }
    else:
        title = f"datasets ({len(cards)})"
        data = {
            "id": [c.id for c in cards], "source": [c.source for c in cards], "classes": [str(c.num_classes) for c in cards],
            "domain": [c.domain for c in cards], "splits": [", ".join(f"{k}:{v.rule}" for k, v in c.splits.items()) for c in cards],
            "plugin": [manager.plugin_of("dataset", c.id) for c in cards],
        }
    numeric = ("params (M)", "res", "classes")
    columns = [FitColumn(key, cells, required=key == "id", style="bold" if key == "id" else "",
                         breakable=key in ("data", "splits", "pretraining"), justify="right" if key in numeric else "left")
               for key, cells in data.items()]
    print_fitted(console, columns, title=title, wide=wide, hint="--wide shows all columns; --json has every field")


@zoo_app.command("show")
def zoo_show(
    name: str = typer.Argument(..., help="A card id (an unknown id lists close matches)."),
    kind: str = KIND_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the card as JSON."),
) -> None:
    """Show one card in full: source, weights pin, input, pretraining, provenance."""
    _check_kind(kind)
    manager = get_manager()
    card = manager.get(kind, name)
    data = card.model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    table = Table(title=f"{kind} {card.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in card.flat().items():
        if value not in (None, [], {}):
            table.add_row(key, str(value))
    table.add_row("plugin", manager.plugin_of(kind, card.id))
    if kind == "representation":
        from ..fetch import read_lock

        locked = read_lock().get(card.id)
        if locked:
            pins = ", ".join(f"{k} {locked[k]}" for k in ("revision", "sha256", "fetched_at") if locked.get(k))
            table.add_row("fetched (zoo lock)", pins)
        elif not (card.weights.revision or card.weights.sha256) and (card.weights.hub_id or card.weights.url):
            table.add_row("fetched (zoo lock)", f"not yet: `rftbench zoo fetch {card.id}` pins it")
    console.print(table)


@zoo_app.command("fetch")
def zoo_fetch(
    names: list[str] = typer.Argument(..., help="Card ids or wildcards ('convnext*'); representations unless --kind dataset."),
    kind: str = KIND_OPTION,
    check: bool = typer.Option(False, "--check", help="Also build each representation from the fetched weights (proves they load)."),
    data_root: str = typer.Option(None, "--data-root", help="Where datasets are stored (default: the rftbench cache)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was fetched as JSON."),
) -> None:
    """Pre-download weights (or datasets) into the cache, verify them, and record their pins.

    Run it where there is internet; compute nodes then load from the same cache with
    `HF_HUB_OFFLINE=1` (share `HF_HUB_CACHE` / `HF_HOME` and `RFTBENCH_CACHE`). Hub weights
    get their resolved commit recorded, URL weights their sha256, in `<cache>/zoo-lock.json`;
    later loads use those pins. A download whose sha256 does not match is removed.
    """
    from ..fetch import fetch_representation, lock_path

    _check_kind(kind)
    manager = get_manager()
    cards = _named_cards(kind, names)
    rows = []
    for card in cards:
        if kind == "representation":
            row = fetch_representation(card)
            if check:
                from ..model import build_backbone

                backbone = build_backbone(card, pretrained=True, manager=manager)
                row["num_features"] = backbone.num_features
        else:
            from ..data import load_splits

            splits = load_splits(card, root=data_root, download=True, manager=manager)
            row = {"id": card.id, **{name: len(split) for name, split in splits.items()}}
        rows.append(row)
        if not as_json:
            console.print(styled("[green]fetched[/] {}", card.id))
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"fetched ({len(rows)})")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    for col in columns:
        table.add_column(col, no_wrap=col == "id")
    for row in rows:
        table.add_row(*[str(row.get(col, "")) for col in columns])
    console.print(table)
    if kind == "representation":
        console.print(f"pins recorded in {lock_path()}", style="dim")


@zoo_app.command("probe")
def zoo_probe(
    name: str = typer.Argument(..., help="A representation card id."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="A dataset card id."),
    norm: str = typer.Option("linf", "--norm", help="linf or l2."),
    eps: str = typer.Option("4/255", "--eps", help="Budget on the [0, 1] pixel scale ('4/255' accepted)."),
    steps: int = typer.Option(10, "--steps", help="PGD iterations maximising the feature shift."),
    n: int = typer.Option(256, "--n", help="Images of the split to probe (the first n)."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per attack batch."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    data_root: str = typer.Option(None, "--data-root", help="Where datasets are stored (default: the rftbench cache)."),
    output_dir: str = typer.Option("runs", "--output-dir", "-o", help="Records go to OUTPUT_DIR/probes/."),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Adversarial sensitivity (AS) of a representation on a dataset, before any fine-tuning.

    AS = mean ‖g(x+δ) − g(x)‖₂ with δ found by PGD on the feature distance within the
    budget (Nern et al., NeurIPS 2023): a low AS predicts that robustness transfers through
    linear probing. The record is written to `OUTPUT_DIR/probes/`, beside the runs' results.
    """
    from ..probe import probe

    record = probe(name, dataset, norm=norm, eps=eps, steps=steps, n=n, split=split, batch_size=batch_size,
                   device=device, data_root=data_root, output_dir=output_dir)
    if as_json:
        print_json(record)
        return
    console.print(styled(
        "[bold]{}[/] on [bold]{}[/] ({}, n={}): AS {} = {} ± {}  [dim]{} s → {}[/]",
        record["representation"], record["dataset"], record["split"], record.get("n"), record["metric"].split(":", 1)[1],
        f"{record['value']:.4g}", f"{record.get('as_std', 0):.3g}", f"{record['seconds']:.1f}", record.get("path"),
    ))


@zoo_app.command("build")
def zoo_build(
    names: list[str] = typer.Argument(..., help="Representation ids or wildcards ('mini_resnet.*') whose weights come from a recipe."),
    output: str = typer.Option(None, "--output", "-o", help="Also copy each built weights file into this folder (maintainers: to update the shipped files)."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Rebuild offline backbones from their pretraining recipes and check them against the shipped weights.

    The mini backbones' weights ship with rftbench, pinned by sha256 in their cards. This runs
    each card's recipe again (minutes on a CPU) and reports whether it reproduces the shipped
    file bit for bit on this machine; across CPUs and thread counts the last bits usually differ
    (floating-point summation order), so the largest weight difference and the recipe's
    accuracies are shown too. The built file is kept in the cache, never replaces the shipped one.
    """
    import shutil
    from pathlib import Path

    from rftbench_plugins._recipes import rebuild, shipped_weights_file

    cards = _named_cards("representation", names)
    without = [c.id for c in cards if not c.weights.recipe]
    if without and (len(without) == len(cards) or set(without) & set(names)):  # a wildcard skips recipe-less cards (*.scratch)
        without = [c for c in without if c in names] or without
        raise RftbenchError(f"no pretraining recipe for {', '.join(without)}: `zoo build` rebuilds recipe weights "
                            "(the offline mini backbones); use `rftbench zoo fetch` for weights on the Hub or a URL")
    cards = [c for c in cards if c.weights.recipe]
    outcomes = []
    for card in cards:
        info = rebuild(card)
        if output:
            Path(output).mkdir(parents=True, exist_ok=True)
            shipped = shipped_weights_file(card)  # a plain file name, checked
            target = Path(output) / (shipped.name if shipped is not None else f"{card.id}.safetensors")
            shutil.copyfile(info["file"], target)
            info["copied_to"] = str(target)
        outcomes.append({"card": card.id, **info})
    if as_json:
        print_json(outcomes)
        return
    for o in outcomes:
        verdict = ("reproduces the shipped weights bit for bit" if o["reproduces"]
                   else "differs from the shipped weights" if o.get("shipped_sha256") else "has no shipped weights to compare")
        console.print(styled("[bold]{}[/] (recipe {}): {}", o["card"], o["recipe"], verdict), soft_wrap=True)
        console.print(f"  built   {o['sha256']}  {o['file']}")
        if o.get("shipped_sha256"):
            console.print(f"  shipped {o['shipped_sha256']}")
        if "max_abs_diff" in o:
            console.print(f"  largest weight difference {o['max_abs_diff']:.3g} (relative {o['max_rel_diff']:.3g})")
        robust = ", ".join(f"{k} {v:.3f}" for k, v in (o.get("robust_acc") or {}).items() if v is not None)
        console.print(f"  recipe's accuracy on {o.get('dataset', 'shapes')}: clean {o['clean_acc']:.3f}" + (f", {robust}" if robust else ""))
