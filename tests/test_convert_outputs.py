"""How converters put their outputs in place: never over a file that is not to be replaced, whatever came meanwhile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from convert_helpers import random_sd1, random_sd2v  # noqa: F401

from engine.convert import ConvertError, OutputExistsError, export_single_file
from engine.convert._files import atomic_file
from engine.convert.to_single_file import SIDECAR_V
from engine.events import PhaseProgress


def _meanwhile(write):
    """An emit that runs ``write`` once, at the first progress: as another conversion finishing during this one."""
    done = []

    def emit(event) -> None:
        if isinstance(event, PhaseProgress) and not done:
            done.append(write())

    return emit


def test_a_file_that_appears_while_writing_is_kept_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "m.safetensors"
    with pytest.raises(OutputExistsError, match="appeared while converting"):
        with atomic_file(target, overwrite=False) as tmp:
            tmp.write_text("ours")
            target.write_text("theirs")
    assert target.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    with atomic_file(target) as tmp:  # overwrite, the default of the engine's callers that keep a previous copy
        tmp.write_text("ours")
    assert target.read_text() == "ours" and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_two_conversions_to_one_name_do_not_both_succeed(random_sd1: Path, tmp_path: Path) -> None:
    target = tmp_path / "m.safetensors"
    with pytest.raises(OutputExistsError, match="m.safetensors appeared while converting"):
        export_single_file(random_sd1, target, overwrite=False, emit=_meanwhile(lambda: target.write_text("theirs")))
    assert target.read_text() == "theirs"
    with pytest.raises(OutputExistsError, match="already exists and is kept"):  # said before converting, too
        export_single_file(random_sd1, target, overwrite=False)


def test_a_v_yaml_that_appears_meanwhile_is_not_left_beside_another_model(random_sd1: Path, random_sd2v: Path,
                                                                         tmp_path: Path) -> None:
    """An SD1.x file could end up beside another conversion's SD2.x-v .yaml, which makes its images noise."""
    sidecar = tmp_path / "m.yaml"
    with pytest.raises(ConvertError, match="v-prediction config of another model"):
        export_single_file(random_sd1, tmp_path / "m.ckpt", fmt="ckpt", overwrite=False,
                           emit=_meanwhile(lambda: shutil.copyfile(SIDECAR_V, sidecar)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]

    sidecar.unlink()
    with pytest.raises(OutputExistsError, match="v.yaml already exists and is kept"):
        export_single_file(random_sd2v, tmp_path / "v.safetensors", overwrite=False,
                           emit=_meanwhile(lambda: (tmp_path / "v.yaml").write_text("my notes")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.yaml"] and (tmp_path / "v.yaml").read_text() == "my notes"


def test_a_kohya_lora_that_appears_meanwhile_is_kept_without_overwrite(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from engine.convert import lora_to_kohya

    module = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64), f"{module}.lora_B.weight": torch.randn(64, 4)},
              tmp_path / "pytorch_lora_weights.safetensors")
    out = tmp_path / "kohya.safetensors"
    with pytest.raises(OutputExistsError, match="appeared while converting"):
        lora_to_kohya(tmp_path, out, overwrite=False, emit=_meanwhile(lambda: out.write_text("theirs")))
    assert out.read_text() == "theirs"
    # One there before, even a link to nothing, is said before converting, not as having appeared meanwhile.
    dangling = tmp_path / "dangling.safetensors"
    dangling.symlink_to(tmp_path / "nowhere")
    for there in (out, dangling):
        converted = []
        with pytest.raises(OutputExistsError, match="already exists and is kept"):
            lora_to_kohya(tmp_path, there, overwrite=False, emit=converted.append)
        assert not converted


def test_an_output_folder_that_is_a_link_or_a_mount_point_is_refused_up_front(tmp_path: Path, monkeypatch) -> None:
    """Renaming the converted folder onto them failed after all the work, as a bug in dbtui."""
    from engine.convert import check_new_folder

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputExistsError, match=r"link is a link \(to .*elsewhere\); give the folder it links to"):
        check_new_folder(tmp_path / "link")
    import os

    mount = tmp_path / "mnt"
    mount.mkdir()
    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == mount)
    with pytest.raises(OutputExistsError, match="mnt is a mount point.*e.g. .*mnt/model"):
        check_new_folder(mount)


def test_a_bind_mount_on_the_same_file_system_is_refused_up_front_by_the_mount_table(tmp_path: Path, monkeypatch) -> None:
    """os.path.ismount misses a bind mount of the same file system: the whole conversion ran, and only the final
    rename failed."""
    import os

    from engine.convert import check_new_folder, mount_points

    mount, plain = tmp_path / "bind mnt\\x", tmp_path / "plain"
    mount.mkdir()
    plain.mkdir()
    listed = os.fsencode(os.path.realpath(mount)).replace(b"\\", b"\\134").replace(b" ", b"\\040")
    mountinfo = (b"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
                 b"101 27 8:1 /data/shared " + listed + b" rw,relatime shared:1 - ext4 /dev/sda1 rw\n")
    monkeypatch.setattr(mount_points, "read_mountinfo", lambda: mountinfo)
    with pytest.raises(OutputExistsError, match=r"bind mnt\\x is a mount point"):
        check_new_folder(mount)
    check_new_folder(plain)
    monkeypatch.setattr(mount_points, "read_mountinfo", lambda: None)  # no /proc (macOS): ismount alone
    check_new_folder(mount)


@pytest.mark.parametrize("meanwhile", ["filled", "linked", "busy"])
def test_a_folder_taken_while_converting_is_left_alone_and_the_result_kept(meanwhile: str, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import errno
    import os

    from engine.convert._files import atomic_dir

    target = tmp_path / "out"
    says = {"filled": "was filled while converting", "linked": "became a file or a link", "busy": "is a mount point"}
    with pytest.raises(OutputExistsError, match=f"out {says[meanwhile]}.*converted folder is kept as") as error:
        with atomic_dir(target) as tmp:
            (tmp / "model_index.json").write_text("ours")
            if meanwhile == "filled":
                (target / "theirs").mkdir(parents=True)
            elif meanwhile == "linked":
                (tmp_path / "elsewhere").mkdir()
                target.symlink_to(tmp_path / "elsewhere")
            else:
                target.mkdir()
                real_rmdir = os.rmdir
                monkeypatch.setattr(os, "rmdir", lambda path, *a, **k: (_ for _ in ()).throw(
                    OSError(errno.EBUSY, "busy", str(path))) if Path(path) == target else real_rmdir(path, *a, **k))
    kept = Path(str(error.value).split("kept as ")[1].split(":")[0])
    assert (kept / "model_index.json").read_text() == "ours"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    if meanwhile == "filled":
        assert [p.name for p in target.iterdir()] == ["theirs"]


def test_a_full_disk_under_a_ckpt_write_is_said_as_such(random_sd1: Path, tmp_path: Path, monkeypatch) -> None:
    """torch.save reports ENOSPC as a RuntimeError of its zip writer, which was said to be a bug in dbtui."""
    from collections import namedtuple

    import torch

    from engine.convert import NotEnoughDiskError

    usage = namedtuple("usage", "total used free")
    full = []

    def save(obj, path, *args, **kwargs) -> None:
        Path(path).write_bytes(b"PK")
        full.append(True)
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4503680 vs 4503576")

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 10**12, 4096) if full else usage(10**12, 0, 10**12))
    with pytest.raises(NotEnoughDiskError, match="not enough disk space in .* to write m.ckpt"):
        export_single_file(random_sd1, tmp_path / "m.ckpt", fmt="ckpt")
    assert list(tmp_path.iterdir()) == []
    full.clear()  # the same error with room left is not a full disk, and was said to be a bug in dbtui
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 0, 10**12))
    with pytest.raises(ConvertError, match=r"writing .*m.ckpt failed \(\[enforce fail .* with room left .* quota") as said:
        export_single_file(random_sd1, tmp_path / "m.ckpt", fmt="ckpt")
    assert not isinstance(said.value, NotEnoughDiskError)


def test_leftovers_of_killed_conversions_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    """A killed conversion left its hidden .NAME.HOST.PID.HEX.partial file or folder behind for good; then one whose
    pid is not seen here was removed at once, though another container sharing the host name may be writing it."""
    import os
    import subprocess
    import sys
    import time

    from engine.convert._files import atomic_dir
    from engine.convert.partials import DEAD_WRITER_IDLE_S, THIS_HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = dead.stdout.strip()
    idle = time.time() - DEAD_WRITER_IDLE_S - 60
    for name in ("m.safetensors", "out"):
        (tmp_path / f".{name}.{THIS_HOST}.{dead_pid}.0badc0de.partial").mkdir()
        (tmp_path / f".{name}.{THIS_HOST}.{dead_pid}.0badc0de.partial" / "unet").write_text("half")
        (tmp_path / f".{name}.{THIS_HOST}.{dead_pid}.1badc0de.partial").write_text("half")
        (tmp_path / f".{name}.{THIS_HOST}.{os.getppid()}.2badc0de.partial").write_text("live")  # its writer runs
        (tmp_path / f".{name}.otherhost.{dead_pid}.3badc0de.partial").write_text("?")  # cannot be known
        for path in tmp_path.glob(f".{name}.*.partial"):
            for touched in [path, *path.rglob("*")]:
                os.utime(touched, (idle, idle))
        (tmp_path / f".{name}.{THIS_HOST}.{dead_pid}.4badc0de.partial").write_text("being written")  # just now
        (tmp_path / f".{name}.{THIS_HOST}.{dead_pid}.5badc0de.partial").mkdir()
        os.utime(tmp_path / f".{name}.{THIS_HOST}.{dead_pid}.5badc0de.partial", (idle, idle))
        (tmp_path / f".{name}.{THIS_HOST}.{dead_pid}.5badc0de.partial" / "vae").write_text("a file in it, just now")
    with atomic_file(tmp_path / "m.safetensors") as tmp:
        tmp.write_text("model")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "model_index.json").write_text("{}")
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial"))
    assert left == sorted(f".{name}.{writer}.partial" for name in ("m.safetensors", "out")
                          for writer in (f"{THIS_HOST}.{os.getppid()}.2badc0de", f"otherhost.{dead_pid}.3badc0de",
                                         f"{THIS_HOST}.{dead_pid}.4badc0de", f"{THIS_HOST}.{dead_pid}.5badc0de"))
