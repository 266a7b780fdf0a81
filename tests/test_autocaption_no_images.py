"""`dataset caption --auto` of a folder without images says so before the captioner loads (a download of a GB)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.dataset import CaptionError, autocaption


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The captioners loaded: none may be, where nothing is to be captioned."""
    loaded: list[str] = []
    monkeypatch.setattr(sys.modules["engine.dataset.autocaption"], "_Blip", lambda model: loaded.append(model))
    return loaded


def test_auto_captioning_an_empty_folder_is_refused_before_the_model_loads(tmp_path: Path, loads, capsys) -> None:
    """It loaded BLIP first (offline: "cannot get the BLIP captioner ... ConnectError"; online: a download), then
    said "0 captions written, 0 kept" and exited 0, where the folder was mistyped or the photos sat in a sub-folder."""
    textured(0, (32, 32)).save((tmp_path / "DCIM").mkdir() or tmp_path / "DCIM" / "a.png")
    assert main(["dataset", "caption", str(tmp_path), "--auto", "blip"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"no images in {tmp_path}" in said and "nothing to caption" in said and "'DCIM'" in said, said
    assert loads == []


def test_the_engine_refuses_it_too(tmp_path: Path, loads) -> None:
    with pytest.raises(CaptionError, match="nothing to caption"):
        autocaption(tmp_path, backend="blip")
    assert loads == []
