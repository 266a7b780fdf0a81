"""How `dbtui runs` lays out its rows: a table, or in a narrow terminal each run's path on a line of its own with its
figures below; piped, a table as wide as its paths need, so that none is broken mid-word for grep or a copy."""

from __future__ import annotations

from typing import Any

# Columns below which the table's run column is a few letters wide: each run is then its path on a line, its figures below.
TABLE_WIDTH = 70
UNBOUNDED = 1 << 16  # columns to measure a piped table's natural width in
# The run column's width at TABLE_WIDTH with the usual figures: a terminal that leaves the run column less (a crashed
# run's long step cell, "3333/12000 · resumes from 3000") folds its path every few letters, as below TABLE_WIDTH.
RUN_WIDTH = 10


def print_rows(rows: list[tuple[str, str, str, str, str, str]], note: str = "") -> None:
    """Each run's path, status, step, last loss, best step and age (dbtui/cli/runs_listing.py ``_row``), then ``note``
    (plain text) broken between words to the width the rows keep to."""
    import textwrap

    from rich.text import Text

    from dbtui.cli.unpadded import unpadded_console

    console = unpadded_console()
    if console.width >= TABLE_WIDTH and (not console.is_terminal or _run_column_width(console, rows) >= RUN_WIDTH):
        table = _table(rows)
        if not console.is_terminal:  # no terminal folds the lines: as wide as the table wants, each path on one line
            wanted = console.measure(table, options=console.options.update_width(UNBOUNDED)).maximum
            console.width = max(console.width, wanted)
        console.print(table)
    else:
        for path, *figures in rows:
            console.print(path, soft_wrap=True)  # whole on one line, however the terminal folds it, to copy
            _print_figures(console, *figures)
    for line in textwrap.wrap(note, console.width, break_long_words=False, break_on_hyphens=False):
        console.print(Text(line), soft_wrap=True)  # no blank left at a break, as in the figures above


def _run_column_width(console: Any, rows: list[tuple[str, ...]]) -> int:
    """The letters the run column gets in ``console``'s width, the other columns whole."""
    others = console.measure(_table([("", *figures) for _, *figures in rows]),
                             options=console.options.update_width(UNBOUNDED)).maximum
    return console.width - others + len("run")


def _print_figures(console: Any, status: str, step: str, loss: str, best: str, age: str) -> None:
    """A run's figures under its path in a narrow terminal, indented, each (``step 29/30``) moved whole to the next line
    rather than broken where it would not fit, and no line padded with blanks. A longer one than the terminal (a damaged
    state's status) is left for the terminal to fold."""
    from rich.text import Text

    indent = "  "
    line = Text(indent)
    for figure in (Text.from_markup(text) for text in (status, f"step {step}", f"last loss {loss}", f"best step {best}", age)):
        if line.cell_len > len(indent):
            if line.cell_len + len(", ") + figure.cell_len > console.width:
                console.print(line, soft_wrap=True)
                line = Text(indent)
            else:
                line.append(", ")
        line.append_text(figure)
    console.print(line, soft_wrap=True)


def _table(rows: list[tuple[str, ...]]) -> Any:
    from rich.table import Table

    table = Table()
    # The path whole, over several lines if need be: it is what one copies into `dbtui attach` or `resume`. It and
    # the loss give way to a narrow terminal; the status and the step stay whole. A damaged state file's status or
    # loss, of any length, is cut short rather than squeezing the path.
    table.add_column("run", overflow="fold")
    table.add_column("status", no_wrap=True, max_width=len("finished"))
    table.add_column("step", no_wrap=True)
    table.add_column("last loss", overflow="ellipsis", max_width=len("last loss"))
    table.add_column("best step")
    table.add_column("age")
    for row in rows:
        table.add_row(*row)
    return table
