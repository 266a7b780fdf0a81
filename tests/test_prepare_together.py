"""Two `dbtui dataset prepare` into one folder at once (two terminals, or the wizard's Prepare beside one), at two
resolutions: each wrote its copies over the other's and its manifest last or first, so the folder held 256 px copies
that the manifest called 512 px ones, and preparing it again at 512 said "60 already up to date"."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

import engine.dataset.prepare as prepare
from engine.dataset.errors import DatasetError
from engine.dataset.prepare import prepare_dataset


def test_a_second_prepare_into_a_folder_being_prepared_is_refused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "photos", tmp_path / "prepared"
    src.mkdir()
    for number in range(3):
        Image.new("RGB", (300, 200), (number * 60, 90, 120)).save(src / f"{number}.jpg")
    in_phase, release = threading.Event(), threading.Event()
    real_run_phase = prepare.run_phase

    def first_waits(*args, **kwargs):  # the first prepare, between its claim of the copies and their writing
        if not in_phase.is_set():
            in_phase.set()
            assert release.wait(30)
        return real_run_phase(*args, **kwargs)

    monkeypatch.setattr(prepare, "run_phase", first_waits)
    first = threading.Thread(target=prepare_dataset, args=(src, dst), kwargs={"resolution": 128, "workers": 1},
                             daemon=True)
    first.start()
    try:
        assert in_phase.wait(30)
        with pytest.raises(DatasetError, match="another `dbtui dataset prepare` into .* is under way"):
            prepare_dataset(src, dst, resolution=64, workers=1)
    finally:
        release.set()
        first.join(30)
    assert not first.is_alive()
    assert {Image.open(copy).size for copy in dst.glob("*.png")} == {(128, 128)}
    again = prepare_dataset(src, dst, resolution=128, workers=1)
    assert len(again.up_to_date) == 3 and not again.written
