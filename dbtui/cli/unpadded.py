"""Rich output without the trailing spaces its tables pad each line with, where the output is no terminal: a script
that greps or diffs `dbtui hardware > file` saw them."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def unpadded_off_a_terminal(console: Any) -> Iterator[None]:
    """What ``console`` (a Rich console) prints within, each line's trailing spaces stripped where it is no terminal;
    on a terminal, as drawn."""
    if console.is_terminal:
        yield
        return
    with console.capture() as captured:
        yield
    sys.stdout.write("".join(f"{line.rstrip()}\n" for line in captured.get().splitlines()))
    sys.stdout.flush()
