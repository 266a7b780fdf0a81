"""`dbtui dataset check` says the buckets as the run's only where it trains in them: without bucketing they are what
--bucketing (dataset.bucketing) would make, each image now cropped to a square."""

from __future__ import annotations

from pathlib import Path

from dataset_fixture import textured

from dbtui.cli import main


def _mixed(folder: Path) -> Path:
    folder.mkdir()
    for seed, size in enumerate([(1200, 560), (640, 640), (640, 640)]):
        textured(seed, size).save(folder / f"{seed}.png")
    return folder


def test_buckets_without_bucketing_are_said_as_what_it_would_do(tmp_path: Path, monkeypatch, capsys) -> None:
    """Without --bucketing the check said "Buckets with aspect-ratio bucketing: 704×320: 1, 512×512: 2" under the
    warnings that the wide image is cropped to a square, read as the run's buckets."""
    monkeypatch.setenv("COLUMNS", "240")
    folder = _mixed(tmp_path / "photos")
    main(["dataset", "check", str(folder)])
    out = capsys.readouterr().out
    assert "Buckets with aspect-ratio bucketing" not in out
    assert ("With --bucketing, the images would train in these buckets: 512×512: 2, 704×320: 1 (now each is cropped "
            "to a 512×512 square)") in out
    main(["dataset", "check", str(folder), "--bucketing"])
    out = capsys.readouterr().out
    assert "Buckets with aspect-ratio bucketing: 512×512: 2, 704×320: 1" in out and "would train" not in out
