"""Keeping the best step of an overfitting run: the rotation keeps its checkpoint beside the latest ones, and
the advice never offers a kept step the best-step rule rejected as the best one's stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.evaluation.best import best_step
from engine.events import RunStarted, SamplesScored
from engine.runs.checkpoints import Checkpointer, complete_checkpoints
from engine.runs.folder import RunFolder
from engine.runs.keep import how_to_keep, keep_of_run
from engine.runs.sinks import JsonlSink
from tests.training_helpers import tiny_profile

# CLIP-T falls from 0.30 as subject fidelity rises: steps 300-500 lose too much of it, step 100 is the best.
ROUNDS = [(0, 0.50, 0.30), (100, 0.70, 0.30), (200, 0.60, 0.29), (300, 0.75, 0.25), (400, 0.80, 0.20), (500, 0.85, 0.18)]


def scored(step: int, subject: float, clip_t: float) -> SamplesScored:
    return SamplesScored(step=step, scores={"subject": subject, "clip_t": clip_t, "dino": subject, "clip_i": subject})


def overfit_run(tmp_path: Path, evaluation: bool, scored_rounds: bool = True,
                damaged: tuple[int, ...] = ()) -> tuple[RunFolder, Checkpointer]:
    """A run folder scored at ``ROUNDS`` (unless not ``scored_rounds``) whose trainer saves a checkpoint (a manifest)
    at every such step and rotates, with ``evaluation`` as the profile's setting; those at ``damaged`` lack a file."""
    folder = RunFolder(tmp_path / "overfit").create()
    profile = tiny_profile(tmp_path, saving={"keep_last_n": 2}, evaluation={"enabled": evaluation})
    sink = JsonlSink(folder.events)
    checkpointer = object.__new__(Checkpointer)
    checkpointer.trainer, checkpointer.folder = SimpleNamespace(profile=profile, emit=sink), folder  # the trainer's log
    sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=600))
    for step, subject, clip_t in ROUNDS:
        if scored_rounds:
            sink(scored(step, subject, clip_t))  # the round's scores come before its checkpoint (Trainer.after_step)
        if step:
            path = folder.checkpoints / f"step-{step:08d}"
            path.mkdir(parents=True)
            files = {"unet/diffusion_pytorch_model.safetensors": 10} if step in damaged else {}
            (path / "manifest.json").write_text(json.dumps({"step": step, "files": files}))
            checkpointer._rotate()
    sink.close()
    return folder, checkpointer


def test_the_rotation_keeps_the_best_steps_checkpoint_beside_the_latest(tmp_path: Path) -> None:
    folder, _ = overfit_run(tmp_path, evaluation=True)
    assert [step for step, _ in complete_checkpoints(folder)] == [100, 400, 500]
    keep = keep_of_run(folder)
    assert keep is not None and keep.exact and keep.export_step == 100
    assert keep.advice("runs/x") == "keep it with `dbtui export runs/x --step 100`"


def test_the_rotation_keeps_the_best_whole_checkpoint_not_a_damaged_best_one(tmp_path: Path) -> None:
    """A damaged checkpoint of the best step was kept, and the next best whole one deleted: no export could be made."""
    folder, _ = overfit_run(tmp_path, evaluation=True, damaged=(100,))
    assert [step for step, _ in complete_checkpoints(folder)] == [200, 400, 500]


def test_without_evaluation_the_rotation_keeps_the_latest_only(tmp_path: Path) -> None:
    folder, _ = overfit_run(tmp_path / "off", evaluation=False, scored_rounds=False)
    assert [step for step, _ in complete_checkpoints(folder)] == [400, 500]


def test_a_resume_without_evaluation_still_keeps_the_best_step_an_earlier_attempt_scored(tmp_path: Path) -> None:
    """The best step is the run's, read from every attempt's scores: a resume with scoring off deleted its checkpoint
    while `dbtui runs`, attach and the report still named it."""
    folder, _ = overfit_run(tmp_path, evaluation=False)
    assert 100 in [step for step, _ in complete_checkpoints(folder)]


def test_an_unkept_best_step_is_kept_by_the_best_kept_step_that_qualifies_never_a_nearer_rejected_one() -> None:
    late = scored(600, 0.65, 0.295)  # a late step that still qualifies
    best = best_step([RunStarted(run_dir="x", profile={}, hardware={}, versions={}, total_steps=700),
                      *(scored(*r) for r in ROUNDS), late])
    assert best is not None and best.step == 100
    fallback = how_to_keep(best, [300, 600])  # 300 is nearer, but lost too much CLIP-T
    assert fallback.step == 600 and not fallback.rejected
    assert "the best kept step that qualifies is step 600: `dbtui export runs/x --step 600`" in fallback.advice("runs/x")
    # The rotation keeps the best step's checkpoint: raising keep_last_n, as the advice said, would not have kept it.
    assert "saving.keep_last_n" not in fallback.advice("runs/x")
    assert "scored between checkpoints: saving.every_n_steps equal to sampling.every_n_steps" in fallback.advice("runs/x")
    nearest = how_to_keep(best, [400, 500])
    assert nearest.step == 400 and nearest.rejected and nearest.choice == "nearest to best 100, did not qualify"
    said = nearest.advice("runs/x")
    assert "no kept step qualifies: the nearest kept one, step 400, lost too much prompt fidelity" in said
    assert "the nearest kept one is step 400" not in said


def started() -> RunStarted:
    return RunStarted(run_dir="x", profile={}, hardware={}, versions={}, total_steps=100)


def test_a_non_finite_score_counts_as_missing() -> None:
    nan = float("nan")
    # A NaN subject met first won: max() keeps it, since NaN compares false with every other score.
    best = best_step([started(), scored(0, 0.5, 0.3), scored(10, nan, 0.3), scored(20, 0.8, 0.3)])
    assert best is not None and best.step == 20 and best.qualifying == (20,) and not best.failing
    # A NaN base CLIP-T failed every step ("no step qualifies yet"): the start is the first finite one's.
    best = best_step([started(), scored(0, 0.5, nan), scored(10, 0.6, 0.3), scored(20, 0.8, float("inf"))])
    assert best is not None and best.step == 10 and best.start_clip_t == 0.3


def test_a_damaged_best_checkpoint_is_never_offered(tmp_path: Path) -> None:
    """A truncated best checkpoint was still offered (`dbtui export … --step 100`), and the export then refused it."""
    folder, _ = overfit_run(tmp_path, evaluation=True)
    weights = folder.checkpoints / "step-00000100" / "unet" / "diffusion_pytorch_model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"x" * 10)  # cut short: the manifest says 100 bytes were written
    manifest = weights.parents[1] / "manifest.json"
    manifest.write_text(json.dumps({"step": 100, "files": {"unet/diffusion_pytorch_model.safetensors": 100}}))
    keep = keep_of_run(folder)
    assert keep is not None and keep.step == 400 and keep.damaged == (100,)
    said = keep.advice("runs/x")
    assert said.startswith("step 100's checkpoint is damaged") and "--step 100" not in said


def test_damaged_json_records_are_skipped_not_raised(tmp_path: Path) -> None:
    """Valid JSON of the wrong shape raised TypeError out of attach, export, the rotation and the best-step rule."""
    from engine.evaluation.best import best_step_of_run
    from engine.runs.checkpoints import CheckpointError, read_manifest

    folder, _ = overfit_run(tmp_path, evaluation=True)
    for name, manifest in (("step-00000600", "[]"), ("step-00000700", '{"step": null}'), ("step-00000800", '{"step": "8"}')):
        (folder.checkpoints / name).mkdir()
        (folder.checkpoints / name / "manifest.json").write_text(manifest)
    assert [step for step, _ in complete_checkpoints(folder)] == [100, 400, 500]
    with pytest.raises(CheckpointError, match="not a complete dbtui checkpoint"):
        read_manifest(folder.checkpoints / "step-00000600")
    damaged = ['{"event": "samples_scored", "step": 150, "scores": null}',
               '{"event": "samples_scored", "step": 160, "scores": [1, 2]}',
               '{"event": "samples_scored", "step": "5", "scores": {"subject": 0.99, "clip_t": 0.3}}',
               '{"event": "run_started", "run_dir": "x", "profile": null, "hardware": {}, "versions": {}, "total_steps": 9, '
               '"resumed_from_step": 500}',
               '{"event": "run_started", "run_dir": "x", "profile": {"evaluation": {"prompt_fidelity_tolerance": "lots"}}, '
               '"hardware": {}, "versions": {}, "total_steps": 9, "resumed_from_step": "7"}',
               '{"event": "run_finished", "step": "3", "outputs": {}, "seconds": 1, "status": "stopped"}']
    with folder.events.open("a") as events:
        events.write("\n".join(damaged) + "\n")
    best = best_step_of_run(folder.events)
    assert best is not None and best.step == 100 and best.tolerance == 0.02


def test_a_checkpoints_folder_deleted_while_the_run_trains_is_made_again_at_the_next_save(tmp_path: Path) -> None:
    """`rm -rf RUN/checkpoints` to free space under a live run: its next save failed as a bug of dbtui and the run ended."""
    import shutil

    from engine.training.trainer import Trainer

    folder = RunFolder(tmp_path / "run").create()
    trainer = Trainer(tiny_profile(tmp_path, training={"max_train_steps": 2}), folder.path)
    trainer.setup()
    try:
        checkpointer = Checkpointer(trainer, folder)
        shutil.rmtree(folder.checkpoints, ignore_errors=True)
        saved = checkpointer.save(1)
    finally:
        trainer.end()
    assert saved == folder.checkpoints / "step-00000001" and [step for step, _ in complete_checkpoints(folder)] == [1]


def test_export_of_the_latest_checkpoint_names_the_kept_best_step_and_its_command(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui export RUN` wrote step 500 (the latest), overfit, and said nothing of the kept best step 100."""
    import engine.runs.export
    from dbtui.cli import main

    folder, _ = overfit_run(tmp_path, evaluation=True)
    folder.profile.write_text('name = "overfit"\n')
    monkeypatch.setattr(engine.runs.export, "export_checkpoint", lambda run, step, emit: {"lora_diffusers": f"{run}/exports/step-{step}"})
    assert main(["export", str(folder.path)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[-1] == (f"exported step 500, the latest kept; the best-scored is {best_step(scored(*r) for r in ROUNDS).describe()}: "
                        f"keep it with `dbtui export {folder.path} --step 100`")
    assert main(["export", str(folder.path), "--step", "100"]) == 0
    assert "best-scored" not in capsys.readouterr().out


def test_a_resume_that_scores_on_another_scale_keeps_the_best_step_named_before(tmp_path: Path) -> None:
    """A resume under other [evaluation] settings (images_per_prompt 1 → 2) scores the base model again and compares only
    its own rounds: the rotation deleted the checkpoint of the step the run had named as the one to keep (step 100),
    the only copy of that model, once the new rounds came."""
    folder = RunFolder(tmp_path / "rescaled").create()
    profile = tiny_profile(tmp_path, saving={"keep_last_n": 1}, evaluation={"enabled": True})
    sink = JsonlSink(folder.events)
    checkpointer = object.__new__(Checkpointer)
    checkpointer.trainer, checkpointer.folder = SimpleNamespace(profile=profile, emit=sink), folder  # the trainer's log
    before, after = {"images_per_prompt": 1}, {"images_per_prompt": 2}
    sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=600))
    rounds = [(before, 0, 0.50, 0.30), (before, 100, 0.70, 0.30), (before, 200, 0.60, 0.29),
              (after, 0, 0.50, 0.30), (after, 300, 0.55, 0.30), (after, 400, 0.60, 0.30), (after, 500, 0.58, 0.30)]
    for settings, step, subject, clip_t in rounds:
        if step == 0 and settings is after:
            sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=600,
                            resumed_from_step=200))
        sink(SamplesScored(step=step, scores={"subject": subject, "clip_t": clip_t}, settings=settings))
        if step:
            path = folder.checkpoints / f"step-{step:08d}"
            path.mkdir(parents=True)
            (path / "manifest.json").write_text(json.dumps({"step": step, "files": {}}))
            checkpointer._rotate()
    sink.close()
    assert [step for step, _ in complete_checkpoints(folder)] == [100, 400, 500]  # the earlier best, the new best, the latest


def test_a_resume_under_another_tolerance_warns_of_the_best_steps_checkpoint_it_no_longer_keeps(tmp_path: Path) -> None:
    """Another prompt_fidelity_tolerance chooses the best step anew (100 → 400): the rotation then deleted step 100's
    checkpoint without a word, though the run had told the user to keep it."""
    from engine.runs.resume_changes import resume_warnings

    folder, _ = overfit_run(tmp_path, evaluation=True)
    same = tiny_profile(tmp_path, evaluation={"enabled": True})
    assert resume_warnings({"step": 500}, same, 1, 600, folder=folder) == []
    looser = tiny_profile(tmp_path, evaluation={"enabled": True, "prompt_fidelity_tolerance": 0.1100001})
    [warning] = resume_warnings({"step": 500}, looser, 1, 600, folder=folder)
    assert "the checkpoint of step 100, kept until now as the best step's, is no longer kept" in warning.message
    assert "under evaluation.prompt_fidelity_tolerance = 0.1100001, which" in warning.message  # as written, not 0.11
    assert f"`dbtui export {folder.path} --step 100` keeps that model now" in warning.advice


def test_export_of_a_step_without_a_checkpoint_names_the_best_kept_step_and_its_command(tmp_path: Path, capsys) -> None:
    """It listed the kept steps only, not the one `dbtui runs`, attach and the report name as the one to keep."""
    from dbtui.cli import main

    folder, _ = overfit_run(tmp_path, evaluation=True)
    folder.profile.write_text('name = "overfit"\n')
    assert main(["export", str(folder.path), "--step", "200"]) != 0
    assert (f"has no checkpoint at step 200; the kept steps are: 100, 400, 500; the best-scored step is 100: "
            f"`dbtui export {folder.path} --step 100`") in capsys.readouterr().err


@pytest.mark.parametrize(("sampling_every", "said"), [
    (None, "its round was asked for by hand, `dbtui sample` or the dashboard's p, with no save: `dbtui save` sent with "
           "`dbtui sample`, or c with p, saves one at such a round, as both act at the same step boundary"),
    (3, "its round was scored between checkpoints: saving.every_n_steps equal to sampling.every_n_steps")])
def test_a_best_round_asked_for_by_hand_is_told_to_send_a_save_with_it(sampling_every: int | None, said: str,
                                                                        tmp_path: Path) -> None:
    # A `dbtui sample` round off the saving schedule that scored best was said to want saving.every_n_steps equal to
    # sampling.every_n_steps, which no run of rounds asked for by hand follows (here sampling.every_n_steps is empty).
    from engine.events import RunFinished

    folder = RunFolder(tmp_path / "r").create()
    profile = tiny_profile(tmp_path, saving={"every_n_steps": 4, "keep_last_n": 1}, evaluation={"enabled": True},
                           sampling={"num_images": 1, "every_n_steps": sampling_every})
    sink = JsonlSink(folder.events)
    sink(RunStarted(run_dir=str(folder.path), profile=profile.model_dump(mode="json"), hardware={}, versions={},
                    total_steps=12))
    for step, subject in ((0, 0.5), (4, 0.6), (6, 0.9), (8, 0.7), (12, 0.65)):  # 6: asked for, or scheduled every 3
        sink(scored(step, subject, 0.3))
    (folder.checkpoints / "step-00000008").mkdir(parents=True)
    (folder.checkpoints / "step-00000008" / "manifest.json").write_text(json.dumps({"step": 8, "files": {}}))
    sink(RunFinished(status="finished", step=12, outputs={}, seconds=1.0))
    sink.close()
    keep = keep_of_run(folder)
    assert keep is not None and keep.best.step == 6 and keep.export_step == 8
    advice = keep.advice("runs/r")
    assert f"step 6 has no checkpoint ({said}" in advice and "`dbtui export runs/r --step 8`" in advice


GONE = "step 8's checkpoint was saved but is gone from runs/r/checkpoints/ "


@pytest.mark.parametrize(("resumed_at", "rotated", "said"), [
    (None, {12: [4], 16: [8]}, "step 8's checkpoint was deleted by saving.keep_last_n's rotation, when another step was the "
                               "best (a larger saving.keep_last_n keeps more candidates)"),
    (None, {12: [4]}, GONE + "(deleted or moved out: put it back there to export it)"),
    (None, {}, GONE + "(deleted, by hand or by an older version's rotation; if it was moved out, put it back there to "
                      "export it)"),
    (12, {16: [4]}, GONE + "(deleted, by hand or by an older version's rotation; if it was moved out, put it back there "
                           "to export it)")])
def test_a_best_checkpoint_deleted_is_said_deleted_by_the_rotation_or_gone_never_scored_between_checkpoints(
        tmp_path: Path, resumed_at: int | None, rotated: dict[int, list[int]], said: str) -> None:
    """Step 8's checkpoint, saved at its round, then deleted: the advice said its round was scored between checkpoints
    and to set saving.every_n_steps equal to sampling.every_n_steps, which it already followed; and where
    saving.keep_last_n's rotation had deleted it (a resume's looser evaluation.prompt_fidelity_tolerance made it the
    best since), that it was gone and to put it back, where there was nothing to put back. A run whose attempt since the
    save logged no rotation (``resumed_at``: the attempt before it, of an older version) may have lost it either way."""
    from engine.events import CheckpointSaved, CheckpointsRotated

    folder = RunFolder(tmp_path / "r").create()
    sink = JsonlSink(folder.events)
    sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=16))
    for step, subject in ((0, 0.5), (4, 0.6), (8, 0.9), (12, 0.7), (16, 0.65)):
        sink(scored(step, subject, 0.3))
        if step:
            if step in rotated:  # at the save, before its checkpoint_saved (Checkpointer.save)
                sink(CheckpointsRotated(steps=rotated[step], keep_last_n=2))
            sink(CheckpointSaved(step=step, path=str(folder.checkpoints / f"step-{step:08d}")))
        if step == resumed_at:
            sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=16,
                            resumed_from_step=step))
    sink.close()
    for step in (12, 16):
        (folder.checkpoints / f"step-{step:08d}").mkdir(parents=True)
        (folder.checkpoints / f"step-{step:08d}" / "manifest.json").write_text(json.dumps({"step": step, "files": {}}))
    keep = keep_of_run(folder)
    assert keep is not None and keep.best.step == 8 and keep.export_step == 12
    advice = keep.advice("runs/r")
    assert advice == f"{said}; the best kept step that qualifies is step 12: `dbtui export runs/r --step 12`"


@pytest.mark.parametrize(("logged", "said"), [((True,), "gone"), ((False,), "gone_or_rotated"),
                                              ((False, True), "gone_or_rotated"), ((True, True), "gone")])
def test_a_best_checkpoint_deleted_by_hand_in_a_run_whose_rotation_deleted_nothing_is_said_gone(
        tmp_path: Path, logged: tuple[bool, ...], said: str) -> None:
    """A run of this version whose rotation never deleted a checkpoint (keep_last_n = 2, few saves) logged no
    checkpoints_rotated, so step 2's checkpoint, deleted by hand, was said "deleted, by hand or by an older version's
    rotation". Each attempt's run_started now says whether it logs its rotation; one that does not (an older version's,
    ``logged`` False) since the save still leaves either."""
    from engine.events import CheckpointSaved
    from engine.runs.keep import unkept_why

    folder = RunFolder(tmp_path / "r").create()
    sink = JsonlSink(folder.events)
    for attempt, rotation_logged in enumerate(logged):
        sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={"dbtui": "0.1.0"}, total_steps=4,
                        resumed_from_step=2 * attempt, rotation_logged=rotation_logged))
        for step in (2, 4)[attempt:]:
            sink(scored(step, 0.9 if step == 2 else 0.5, 0.3))
            sink(CheckpointSaved(step=step, path=str(folder.checkpoints / f"step-{step:08d}")))
    sink.close()
    assert unkept_why(folder.events, 2) == said


def test_export_of_the_latest_checkpoint_names_the_best_kept_step_where_the_best_has_none(tmp_path: Path, monkeypatch,
                                                                                          capsys) -> None:
    """Where the best step's checkpoint was gone, `dbtui export RUN` wrote the latest (500, overfit) and said nothing of
    step 200, kept and the best that qualifies, which attach and the report name."""
    import shutil

    import engine.runs.export
    from dbtui.cli import main

    folder, _ = overfit_run(tmp_path, evaluation=True)
    folder.profile.write_text('name = "overfit"\n')
    shutil.rmtree(folder.checkpoints / "step-00000100")
    (folder.checkpoints / "step-00000200").mkdir()
    (folder.checkpoints / "step-00000200" / "manifest.json").write_text(json.dumps({"step": 200, "files": {}}))
    monkeypatch.setattr(engine.runs.export, "export_checkpoint", lambda run, step, emit: {"lora_diffusers": f"{run}/exports/step-{step}"})
    assert main(["export", str(folder.path)]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    assert said.startswith("exported step 500, the latest kept; the best-scored is step 100: ")
    assert said.endswith(f"the best kept step that qualifies is step 200: `dbtui export {folder.path} --step 200`")


def test_export_of_the_latest_checkpoint_says_the_steps_a_resume_left_unscored(tmp_path: Path, monkeypatch, capsys) -> None:
    """Resumed at step 500 with evaluation.enabled = false, `dbtui export RUN` said "the best-scored is step 100" with no
    word that the steps after 500 were never scored, which attach and the report say."""
    import engine.runs.export
    from dbtui.cli import main

    folder, _ = overfit_run(tmp_path, evaluation=True)
    folder.profile.write_text('name = "overfit"\n')
    sink = JsonlSink(folder.events)
    sink(RunStarted(run_dir=str(folder.path), profile={"evaluation": {"enabled": False}}, hardware={}, versions={},
                    total_steps=600, resumed_from_step=500))
    sink.close()
    monkeypatch.setattr(engine.runs.export, "export_checkpoint", lambda run, step, emit: {"lora_diffusers": f"{run}/exports/step-{step}"})
    assert main(["export", str(folder.path)]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    assert said.startswith("exported step 500, the latest kept; the best-scored is step 100: ")
    assert said.endswith("; steps after 500 were not scored (the resume from step 500 turned [evaluation] off), so the best "
                         "step is chosen among the steps scored up to it; compare the later previews by eye")
