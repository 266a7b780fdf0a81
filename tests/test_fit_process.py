"""The wizard's fit test trains in a process of its own: the wizard never holds the GPU."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runs.fit_process import FitProcessError, run_fit_process
from tests.runs_helpers import ROOT, env
from tests.training_helpers import tiny_profile

# In a fresh interpreter, as the wizard is: run the fit test, report what it saw and imported.
CALLER = """
import json, sys
from engine.runs.fit_process import run_fit_process
from engine.profile import load_profile
seen = []
result = run_fit_process(load_profile(sys.argv[1]), 3, seen.append, price_per_hour=2.0)
print(json.dumps({"kinds": [e.kind for e in seen], "steps": result.steps, "total": result.total_steps,
                  "cost": result.est_cost, "eta": result.eta_s, "heavy": sorted({"torch", "diffusers"} & set(sys.modules))}))
"""


def test_the_fit_test_reports_events_and_its_result_and_the_caller_imports_no_torch(tmp_path: Path) -> None:
    from engine.profile import save_profile

    path = save_profile(tiny_profile(tmp_path, training={"max_train_steps": 40}), tmp_path / "fit.toml")
    process = subprocess.run([sys.executable, "-c", CALLER, str(path)], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.splitlines()[-1])
    assert report["kinds"].count("step_ended") == 3 and "run_started" in report["kinds"]
    assert report["steps"] == 3 and report["total"] == 40
    assert report["cost"] == pytest.approx(report["eta"] / 3600 * 2.0)
    assert report["heavy"] == []


def _recording(started: list[subprocess.Popen]) -> type[subprocess.Popen]:
    """A Popen that adds each process it starts to ``started``, for a test to look at its pipes."""

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    return Recorded


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> tuple[FitProcessError, list[subprocess.Popen]]:
    """A fit test of a profile whose images folder does not exist, run once for the module (its child imports torch
    before it finds that out): its error, and the processes it started."""
    from engine.runs import fit_process

    tmp_path = tmp_path_factory.mktemp("failed")
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(tmp_path / "no-such-folder"), "instance_prompt": "photo of zwx disc"}])
    started: list[subprocess.Popen] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_process.subprocess, "Popen", _recording(started))
        with pytest.raises(FitProcessError) as raised:
            run_fit_process(profile, 2)
    return raised.value, started


def test_a_fit_test_that_fails_raises_its_own_message(failed: tuple[FitProcessError, list[subprocess.Popen]]) -> None:
    error, _ = failed
    assert "no-such-folder" in str(error), error
    assert not str(error).startswith("fit test"), "the wizard says 'Fit test failed: ' before it"


def test_a_fit_test_its_caller_stops_ends_its_trainer_at_once_and_leaves_no_folder(tmp_path: Path, monkeypatch) -> None:
    """Killed at once, the child could not remove its run folder (latents and all): one was left in /tmp each time."""
    import tempfile

    import psutil

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the child's temp folder
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # and ours
    profile = tiny_profile(tmp_path, training={"max_train_steps": 5000})
    seen, asked = [], []

    def stop() -> bool:
        # Stopped once training is under way (the user left the screen): otherwise 5000 steps would follow.
        if not asked and any(e.kind == "step_ended" for e in seen):
            asked.append(time.monotonic())
        return bool(asked)

    result = run_fit_process(profile, 5000, seen.append, stop=stop)
    assert result is None
    # Timed from the stop, not the start: the child's start-up (importing torch) is slow on a loaded machine.
    assert time.monotonic() - asked[0] < 30
    assert not [p for p in psutil.Process().children(recursive=True) if "engine.runs.fit_process" in " ".join(p.cmdline())]
    assert not list(temp.glob("dbtui-fit-*"))  # libraries leave their own files there (torch's inductor cache)


def test_the_fit_tests_output_pipe_is_closed_when_it_fails_and_when_it_is_stopped(
        tmp_path: Path, monkeypatch, failed: tuple[FitProcessError, list[subprocess.Popen]]) -> None:
    """It was left to the garbage collector: a ResourceWarning (unclosed file) each time."""
    from engine.runs import fit_process

    _, started_failing = failed
    started: list[subprocess.Popen] = []
    monkeypatch.setattr(fit_process.subprocess, "Popen", _recording(started))
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(tmp_path / "none"), "instance_prompt": "photo of zwx"}])
    assert run_fit_process(profile, 2, stop=lambda: True) is None
    assert len(started_failing) == 1 and len(started) == 1
    assert all(process.stdout.closed for process in started_failing + started)


def test_the_fit_tests_answer_is_read_when_a_library_print_comes_before_it_on_its_line(tmp_path: Path, capsys) -> None:
    """Its reader took the last line of stderr as the child's reason (libraries write warnings there, even at exit),
    and a result glued to a library's print without its newline was lost."""
    import dataclasses

    from engine.profile import save_profile
    from engine.runs.fit import FitResult
    from engine.runs.fit_process import RESULT_KEY, _read_output, main

    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(tmp_path / "no-such-folder"), "instance_prompt": "photo of zwx"}])
    assert main([str(save_profile(profile, tmp_path / "fit.toml"))]) == 1
    said = _read_output(capsys.readouterr().out.splitlines(), None)
    assert isinstance(said, str) and "no-such-folder" in said
    fields = {field.name: 1 for field in dataclasses.fields(FitResult)}
    glued = "Loading weights: 100%" + json.dumps({RESULT_KEY: fields})
    assert _read_output([glued], None) == FitResult(**fields)
