"""Tables that fit the terminal: drop the least important columns before cutting any value.

Rich shrinks an over-wide table by cutting cells ("11.0 [" for an accuracy with its interval).
:func:`print_fitted` never lets it: it measures every column, lets text (names, headers) wrap
only after punctuation (``.``, ``_``, ``-``, ``:``, ``,``, ``/``, spaces), keeps numbers whole,
and drops whole columns in the caller's order until the rest fits; what it left out is named
on a note line so that ``-c`` or ``--wide`` can bring it back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table
from rich.text import Text

#: A line may break after one of these characters, or after a ``.`` or ``/`` that is not inside a
#: number (never inside ``1.5`` nor ``4/255``).
_BREAK = re.compile(r"(?<=[,_\-: ])(?! )|(?<=\.)(?!\d)|(?<=\D\.)|(?<=/)(?!\d)")


@dataclass
class FitColumn:
    """One column to fit: its key (what ``-c`` names), header, cells, and how it may be laid out.

    ``breakable`` cells (names, labels) may wrap after punctuation; other cells (numbers,
    accuracies with their intervals), and a :class:`rich.text.Text` cell with ``no_wrap``, are
    kept on one line, whole. A ``required`` column is never
    dropped; ``drop`` orders the others (a lower number is dropped first; default: later columns
    first).
    """

    key: str
    cells: list[str | Text]
    header: str | None = None
    breakable: bool = False
    required: bool = False
    style: str = ""
    justify: str = "left"
    drop: float | None = None
    _order: int = field(default=0, repr=False)

    @property
    def title(self) -> str:
        return self.key if self.header is None else self.header

    def min_width(self) -> int:
        """The narrowest this column can be without cutting anything."""
        widths = [_longest_piece(self.title)]
        for cell in self.cells:
            whole = not self.breakable or (isinstance(cell, Text) and cell.no_wrap)
            widths.append(_line_width(_plain(cell)) if whole else _longest_piece(_plain(cell)))
        return max(widths)

    def natural_width(self) -> int:
        """The width at which nothing in this column wraps."""
        return max([_line_width(self.title), *(_line_width(_plain(c)) for c in self.cells)])


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _pieces(text: str) -> list[str]:
    return [p for p in _BREAK.split(text) if p] or [text]


def _line_width(text: str) -> int:
    return max((len(line) for line in str(text).splitlines()), default=0)


def _longest_piece(text: str) -> int:
    return max((len(p.rstrip(" ")) for line in str(text).splitlines() for p in _pieces(line)), default=0)


def _spans(text: str, width: int) -> list[tuple[int, int]]:
    """(start, end) of each line of ``text`` wrapped after punctuation to ``width`` (spaces at a break dropped)."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in str(text).split("\n"):
        start = end = offset
        for piece in _pieces(line) if line else []:
            stop = end + len(piece)
            if end > start and stop - len(piece) + len(piece.rstrip(" ")) - start > width:
                spans.append((start, start + len(text[start:end].rstrip(" "))))
                start = end
            end = stop
        spans.append((start, start + len(text[start:end].rstrip(" "))))
        offset += len(line) + 1
    return spans


def wrap(text: str, width: int) -> str:
    """``text`` with line breaks after punctuation so that no line is wider than ``width`` (pieces stay whole)."""
    return "\n".join(text[a:b] for a, b in _spans(text, width))


def table_width(widths: Sequence[int]) -> int:
    """Width of a Rich table with the default box and padding: each column plus 3, plus 1."""
    return sum(widths) + 3 * len(widths) + 1


def fit(columns: Sequence[FitColumn], width: int) -> tuple[list[tuple[FitColumn, int]], list[FitColumn]]:
    """Choose the columns that fit ``width`` and their widths: ``(shown with widths, dropped)``.

    Columns are dropped (lowest ``drop`` first, default the last ones first) until the narrowest
    layout of the rest fits; the space left then widens columns up to their natural width,
    those needing least first. Required columns are never dropped: if they alone are too wide the
    table is wider than ``width`` rather than cut.
    """
    cols = list(columns)
    for i, c in enumerate(cols):
        c._order = i
    shown = list(cols)
    dropped: list[FitColumn] = []
    candidates = sorted((c for c in cols if not c.required),
                        key=lambda c: (c.drop if c.drop is not None else -c._order, -c._order))
    while table_width([c.min_width() for c in shown]) > width and candidates:
        victim = candidates.pop(0)
        shown.remove(victim)
        dropped.append(victim)
    widths = [c.min_width() for c in shown]
    spare = width - table_width(widths)
    for i in sorted(range(len(shown)), key=lambda i: shown[i].natural_width() - widths[i]):  # smallest needs first
        c = shown[i]
        if spare <= 0:
            break
        grow = min(spare, c.natural_width() - widths[i])
        widths[i] += grow
        spare -= grow
    dropped.sort(key=lambda c: c._order)
    return list(zip(shown, widths)), dropped


def build_fitted(columns: Sequence[FitColumn], width: int, *, wide: bool = False, **table: object) -> tuple[Table, int, list[FitColumn]]:
    """The Rich table of :func:`fit` (or of every column at its natural width, with ``wide``): ``(table, its width, dropped)``.

    ``table`` keywords go to :class:`rich.table.Table` (``title``, ``caption``, ``show_header``…).
    """
    if wide:
        chosen, dropped = [(c, c.natural_width()) for c in columns], []
    else:
        chosen, dropped = fit(columns, width)
    options: dict = {"title_justify": "left", "caption_justify": "left", **table}
    out = Table(**options)
    for col, w in chosen:
        out.add_column(wrap(col.title, w), width=w, no_wrap=True, style=col.style or None, justify=col.justify)  # type: ignore[arg-type]
    rows = max((len(c.cells) for c, _ in chosen), default=0)
    for r in range(rows):
        out.add_row(*(_layout(c.cells[r] if r < len(c.cells) else "", w, c.breakable) for c, w in chosen))
    return out, table_width([w for _, w in chosen]), dropped


def _layout(cell: str | Text, width: int, breakable: bool) -> str | Text:
    if isinstance(cell, Text):
        if cell.no_wrap or not breakable:
            return cell
        return Text("\n").join(cell[a:b] for a, b in _spans(cell.plain, width))
    return wrap(cell, width) if breakable else cell


def print_fitted(console: Console, columns: Sequence[FitColumn], *, title: str | None = None, caption: str | None = None,
                 wide: bool = False, hint: str = "--wide shows all columns, -c chooses them", **table: object) -> list[FitColumn]:
    """Print ``columns`` as a table that fits ``console``'s width (all of them, unwrapped, with ``wide``).

    Returns the columns left out; when there are some a note naming them and ``hint`` follows
    the table. A table that cannot fit (``wide``, or required columns wider than the console) is
    printed at its own width, uncropped: lines are long, values are whole.
    """
    out, total, dropped = build_fitted(columns, console.width, wide=wide, title=title, caption=caption, **table)
    print_table(console, out, total)
    if dropped:
        names = ", ".join(c.key for c in dropped)
        console.print(Text(f"{len(dropped)} more column{'s' if len(dropped) != 1 else ''} not shown to fit "
                           f"{console.width} characters: {names} ({hint})", style="dim"))
    return dropped


def print_table(console: Console, table: Table, width: int) -> None:
    """Print a fitted ``table`` of ``width`` characters; wider than the console, it is printed uncropped at its own width."""
    if width > console.width:
        table.width = width  # a Rich table with a width is laid out at it, whatever the console's
        console.print(table, crop=False)
    else:
        console.print(table)
