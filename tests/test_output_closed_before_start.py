"""`dbtui run P | true` (any reader gone before the trainer starts) ended 0 though no run was started: a script took it
for done. It ends 141, as a closed output after the start does, saying on stderr that none was started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs_helpers import env

DEMO = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"


def _with_output_closed(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``dbtui ARGS`` whose stdout is a pipe nobody reads from any more."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "dbtui", *args], stdout=write, stderr=subprocess.PIPE, text=True,
                              cwd=cwd, env=env(), timeout=300)
    finally:
        os.close(write)


@pytest.mark.parametrize("command", [["run", str(DEMO), "--set", 'saving.output_dir="runs"'],
                                     ["demo", "--workdir", "demo"]])
def test_a_run_whose_output_closed_before_its_start_starts_none_and_ends_141(command: list[str], tmp_path: Path) -> None:
    done = _with_output_closed(*command, cwd=tmp_path)
    assert done.returncode == 141, done.stderr
    assert "the output was closed (its reader, such as `head`, ended) before the run started, so none was started" in (
        done.stderr)
    assert not list(tmp_path.glob("**/runs/*"))  # no run folder
    if command[0] == "demo":
        assert "; it wrote the demo profile demo/tiny-demo.toml" in done.stderr


def test_a_resume_whose_output_closed_before_its_start_starts_no_trainer_and_ends_141(tmp_path: Path) -> None:
    """`dbtui resume RUN | true` ended 0, nothing said, its trainer training unwatched: the line was said after the
    start. From an earlier checkpoint, to see the later one put back where no trainer started."""
    from engine.runs.checkpoints import complete_checkpoints
    from tests.runs_helpers import run_with_checkpoints

    folder, _ = run_with_checkpoints(tmp_path, [500, 1000])
    done = _with_output_closed("resume", str(folder.path), "--from", str(folder.checkpoints / "step-00000500"),
                               cwd=tmp_path)
    assert done.returncode == 141, done.stderr
    assert "before the run started, so none was started" in done.stderr
    assert not folder.state_file.exists()  # the launcher writes it once the trainer is started
    assert [step for step, _ in complete_checkpoints(folder)] == [500, 1000]
