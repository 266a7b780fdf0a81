"""Every training image is decoded before the model loads, once a run folder: a JPEG cut short past its header stopped
`dbtui run` only at the caching pass, after the model had loaded (minutes for SDXL on a rented card)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.data.decoded_record import DecodedRecord
from engine.data.decoding import decode_each
from engine.data.images import DataError
from engine.runs.in_process import train
from engine.runs.sinks import read_events
from tests.training_helpers import tiny_profile


def _cut_jpeg(path: Path) -> None:
    jpeg = io.BytesIO()
    textured(9, (256, 256)).save(jpeg, "JPEG")
    path.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])


def _photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(count):
        textured(seed, (64, 64)).save(folder / f"good_{seed}.png")
    return sorted(folder.glob("good_*.png"))


def _started(run: Path) -> list[str]:
    return [e.phase for e in read_events(run / "events.jsonl") if e.kind == "phase_started"]


def test_a_jpeg_cut_short_stops_the_run_before_the_model_loads(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 3)
    _cut_jpeg(photos / "y_cut.jpg")
    _cut_jpeg(photos / "z_cut.jpg")
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx disc"}])
    with pytest.raises(DataError, match="2 image file\\(s\\) cannot be decoded .*y_cut.jpg.*z_cut.jpg.*before the model loads"):
        train(profile, tmp_path / "run")
    assert _started(tmp_path / "run") == ["checking_images"]  # no load_model, no caching


def test_the_images_a_run_decoded_are_not_decoded_again_unless_changed(tmp_path: Path) -> None:
    """A re-run or a resume decodes nothing again; a picture rewritten since (its bytes, not its name) is."""
    paths = _photos(tmp_path / "photos", 3)
    record = DecodedRecord(tmp_path / "run" / "cache" / "decoded.json")
    events: list = []
    decode_each(paths, events.append, "decoding", record=record)
    assert events[0].total == 3
    events.clear()
    decode_each(paths, events.append, "decoding", record=record)
    assert events == []  # no phase at all
    time.sleep(0.01)
    _cut_jpeg(paths[1])
    with pytest.raises(DataError, match="1 image file\\(s\\) cannot be decoded .*good_1.png"):
        decode_each(paths, events.append, "decoding", record=record)
    assert events[0].total == 1
    assert record.unchecked(paths) == [paths[1]]  # the good ones stay recorded; the bad one is never recorded


def test_a_record_that_cannot_be_written_only_means_decoding_again(tmp_path: Path) -> None:
    paths = _photos(tmp_path / "photos", 2)
    (tmp_path / "run").write_text("a file where the run folder would be", encoding="utf-8")
    record = DecodedRecord(tmp_path / "run" / "cache" / "decoded.json")
    decode_each(paths, lambda event: None, "decoding", record=record)
    assert record.unchecked(paths) == paths


def test_the_pool_names_every_bad_image_in_the_folders_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded in threads, which finish in any order: the message still names them as the folder lists them."""
    from engine.data import decode_budget

    monkeypatch.setattr(decode_budget, "default_workers", lambda: 4)
    folder = tmp_path / "photos"
    _photos(folder, 6)
    for name in ("a_cut.jpg", "m_cut.jpg", "x_cut.jpg"):
        _cut_jpeg(folder / name)
    every = sorted(folder.iterdir())
    events: list = []
    with pytest.raises(DataError, match="3 image file\\(s\\) cannot be decoded .*a_cut.jpg.*m_cut.jpg.*x_cut.jpg"):
        decode_each(every, events.append, "decoding")
    assert [e.done for e in events if e.kind == "phase_progress"] == list(range(1, len(every) + 1))


def test_an_uncached_run_decodes_each_image_once(tmp_path: Path) -> None:
    """Without dataset.cache_latents the caching pass decoded every picture again, after the model had loaded."""
    profile = tiny_profile(tmp_path, dataset={"resolution": 64, "cache_latents": False}, training={"max_train_steps": 1})
    train(profile, tmp_path / "run")
    assert _started(tmp_path / "run").count("checking_images") == 1
    assert _started(tmp_path / "run").index("checking_images") < _started(tmp_path / "run").index("load_model")
    assert os.path.exists(tmp_path / "run" / "cache" / "decoded.json")


def test_run_detach_refuses_a_damaged_image_in_the_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui run P --detach` said "trainer started in the background" and status 0; the refusal was only in the log."""
    import sys

    from dbtui.cli import main
    from engine.runs import launcher
    from engine.runs.folder import RunFolder
    from tests.runs_helpers import profile_file

    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    _photos(photos, 2)
    _cut_jpeg(photos / "z_cut.jpg")
    monkeypatch.setattr(launcher, "worker_command", lambda *_: [sys.executable, "-c", ""])  # no trainer: its words
    path = profile_file(tmp_path, name="r", concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx"}])
    assert main(["run", str(path), "--detach"]) == 2
    said = capsys.readouterr().err
    assert "1 image file(s) cannot be decoded" in said and "z_cut.jpg" in said, said
    run = RunFolder(tmp_path / "runs" / "r")
    assert not run.state_file.exists() and not run.profile.exists()  # no trainer started; the folder as it was
    (photos / "z_cut.jpg").unlink()
    assert main(["run", str(path), "--detach"]) == 0
    record = DecodedRecord(tmp_path / "runs" / "r" / "cache" / "decoded.json")
    assert record.unchecked(sorted(photos.iterdir())) == []  # the trainer decodes none again


def test_the_pools_threads_leave_the_processs_warnings_filters_alone(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread set the pixel limit's filter itself (load_rgb): threads put back one another's filters, and one time
    in a few hundred a picture over the limit decoded as a good one (and was recorded so), its warning printed."""
    import threading
    import warnings

    from PIL import Image

    from engine.data import decode_budget

    entered_off_main: list[str] = []

    class Watched(warnings.catch_warnings):
        def __enter__(self):
            if threading.current_thread() is not threading.main_thread():
                entered_off_main.append(threading.current_thread().name)
            return super().__enter__()

    monkeypatch.setattr(warnings, "catch_warnings", Watched)
    monkeypatch.setattr(decode_budget, "default_workers", lambda: 4)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(8):  # 1,600 pixels: over the limit, under twice it, where Pillow only warns
        Image.new("RGB", (40, 40), (index, 0, 0)).save(folder / f"big_{index}.png")
    with pytest.raises(DataError, match="8 image file\\(s\\) cannot be decoded"):
        decode_each(sorted(folder.iterdir()), lambda event: None, "decoding")
    assert entered_off_main == []


def test_a_picture_rewritten_while_the_pass_runs_is_decoded_again(tmp_path: Path) -> None:
    """The record took each file's size and times after the whole pass: one cut short meanwhile (a sync client, a copy
    still under way) was recorded as decoded, and the next run's check let it through to the caching pass."""
    from engine.events import PhaseProgress

    paths = _photos(tmp_path / "photos", 3)
    record = DecodedRecord(tmp_path / "run" / "cache" / "decoded.json")

    # Cut once every picture has decoded, before the pass records them: the pool decodes in any order, so at the
    # first done one good_0 may still wait its turn (cut first, it then failed the pass, seen under load).
    def rewrite_once_decoding(event) -> None:
        if isinstance(event, PhaseProgress) and event.done == len(paths):
            _cut_jpeg(paths[0])

    decode_each(paths, rewrite_once_decoding, "decoding", record=record)
    assert record.unchecked(paths) == [paths[0]]
    with pytest.raises(DataError, match="1 image file\\(s\\) cannot be decoded .*good_0.png"):
        decode_each(paths, lambda event: None, "decoding", record=record)
