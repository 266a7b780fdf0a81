"""A conversion's note is in its folder before the folder is renamed into place: a kill at any point leaves no folder,
or a whole one with its note. Written just after the rename, a kill between the two left a folder without a note,
which the next run reused unchecked (as one converted before notes were) and the wizard refused ("already exists")."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.model_import import import_model
from engine.models.loading import CONVERTED_FROM, resolve_model_folder


class Killed(BaseException):
    """The process killed: nothing after it runs, no handler sees it."""


@pytest.fixture
def single_file(tiny_sd1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny SD1.x model as a single file, which the converter reads with the tiny model's configs as its family's."""
    import engine.convert.to_diffusers
    from engine.convert import export_single_file

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "sd1").symlink_to(tiny_sd1)
    monkeypatch.setattr(engine.convert.to_diffusers, "CONFIGS", configs)
    return Path(export_single_file(tiny_sd1, tmp_path / "m.safetensors"))


@pytest.fixture
def killed_at_the_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conversion's folder renamed into place, and the process killed at once."""
    import engine.convert._files

    publish = engine.convert._files._publish_folder

    def then_killed(tmp: Path, target: Path) -> None:
        publish(tmp, target)
        raise Killed

    monkeypatch.setattr(engine.convert._files, "_publish_folder", then_killed)


@pytest.mark.parametrize("convert", ["run", "wizard"])
def test_a_conversion_killed_as_its_folder_appears_has_its_note(convert: str, single_file: Path, tmp_path: Path,
                                                                killed_at_the_rename: None) -> None:
    out = tmp_path / "run" / "model" / "m-diffusers"
    with pytest.raises(Killed):
        if convert == "run":
            resolve_model_folder(str(single_file), work_dir=out.parent)
        else:
            import_model(str(single_file), out)
    assert (out / "model_index.json").is_file() and (out / CONVERTED_FROM).is_file()
