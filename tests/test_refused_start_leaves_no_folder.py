"""`dbtui run --detach` refused for a damaged picture left a run folder holding only cache/decoded.json (and empty
sub-folders), which `dbtui runs` does not list. A refused start leaves no new run folder; the record of the pictures
it decoded is kept out of it, so the next try decodes none of them again."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.data.decoded_record import DecodedRecord


def _cut_jpeg(path: Path) -> None:
    jpeg = io.BytesIO()
    textured(9, (256, 256)).save(jpeg, "JPEG")
    path.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])


def test_a_start_refused_for_a_damaged_picture_leaves_no_run_folder(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtui.cli import main
    from engine.data import decoding
    from engine.runs import launcher
    from tests.runs_helpers import profile_file

    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(2):
        textured(seed, (64, 64)).save(photos / f"good_{seed}.png")
    _cut_jpeg(photos / "z_cut.jpg")
    monkeypatch.setattr(launcher, "worker_command", lambda *_: [sys.executable, "-c", ""])  # no trainer
    path = profile_file(tmp_path, name="r", concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx"}])
    assert main(["run", str(path), "--detach"]) == 2
    assert not (tmp_path / "runs" / "r").exists()
    decoded: list[Path] = []
    real = decoding._decodes
    monkeypatch.setattr(decoding, "_decodes", lambda picture: decoded.append(picture) or real(picture))
    (photos / "z_cut.jpg").unlink()
    assert main(["run", str(path), "--detach"]) == 0
    assert decoded == []  # the refused try's record was kept: the good ones are not decoded again
    record = DecodedRecord.of_run(tmp_path / "runs" / "r")
    assert record.unchecked(sorted(photos.iterdir())) == []  # now in the run's folder, for its trainer


def test_a_refused_start_in_a_folder_that_held_a_run_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's own folder, and its record, stay: only a folder the refused launch made goes."""
    from engine.data.images import DataError
    from engine.runs.decode_first import decode_before_start
    from tests.training_helpers import tiny_profile

    photos = tmp_path / "photos"
    photos.mkdir()
    textured(0, (64, 64)).save(photos / "good.png")
    _cut_jpeg(photos / "z_cut.jpg")
    run = tmp_path / "runs" / "r"
    (run / "cache").mkdir(parents=True)
    (run / "events.jsonl").write_text("", encoding="utf-8")
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx"}])
    with pytest.raises(DataError, match="z_cut.jpg"):
        decode_before_start(profile, run, lambda done, total: None)
    assert DecodedRecord.of_run(run).unchecked([photos / "good.png"]) == []


def test_a_start_stopped_by_ctrl_c_in_its_decode_pass_leaves_no_folder(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in `dbtui run --detach`'s decode pass (minutes, on a big folder) left RUN/profile.toml behind, and the
    next `dbtui run` of that profile was refused: 'is not a run folder: it holds profile.toml'."""
    from dbtui.cli import main
    from engine.data import decoding
    from engine.runs import launcher
    from tests.runs_helpers import profile_file

    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    textured(0, (64, 64)).save(photos / "good.png")
    monkeypatch.setattr(launcher, "worker_command", lambda *_: [sys.executable, "-c", ""])  # no trainer
    path = profile_file(tmp_path, name="r", concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx"}])
    real = decoding._decodes

    def interrupted(picture: Path) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(decoding, "_decodes", interrupted)
    assert main(["run", str(path), "--detach"]) == 130
    assert not (tmp_path / "runs" / "r").exists()
    monkeypatch.setattr(decoding, "_decodes", real)
    assert main(["run", str(path), "--detach"]) == 0
