"""The README's synopsis of each headless helper names every option its --help lists: `dbtui serve [--port 8000]`
left out --public-url, the option a reverse proxy needs."""

import re
from pathlib import Path

import pytest

from dbtui.cli import main

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
