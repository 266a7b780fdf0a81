"""The README's synopsis of each headless helper names every option its --help lists: `dbtui serve [--port 8000]`
left out --public-url, the option a reverse proxy needs."""

import re
import shlex
from pathlib import Path

import pytest

from dbtui.cli import build_parser, main

README = Path(__file__).resolve().parent.parent / "README.md"


def _synopsis(command: str) -> str:
    section = README.read_text(encoding="utf-8").split("### Headless helpers", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith(f"    dbtui {command} ")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", ["hardware", "fit", "serve"])
def test_each_helpers_synopsis_names_every_option_of_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", capsys.readouterr().out.split("options:", 1)[1])) - {"--help"}
    assert options and options <= set(re.findall(r"--[a-z][a-z-]+", _synopsis(command)))



@pytest.mark.parametrize("action", ["check", "prepare", "caption"])
def test_the_dataset_commands_synopses_name_every_option_of_their_help(action: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The dataset sub-commands' finer options (--blur-threshold, --workers, --flatten-color...) were only in --help."""
    section = README.read_text(encoding="utf-8").split("### Every option of `dbtui dataset`", 1)[1].split("\n#", 1)[0]
    synopsis = section.split(f"    dbtui dataset {action} ", 1)[1].split("    dbtui dataset ", 1)[0]
    with pytest.raises(SystemExit):
        main(["dataset", action, "--help"])
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", capsys.readouterr().out.split("options:", 1)[1])) - {"--help"}
    assert options and options <= set(re.findall(r"--[a-z][a-z-]+", synopsis))

def _example_lines() -> list[str]:
    """The README's example command lines: `dbtui …` lines of its code blocks, less trailing comments and the
    synopses (those with [optional] parts)."""
    lines, fenced = [], False
    text = README.read_text(encoding="utf-8").replace("\\\n", "")  # a command continued on the next line
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif (line.startswith("dbtui ") if fenced else line.startswith("    dbtui ")) and "[" not in line:
            lines.append(re.sub(r"\s+#.*$", "", line.strip()))
    return lines


def test_every_readme_example_line_parses() -> None:
    """Each example the README shows names a command and options the CLI takes (a renamed option would otherwise
    leave the README teaching one it refuses)."""
    examples = _example_lines()
    assert len(examples) > 20
    refused = []
    for example in examples:
        try:
            _, unknown = build_parser().parse_known_args(shlex.split(example)[1:])
        except SystemExit:
            unknown = ["(refused)"]
        if unknown:
            refused.append(f"{example}: {unknown}")
    assert refused == []
