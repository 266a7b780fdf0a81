"""Pieces shared by several sub-commands."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from dbtui.format import PriceError, read_price
from engine.support.home_folder import typed_unknown_user


class ExamplesFormatter(argparse.HelpFormatter):
    """Help whose prose paragraphs wrap to the terminal while examples keep their lines: a paragraph with an
    indented line (an example, a continued command) or a heading ending in ":" is kept as written. argparse's own
    formatters wrap everything or nothing."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip("\n").split("\n\n"):
            lines = paragraph.splitlines()
            if lines[0].endswith(":") or any(line.startswith((" ", "\t")) for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs) + "\n"

    def _format_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                      groups: Iterable[argparse._MutuallyExclusiveGroup], prefix: str | None) -> str:
        """argparse wraps a usage only between its parts, and a mutually exclusive group is one part: `dbtui dataset
        caption`'s made a line of 156 columns at 80. A line too wide breaks at its group's " | " instead."""
        text = super()._format_usage(usage, actions, groups, prefix)
        return "\n".join(line if len(line) <= self._width else _broken_at_bars(line, self._width)
                         for line in text.split("\n"))


def _broken_at_bars(line: str, width: int) -> str:
    """A usage line broken before its " | " where it passes ``width``, each further line under the group's first
    option."""
    body = line.lstrip()
    indent = " " * (len(line) - len(body) + 1)  # past the group's "("
    lines = [line[:len(line) - len(body)]]
    for number, piece in enumerate(body.split(" | ")):
        piece = piece if number == 0 else "| " + piece
        if number and len(lines[-1]) + 1 + len(piece) > width:
            lines.append(indent + piece)
        else:
            lines[-1] += piece if number == 0 else " " + piece
    return "\n".join(lines)


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile value, e.g. --set training.max_train_steps=400 "
        "(values are read as TOML; repeat for several)",
    )


def user_path(text: str) -> str:
    """An argparse ``type`` for a file or folder, a profile's too: ``~`` expanded, which the shell leaves in quotes and
    after ``=`` (``dbtui validate '~/demo/tiny-demo.toml'`` was "file not found"; ``dbtui dataset prepare data
    '~/prepared'`` made a folder named "~" in the working directory). A ``~name`` of no user here is refused, as the
    profile refuses it, unless a file so named is there: the engine's pathlib expanduser raised on it, a traceback
    from ``dbtui convert --vae`` and ``dbtui dataset prepare --model``."""
    no_user_here = typed_unknown_user(text)
    if no_user_here:
        raise argparse.ArgumentTypeError(f"{text} {no_user_here}")
    return os.path.expanduser(text)


def user_file(text: str) -> Path:
    """``user_path`` as a Path, for the commands that read its parts (``dbtui convert``: its suffix, whether a folder)."""
    return Path(user_path(text))


def price(text: str) -> float:
    """An argparse ``type``: a finite amount of money, zero or more (the wizard's fit test reads it alike)."""
    try:
        return read_price(text)
    except PriceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def finite_at_least(low: float):
    """An argparse ``type``: a finite number of ``low`` or more (float() also reads "nan" and "inf")."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not math.isfinite(value) or value < low:
            raise argparse.ArgumentTypeError(f"{text} is not a usable value: give a number of {low:g} or more")
        return value

    return parse


def int_in(low: int, high: int | None = None):
    """An argparse ``type``: a whole number from ``low`` to ``high`` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {low}–{high}" if high is not None
                                             else f"{value} is too small: give {low} or more")
        return value

    return parse


def header_progress(after: float = 1.0, what: str = "checking image headers") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` for the check of the images' headers before a run (or ``what`` else it checks):
    silent on a folder read within ``after`` seconds, then a line on stderr (rewritten in place on a terminal, one a
    second otherwise), so that a big folder on a network disk does not look like a hang."""
    started: float | None = None  # from the first header read: the checks before it are not this wait
    shown = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal started, shown
        now = time.monotonic()
        if started is None:
            started = now
        if now - started < after or (now - shown < 1.0 and done < total):
            return
        if not shown and done == total:
            return  # the last header already read: nothing left to wait for
        shown = now
        tty = sys.stderr.isatty()
        end = "\n" if done == total or not tty else ""
        print(f"{chr(13) if tty else ''}{what}: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return progress


def to_stderr(text: str) -> None:
    """A line on stderr, at once: what a command is doing, where its standard output is a report (`--json`) that
    must hold that report alone."""
    print(text, file=sys.stderr, flush=True)


def launch_waited(folder: Path) -> None:
    """Said on stderr where another launch into ``folder`` holds it (dbtui.format.launch_wait_words)."""
    from dbtui.format import launch_wait_words

    to_stderr(launch_wait_words(folder))
