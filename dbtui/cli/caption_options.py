"""Which of `dbtui dataset caption`'s finer options go with which action: one given beside another action did nothing,
without a word, so it is refused."""

from __future__ import annotations

import argparse
from collections.abc import Callable

# option's attribute: (its flag, the attribute of the action it goes with, that action's flag)
_GOES_WITH = {"back": ("--back", "add_tag", "--add-tag"), "new_captions": ("--new-captions", "add_tag", "--add-tag"),
              "model": ("--model", "auto", "--auto"),
              "overwrite": ("--overwrite", "auto", "--auto")}


def refuse_stray_options(args: argparse.Namespace, error: Callable[[str], object]) -> None:
    """Call ``error`` (the caption parser's, which exits with status 2) when an option is given without its action."""
    stray = [(flag, action) for name, (flag, attribute, action) in _GOES_WITH.items()
             if getattr(args, name) not in (None, False) and getattr(args, attribute) is None]
    if stray:
        said = "; ".join(f"{flag} goes with {action} only" for flag, action in stray)
        error(f"{said}: leave {'it' if len(stray) == 1 else 'them'} out, or use that action")
