"""Every machine of a run trains machine 0's profile: one that differs stops the run on every machine, at once."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from engine.profile import save_profile
from engine.training.same_profile import ProfilesDifferError, differences, shared_settings
from tests.runs_helpers import launch_two_processes
from tests.training_helpers import tiny_profile

TWO_MACHINES = {"num_processes": 2, "num_machines": 2, "main_process_ip": "127.0.0.1"}

# Each process plays one machine: it reads that machine's profile (p0.toml, p1.toml) and sets up its accelerator.
SET_UP_ON_EACH_MACHINE = """
import json, os, sys
from pathlib import Path
from engine.profile import load_profile
from engine.training.accelerator import make_accelerator
from engine.training.distributed import leave_gloo_group
from engine.training.same_profile import ProfilesDifferError
import torch.distributed
rank, folder = os.environ["RANK"], Path(sys.argv[1])
try:
    make_accelerator(load_profile(folder / f"p{rank}.toml"), "no", folder)
    said = None
except ProfilesDifferError as error:
    said = str(error)
finally:
    leave_gloo_group()  # as the trainer does: a group left up may abort the process at exit
(folder / f"said-{rank}.json").write_text(json.dumps([said, torch.distributed.is_initialized()]))
"""


def machine(tmp_path: Path, rank: int, **sections) -> Path:
    profile = tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": rank}, **sections)
    return save_profile(profile, tmp_path / f"p{rank}.toml")


def test_a_machine_whose_profile_differs_stops_every_machine_naming_the_settings(tmp_path: Path) -> None:
    """Another max_train_steps hung both machines for the 3-hour meeting timeout; another learning rate trained
    them silently apart. What is each machine's own (its number, its disk's run folder) is not compared."""
    machine(tmp_path, 0)
    machine(tmp_path, 1, training={"max_train_steps": 9}, optimizer={"learning_rate": 1e-2},
            saving={"output_dir": str(tmp_path / "machine-1-disk")})
    script = tmp_path / "set_up.py"
    script.write_text(SET_UP_ON_EACH_MACHINE)
    done = launch_two_processes(script, str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    said, still_up = zip(*(json.loads((tmp_path / f"said-{rank}.json").read_text()) for rank in (0, 1)))
    assert still_up == (False, False)  # the process group is left: its gloo threads aborted a process at exit now and then
    assert said[0] == said[1]  # machine 0 hears it too: it shows the run
    assert said[0].startswith("machine 1's profile differs from machine 0's in 2 setting(s), machine 1's value vs "
                              "machine 0's: optimizer.learning_rate (0.01 vs 0.0001), training.max_train_steps (9 vs 6)")
    assert "copy machine 0's profile to the others" in said[0]
    assert "machine_rank (" not in said[0] and "output_dir" not in said[0]


def copy_of_the_demo_images(folder: Path) -> str:
    import shutil

    from engine.builtin import resolve_dir

    return str(shutil.copytree(resolve_dir("builtin:demo-instance"), folder))


def test_machines_that_keep_the_same_images_at_other_paths_meet(tmp_path: Path) -> None:
    """Each machine's copy of the images under its own mount (/workspace/data, /root/data), or a relative folder
    read from another working directory: the run was refused as differing in concepts[0].instance_dir."""
    for rank in (0, 1):
        concept = {"instance_dir": copy_of_the_demo_images(tmp_path / f"machine-{rank}" / "data"),
                   "instance_prompt": "photo of zwx disc", "class_dir": str(tmp_path / f"machine-{rank}" / "none-yet")}
        machine(tmp_path, rank, concepts=[concept])
    script = tmp_path / "set_up.py"
    script.write_text(SET_UP_ON_EACH_MACHINE)
    done = launch_two_processes(script, str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert [json.loads((tmp_path / f"said-{rank}.json").read_text())[0] for rank in (0, 1)] == [None, None]


def test_machines_whose_image_folders_hold_other_files_are_refused_wherever_the_folders_lie(
        tmp_path: Path, monkeypatch) -> None:
    """Another data set, or a stale copy at the very same path, trains the machines on other images: named by file,
    with what to do."""
    from accelerate import utils

    from engine.training.same_profile import check_same_profile

    def settings(folder: str, rank: int) -> dict:
        return shared_settings(tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": rank},
                                            concepts=[{"instance_dir": folder, "instance_prompt": "a"}]))

    main_folder = copy_of_the_demo_images(tmp_path / "workspace" / "data")
    other = Path(copy_of_the_demo_images(tmp_path / "root" / "data"))
    main = settings(main_folder, 0)
    (other / "zwx_01.txt").write_text("another caption")
    (other / "extra.png").write_bytes((other / "zwx_00.png").read_bytes())
    (other / "zwx_02.png").unlink()
    assert differences(settings(str(other), 1), main) == [
        f"concepts[0].instance_dir ({str(other)!r} vs {main_folder!r}: 'extra.png' only on machine 1, 'zwx_02.png' only "
        "on machine 0, 'zwx_01.txt' of another size)"]
    (Path(main_folder) / "zwx_03.txt").write_text("changed after machine 0 listed it")
    assert differences(settings(main_folder, 1), main) == [
        f"concepts[0].instance_dir ({main_folder!r} vs {main_folder!r}: 'zwx_03.txt' of another size)"]
    assert differences(settings("builtin:demo-instance", 1), main) == [
        f"concepts[0].instance_dir ('builtin:demo-instance' vs {main_folder!r})"]

    monkeypatch.setattr(utils, "gather_object", lambda mine: [[0, main], [1, settings(str(other), 1)]])
    with pytest.raises(ProfilesDifferError, match="'extra.png' only on machine 1.*must hold the same files .names and "
                                                  "sizes.: copy machine 0's folder to the others") as refused:
        check_same_profile(tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1}), 2)
    assert "copy machine 0's profile" not in str(refused.value)  # the profiles were the same: it was what they did


def test_a_folder_one_machine_cannot_list_is_said_not_raised_before_the_machines_meet(
        tmp_path: Path, monkeypatch) -> None:
    """shared_settings runs before the collective: a machine whose copy of the images it could not list (another
    user's folder) raised there, and the others waited in the collective for the 3-hour meeting timeout."""
    import os

    folder = copy_of_the_demo_images(tmp_path / "data")

    def settings(rank: int) -> dict:
        return shared_settings(tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": rank},
                                            concepts=[{"instance_dir": folder, "instance_prompt": "a"}]))

    main = settings(0)
    listed = os.scandir

    def refused(path):  # noqa: ANN001, ANN202 - os.scandir's stand-in
        if str(path) == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return listed(path)

    monkeypatch.setattr(os, "scandir", refused)
    mine = settings(1)
    assert differences(mine, main) == [
        f"concepts[0].instance_dir ({folder!r} vs {folder!r}: machine 1's copy cannot be listed (Permission denied))"]
    assert differences(mine, mine) == []  # unlistable on every machine: the trainer says so, alike on each


def test_the_compared_settings_leave_out_what_is_each_machines_own(tmp_path: Path) -> None:
    mine = shared_settings(tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1, "extra_args": ["--x"]},
                                        model={"pretrained": str(tmp_path / "copy")},
                                        concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "a"}]))
    main = shared_settings(tiny_profile(tmp_path, launch=TWO_MACHINES))
    assert differences(mine, main) == ["concepts[0].instance_prompt ('a' vs 'photo of zwx disc')"]


def test_machines_that_met_are_not_refused_over_how_each_names_machine_0_or_its_own_copies_of_the_models(
        tmp_path: Path) -> None:
    """An empty port (29500) against 29500, a hostname against its IP, a VAE or scorer copied to another folder:
    each refused a run whose machines had met at that very address and trained the same models."""
    mine = shared_settings(tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1, "main_process_port": 29500,
                                                          "main_process_ip": "gpu-a.lan"},
                                        model={"pretrained": "/home/bob/sd", "vae": "/home/bob/vae",
                                               "tokenizer": "stabilityai/tokenizer", "revision": "old"},
                                        evaluation={"clip_model": "/home/bob/clip", "dino_model": "/home/bob/dino"}))
    main = shared_settings(tiny_profile(tmp_path, launch=TWO_MACHINES,
                                        model={"pretrained": "org/sd", "vae": "stabilityai/sd-vae-ft-mse",
                                               "tokenizer": "/home/alice/tokenizer"}))
    assert differences(mine, main) == []


def test_a_section_left_out_is_the_same_as_that_section_written_with_its_defaults(tmp_path: Path) -> None:
    """Left out, [training.lora] was one setting "not set", written with its defaults four: two machines that train
    the same LoRA were refused as differing in training.lora.rank, alpha, dropout and text_encoder_targets."""
    lora = {"method": "lora", "max_train_steps": 6, "seed": 7}
    main = tiny_profile(tmp_path, launch=TWO_MACHINES, training=lora)
    written = {**lora, "lora": {"rank": 8}, "flow": {}}
    mine = tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1}, training=written)
    assert differences(shared_settings(mine), shared_settings(main)) == []
    other = tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1}, training={**lora, "lora": {"rank": 4}})
    assert differences(shared_settings(other), shared_settings(main)) == ["training.lora.rank (4 vs 8)"]


def test_machines_that_load_other_models_are_refused(tmp_path: Path) -> None:
    """A VAE or tokenizer on one machine only, another hub id, another hub revision: the frozen parts each machine
    encodes with differ, and the run trained silently out of step."""
    def compared(mine: dict, main: dict) -> list[str]:
        return differences(shared_settings(tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1},
                                                        model=mine)),
                           shared_settings(tiny_profile(tmp_path, launch=TWO_MACHINES, model=main)))

    tiny = {"pretrained": "builtin:tiny-sd1"}
    assert compared({**tiny, "vae": "/home/bob/vae"}, tiny) == ["model.vae ('/home/bob/vae' vs not set)"]
    assert compared(tiny, {**tiny, "tokenizer": "/home/alice/tok"}) == ["model.tokenizer (not set vs '/home/alice/tok')"]
    assert compared({**tiny, "vae": "stabilityai/sd-vae-ft-ema"}, {**tiny, "vae": "stabilityai/sd-vae-ft-mse"}) == [
        "model.vae ('stabilityai/sd-vae-ft-ema' vs 'stabilityai/sd-vae-ft-mse')"]
    assert compared({"pretrained": "org/sd", "revision": "fp16"}, {"pretrained": "org/sd", "revision": "main"}) == [
        "model.revision ('fp16' vs 'main')"]
    assert compared({"pretrained": "org/sd"}, {"pretrained": "org/sd", "revision": "main"}) == []
    assert compared({"pretrained": "org/sd"}, {"pretrained": "org/other"}) == [
        "model.pretrained ('org/sd' vs 'org/other')"]


def test_a_trainer_that_fails_leaves_its_process_group(tmp_path: Path, monkeypatch, capsys) -> None:
    """A failure after the processes met (machines' profiles that differ) skipped accelerate's end_training: the gloo
    group's threads lived on into interpreter exit, where one aborted the process now and then."""
    from engine.runs import worker
    from engine.runs.meeting import MET, say_met
    from engine.training import distributed

    def met_then_differs(*args) -> int:
        say_met(2)  # as the trainer does once process_state has returned
        raise ProfilesDifferError("machine 1's profile differs from machine 0's")

    left = []
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(worker, "_train", met_then_differs)
    monkeypatch.setattr(distributed, "leave_gloo_group", lambda: left.append(True))
    assert worker.main([str(tmp_path / "run")]) == 1
    out, err = capsys.readouterr()
    assert MET in out and "dbtui trainer: machine 1's profile differs" in err
    assert left == [True]


def test_the_process_group_is_left_even_where_letting_go_of_the_run_fails(tmp_path: Path, monkeypatch) -> None:
    """It was left last, after the control requests were taken and the run's lock let go: either one raising skipped
    it."""
    from engine.runs import worker
    from engine.runs.trainer_lock import TrainerLock
    from engine.training import distributed

    let_go = TrainerLock.release

    def release_on_a_failing_disk(lock: TrainerLock) -> None:
        let_go(lock)
        raise OSError(errno.EIO, "Input/output error")

    left = []
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(worker, "_train", lambda *args: 0)
    monkeypatch.setattr(TrainerLock, "release", release_on_a_failing_disk)
    monkeypatch.setattr(distributed, "leave_gloo_group", lambda: left.append(True))
    with pytest.raises(OSError):
        worker.main([str(tmp_path / "run")])
    assert left == [True]
