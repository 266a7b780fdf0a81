"""Each option's --help names its default: `dbtui hardware --output-dir` measured the disk of the folder dbtui runs
in without saying so, and `dataset check --blur-threshold` gave neither its default nor what the figure measures."""

import argparse
from collections.abc import Iterator

from dbtui.cli import build_parser
from engine.dataset.checks import BLUR_THRESHOLD


def _options(parser: argparse.ArgumentParser, path: str = "dbtui") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _options(command, f"{path} {name}")
        elif action.option_strings:
            yield path, action


def test_every_option_with_a_default_names_it_in_its_help() -> None:
    silent = [f"{path} {action.option_strings[0]}" for path, action in _options(build_parser())
              if action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in (action.help or "")]
    assert silent == []


def test_the_blur_thresholds_help_gives_the_checks_default_and_what_it_measures() -> None:
    help_text = next(action.help for path, action in _options(build_parser())
                     if path == "dbtui dataset check" and "--blur-threshold" in action.option_strings)
    assert f"(default: {BLUR_THRESHOLD:g})" in help_text and "variance of the Laplacian" in help_text
