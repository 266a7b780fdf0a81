"""A run folder whose files were moved, deleted or cut short by hand: its checkpoints/ gone, its profile.toml empty
or missing, the folder itself moved or copied elsewhere."""

from __future__ import annotations

from pathlib import Path

from engine.events import RunFinished, RunStarted
from engine.runs.folder import RunFolder
from engine.runs.follow import follow_events
from tests.test_follow import _step, _write
from tests.test_resume import _stopped_run


def test_a_run_whose_checkpoints_were_deleted_is_not_trained_again_from_the_start(tmp_path: Path, capsys) -> None:
    """checkpoints/ deleted or moved by hand: the resume said "saved no checkpoint before it stopped" and trained the
    run again from step 0, and the hint after a stop promised that too."""
    import json
    import shutil

    from dbtui.cli import main
    from dbtui.format import resume_hint

    folder, _ = _stopped_run(tmp_path, [4, 8])
    folder.events.write_text("".join(json.dumps({"event": "checkpoint_saved", "time": 1.0, "step": step, "path":
                                                 str(folder.checkpoints / f"step-{step:08d}")}) + "\n" for step in (4, 8)))
    shutil.rmtree(folder.checkpoints)
    assert main(["resume", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert "saved checkpoints up to step 8" in err and "put them back there to resume from step 8" in err
    assert "--set name=NEW_NAME" in err and folder.read_state().step == 8 and not folder.log.exists()
    assert resume_hint(folder).startswith(f"Its checkpoints (up to step 8) are gone from {folder.checkpoints}")


def test_a_finished_run_whose_checkpoints_were_deleted_is_said_finished(tmp_path: Path, capsys) -> None:
    """Checkpoints deleted once the run finished (to free disk): the resume said to put them back to resume from the
    last step, not that the run is finished and its outputs kept."""
    import json
    import shutil

    from dbtui.cli import main
    from engine.runs.folder import RunState

    folder, _ = _stopped_run(tmp_path, [4])
    folder.events.write_text(json.dumps({"event": "checkpoint_saved", "time": 1.0, "step": 4, "path": ""}) + "\n")
    folder.write_state(RunState(pid=0, status="finished", step=4, total_steps=4))
    shutil.rmtree(folder.checkpoints)
    assert main(["resume", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run (step 4" in err and "put them back" not in err


def test_an_export_of_a_run_whose_checkpoints_were_deleted_says_they_are_gone(tmp_path: Path) -> None:
    """It said "saving.every_n_steps decides when they are kept", a setting that had saved them."""
    import json
    import shutil

    import pytest

    from engine.runs.export import NoSuchCheckpointError, checkpoint_at

    folder, _ = _stopped_run(tmp_path, [4])
    folder.events.write_text(json.dumps({"event": "checkpoint_saved", "time": 1.0, "step": 4, "path": ""}) + "\n")
    shutil.rmtree(folder.checkpoints)
    with pytest.raises(NoSuchCheckpointError, match="saved up to step 4, are gone from .*: put them back") as refused:
        checkpoint_at(folder, 4)
    assert "every_n_steps" not in str(refused.value)


def test_a_run_whose_profile_toml_is_empty_is_told_so(tmp_path: Path, capsys) -> None:
    """An empty RUN/profile.toml (a copy cut short) was told as a profile lacking model.pretrained and concepts, after
    the hint had offered `dbtui resume`: both now say it is empty and to resume with the profile the run started from."""
    from dbtui.cli import main
    from dbtui.format import resume_hint

    folder, _ = _stopped_run(tmp_path, [4])
    folder.profile.write_text("\n")
    assert resume_hint(folder).startswith("Its profile.toml is empty, which `dbtui resume` trains")
    assert main(["resume", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert f"{folder.profile} is empty" in err and "`dbtui run PROFILE --resume`" in err and "required key" not in err


def test_an_export_of_a_run_whose_profile_toml_is_empty_or_missing_says_to_put_it_back(tmp_path: Path, capsys) -> None:
    """Empty, it was told as a profile lacking model.pretrained and concepts; missing, as "not a run folder"."""
    from dbtui.cli import main

    folder, _ = _stopped_run(tmp_path, [4])
    folder.profile.write_text("")
    assert main(["export", str(folder.path), "--step", "4"]) == 2
    err = capsys.readouterr().err
    assert f"{folder.profile} is empty, and an export reads there" in err and "required key" not in err
    folder.profile.unlink()
    folder.outputs.mkdir()
    (folder.outputs / "profile.toml").write_text("")
    assert main(["export", str(folder.path), "--step", "4"]) == 2
    err = capsys.readouterr().err
    assert "is missing" in err and f"`cp {folder.outputs / 'profile.toml'} {folder.profile}`" in err
    folder.profile.mkdir()  # a folder of that name was said to be missing
    assert main(["export", str(folder.path), "--step", "4"]) == 2
    err = capsys.readouterr().err  # a cp into that folder put the profile inside it, and the export refused again
    assert f"{folder.profile} is not a file (move it out of the run folder first)" in err


def test_a_moved_run_folder_names_its_files_where_it_is_now(tmp_path: Path) -> None:
    """`mv RUN elsewhere` (or a copy): attach and the report named the previews, checkpoints and outputs at the folder's
    old place, gone (or, for a copy, the original's)."""
    from engine.events import CheckpointSaved, SampleSaved
    from engine.runs.report import read_run

    then = str(tmp_path / "runs" / "r")
    folder = RunFolder(tmp_path / "moved disk" / "r ü").create()
    started = RunStarted(run_dir=then, profile={}, hardware={}, versions={}, total_steps=4)
    _write(folder, started, _step(2), SampleSaved(step=2, paths=[f"{then}/samples/step-000002/0.png"],
                                                  grid=f"{then}/samples/step-000002/grid.png"),
           CheckpointSaved(step=2, path=f"{then}/checkpoints/step-00000002"),
           RunFinished(step=4, outputs={"diffusers": f"{then}/outputs/diffusers", "other": f"{then}-v2/outputs"}, seconds=1.0))
    now = str(folder.path)
    sample, checkpoint, finished = list(follow_events(folder, follow=False))[2:]
    assert sample.paths == [f"{now}/samples/step-000002/0.png"] and sample.grid == f"{now}/samples/step-000002/grid.png"
    assert checkpoint.path == f"{now}/checkpoints/step-00000002"
    assert finished.outputs == {"diffusers": f"{now}/outputs/diffusers", "other": f"{then}-v2/outputs"}
    assert read_run(folder.path).end.outputs["diffusers"] == f"{now}/outputs/diffusers"


def test_a_resume_whose_model_was_moved_says_where_its_new_place_goes(tmp_path: Path, capsys) -> None:
    """The model folder moved after a crash: `dbtui resume RUN` said only "give a diffusers folder, …", and resume takes
    no --set; the run's own profile.toml, which a resume trains, is where the new place goes."""
    from dbtui.cli import main

    folder, _ = _stopped_run(tmp_path, [4])
    gone = tmp_path / "moved-model"
    folder.profile.write_text(folder.profile.read_text().replace('"builtin:tiny-sd1"', f'"{gone}"'))
    assert main(["resume", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot start the run: model.pretrained: '{gone}' does not exist" in err
    assert (f"advice: where a file or folder it names was moved, write its new place in {folder.profile} (the profile "
            f"`dbtui resume` trains), then `dbtui resume {folder.path}` again") in err


def test_a_killed_run_whose_checkpoints_were_deleted_is_not_said_to_resume_from_the_start(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """kill -9, then its checkpoints deleted by hand: `dbtui runs` and the wizard's Attach list said '33/400 · resumes
    from the start', while `dbtui resume` refuses it and asks for the checkpoints back. Listed at its step alone now."""
    import shutil

    from dbtui.cli import main
    from dbtui.engine_facade import RealEngine
    from engine.events import CheckpointSaved
    from tests.test_runs_listing import _killed_at_step_33_after_a_checkpoint_at_30

    folder = _killed_at_step_33_after_a_checkpoint_at_30(tmp_path)
    with folder.events.open("a", encoding="utf-8") as file:
        file.write("\n" + CheckpointSaved(step=30, path=str(folder.checkpoints / "step-00000030"), seconds=1.0).to_json()
                   + "\n")
    shutil.rmtree(folder.checkpoints)
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "│ crashed " in line]
    assert [cell.strip() for cell in row.split("│")[2:4]] == ["crashed", "33/400"], row
    [run] = RealEngine().list_runs(str(tmp_path / "runs"))
    assert (run.step, run.resumes_from) == (33, None)  # the Attach list's '· resumes from …' is left out
    assert main(["resume", str(folder.path)]) == 2
    assert "put them back there to resume from step 30" in capsys.readouterr().err


def test_stop_of_a_run_whose_checkpoints_were_deleted_does_not_promise_a_resume(tmp_path: Path, capsys) -> None:
    """`dbtui stop` of a stopped or crashed run whose checkpoints were deleted said "`dbtui resume RUN` continues it", a
    resume that refuses it and asks for them back; it says what resume will do now."""
    import json
    import shutil

    from dbtui.cli import main

    folder, _ = _stopped_run(tmp_path, [4, 8])
    folder.events.write_text(json.dumps({"event": "checkpoint_saved", "time": 1.0, "step": 8, "path": ""}) + "\n")
    shutil.rmtree(folder.checkpoints)
    assert main(["stop", str(folder.path)]) == 2
    err = capsys.readouterr().err
    assert f"(status: stopped). Its checkpoints (up to step 8) are gone from {folder.checkpoints}: put them back" in err
    assert "continues it" not in err
