"""The decode pass before the model loads held one decoded picture per CPU at once: several GB for 100 MP photos on a
64-CPU machine. Its threads are fewer where the largest picture (by its header) would pass a memory budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.data import decode_budget, decoding


def _pictures(folder: Path, sides: list[int]) -> list[Path]:
    folder.mkdir()
    for index, side in enumerate(sides):
        Image.new("RGB", (side, side), (index, 0, 0)).save(folder / f"{index}.png")
    return sorted(folder.iterdir())


def _pool_widths_on_96_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], Path]:
    """(the widths of the process pools the dataset commands start, a folder of 59 small pictures and one of 1000 px)
    on a machine of 96 CPUs whose budget holds four of the largest picture at once."""
    from concurrent.futures import ThreadPoolExecutor

    from engine.dataset import pool

    for module in (decode_budget, pool):
        monkeypatch.setattr(module, "default_workers", lambda: 96)
    monkeypatch.setattr(decode_budget, "DECODE_BUDGET_BYTES", 1000 * 1000 * 6 * 4)  # four of the largest at once
    widths: list[int] = []

    def watched(max_workers: int, **_: object) -> ThreadPoolExecutor:  # threads: spawning 96 processes is not the test
        widths.append(max_workers)
        return ThreadPoolExecutor(max_workers=max_workers)

    monkeypatch.setattr(pool, "ProcessPoolExecutor", watched)
    photos = tmp_path / "photos"
    _pictures(photos, [100] * 59 + [1000])
    return widths, photos


def test_large_pictures_are_decoded_by_fewer_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_budget, "default_workers", lambda: 64)
    paths = _pictures(tmp_path / "photos", [100, 1000] * 40)
    monkeypatch.setattr(decode_budget, "DECODE_BUDGET_BYTES", 1000 * 1000 * 6 * 4)  # four of the largest at once
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
    monkeypatch.setattr(decode_budget, "default_workers", lambda: 8)
    paths = _pictures(tmp_path / "photos", [64] * 10)
    assert decode_budget.decode_workers(paths) == 8
    assert decode_budget.decode_workers(paths, most=3) == 3  # --workers still limits
    monkeypatch.setattr(decode_budget, "DECODE_BUDGET_BYTES", 10)
    assert decode_budget.decode_workers(paths) == 1


def test_dataset_check_shares_the_budget_of_the_runs_decode_pass(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`dataset check` started a process a CPU, each decoding a picture of its own: a 96-CPU machine with 100 MP photos
    ran out of memory where the run's decode pass, capped at 2 GiB, did not. --workers still limits."""
    from engine.dataset import check_dataset

    widths, photos = _pool_widths_on_96_cpus(tmp_path, monkeypatch)
    check_dataset(photos, resolution=64, workers=None)
    check_dataset(photos, resolution=64, workers=2)
    assert widths == [4, 2]


@pytest.mark.parametrize("task", ["prepare", "add a tag"])
def test_prepare_and_a_bulk_caption_edit_share_the_budget_too(task: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`dataset prepare` (each process decodes an original whole to resize it) and a bulk caption edit (which reads the
    pictures without a caption) still started a process a CPU whatever the pictures' size."""
    from engine.dataset import CaptionStore, prepare_dataset

    widths, photos = _pool_widths_on_96_cpus(tmp_path, monkeypatch)
    if task == "prepare":
        prepare_dataset(photos, tmp_path / "prepared", resolution=64)
    else:
        CaptionStore(photos).add_tag("sks")
    assert widths == [4]
