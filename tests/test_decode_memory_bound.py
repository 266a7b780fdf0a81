"""The decode pass before the model loads held one decoded picture per CPU at once: several GB for 100 MP photos on a
64-CPU machine. Its threads are fewer where the largest picture (by its header) would pass a memory budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.data import decoding


def _pictures(folder: Path, sides: list[int]) -> list[Path]:
    folder.mkdir()
    for index, side in enumerate(sides):
        Image.new("RGB", (side, side), (index, 0, 0)).save(folder / f"{index}.png")
    return sorted(folder.iterdir())


def test_large_pictures_are_decoded_by_fewer_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "default_workers", lambda: 64)
    paths = _pictures(tmp_path / "photos", [100, 1000] * 40)
    monkeypatch.setattr(decoding, "DECODE_BUDGET_BYTES", 1000 * 1000 * 6 * 4)  # four of the largest at once
    widths: list[int] = []
    real = decoding.ThreadPoolExecutor

    def watched(max_workers: int):
        widths.append(max_workers)
        return real(max_workers=max_workers)

    monkeypatch.setattr(decoding, "ThreadPoolExecutor", watched)
    decoding.decode_each(paths, lambda event: None, "decoding")
    assert widths == [4]


def test_small_pictures_keep_a_thread_a_cpu_and_a_huge_one_keeps_one(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "default_workers", lambda: 8)
    paths = _pictures(tmp_path / "photos", [64] * 10)
    assert decoding.decode_workers(paths) == 8
    monkeypatch.setattr(decoding, "DECODE_BUDGET_BYTES", 10)
    assert decoding.decode_workers(paths) == 1
