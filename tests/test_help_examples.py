"""Every command's --help ends with examples: attach, stop, save, sample, validate and demo had none, and
`dbtui fit --help` said neither that --json trains nothing nor what --price-per-hour feeds."""

from __future__ import annotations

import argparse

import pytest

from dbtui.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Each command that runs something (``dataset check``, not the ``dataset`` group)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = _commands(sub, (*path, name))
                found += inner or [(*path, name)]
    return found


@pytest.mark.parametrize("command", _commands(build_parser()), ids=" ".join)
def test_each_command_has_examples(command: tuple[str, ...], monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert "\nexamples:\n" in out, f"dbtui {' '.join(command)} --help has no examples"
    examples = out[out.index("examples:"):].split("\n\n")[0].splitlines()[1:]
    assert examples and examples[0].startswith(f"  dbtui {command[0]}") and all(line.startswith("  ") for line in examples)


def test_fit_help_says_what_json_and_the_price_do(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--json implies --estimate-only (trains nothing)" in out
    assert "in any currency" in out and "only feeds the cost figure" in out


def test_the_demo_example_changes_the_demo(monkeypatch, capsys) -> None:
    """`dbtui demo --plain --set dataset.resolution=64  # smaller pictures: faster` set the demo's own resolution."""
    from engine.builtin import demo_profile_text
    from engine.profile import loads_profile

    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    overrides = [word for line in out[out.index("examples:"):].splitlines() if "--set" in line
                 for word in line.split("#")[0].split("--set")[1:]]
    assert overrides
    for override in overrides:
        assert loads_profile(demo_profile_text(), [override.strip()]) != loads_profile(demo_profile_text()), override


@pytest.mark.parametrize("command", [(), *_commands(build_parser())], ids=lambda command: " ".join(command) or "dbtui")
def test_no_example_line_passes_80_columns(command: tuple[str, ...], monkeypatch, capsys) -> None:
    """Examples keep their lines as written (ExamplesFormatter), so one wider than 80 columns wrapped at the terminal's
    edge, in the middle of a command, in `dbtui run --help` and six others, and in `dbtui --help`, the first read."""
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    out = capsys.readouterr().out
    examples = out[out.index("examples:"):].splitlines()
    assert [line for line in examples if len(line) > 80] == []


@pytest.mark.parametrize("command", [(), *_commands(build_parser())], ids=lambda command: " ".join(command) or "dbtui")
def test_no_usage_line_passes_80_columns(command: tuple[str, ...], monkeypatch, capsys) -> None:
    """argparse breaks a usage only between its parts, and takes an option with its choices, or a mutually exclusive
    group, for one: `dbtui dataset check`'s --caption-mode made a line of 134 columns, `dataset caption`'s group 156."""
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert usage.startswith("usage: dbtui")
    assert [line for line in usage.splitlines() if len(line) > 80] == []
