"""A reader that stops reading while a command follows a run (`dbtui run P | head`): the trainer, a process of its
own, trains on unwatched. That is said on stderr with how to watch and stop it, and the command ends with a status
of its own (dbtui/cli/boundary.py), where a closed output of a command that leaves nothing going on (`dbtui runs |
head`, the replay of an ended run) still ends 0. One closed before the trainer starts stops the command there, with
that status too: no run was started, which a script must not take for done."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.runs.folder import RunFolder


class OutputClosedError(Exception):
    """The output closed while the command had more to do than print; the message says what became of the run."""


class RunLeftUnwatchedError(OutputClosedError):
    """The output closed while a live run was followed; the message says how to watch and stop it."""


def say_before_start(text: str, left: str = "") -> None:
    """Print ``text`` before the trainer starts; a closed output stops the command there, none started. ``left``: what
    the command has left behind already, said after that."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise OutputClosedError("the output was closed (its reader, such as `head`, ended) before the run started, so "
                                f"none was started{left}") from None


@contextlib.contextmanager
def run_goes_on_if_output_closed(folder: RunFolder) -> Iterator[None]:
    """Follow ``folder``'s run within; a closed output while its trainer still runs is a RunLeftUnwatchedError."""
    try:
        yield
    except BrokenPipeError:
        if not folder.is_live():
            raise  # the run has ended: nothing goes on that the user should know of
        run = shlex.quote(str(folder.path))
        raise RunLeftUnwatchedError(
            f"the output was closed (its reader, such as `head`, ended) while the run trained; the run goes on in the "
            f"background: `dbtui attach {run}` watches it, `dbtui stop {run}` stops it (saving a checkpoint first)"
        ) from None
