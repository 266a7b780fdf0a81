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


def _profile_examples_with_their_comments() -> list[tuple[str, str]]:
    """Each README example given a `--profile`, with the comment after it (and on the comment-only lines below it)."""
    examples, lines = [], README.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith("dbtui ") and "--profile " in line and "#" in line and "[" not in line:
            command, comment = line.split("#", 1)
            for below in lines[index + 1:]:
                if not below.lstrip().startswith("#"):
                    break
                comment += below
            examples.append((command.strip(), comment))
    return examples


def test_options_a_profile_examples_comment_names_are_taken_beside_its_profile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`dataset prepare photos/ prepared/ --profile my.toml` was followed by "(--no-center-crop: whole images, for
    center_crop = false)", an option that --profile refuses ("with --profile the profile gives it")."""
    examples = _profile_examples_with_their_comments()
    assert any(" prepare " in command for command, _ in examples)
    monkeypatch.chdir(tmp_path)  # no my.toml here: a run past the option check stops at the missing profile
    refused = []
    for command, comment in examples:
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]+", comment):
            args = shlex.split(command)[1:] + [option]
            try:
                build_parser().parse_args(args)
            except SystemExit:
                continue  # an option that takes a value: the comment names it, it does not give one
            main(args)
            if "the profile gives it" in capsys.readouterr().err:
                refused.append(f"{command} {option}")
    assert refused == []
