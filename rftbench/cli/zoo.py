"""``rftbench zoo``: the registry of representations and datasets."""

from __future__ import annotations

import typer
from rich.table import Table

from ..plugins import get_manager
from ..zoo import list_cards, parse_filters
from ._app import app, console, print_json

zoo_app = typer.Typer(
    help="Browse the model zoo: representation cards (backbone + pinned weights) and dataset cards.",
    no_args_is_help=True,
)
app.add_typer(zoo_app, name="zoo")

KIND_OPTION = typer.Option(
    "representation", "--kind", "-k", help="Which cards: `representation` or `dataset`."
)


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
    as_json: bool = typer.Option(False, "--json", help="Print the matching cards as JSON."),
) -> None:
    """List zoo cards, e.g. `rftbench zoo list 'convnext*' -f family=convolutional -f size=large`."""
    _check_kind(kind)
    cards = list_cards(kind, pattern, parse_filters(filters))
    if as_json:
        print_json([c.model_dump(mode="json") for c in cards])
        return
    manager = get_manager()
    if kind == "representation":
        table = Table(title=f"representations ({len(cards)})")
        table.add_column("id", no_wrap=True, style="bold")
        for col in ("source", "family", "size", "params (M)", "pretraining", "data", "res"):
            table.add_column(col)
        for c in cards:
            table.add_row(c.id, c.source, c.family, c.size, f"{c.params_m:g}", c.pretraining.strategy, c.pretraining.data, str(c.input.resolution))
    else:
        table = Table(title=f"datasets ({len(cards)})")
        table.add_column("id", no_wrap=True, style="bold")
        for col in ("source", "classes", "domain", "splits", "plugin"):
            table.add_column(col)
        for c in cards:
            splits = ", ".join(f"{k}:{v.rule}" for k, v in c.splits.items())
            table.add_row(c.id, c.source, str(c.num_classes), c.domain, splits, manager.plugin_of("dataset", c.id))
    console.print(table)


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
    console.print(table)
