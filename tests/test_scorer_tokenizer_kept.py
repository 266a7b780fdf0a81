"""CLIP's tokenizer for scoring is read once a process while its files stay as they are: every scoring round read it
again, and transformers parses its 3.6 MB tokenizer.json several times a read (0.6 s of CPU)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import engine.evaluation.scorers as scorers_module
from engine.builtin import resolve_scorer


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each tokenizer read from the scorer's files, by name; the process's kept ones forgotten first."""
    done: list[str] = []
    load = scorers_module._load

    def counting(loader: object, name: str, **kwargs: object) -> object:
        done.append(name)
        return load(loader, name, **kwargs)

    monkeypatch.setattr(scorers_module, "_load", counting)
    scorers_module._kept_tokenizer.cache_clear()
    yield done
    scorers_module._kept_tokenizer.cache_clear()


def test_a_scorer_folders_tokenizer_is_read_once_until_a_file_of_it_changes(
        tmp_path: Path, reads: list[str]) -> None:
    folder = tmp_path / "clip"
    shutil.copytree(resolve_scorer("builtin:tiny-clip"), folder)
    first = scorers_module._clip_tokenizer(str(folder))
    assert scorers_module._clip_tokenizer(str(folder)) is first and reads == [str(folder)]
    config = folder / "tokenizer_config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 1_000_000_000))
    again = scorers_module._clip_tokenizer(str(folder))
    assert again is not first and reads == [str(folder)] * 2
    assert again("a photo", return_tensors="pt")["input_ids"].tolist() == first("a photo", return_tensors="pt")["input_ids"].tolist()


def test_a_scorer_not_on_this_machine_is_not_kept_and_still_says_why(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorers_module, "_hub_reachable", lambda: False)
    for name in (str(tmp_path / "gone"), "someone/clip-not-cached"):
        for _ in range(2):
            with pytest.raises(scorers_module.ScorersUnavailableError):
                scorers_module._clip_tokenizer(name)
    assert reads == [str(tmp_path / "gone")] * 2 + ["someone/clip-not-cached"] * 2
    assert scorers_module._kept_tokenizer.cache_info().currsize == 0
