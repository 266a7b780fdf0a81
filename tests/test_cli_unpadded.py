"""What a script parses (`dbtui dataset check DIR > report.txt`, `dbtui runs | grep`): off a terminal, Rich padded its
tables' titles and its wrapped lines with trailing spaces, which a grep for 'usable$' or a diff of two outputs met.
`dbtui hardware` was stripped alone (dbtui/cli/unpadded.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.builtin import resolve_dir
from tests.runs_helpers import run_with_checkpoints


def _images(tmp_path: Path) -> Path:
    """The demo images, with a caption whose image is gone: its warning is longer than a line."""
    folder = tmp_path / "images"
    shutil.copytree(resolve_dir("builtin:demo-instance"), folder)
    (folder / f"{'a-photo-renamed-since-its-caption-was-written-' * 2}.txt").write_text("ohwx, a caption")
    return folder


@pytest.mark.parametrize("command", ["dataset check", "dataset prepare", "runs", "hardware"])
def test_off_a_terminal_no_line_ends_in_spaces(command: str, tmp_path: Path, capsys) -> None:
    args = {"dataset check": lambda: ["dataset", "check", str(_images(tmp_path))],
            "dataset prepare": lambda: ["dataset", "prepare", str(_images(tmp_path)), str(tmp_path / "out")],
            "runs": lambda: ["runs", "--dir", str(run_with_checkpoints(tmp_path, [5])[0].path.parent)],
            "hardware": lambda: ["hardware", "--card", "24", "--output-dir", str(tmp_path)]}[command]()
    main(args)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 3, lines
    assert [line for line in lines if line != line.rstrip()] == []
