"""``dbtui`` with no command: open the wizard."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from engine.errors import DbtuiError


class TerminalSizeError(DbtuiError):
    """No terminal the wizard can use: none at all, one that reports no size, or one too small to lay a screen out in."""


# Made for 80x24, still usable at half that; 12 columns and fewer crashed in the start screen's option list.
MIN_COLUMNS, MIN_LINES = 40, 10


def check_terminal_size() -> None:
    """A pseudo-terminal opened without a size (``script``, some serial consoles and CI runners) reports
    0 columns: refuse it with the command that sets one, rather than fail inside a division; refuse one
    too small for the screens with the size they need."""
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())
    except (OSError, AttributeError, ValueError):
        return  # not a terminal: Textual says so itself
    if size.columns == 0 or size.lines == 0:
        raise TerminalSizeError(f"this terminal reports a size of {size.columns}x{size.lines}, so the wizard cannot lay "
                                "out its screens: set one with `stty cols 80 rows 24`, then run `dbtui` again")
    if size.columns < MIN_COLUMNS or size.lines < MIN_LINES:
        raise TerminalSizeError(f"this terminal is {size.columns}x{size.lines}, and the wizard needs at least "
                                f"{MIN_COLUMNS}x{MIN_LINES} (it is made for 80x24): enlarge the window, then run "
                                "`dbtui` again")


def check_terminal_attached() -> None:
    """The wizard draws on a terminal and reads its keys: with neither (`ssh host dbtui`, a cron job, `< /dev/null`)
    Textual would draw into a file or fail on a closed stream. A browser (`dbtui serve`) brings its own driver."""
    if os.environ.get("TEXTUAL_DRIVER"):
        return
    streams = (sys.__stdin__, sys.__stdout__)
    if any(stream is None or stream.closed or not stream.isatty() for stream in streams):
        raise TerminalSizeError("the wizard needs a terminal for its screen and keys, and this command has none (over "
                                "SSH, connect with `ssh -t`): without one, train a profile with `dbtui run PROFILE`, "
                                "or open the wizard in a browser with `dbtui serve`")


def run_wizard(args: argparse.Namespace) -> int:
    check_terminal_size()
    check_terminal_attached()
    # textual-image asks the terminal what it can draw, which is impossible once Textual
    # runs: import it first (it costs ~0.4 s; the first screen still comes in under 1 s).
    # A terminal that does not answer its cell-size query (`script`, some SSH clients) only means the usual
    # VT340 sizes; its logged warning came with a traceback, printed under the wizard's first screen.
    logging.getLogger("textual_image").setLevel(logging.ERROR)
    import textual_image.widget  # noqa: F401

    from dbtui.app import make_app
    from dbtui.cli.boundary import EXIT_INTERRUPTED
    from dbtui.conversions import abandon, still_running
    from engine.dataset.pool import start_resource_tracker

    # Before Textual replaces sys.stderr with a capture that has no fd: the dataset pool's tracker needs a real one.
    start_resource_tracker()
    app = make_app()
    try:
        app.run()
    except KeyboardInterrupt:  # while the process waited for a conversion (Ctrl+Q said so): abandoned
        running = still_running(app.conversions)
        if not running:
            raise
        abandon(running)
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)  # its thread cannot be stopped, and Python would wait for it again at exit
    return app.return_code or 0
