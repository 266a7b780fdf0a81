"""`dbtui stop RUN` right after `dbtui run P --detach`, while the launch still checked its inputs, was told the folder
did not exist or was "not a run folder (no events.jsonl)", and the stop was lost: the run then trained. Now the launch
holds its lock from before the checks, a stop asked meanwhile is left for the trainer and kept by the launch, and a
folder not made yet is said to come once the run's profile is read."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.runs.control import request
from engine.runs.folder import RunFolder


def test_a_stop_asked_while_the_launch_checks_its_inputs_reaches_the_trainer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.runs import launcher
    from training_helpers import tiny_profile

    monkeypatch.setattr(launcher, "worker_command",
                        lambda profile, run_dir, extra: [sys.executable, "-c", "import time; time.sleep(60)",
                                                         "engine.runs.worker", str(run_dir)])
    run_dir = tmp_path / "runs" / "early"
    checks = launcher.check_inputs
    said: list[int] = []

    def checks_and_a_stop(*args, **kwargs):  # the user's `dbtui stop` in another shell, during the checks
        said.append(main(["stop", str(run_dir)]))
        said.append(main(["save", str(run_dir)]))
        return checks(*args, **kwargs)

    monkeypatch.setattr(launcher, "check_inputs", checks_and_a_stop)
    started = launcher.start_run(tiny_profile(tmp_path), run_dir=run_dir, detach=True)
    try:
        captured = capsys.readouterr()
        assert said == [0, 2], captured
        assert "to stop; it is still starting" in captured.out
        assert "nothing to save yet" in captured.err
        assert (started.folder.control / "stop").exists()  # kept for the trainer, which stops before its first step
        assert not (started.folder.control / "save").exists()
    finally:
        started.process.kill()
        started.process.wait()


def test_a_launch_drops_the_requests_left_before_it_and_keeps_those_asked_of_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Told apart by their dates, a dead trainer's requests dated in the future (a clock skewed across NFS) were kept,
    and its stop stopped the new run unasked."""
    from engine.runs import launcher
    from training_helpers import tiny_profile

    monkeypatch.setattr(launcher, "worker_command",
                        lambda profile, run_dir, extra: [sys.executable, "-c", "import time; time.sleep(60)",
                                                         "engine.runs.worker", str(run_dir)])
    folder = RunFolder(tmp_path / "runs" / "again").create()
    ahead = time.time() + 60
    for what in ("sample", "stop"):  # asked of a trainer killed before it could act
        os.utime(request(folder, what), (ahead, ahead))
    checks = launcher.check_inputs

    def checks_and_a_stop(*args, **kwargs):  # the user's `dbtui stop` during the checks, over the old stop file
        assert main(["stop", str(folder.path)]) == 0
        return checks(*args, **kwargs)

    monkeypatch.setattr(launcher, "check_inputs", checks_and_a_stop)
    started = launcher.start_run(tiny_profile(tmp_path), run_dir=folder.path, detach=True)
    try:
        assert not (folder.control / "sample").exists()
        assert (folder.control / "stop").exists()  # this launch's own
    finally:
        started.process.kill()
        started.process.wait()
    os.utime(request(folder, "stop"), (ahead, ahead))  # and once more, with no stop asked during the launch
    monkeypatch.setattr(launcher, "check_inputs", checks)
    started = launcher.start_run(tiny_profile(tmp_path), run_dir=folder.path, detach=True, resume="latest")
    try:
        assert not (folder.control / "stop").exists()
    finally:
        started.process.kill()
        started.process.wait()


def test_a_stop_before_the_run_folder_is_made_says_when_it_will_be(tmp_path: Path, capsys) -> None:
    assert main(["stop", "soon", "--dir", str(tmp_path / "runs")]) == 2
    assert 'ask again once it prints "trainer started"' in capsys.readouterr().err
