"""The diffusers folder training converts a single file into: reused while it is what the converter would make now."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.models.loading import CONVERTED_FROM, resolve_model_folder
from fake_conversion import copy_converted


@pytest.fixture
def conversions(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each conversion made, in order; each "converts" into a copy of the tiny SD1.x model (a real one takes the
    full-size configs)."""
    import engine.convert

    made: list[Path] = []

    def convert(path: Path, out: Path, before_publish: Callable[[Path], None] | None = None, **_: object) -> Path:
        copy_converted(tiny_sd1, out, before_publish)
        made.append(path)
        return out

    monkeypatch.setattr(engine.convert, "import_single_file", convert)
    return made


def test_a_folder_is_converted_again_when_its_yaml_or_the_converter_changes(conversions: list[Path],
                                                                             tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Reused for good while the file stood: a .yaml added or edited beside it (what it predicts) was never read."""
    import engine.convert.to_diffusers

    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    work = tmp_path / "run" / "model"

    def resolve() -> int:
        resolve_model_folder(str(model), work_dir=work)
        return len(conversions)

    assert resolve() == 1 and resolve() == 1
    note = json.loads((work / "m-diffusers" / CONVERTED_FROM).read_text())
    assert note["family"] == "sd" and note["prediction_type"] == "epsilon" and note["sidecar"] is None
    sidecar = model.with_suffix(".yaml")
    sidecar.write_text("model:\n  params:\n    parameterization: v\n")
    assert resolve() == 2 and resolve() == 2
    sidecar.write_text("model:\n  params:\n    parameterization: eps\n")
    assert resolve() == 3
    monkeypatch.setattr(engine.convert.to_diffusers, "CONVERTER_VERSION", 10**6)
    assert resolve() == 4 and resolve() == 4


def test_a_folder_an_earlier_converter_noted_is_converted_again(conversions: list[Path], tmp_path: Path) -> None:
    """An SD1.x-v file converted as epsilon before what it predicts was read was reused for good."""
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    work = tmp_path / "run" / "model"
    resolve_model_folder(str(model), work_dir=work)
    note = work / "m-diffusers" / CONVERTED_FROM
    old = {key: value for key, value in json.loads(note.read_text()).items() if key in ("path", "size", "mtime_ns")}
    note.write_text(json.dumps(old))
    resolve_model_folder(str(model), work_dir=work)
    assert len(conversions) == 2 and json.loads(note.read_text())["converter"] >= 2


def test_a_runs_base_is_kept_when_only_the_converter_or_the_note_changed(conversions: list[Path], tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """After an upgrade every run's base was deleted and converted again, under a live trainer or export too."""
    import engine.convert.to_diffusers

    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    work = tmp_path / "run" / "model"
    resolve_model_folder(str(model), work_dir=work, run_base=True)
    note = work / "m-diffusers" / CONVERTED_FROM
    old = {key: value for key, value in json.loads(note.read_text()).items() if key in ("path", "size", "mtime_ns")}
    note.write_text(json.dumps({**old, "sidecar": None}))
    warnings: list[object] = []
    assert resolve_model_folder(str(model), work_dir=work, emit=warnings.append, run_base=True) == work / "m-diffusers"
    monkeypatch.setattr(engine.convert.to_diffusers, "CONVERTER_VERSION", 10**6)
    resolve_model_folder(str(model), work_dir=work, emit=warnings.append, run_base=True)
    assert len(conversions) == 1 and warnings == []


def test_a_runs_base_is_kept_and_said_when_its_yaml_now_predicts_otherwise(conversions: list[Path],
                                                                            tmp_path: Path) -> None:
    from engine.events import Warning

    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    work = tmp_path / "run" / "model"
    resolve_model_folder(str(model), work_dir=work, run_base=True)
    model.with_suffix(".yaml").write_text("model:\n  params:\n    parameterization: v\n")
    warnings: list[object] = []
    assert resolve_model_folder(str(model), work_dir=work, emit=warnings.append, run_base=True) == work / "m-diffusers"
    assert len(conversions) == 1 and (work / "m-diffusers" / "model_index.json").is_file()
    assert [type(w) for w in warnings] == [Warning]
    assert "predicts v_prediction; this run's base was converted as epsilon" in warnings[0].message
    assert "start a new run" in warnings[0].advice
    model.with_suffix(".yaml").write_text("model:\n  params:\n    parameterization: eps\n")  # the same model again
    resolve_model_folder(str(model), work_dir=work, emit=warnings.append, run_base=True)
    assert len(warnings) == 1 and len(conversions) == 1


def test_a_conversion_whose_family_is_not_told_is_noted_still(conversions: list[Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The note was not written, so the folder passed for one converted before notes were: never checked again."""
    import engine.models.registry
    from engine.models.registry import UnsupportedFamilyError

    def unknown(folder: Path) -> None:
        raise UnsupportedFamilyError(f"{folder}: not known")

    monkeypatch.setattr(engine.models.registry, "family_of", unknown)
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    work = tmp_path / "cache"
    resolve_model_folder(str(model), work_dir=work)
    note = json.loads((work / "m-diffusers" / CONVERTED_FROM).read_text())
    assert note["family"] is None and note["prediction_type"] == "epsilon" and note["size"] == 7
    resolve_model_folder(str(model), work_dir=work)
    assert len(conversions) == 1


def test_a_file_replaced_while_it_converts_is_converted_again(tiny_sd1: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The note described the file as it stood after the conversion: the new file, reused as converted."""
    import engine.convert

    model = tmp_path / "m.safetensors"
    model.write_bytes(b"old weights")
    made: list[bytes] = []

    def convert(path: Path, out: Path, before_publish: Callable[[Path], None] | None = None, **_: object) -> Path:
        made.append(path.read_bytes())
        copy_converted(tiny_sd1, out, before_publish)
        model.write_bytes(b"the new, longer weights")  # a download finishing while it converts
        return out

    monkeypatch.setattr(engine.convert, "import_single_file", convert)
    work = tmp_path / "run" / "model"
    resolve_model_folder(str(model), work_dir=work)
    monkeypatch.setattr(engine.convert, "import_single_file", lambda path, out, before_publish=None, **_: made.append(b"") or
                        copy_converted(tiny_sd1, out, before_publish))
    resolve_model_folder(str(model), work_dir=work)
    assert made == [b"old weights", b""]
