"""What a resume changes of its run: settings that define the loss are refused, the others said once the checkpoint
has loaded, and a checkpoint whose state files cannot be unpickled is named as damaged without torch's advice."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from engine.events import Warning
from engine.profile import Profile
from engine.runs.checkpoints import Checkpointer, CheckpointError
from engine.runs.folder import RunFolder, RunFolderError
from engine.runs.resume_point import check_same_model
from tests.runs_helpers import run_with_checkpoints
from tests.training_helpers import merge, tiny_profile


class _Accelerator:
    """As much of accelerate's Accelerator as Checkpointer.load uses; ``load_state`` is the test's."""

    is_main_process = True

    def __init__(self, num_processes: int, load_state: Any) -> None:
        self.num_processes, self.load_state = num_processes, load_state

    def register_for_checkpointing(self, *objects: Any) -> None:
        pass

    def register_save_state_pre_hook(self, hook: Any) -> None:
        pass

    def register_load_state_pre_hook(self, hook: Any) -> None:
        pass


def _scheduler(profile: Profile, total_steps: int) -> Any:
    """``profile``'s learning-rate schedule over ``total_steps``, on an optimizer of one weight."""
    from engine.training.optim import build_lr_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=profile.learning_rate)
    return build_lr_scheduler(optimizer, profile.optimizer, total_steps)


def _loaded(folder: RunFolder, checkpoint: Path, profile: Profile, num_processes: int = 1,
            load_state: Any = lambda path: None, total_steps: int = 6, scheduler: Any = None) -> list[Any]:
    """The events a trainer of ``profile`` on ``num_processes`` processes for ``total_steps`` emits loading ``checkpoint``
    (``scheduler``: the trainer's learning-rate schedule, a new one of ``profile`` unless given)."""
    events: list[Any] = []
    trainer = SimpleNamespace(profile=profile, accelerator=_Accelerator(num_processes, load_state), generator=None,
                              lr_scheduler=scheduler or _scheduler(profile, total_steps), bf16_weights=False, fused_backward=False, train_text_encoder=False,
                              global_step=0, emit=events.append, components=SimpleNamespace(folder=folder.path),
                              total_steps=total_steps, image_record=None)
    assert Checkpointer(trainer, folder).load(checkpoint) == 8
    return events


def _checkpoint(tmp_path: Path, made_with: Profile, num_processes: int = 1,
                total_steps: int | None = None) -> tuple[RunFolder, Path]:
    folder = RunFolder(tmp_path / "run").create()
    for step in (4, 8):
        checkpoint = folder.checkpoints / f"step-{step:08d}"
        checkpoint.mkdir()
        (checkpoint / "manifest.json").write_text(json.dumps({
            "step": step, "method": "full", "num_processes": num_processes, "files": {}, "total_steps": total_steps,
            "profile": made_with.model_dump(mode="json")}))
    return folder, checkpoint


_WITH_CLASSES = [{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                  "class_dir": "builtin:demo-class", "class_prompt": "photo of a disc"}]


@pytest.mark.parametrize("changed", [{"training": {"clip_skip": 2}},
                                     {"model": {"tokenizer": "some/tokenizer"}},
                                     {"prior": {"enabled": True}, "concepts": _WITH_CLASSES}, {"prior": {"loss_weight": 0.5}}])
def test_a_resume_that_changes_the_loss_so_far_is_refused_naming_both_values(changed: dict, tmp_path: Path) -> None:
    """clip_skip, the tokenizer and prior preservation were applied from the resumed step on, without a word."""
    folder, _ = run_with_checkpoints(tmp_path, [4])
    # Values as TOML writes them, since the refusal says to put them back in RUN/profile.toml: `False` was no TOML.
    with pytest.raises(RunFolderError, match=r"checkpoints were trained with (training.clip_skip = 1, not 2|model."
                                             r'tokenizer = unset, not "some/tokenizer"|prior.enabled = false, not true|'
                                             r"prior.loss_weight = 1.0, not 0.5)"):
        check_same_model(folder, tiny_profile(tmp_path, **merge({"training": {"max_train_steps": 2000}}, changed)))


def test_a_resume_warns_of_the_settings_it_changes_since_the_checkpoint_and_of_another_process_count(tmp_path: Path) -> None:
    """hflip, center_crop, captions and the text encoder's stop applied mid-run silently; so did another number of
    processes, which doubled the batch per step."""
    training = {"method": "full", "max_train_steps": 6, "seed": 7, "train_text_encoder": True}
    made_with = tiny_profile(tmp_path, training=training)
    folder, checkpoint = _checkpoint(tmp_path, made_with)
    assert _loaded(folder, checkpoint, made_with) == []
    # What a resume may change without a word: steps, saving, previews, the data's folders.
    quiet = tiny_profile(tmp_path, training={**training, "max_train_steps": 60}, sampling={"num_images": 2},
                         saving={"output_dir": str(tmp_path / "elsewhere")})
    assert _loaded(folder, checkpoint, quiet) == []
    changed = tiny_profile(tmp_path, dataset={"resolution": 64, "hflip": True, "center_crop": False},
                           training={**training, "text_encoder_stop_fraction": 0.5})
    warnings = _loaded(folder, checkpoint, changed, num_processes=2)
    assert all(isinstance(warning, Warning) for warning in warnings) and len(warnings) == 2
    assert warnings[0].message == ("the checkpoint of step 8 was made by 1 process(es), this resume runs 2: the batch "
                                   "per step changes (1 → 2 images) and the resume is not exact")
    assert "launch.num_processes = 1" in warnings[0].advice
    assert warnings[1].message == ("changed since step 8: dataset.center_crop: true → false; dataset.hflip: false → "
                                   "true; training.text_encoder_stop_fraction: 1.0 → 0.5")
    # Step 8 itself was trained with the checkpoint's settings: they apply after it.
    assert warnings[1].advice.startswith("the steps after step 8 are trained with these settings, those up to it ")


def test_a_resume_over_another_total_says_where_a_decaying_schedule_moves_the_learning_rate(tmp_path: Path) -> None:
    """Stopped at step 8 of a cosine run of 2000 steps and resumed for 40, the rate went from the full one to a
    third of it at once, without a word: the schedule is a function of the total, not of the checkpoint's state."""
    training = {"method": "full", "max_train_steps": 2000, "seed": 7}
    cosine = tiny_profile(tmp_path, training=training, optimizer={"learning_rate": 1e-4, "lr_scheduler": "cosine"})
    folder, checkpoint = _checkpoint(tmp_path, cosine, total_steps=2000)
    assert _loaded(folder, checkpoint, cosine, total_steps=2000) == []
    shorter = tiny_profile(tmp_path, training={**training, "max_train_steps": 12},
                           optimizer={"learning_rate": 1e-4, "lr_scheduler": "cosine"})
    [warning] = _loaded(folder, checkpoint, shorter, total_steps=12)
    assert warning.message == ("the cosine learning-rate schedule was laid out over 2000 steps and is now laid out over "
                               "12: at step 9 the learning rate goes from 100% to 25% of the rate set at once")
    assert "training.max_train_steps = 2000" in warning.advice
    # A constant rate stays where it was whatever the total.
    constant = tiny_profile(tmp_path, training=training)
    folder, checkpoint = _checkpoint(tmp_path / "constant", constant, total_steps=2000)
    assert _loaded(folder, checkpoint, tiny_profile(tmp_path, training={**training, "max_train_steps": 12}),
                   total_steps=12) == []


def test_a_resume_over_another_total_says_the_polynomial_rate_the_run_goes_to(tmp_path: Path) -> None:
    """The polynomial schedule ends at 1e-7, a tenth of a rate of 1e-6: worked out at a rate of 1.0, the warning said
    the rate went to 33% of the one set where the run went to 40%."""
    training = {"method": "full", "max_train_steps": 2000, "seed": 7}
    polynomial = {"learning_rate": 1e-6, "lr_scheduler": "polynomial"}
    folder, checkpoint = _checkpoint(tmp_path, tiny_profile(tmp_path, training=training, optimizer=polynomial),
                                     total_steps=2000)
    shorter = tiny_profile(tmp_path, training={**training, "max_train_steps": 12}, optimizer=polynomial)
    [warning] = _loaded(folder, checkpoint, shorter, total_steps=12)
    assert warning.message.endswith("at step 9 the learning rate goes from 99.6% to 40% of the rate set at once")


@pytest.mark.parametrize("total_steps", [12, 2000])
def test_the_step_after_the_checkpoint_trains_at_the_rate_of_the_schedule_laid_out_anew(tmp_path: Path,
                                                                                      total_steps: int) -> None:
    """The warning said the rate went to 25% at the step after the checkpoint, which trained at the rate the optimizer's
    state was saved with (100%); the next trained at the new schedule's rate of its own step: the jump came a step after
    the one the warning named, to another rate. A resume over the same total still goes on at the rate it was on."""
    cosine = {"learning_rate": 1e-4, "lr_scheduler": "cosine"}
    training = {"method": "full", "max_train_steps": 2000, "seed": 7}
    made_with = tiny_profile(tmp_path, training=training, optimizer=cosine)
    folder, checkpoint = _checkpoint(tmp_path, made_with, total_steps=2000)
    before = _scheduler(made_with, 2000)
    for _ in range(8):
        before.optimizer.step()
        before.step()
    saved = (before.optimizer.state_dict(), before.state_dict())
    resumed = tiny_profile(tmp_path, training={**training, "max_train_steps": total_steps}, optimizer=cosine)
    scheduler = _scheduler(resumed, total_steps)

    def load_state(path: str) -> None:  # as accelerate loads both
        scheduler.optimizer.load_state_dict(saved[0])
        scheduler.load_state_dict(saved[1])

    warnings = _loaded(folder, checkpoint, resumed, load_state=load_state, total_steps=total_steps, scheduler=scheduler)
    rate = scheduler.optimizer.param_groups[0]["lr"]
    assert scheduler.get_last_lr() == [rate]
    if total_steps == 2000:
        assert warnings == [] and rate == before.get_last_lr()[0]
    else:
        assert "at step 9 the learning rate goes from 100% to 25%" in warnings[0].message
        assert rate == pytest.approx(0.25e-4)


@pytest.mark.parametrize("made_over, total_steps, said", [
    (16, 20, "0.5 of 16 steps stopped the text encoder after step 8, 0.5 of 20 stops it after step 10: it trains again "
             "at steps 9-10"),
    (16, 18, "0.5 of 16 steps stopped the text encoder after step 8, 0.5 of 18 stops it after step 9: it trains again "
             "at step 9"),
    (20, 12, "0.5 of 20 steps was to stop the text encoder after step 10, 0.5 of 12 stops it after step 6: it stops "
             "now, before step 9"),
    (20, 30, "0.5 of 20 steps was to stop the text encoder after step 10, 0.5 of 30 stops it after step 15: it trains "
             "until step 15"),
    (16, 16, None), (16, 12, None)])
def test_a_resume_over_another_total_says_where_the_text_encoder_now_stops(tmp_path: Path, made_over: int,
                                                                           total_steps: int, said: str | None) -> None:
    """text_encoder_stop_fraction is a fraction of the total: stopped after step 8 of 16 and resumed at step 8 over 20,
    the text encoder trained steps 9-10 again, with no word; the same fraction is no changed setting to warn of."""
    training = {"method": "full", "max_train_steps": made_over, "seed": 7, "train_text_encoder": True,
                "text_encoder_stop_fraction": 0.5}
    folder, checkpoint = _checkpoint(tmp_path, tiny_profile(tmp_path, training=training), total_steps=made_over)
    resumed = tiny_profile(tmp_path, training={**training, "max_train_steps": total_steps})
    warnings = _loaded(folder, checkpoint, resumed, total_steps=total_steps)
    if said is None:  # the same stop, or one before the checkpoint either way
        assert warnings == []
        return
    [warning] = warnings
    assert warning.message == f"training.text_encoder_stop_fraction = {said}"
    last = made_over // 2
    assert warning.advice == ("to stop it after step {} as the run did, resume with training.text_encoder_stop_fraction = "
                              "{:g}".format(last, last / total_steps) if last < total_steps else
                              "to train it to the end as the run did, resume with training.text_encoder_stop_fraction = 1.0")


def test_a_resume_that_moves_the_text_encoders_stop_over_the_same_total_says_it_once(tmp_path: Path) -> None:
    """0.5 → 0.75 of the same 16 steps was said twice: as the stop it moves and as "changed since step 8:
    training.text_encoder_stop_fraction: 0.5 → 0.75"."""
    training = {"method": "full", "max_train_steps": 16, "seed": 7, "train_text_encoder": True,
                "text_encoder_stop_fraction": 0.5}
    folder, checkpoint = _checkpoint(tmp_path, tiny_profile(tmp_path, training=training), total_steps=16)
    resumed = tiny_profile(tmp_path, dataset={"resolution": 64, "hflip": True},
                           training={**training, "text_encoder_stop_fraction": 0.75})
    stop, changed = _loaded(folder, checkpoint, resumed, total_steps=16)
    assert stop.message == ("training.text_encoder_stop_fraction = 0.5 of 16 steps stopped the text encoder after step 8, "
                            "0.75 of 16 stops it after step 12: it trains again at steps 9-12")
    assert changed.message == "changed since step 8: dataset.hflip: false → true"


def test_the_moved_stops_warning_says_each_fraction_as_written(tmp_path: Path) -> None:
    """It printed them with `:g`, six digits: 0.123456789 read as 0.123457, a fraction the profile does not hold."""
    from engine.runs.resume_changes import text_encoder_stop_warning

    training = {"method": "full", "max_train_steps": 100, "seed": 7, "train_text_encoder": True,
                "text_encoder_stop_fraction": 0.123456789}
    made = tiny_profile(tmp_path, training=training).model_dump(mode="json")
    resumed = tiny_profile(tmp_path, training={**training, "max_train_steps": 200, "text_encoder_stop_fraction": 0.1234567891})
    said = text_encoder_stop_warning({"step": 5, "total_steps": 100, "profile": made}, resumed, 200)
    assert said.message.startswith("training.text_encoder_stop_fraction = 0.123456789 of 100 steps was to stop the text "
                                   "encoder after step 13, 0.1234567891 of 200 stops it after step 25")


@pytest.mark.parametrize(("fraction", "total_steps", "last"), [(0.56, 50, 28), (0.28, 25, 7), (0.5, 15, 8), (0.1, 3, 1),
                                                               (0.99, 6, 6), (0.3, 1, 1)])
def test_the_trainer_a_resume_and_its_warning_stop_the_text_encoder_after_one_step(tmp_path: Path, fraction: float,
                                                                                     total_steps: int, last: int) -> None:
    """The trainer and a resume stopped it after a step >= fraction × total, the warning named ceil(fraction × total),
    each in its own words; 0.28 of 25 (7.000000000000001) trained step 8 too."""
    from engine.runs.resume_changes import text_encoder_stop_warning
    from engine.training.trainer import Trainer

    training = {"method": "full", "max_train_steps": total_steps, "seed": 7, "train_text_encoder": True,
                "text_encoder_stop_fraction": fraction}
    profile = tiny_profile(tmp_path, training=training)
    made = profile.model_dump(mode="json")
    # The warning of a resume over this total of a checkpoint made over a far longer one names where it now stops.
    said = text_encoder_stop_warning({"step": 0, "total_steps": 1000 * total_steps, "profile": made,
                                      "text_encoder_last_step": 1000 * last}, profile, total_steps)
    named = int(re.search(r"stops it after step (\d+)", said.message)[1])
    assert named == last
    trainer = SimpleNamespace(profile=profile, train_text_encoder=True, total_steps=total_steps, step_hooks=[],
                              sample=lambda step: None)
    trainer.stop_text_encoder = lambda: setattr(trainer, "train_text_encoder", False)
    trained = []
    for step in range(1, total_steps + 1):
        if trainer.train_text_encoder:
            trained.append(step)
        Trainer.after_step(trainer, step)
    assert trained == list(range(1, named + 1))
    folder = RunFolder(tmp_path / "run").create()
    for step in sorted({max(named - 1, 1), named}):
        checkpoint = folder.checkpoints / f"step-{step:08d}"
        checkpoint.mkdir()
        (checkpoint / "manifest.json").write_text(json.dumps({"step": step, "method": "full", "num_processes": 1,
                                                              "files": {}, "total_steps": total_steps, "profile": made}))
        resumed = SimpleNamespace(profile=profile, accelerator=_Accelerator(1, lambda path: None), generator=None,
                                  lr_scheduler=_scheduler(profile, total_steps), bf16_weights=False, fused_backward=False,
                                  train_text_encoder=True, global_step=0, emit=lambda event: None,
                                  components=SimpleNamespace(folder=folder.path), total_steps=total_steps,
                                  image_record=None)
        resumed.stop_text_encoder = lambda: setattr(resumed, "train_text_encoder", False)
        assert Checkpointer(resumed, folder).load(checkpoint) == step
        assert resumed.train_text_encoder == (step < named)


def test_a_resume_of_a_checkpoint_whose_run_may_have_stopped_the_text_encoder_a_step_later_says_both_steps(
        tmp_path: Path) -> None:
    """Versions before 2026-12-06 stopped it after step 8 of 0.28 of 25 (7.000000000000001 in float arithmetic), those
    since after step 7, and the manifest did not say which: the resume of step 5 stopped it after step 7, unsaid. It
    now names both steps and the fraction that keeps each; a manifest recording the step is taken at its word."""
    from engine.runs.resume_changes import text_encoder_stop_warning
    from engine.training.text_encoder_stop import text_encoder_last_step

    training = {"method": "full", "max_train_steps": 25, "seed": 7, "train_text_encoder": True,
                "text_encoder_stop_fraction": 0.28}
    profile = tiny_profile(tmp_path, training=training)
    manifest = {"step": 5, "total_steps": 25, "profile": profile.model_dump(mode="json")}
    said = text_encoder_stop_warning(manifest, profile, 25)
    assert said.message == ("the checkpoint of step 5 does not record where its run stops the text encoder: "
                            "training.text_encoder_stop_fraction = 0.28 of 25 steps stops it after step 8 in versions of "
                            "dbtui before 2026-12-06 (in float arithmetic) and after step 7 in those since; 0.28 of 25 "
                            "stops it after step 7, as the later versions do")
    assert said.advice == ("if the checkpoint was saved by a dbtui from before 2026-12-06, resume with "
                           "training.text_encoder_stop_fraction = 0.32 to stop it after step 8 as its run did")
    assert text_encoder_last_step(0.32, 25) == 8
    longer = tiny_profile(tmp_path, training={**training, "max_train_steps": 50})
    assert text_encoder_stop_warning(manifest, longer, 50).advice.endswith(
        "= 0.16 to stop it after step 8 as its run did; if by a later one, with 0.14 to stop it after step 7")
    assert text_encoder_stop_warning({**manifest, "step": 8}, profile, 25) is None  # stopped either way
    assert text_encoder_stop_warning({**manifest, "text_encoder_last_step": 7}, profile, 25) is None
    # Resumed over 7 or 6 steps, steps 8 and 7 are both the end: it said "… = 1.0 to stop it after step 8 as its run
    # did; if by a later one, with 1.0 to stop it after step 7", one advice twice, of a step the run never reaches.
    for total in (7, 6):
        shorter = text_encoder_stop_warning(manifest, tiny_profile(tmp_path, training={**training, "max_train_steps": total}),
                                            total)
        assert shorter.message.endswith(f"0.28 of {total} stops it after step 2: it stops now, before step 6")
        assert shorter.advice == "to train it to the end as the run did, resume with training.text_encoder_stop_fraction = 1.0"


def test_a_resume_with_the_fraction_advised_for_an_unrecorded_stop_says_which_stop_it_keeps(tmp_path: Path) -> None:
    """Resumed with the advised 0.32 (step 8, as versions before 2026-12-06 stopped 0.28 of 25), the warning said again
    '… resume with training.text_encoder_stop_fraction = 0.32 to stop it after step 8', as if it were not set."""
    from engine.runs.resume_changes import text_encoder_stop_warning

    training = {"method": "full", "max_train_steps": 25, "seed": 7, "train_text_encoder": True,
                "text_encoder_stop_fraction": 0.28}
    manifest = {"step": 5, "total_steps": 25, "profile": tiny_profile(tmp_path, training=training).model_dump(mode="json")}
    for fraction, total in ((0.32, 25), (0.16, 50)):
        advised = tiny_profile(tmp_path, training={**training, "text_encoder_stop_fraction": fraction,
                                                   "max_train_steps": total})
        said = text_encoder_stop_warning(manifest, advised, total)
        assert said.message.endswith(f"; {fraction} of {total} stops it after step 8, as the earlier versions did")
        assert said.advice == ("nothing to do if the checkpoint was saved by a dbtui from before 2026-12-06; if by a "
                               "later one, resume with training.text_encoder_stop_fraction = "
                               f"{0.28 if total == 25 else 0.14} to stop it after step 7 as its run did")


def test_a_checkpoint_records_where_its_run_stops_the_text_encoder(tmp_path: Path) -> None:
    from engine.runs.checkpoints import complete_checkpoints, read_manifest
    from engine.runs.in_process import train
    from engine.runs.supervisor import Supervisor

    folder = RunFolder(tmp_path / "run").create()
    supervisor = Supervisor(folder)
    profile = tiny_profile(tmp_path, training={"max_train_steps": 3, "train_text_encoder": True,
                                               "text_encoder_stop_fraction": 0.34}, saving={"every_n_steps": 2})
    train(profile, folder.path, step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach)
    [(_, checkpoint)] = complete_checkpoints(folder)
    assert read_manifest(checkpoint)["text_encoder_last_step"] == 2


def test_a_resume_that_writes_out_the_lora_options_in_force_changes_nothing(tmp_path: Path) -> None:
    """`[training.lora] rank = 8` added to the profile (the rank in force) was "changed since step 8:
    training.lora.rank: unset → 8; training.lora.alpha: unset → 8.0 …": the section left out was one unset key."""
    from engine.runs.resume_changes import resume_warnings

    lora = {"method": "lora", "max_train_steps": 6, "seed": 7}
    made_with = tiny_profile(tmp_path, training=lora)
    manifest = {"step": 8, "num_processes": 1, "profile": made_with.model_dump(mode="json")}
    assert resume_warnings(manifest, tiny_profile(tmp_path, training={**lora, "lora": {"rank": 8}}), 1, 6) == []
    warnings = resume_warnings(manifest, tiny_profile(tmp_path, training={**lora, "lora": {"dropout": 0.1}}), 1, 6)
    assert [warning.message for warning in warnings] == ["changed since step 8: training.lora.dropout: 0.0 → 0.1"]


def test_a_resume_does_not_warn_of_class_prompts_and_counts_without_prior_preservation(tmp_path: Path) -> None:
    """They were said as "changed since step 8" and advised to be put back, though without prior preservation they
    train nothing."""
    from engine.runs.resume_changes import resume_warnings

    with_classes = [{**_WITH_CLASSES[0], "num_class_images": 4}]
    made_with = tiny_profile(tmp_path, concepts=with_classes)
    manifest = {"step": 8, "num_processes": 1, "profile": made_with.model_dump(mode="json")}
    unused = [{**_WITH_CLASSES[0], "class_prompt": "photo of a plate", "num_class_images": 8}]
    assert resume_warnings(manifest, tiny_profile(tmp_path, concepts=unused), 1, 6) == []
    manifest["profile"] = merge(manifest["profile"], {"prior": {"enabled": True}})
    [warning] = resume_warnings(manifest, tiny_profile(tmp_path, concepts=unused, prior={"enabled": True}), 1, 6)
    assert warning.message == ('changed since step 8: concepts[0].class_prompt: "photo of a disc" → "photo of a plate"; '
                               "concepts[0].num_class_images: 4 → 8")


def test_a_checkpoint_whose_state_cannot_be_unpickled_is_named_damaged_without_torchs_advice(tmp_path: Path) -> None:
    """The refusal quoted torch: "Re-running torch.load with weights_only set to False will likely succeed", advice
    that runs whatever the file holds, with its line breaks printed as \\x0a."""
    profile = tiny_profile(tmp_path)
    folder, checkpoint = _checkpoint(tmp_path, profile)
    torch.save({"state": {0: {"step": torch.ones(1)}}}, checkpoint / "optimizer.bin")
    data = (checkpoint / "optimizer.bin").read_bytes()
    (checkpoint / "optimizer.bin").write_bytes(b"\0" * 100 + data[100:])  # damaged where its size still matches
    with pytest.raises(CheckpointError) as refused:
        _loaded(folder, checkpoint, profile, load_state=lambda path: torch.load(Path(path) / "optimizer.bin"))
    said = str(refused.value)
    assert said == (f"checkpoint {checkpoint} is damaged and cannot be loaded: its optimizer.bin is damaged; resume from "
                    f"another one with `dbtui resume {folder.path} --from CHECKPOINT` (kept: "
                    f"{folder.checkpoints / 'step-00000004'})")


def test_a_state_file_that_names_a_global_this_torch_refuses_is_told_intact_with_the_runs_versions(tmp_path: Path) -> None:
    """After a numpy 1 → 2 upgrade every checkpoint's file named a global torch refuses ("Unsupported global: GLOBAL
    numpy.core…"): each was called damaged, with the advice to resume from another one, which fails alike."""
    import datetime

    profile = tiny_profile(tmp_path)
    folder, checkpoint = _checkpoint(tmp_path, profile)
    started = {"event": "run_started", "resumed_from_step": 0, "versions": {"dbtui": "0.1", "torch": "2.5.1"}}
    later = {**started, "resumed_from_step": 8, "versions": {"torch": "9.9"}}  # a start after the checkpoint
    folder.events.write_text("\n".join(json.dumps(event) for event in (started, later)) + "\n")
    torch.save({"when": datetime.date(2020, 1, 1)}, checkpoint / "scheduler.bin")  # intact, a global torch refuses
    with pytest.raises(CheckpointError) as refused:
        _loaded(folder, checkpoint, profile, load_state=lambda path: torch.load(Path(path) / "scheduler.bin"))
    said = str(refused.value)
    assert said.startswith(f"checkpoint {checkpoint} cannot be loaded: its scheduler.bin holds datetime.date, which "
                           f"torch's weights-only loader does not allow here (torch {torch.__version__}). The file is "
                           "most likely intact but written with other library versions")
    assert "as the run's events.jsonl records them for the start that made it: torch 2.5.1)" in said
    assert f"`dbtui export {folder.path} --step 8` reads only its trained weights" in said
    assert "damaged" not in said and "--from" not in said and "weights_only=False" not in said


def test_a_resume_with_concepts_reordered_removed_or_added_says_so_a_line_a_concept(tmp_path: Path) -> None:
    """Concepts were compared by place: reordered, every field of both was said changed; one removed, each of its fields
    "→ unset". They are matched by instance folder now, and one left in place keeps its per-field lines."""
    from engine.runs.resume_changes import resume_warnings

    dog, cat, bird = ({"instance_dir": str(tmp_path / name), "instance_prompt": f"photo of zwx {name}"}
                      for name in ("dog", "cat", "bird"))
    made_with = tiny_profile(tmp_path, concepts=[dog, cat, bird])
    manifest = {"step": 8, "num_processes": 1, "profile": made_with.model_dump(mode="json")}

    def said(*concepts: dict) -> str:
        [warning] = resume_warnings(manifest, tiny_profile(tmp_path, concepts=list(concepts)), 1, 6)
        return warning.message.removeprefix("changed since step 8: ")

    assert said(cat, dog, bird) == (f'concepts[1] (instance_dir "{tmp_path}/cat") is now concepts[0]; '
                                    f'concepts[0] (instance_dir "{tmp_path}/dog") is now concepts[1]')
    assert said(dog, bird) == (f'concepts[2] (instance_dir "{tmp_path}/bird") is now concepts[1]; '
                               f'concepts[1] (instance_dir "{tmp_path}/cat"): removed')
    assert said(dog, cat, bird, {**dog, "instance_dir": str(tmp_path / "fox")}) == (
        f'concepts[3] (instance_dir "{tmp_path}/fox"): added')
    changed = {**cat, "instance_prompt": "photo of qrv cat"}
    assert said(changed, {**dog, "caption_mode": "file_name"}, bird) == (
        f'concepts[1] (instance_dir "{tmp_path}/cat") is now concepts[0], and its instance_prompt: "photo of zwx cat" → '
        f'"photo of qrv cat"; concepts[0] (instance_dir "{tmp_path}/dog") is now concepts[1], and its caption_mode: '
        '"instance_prompt" → "file_name"')
    # In place, a concept's fields are said one by one, as before; a moved folder at its place is the same concept.
    assert said(dog, changed, {**bird, "instance_dir": str(tmp_path / "moved")}) == (
        'concepts[1].instance_prompt: "photo of zwx cat" → "photo of qrv cat"')
