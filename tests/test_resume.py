"""Resume comes from the run folder: its stored profile keeps every --set the run was started
with, and a finished run is never trained again over its outputs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from engine.runs.folder import RunFolder
from tests.runs_helpers import dbtui, profile_file, step_of, wait_for


def _outputs_fingerprint(folder: RunFolder) -> dict[str, int]:
    return {str(p.relative_to(folder.outputs)): p.stat().st_mtime_ns for p in folder.outputs.rglob("*") if p.is_file()}


def test_the_resume_hint_keeps_the_overrides_and_a_finished_run_is_refused(tmp_path: Path) -> None:
    path = profile_file(tmp_path, training={"max_train_steps": 120}, saving={"every_n_steps": 1000})
    base = RunFolder(tmp_path / "runs" / "t")  # the profile's own name: must stay untouched
    folder = RunFolder(tmp_path / "runs" / "headless1")
    run = dbtui("run", str(path), "--plain", "--set", 'name="headless1"', "--set", "training.max_train_steps=120",
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    wait_for(lambda: step_of(folder) >= 2)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the CLI and its trainer
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 130, out  # a script sees that the run did not finish
    hint = re.search(r"latest checkpoint \(step \d+\) with: (dbtui resume \S+)", out)
    assert hint and hint.group(1) == f"dbtui resume {folder.path}", out

    stopped_at = folder.read_state().step
    resumed = dbtui("resume", str(folder.path), "--plain", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert f"resumed at step {stopped_at}" in out and "outputs are in" in out
    state = folder.read_state()
    assert state.status == "finished" and state.step == 120
    assert not base.path.exists()

    kept = _outputs_fingerprint(folder)
    assert kept
    for again in (["resume", str(folder.path)], ["run", str(path), "--set", 'name="headless1"'],
                  ["run", str(path), "--set", 'name="headless1"', "--resume"]):
        refused = dbtui(*again, "--plain", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _ = refused.communicate(timeout=120)
        assert refused.returncode == 2 and "finished run" in out and "outputs are kept" in out, out
    assert _outputs_fingerprint(folder) == kept


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(tmp_path: Path) -> None:
    """Stopped during setup (Ctrl-C while the model loaded): `dbtui resume` trains it from step 0 rather than
    failing for want of a checkpoint, and the hint said so."""
    from engine.profile import dumps_profile
    from engine.runs.folder import RunState

    from dbtui.cli.watch import resume_hint
    from tests.training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "runs" / "early").create()
    folder.profile.write_text(dumps_profile(tiny_profile(tmp_path, name="early", training={"max_train_steps": 2})), encoding="utf-8")
    folder.write_state(RunState(pid=0, status="stopped"))
    assert resume_hint(folder) == f"No checkpoint was saved yet; `dbtui resume {folder.path}` trains it from the start."
    resumed = dbtui("resume", str(folder.path), "--plain", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert "saved no checkpoint before it stopped: training it from the start" in out and "outputs are in" in out
    assert folder.read_state().status == "finished" and folder.read_state().step == 2
