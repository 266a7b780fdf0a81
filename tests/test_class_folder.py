"""The class folder is the user's: writing generated class images into it fails with what to do about *it*, a damaged
manifest is read without a crash or a file from outside it, and no temporary file is left in it."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from engine.training import class_images
from engine.training.class_folder_errors import ClassFolderError, class_folder_error
from engine.training.class_images import ClassRequest, ensure_class_images, generated_earlier, generated_folder, settings_of
from engine.training.class_set_files import replace_whole

SETTINGS = dict(model="m", resolution=8, seed=1, steps=2, guidance=5.0)


class _Picture:
    """A generated image whose save writes part of the file and then meets ``failure`` (None: saves whole)."""

    def __init__(self, failure: BaseException | None = None) -> None:
        self.failure = failure

    def save(self, path: Path, format: str | None = None) -> None:  # noqa: A002 - PIL's name
        if self.failure is None:
            Image.new("RGB", (8, 8)).save(path, format=format)
            return
        Path(path).write_bytes(b"\x89PNG half")
        raise self.failure


def _fake_generation(monkeypatch: pytest.MonkeyPatch, failure_at: int | None = None, failure: BaseException | None = None):
    made: list[int] = []

    def generate(pipe, request, settings, *, indices, prompt_kwargs, family):
        made.extend(indices)
        return [_Picture(failure if index == failure_at else None) for index in indices]

    monkeypatch.setattr(class_images, "_generate", generate)
    return made


def _ensure(folder: Path, count: int, pipelines: list[int] | None = None) -> dict[int, list[Path]]:
    built = pipelines if pipelines is not None else []
    return ensure_class_images([ClassRequest(0, folder, "photo of a disc", "", count)],
                               make_pipeline=lambda: built.append(1), prompt_kwargs=lambda *a: {}, batch_size=2, **SETTINGS)


def _gen_dir(folder: Path) -> Path:
    return generated_folder(folder, settings_of(ClassRequest(0, folder, "photo of a disc", "", 0), **SETTINGS))


def test_a_class_folder_under_a_file_names_the_file_and_the_class_folder_before_the_model_loads(tmp_path: Path,
                                                                                               monkeypatch) -> None:
    """It said "'…/afile.png/sub/generated-…' is in the way … move it out of the run folder", after building the pipeline."""
    _fake_generation(monkeypatch)
    (tmp_path / "afile.png").write_text("x")
    pipelines: list[int] = []
    with pytest.raises(ClassFolderError) as raised:
        _ensure(tmp_path / "afile.png" / "sub", 2, pipelines)
    assert str(raised.value).startswith(f"concepts.0.class_dir: '{tmp_path / 'afile.png'}' is in the way")
    assert "set concepts.0.class_dir to another folder" in raised.value.advice and "run folder" not in raised.value.advice
    assert pipelines == []


@pytest.mark.parametrize(("code", "said", "advice"), [
    (errno.EROFS, "is read-only", "set concepts.0.class_dir to a folder on another disk"),
    (errno.EACCES, "permission denied writing class images into", "chmod u+w"),
    (errno.ENOSPC, "is full", "lower concepts.0.num_class_images"),
    (errno.EIO, "input/output error", "dmesg"),
])
def test_a_class_folders_disk_errors_name_the_class_folder_not_the_run(tmp_path: Path, monkeypatch, code: int, said: str,
                                                                       advice: str) -> None:
    """A read-only class folder was told to "put saving.output_dir on a writable disk"."""
    folder = tmp_path / "class"
    _fake_generation(monkeypatch, failure_at=1, failure=OSError(code, os.strerror(code), str(folder / "x")))
    with pytest.raises(ClassFolderError) as raised:
        _ensure(folder, 3)
    assert str(raised.value).startswith("concepts.0.class_dir: ") and said in str(raised.value) and str(folder) in str(raised.value)
    assert advice in raised.value.advice and "output_dir" not in raised.value.advice
    assert not [p for p in _gen_dir(folder).iterdir() if p.name.endswith(".tmp")]


def test_a_file_error_that_is_not_the_machines_stays_a_bug(tmp_path: Path) -> None:
    assert class_folder_error(OSError(errno.EBADF, "x", "f"), 0, tmp_path) is None


def test_a_run_whose_class_folder_cannot_be_made_fails_with_what_to_do(tmp_path: Path) -> None:
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    (tmp_path / "afile.png").write_text("x")
    profile = tiny_profile(tmp_path, prior={"enabled": True, "steps": 2},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": str(tmp_path / "afile.png" / "sub"), "class_prompt": "photo of a disc",
                                      "num_class_images": 2}])
    events = []
    with pytest.raises(ClassFolderError):
        train(profile, tmp_path / "run", sinks=[events.append])
    [failed] = [e for e in events if e.kind == "run_failed"]
    assert failed.reason.startswith("concepts.0.class_dir:") and "set concepts.0.class_dir" in failed.advice
    assert not (tmp_path / "run" / "traceback.txt").exists()  # not reported as a bug


@pytest.mark.parametrize("entry", [5, None, ["class_00000.png"], {"a": 1}, "../../inst/zwx_00.png", "sub/class_00001.png",
                                   "..", "", "class_00001.png/"])
def test_a_manifest_entry_that_is_not_an_image_name_in_its_folder_is_not_a_generated_image(tmp_path: Path, monkeypatch,
                                                                                          entry: object) -> None:
    """A number crashed the run and `dataset check` (TypeError); '../../inst/zwx_00.png' took an instance photo for a
    generated class image."""
    made = _fake_generation(monkeypatch)
    folder = tmp_path / "data" / "class"
    _ensure(folder, 2)
    inst = tmp_path / "data" / "inst"
    inst.mkdir()
    Image.new("RGB", (8, 8)).save(inst / "zwx_00.png")
    gen_dir = _gen_dir(folder)
    (gen_dir / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(gen_dir / "sub" / "class_00001.png")
    manifest = json.loads((gen_dir / "manifest.json").read_text())
    (gen_dir / "class_00001.png").unlink()
    manifest["images"] = ["class_00000.png", entry, "class_00000.png"]
    (gen_dir / "manifest.json").write_text(json.dumps(manifest))
    assert generated_earlier(folder, {"prompt": "photo of a disc"}) == (gen_dir, 1)
    result = _ensure(folder, 3)[0]
    assert sorted(p.name for p in result) == ["class_00000.png", "class_00001.png", "class_00002.png"]
    assert all(p.parent == gen_dir for p in result) and made == [0, 1, 1, 2]
    assert json.loads((gen_dir / "manifest.json").read_text())["images"] == ["class_00000.png", "class_00001.png",
                                                                             "class_00002.png"]


@pytest.mark.parametrize("images", [5, "class_00000.png", {"class_00000.png": 1}])
def test_a_manifest_whose_image_list_is_not_a_list_lists_none(tmp_path: Path, monkeypatch, images: object) -> None:
    _fake_generation(monkeypatch)
    folder = tmp_path / "class"
    _ensure(folder, 1)
    manifest_path = _gen_dir(folder) / "manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "images": images}))
    assert generated_earlier(folder, {"prompt": "photo of a disc"})[1] == 0


def test_an_interrupted_image_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    """A second Ctrl-C while a PNG was written left '.class_00001.png.<pid>.tmp' in the folder for good."""
    _fake_generation(monkeypatch, failure_at=1, failure=KeyboardInterrupt())
    folder = tmp_path / "class"
    with pytest.raises(KeyboardInterrupt):
        _ensure(folder, 4)
    assert sorted(p.name for p in _gen_dir(folder).iterdir()) == ["class_00000.png"]  # written whole, before the interrupt


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_next_generation_sweeps_what_a_killed_process_left(tmp_path: Path, monkeypatch) -> None:
    _fake_generation(monkeypatch)
    folder = tmp_path / "class"
    _ensure(folder, 1)
    gen_dir = _gen_dir(folder)
    dead = _dead_pid()
    left = [gen_dir / f".class_00001.png.{dead}.tmp", gen_dir / f".manifest.json.{dead}.tmp"]
    fresh = gen_dir / f".class_00002.png.{dead}.tmp"  # a minute old or less: another machine's run may be writing it
    alive = gen_dir / f".class_00003.png.{os.getppid()}.tmp"
    hour_ago = time.time() - 3600
    for path in [*left, fresh, alive]:
        path.write_bytes(b"x")
        if path is not fresh:
            os.utime(path, (hour_ago, hour_ago))
    _ensure(folder, 2)
    assert not any(path.exists() for path in left) and fresh.exists() and alive.exists()


def test_the_sweep_tells_a_temporarys_age_by_the_folders_clock_not_this_machines(tmp_path: Path, monkeypatch) -> None:
    """A machine whose clock ran over a minute ahead of the file server's took another machine's live temporary in a
    shared class folder for a stale one, and removed it."""
    _fake_generation(monkeypatch)
    folder = tmp_path / "class"
    _ensure(folder, 1)
    gen_dir = _gen_dir(folder)
    writing = gen_dir / f".class_00001.png.{_dead_pid()}.tmp"  # another machine's pid, as this one sees it
    writing.write_bytes(b"x")
    ahead = time.time
    monkeypatch.setattr(time, "time", lambda: ahead() + 600)
    _ensure(folder, 2)
    assert writing.exists()
    assert not [p for p in gen_dir.iterdir() if p.name.startswith(".clock.")]


def test_a_temporary_another_sweep_took_is_written_again(tmp_path: Path) -> None:
    target = tmp_path / "class_00000.png"
    tries = []

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"png")
        tries.append(tmp)
        if len(tries) == 1:
            tmp.unlink()  # as another machine's sweep would, between the write and the rename

    replace_whole(target, write)
    assert target.read_bytes() == b"png" and len(tries) == 2


def test_a_generated_folder_removed_while_written_is_said_not_raised_raw(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "class"

    class _Removed(_Picture):
        def save(self, path: Path, format: str | None = None) -> None:  # noqa: A002 - PIL's name
            import shutil

            shutil.rmtree(Path(path).parent)
            super().save(path, format=format)

    monkeypatch.setattr(class_images, "_generate", lambda pipe, request, settings, **kw: [_Removed() for _ in kw["indices"]])
    with pytest.raises(ClassFolderError, match="was removed meanwhile"):
        _ensure(folder, 1)


def _no_mkdir(self: Path, *args, **kwargs) -> None:
    raise PermissionError(errno.EACCES, "Permission denied", str(self))


def test_a_machine_that_only_reads_class_images_is_told_to_copy_them_not_to_make_its_folder_writable(
        tmp_path: Path, monkeypatch) -> None:
    """On machine N of a run whose class folder is not shared (and read-only there), the folder was made before the
    stand-in pipeline said where the images are: "permission denied … make it writable"."""
    import threading
    from types import SimpleNamespace

    from engine.builtin import resolve_dir
    from engine.models.registry import family_named
    from engine.training.class_generation import run_class_images
    from engine.training.distributed import MadeElsewhereError
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, prior={"enabled": True, "steps": 2, "guidance_scale": 5.0},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": str(tmp_path / "class"), "class_prompt": "photo of a disc",
                                      "num_class_images": 2}])
    accelerator = SimpleNamespace(num_processes=1, is_main_process=False, wait_for_everyone=lambda: None)
    trainer = SimpleNamespace(profile=profile, class_dirs=[tmp_path / "class"], model_folder=tmp_path, accelerator=accelerator,
                              components=SimpleNamespace(family=family_named("sd")), device=None, dtype=None, cancel=threading.Event(),
                              instance_dirs=[resolve_dir("builtin:demo-instance")], buckets=[(64, 64)], emit=lambda event: None)
    monkeypatch.setattr(Path, "mkdir", _no_mkdir)
    with pytest.raises(MadeElsewhereError, match="keep them on a disk the machines share"):
        run_class_images(trainer)


def test_a_class_folder_two_concepts_spell_differently_is_counted_and_said_once(tmp_path: Path, monkeypatch) -> None:
    """'class', its absolute path and a link to it are one folder: the progress said 6 to generate and stopped at 3."""
    from engine.events import PhaseProgress, PhaseStarted
    from engine.training.class_generation import unused_class_image_warnings

    made = _fake_generation(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "class" / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "class" / "sub" / "x.png")
    (tmp_path / "alias").symlink_to("class")
    requests = [ClassRequest(i, folder, "photo of a disc", "", 3)
                for i, folder in enumerate([Path("class"), tmp_path / "class", Path("alias")])]
    events: list[object] = []
    ensure_class_images(requests, make_pipeline=lambda: None, prompt_kwargs=lambda *a: {}, batch_size=2,
                        emit=events.append, **SETTINGS)
    assert made == [0, 1, 2]
    [started] = [e for e in events if isinstance(e, PhaseStarted)]
    assert started.total == 3 and [e.done for e in events if isinstance(e, PhaseProgress)] == [2, 3]
    assert len(unused_class_image_warnings(requests, **SETTINGS)) == 1


def test_a_run_decodes_its_images_once_and_a_rerun_in_its_folder_none(tmp_path: Path) -> None:
    """Those of an earlier run (as on a resume) are in the class folder's generated-… folder: the run still decoded
    every image, "before class images are generated", then said "no class images to generate". Each image is decoded
    once a run folder, before the model loads: a run in another folder decodes them, a re-run in its own none."""
    from engine.runs.in_process import train
    from engine.runs.sinks import read_events
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, prior={"enabled": True, "steps": 2}, training={"max_train_steps": 1},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": str(tmp_path / "class"), "class_prompt": "a disc", "num_class_images": 2}])
    phases: dict[str, list[str]] = {}
    for run, folder in (("first", "first"), ("elsewhere", "elsewhere"), ("again", "first")):
        log = tmp_path / folder / "events.jsonl"
        before = len(list(read_events(log))) if log.exists() else 0
        train(profile, tmp_path / folder)
        phases[run] = [e.phase for e in list(read_events(log))[before:] if e.kind == "phase_started"]
    assert phases["first"].count("checking_images") == 1 and phases["elsewhere"].count("checking_images") == 1
    assert "checking_images" not in phases["again"] and "load_model" in phases["again"]
