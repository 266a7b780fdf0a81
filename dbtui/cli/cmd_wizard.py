"""``dbtui`` with no command: open the wizard."""

from __future__ import annotations

import argparse
import os
import sys

from engine.errors import DbtuiError


class TerminalSizeError(DbtuiError):
    """The terminal reports no size, so no screen can be laid out in it."""


def check_terminal_size() -> None:
    """A pseudo-terminal opened without a size (``script``, some serial consoles and CI runners) reports
    0 columns: refuse it with the command that sets one, rather than fail inside a division."""
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())
    except (OSError, AttributeError, ValueError):
        return  # not a terminal: Textual says so itself
    if size.columns == 0 or size.lines == 0:
        raise TerminalSizeError(f"this terminal reports a size of {size.columns}x{size.lines}, so the wizard cannot lay "
                                "out its screens: set one with `stty cols 80 rows 24`, then run `dbtui` again")


def run_wizard(args: argparse.Namespace) -> int:
    check_terminal_size()
    # textual-image asks the terminal what it can draw, which is impossible once Textual
    # runs: import it first (it costs ~0.4 s; the first screen still comes in under 1 s).
    import textual_image.widget  # noqa: F401

    from dbtui.app import make_app

    app = make_app()
    app.run()
    return app.return_code or 0
