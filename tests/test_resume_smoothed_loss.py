"""A resumed run's smoothed loss goes on from its checkpoint's: the step meter started over at every resume, so the
smoothed curve of the dashboard, `dbtui runs`, the console and the report jumped to the first step's raw loss there."""

from __future__ import annotations

import json
from pathlib import Path

from engine.profile import Profile
from engine.runs.checkpoints import MANIFEST, latest_checkpoint
from engine.runs.folder import RunFolder
from engine.runs.sinks import read_events
from tests.runs_helpers import trained_as_by_dbtui_run
from tests.training_helpers import tiny_profile

STOP_AT = 3


def _attempt(profile: Profile, run_dir: Path, *, resume: Path | None = None) -> None:
    """One attempt of `dbtui run` (or `dbtui resume` from ``resume``) in this process; without ``resume`` it is
    stopped after step STOP_AT, as `dbtui stop` stops it, saving a checkpoint there."""
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    folder = RunFolder(run_dir).create(resumed=resume is not None)
    supervisor = Supervisor(folder, resume=resume)

    def stop(trainer: object, step: int) -> None:
        if resume is None and step == STOP_AT:
            supervisor.stop_requested = True

    train(profile, folder.path, step_hooks=[stop, supervisor.on_step], trainer_hook=supervisor.attach,
          start_step=supervisor.resume_step)


def _steps_after_last_start(run_dir: Path) -> dict[int, tuple[float, float]]:
    """step → (loss, smoothed loss) of the steps the run's last attempt trained."""
    events = list(read_events(run_dir / "events.jsonl"))
    last_start = max(index for index, event in enumerate(events) if event.kind == "run_started")
    return {e.step: (e.loss, e.smoothed_loss) for e in events[last_start:] if e.kind == "step_ended"}


def test_a_stopped_and_resumed_run_smooths_its_loss_as_the_unstopped_run(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, training={"max_train_steps": 6, "seed": 11}, optimizer={"learning_rate": 1e-3},
                           dataset={"resolution": 64, "hflip": True, "center_crop": False})
    unstopped = _steps_after_last_start(trained_as_by_dbtui_run(profile).path)
    stopped = tmp_path / "stopped"
    _attempt(profile, stopped)
    checkpoint = latest_checkpoint(RunFolder(stopped))
    assert checkpoint.name == f"step-{STOP_AT:08d}"
    _attempt(profile, stopped, resume=checkpoint)
    resumed = _steps_after_last_start(stopped)
    assert sorted(resumed) == [4, 5, 6]
    # The resume trains exactly as the unstopped run (its losses), and now smooths them as it did.
    assert resumed == {step: unstopped[step] for step in resumed}
    assert resumed[4][1] != resumed[4][0]  # not started over from the step's own loss

    # A checkpoint of before the smoothed loss was recorded starts it over, as every resume did then.
    manifest = json.loads((checkpoint / MANIFEST).read_text(encoding="utf-8"))
    del manifest["smoothed_loss"]
    (checkpoint / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    _attempt(profile, stopped, resume=checkpoint)
    older = _steps_after_last_start(stopped)
    assert older[4] == (unstopped[4][0], unstopped[4][0])
