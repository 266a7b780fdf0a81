"""`dataset caption --auto` where every image already has a caption loads no captioner (a download of a GB):
without --overwrite it would write nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.dataset import CaptionStore, autocaption


def _never_loaded(model: str) -> None:
    raise AssertionError(f"the captioner {model} was loaded with nothing to caption")


class _SaysAPhoto:
    def __init__(self, model: str) -> None:
        pass

    def __call__(self, pictures: list) -> list[str]:
        return ["a photo"] * len(pictures)


@pytest.fixture
def captioned(tmp_path: Path) -> Path:
    for i in range(3):
        textured(i, (32, 32)).save(tmp_path / f"{i}.png")
        (tmp_path / f"{i}.txt").write_text("ohwx dog\n")
    return tmp_path


def test_a_folder_whose_images_all_have_captions_loads_no_captioner(captioned: Path, monkeypatch, capsys) -> None:
    """It loaded BLIP first (offline: "cannot get the BLIP captioner", status 2; online: a download), to write
    nothing."""
    monkeypatch.setattr(sys.modules["engine.dataset.autocaption"], "_Blip", _never_loaded)
    assert main(["dataset", "caption", str(captioned), "--auto", "blip"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "nothing to caption: all 3 images have captions; use --overwrite to redo them" in said, said
    assert CaptionStore(captioned).read("1.png") == "ohwx dog"


def test_the_engine_loads_none_either(captioned: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys.modules["engine.dataset.autocaption"], "_Blip", _never_loaded)
    result = autocaption(captioned, backend="blip")
    assert (len(result.written), len(result.skipped), result.failed) == (0, 3, ())


def test_overwrite_or_one_uncaptioned_image_still_loads_it(captioned: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys.modules["engine.dataset.autocaption"], "_Blip", _SaysAPhoto)
    assert main(["dataset", "caption", str(captioned), "--auto", "blip", "--overwrite"]) == 0
    assert "3 captions written" in capsys.readouterr().out
    (captioned / "0.txt").unlink()
    (captioned / "1.txt").write_text("mine\n")
    assert main(["dataset", "caption", str(captioned), "--auto", "blip"]) == 0
    assert "1 captions written, 2 kept" in capsys.readouterr().out
    assert [CaptionStore(captioned).read(f"{i}.png") for i in range(3)] == ["a photo", "mine", "a photo"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_cli_plans_each_folder_once(captioned: Path, monkeypatch, capsys, overwrite: bool) -> None:
    """The CLI planned each folder for its "nothing to caption" check, then the engine planned it again to write: two
    looks that could disagree (a caption typed between them), and every caption file read twice."""
    module = sys.modules["engine.dataset.autocaption"]
    monkeypatch.setattr(module, "_Blip", _SaysAPhoto)
    looks = []

    def counted(owners, folder):
        looks.append(folder)
        return linked(owners, folder)

    linked = module.linked_captions
    monkeypatch.setattr(module, "linked_captions", counted)
    assert main(["dataset", "caption", str(captioned), "--auto", "blip"] + ["--overwrite"] * overwrite) == 0
    assert looks == [captioned]
    assert ("3 captions written" if overwrite else "nothing to caption") in capsys.readouterr().out


def test_nothing_to_write_starts_no_phase(captioned: Path, monkeypatch, capsys) -> None:
    """Piped (`| cat`), a folder all captioned logged "[autocaption] started writing 0 captions" and "done", as if a
    writing had begun, above "nothing to caption"."""
    monkeypatch.setattr(sys.modules["engine.dataset.autocaption"], "_Blip", _never_loaded)
    assert main(["dataset", "caption", str(captioned), "--auto", "blip"]) == 0
    said = capsys.readouterr().out
    assert "[autocaption]" not in said, said
    assert "nothing to caption: all 3 images have captions" in " ".join(said.split())
    events = []
    assert autocaption(captioned, backend="blip", emit=events.append).skipped
    assert events == []
