"""How an export's files take their place in the output folder: the single files' pipeline a temporary when no
diffusers folder was asked for, and the user's files kept under their usual names until the new ones are whole."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.training_helpers import tiny_profile


class Stop(BaseException):
    """A Ctrl-C in the middle of a write."""


def _writes(monkeypatch, written: list[str], during=lambda target: None) -> None:
    """save_outputs with the pipeline and the single-file conversion faked: each single file holds ``written[-1]``,
    and ``during(target)`` runs while it is written."""
    import engine.convert
    import engine.training.outputs as outputs

    def single_file(source: Path, target: Path, **options: Any) -> Path:
        assert (source / "model_index.json").is_file()  # made from the pipeline written just before
        during(target)
        target.write_text(written[-1])
        return target

    monkeypatch.setattr(outputs, "full_precision_models", lambda *args: (None, [], None))
    monkeypatch.setattr(outputs, "save_pipeline", lambda folder, *args, **options: (
        folder.mkdir(parents=True), (folder / "model_index.json").write_text("{}")))
    monkeypatch.setattr(engine.convert, "export_single_file", single_file)


def _save(tmp_path: Path, out: Path, export: list[str]) -> dict[str, str]:
    from engine.training.outputs import save_outputs

    family = SimpleNamespace(export_lora=lambda folder, unet, encoders: folder.mkdir())
    profile = tiny_profile(tmp_path, training={"method": "lora"}, saving={"export": export})
    return save_outputs(profile, SimpleNamespace(family=family), None, None, out, lambda event: None)


def test_single_files_asked_without_diffusers_leave_no_pipeline_behind(tmp_path: Path, monkeypatch) -> None:
    """The pipeline the single files are made from stayed in the output folder as diffusers/ (gigabytes for SDXL),
    hidden from the listed outputs, and a second export added diffusers.previous/."""
    out = tmp_path / "exports" / "step-8"
    written = ["first"]
    _writes(monkeypatch, written)
    for version in ("first", "second"):
        written.append(version)
        outputs = _save(tmp_path, out, ["safetensors"])
    assert set(outputs) == {"lora_diffusers", "safetensors"}
    assert sorted(path.name for path in out.iterdir()) == ["lora", "lora.previous", "t.previous.safetensors", "t.safetensors"]

    def interrupted(target: Path) -> None:
        raise Stop

    _writes(monkeypatch, written, interrupted)
    with pytest.raises(Stop):
        _save(tmp_path, out, ["safetensors"])
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # its temporary pipeline went too
    _writes(monkeypatch, written)
    outputs = _save(tmp_path, out, ["diffusers", "safetensors"])
    assert outputs["diffusers"] == str(out / "diffusers") and (out / "diffusers" / "model_index.json").is_file()


def test_an_interrupted_export_again_leaves_the_users_single_file_under_its_usual_name(tmp_path: Path, monkeypatch) -> None:
    """The file was renamed NAME.previous.safetensors before the new one was written: a Ctrl-C meanwhile left no
    NAME.safetensors at all."""
    out = tmp_path / "outputs"
    written = ["first"]
    _writes(monkeypatch, written)
    _save(tmp_path, out, ["safetensors", "ckpt"])
    (out / "t.yaml").write_text("v model")  # an SD2.x-v export's config, read for every file of the name

    def interrupted(target: Path) -> None:
        assert (out / "t.safetensors").read_text() == "first" and (out / "t.ckpt").read_text() == "first"
        if target.suffix == ".ckpt":
            raise Stop

    written.append("second")
    _writes(monkeypatch, written, interrupted)
    with pytest.raises(Stop):
        _save(tmp_path, out, ["safetensors", "ckpt"])
    assert sorted(path.name for path in out.iterdir()) == ["lora", "lora.previous", "t.ckpt", "t.safetensors", "t.yaml"]
    assert (out / "t.safetensors").read_text() == "first"

    _writes(monkeypatch, written)
    _save(tmp_path, out, ["safetensors", "ckpt"])
    assert [(out / f"t.{ext}").read_text() for ext in ("safetensors", "ckpt")] == ["second", "second"]
    assert [(out / f"t.previous.{ext}").read_text() for ext in ("safetensors", "ckpt", "yaml")] == ["first", "first", "v model"]
    assert not (out / "t.yaml").exists()  # the new files wrote none: the old one went with the files it was for



@pytest.mark.parametrize("in_the_way", ["t.safetensors", "t.previous.ckpt"])
def test_a_folder_where_a_single_file_goes_leaves_every_file_under_its_usual_name(tmp_path: Path, monkeypatch,
                                                                                  in_the_way: str) -> None:
    """A folder named as one of the files (or its previous copy) was found only once the others had been renamed
    NAME.previous: the refused export left no t.ckpt, and its new one was dropped with the work folder."""
    out = tmp_path / "outputs"
    written = ["first"]
    _writes(monkeypatch, written)
    _save(tmp_path, out, ["safetensors", "ckpt"])
    (out / "t.safetensors").unlink()
    (out / in_the_way).mkdir()
    written.append("second")
    with pytest.raises(IsADirectoryError) as refused:
        _save(tmp_path, out, ["safetensors", "ckpt"])
    assert refused.value.filename == str(out / in_the_way)
    assert (out / "t.ckpt").read_text() == "first"


@pytest.mark.parametrize("name, kohya", [("me-lora", "me-lora-kohya.safetensors"), ("me_LoRA", "me_LoRA-kohya.safetensors"),
                                         ("zwx", "zwx-lora-kohya.safetensors"), ("flora", "flora-lora-kohya.safetensors")])
def test_a_runs_kohya_file_says_lora_once_and_is_not_taken_for_its_model(tmp_path: Path, name: str, kohya: str) -> None:
    """A run named me-lora wrote me-lora-lora-kohya.safetensors. The new name must still be told from the run's single
    file, which `dbtui convert to-diffusers RUN` otherwise suggests converting."""
    from engine.convert.run_folder_hint import _single_files
    from engine.training.outputs import save_outputs

    family = SimpleNamespace(export_lora=lambda folder, unet, encoders: folder.mkdir(),
                             export_lora_kohya=lambda lora, out, components, emit: out.write_text("kohya"))
    profile = tiny_profile(tmp_path, name=name, training={"method": "lora"}, saving={"export": ["lora_kohya"]})
    out = tmp_path / "outputs"
    outputs = save_outputs(profile, SimpleNamespace(family=family), None, None, out, lambda event: None)
    assert outputs["lora_kohya"] == str(out / kohya) and (out / kohya).is_file()
    (out / f"{name}.safetensors").write_text("model")
    assert _single_files(out) == [out / f"{name}.safetensors"]


def test_a_kohya_file_an_older_version_named_twice_lora_is_kept_as_previous_not_left_as_current(tmp_path: Path) -> None:
    """Resumed after the rename, a run named me-lora wrote me-lora-kohya.safetensors beside the older
    me-lora-lora-kohya.safetensors of its earlier weights, both named as current outputs."""
    from engine.training.outputs import save_outputs

    family = SimpleNamespace(export_lora=lambda folder, unet, encoders: folder.mkdir(),
                             export_lora_kohya=lambda lora, out, components, emit: out.write_text("new"))
    profile = tiny_profile(tmp_path, name="me-lora", training={"method": "lora"}, saving={"export": ["lora_kohya"]})
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "me-lora-lora-kohya.safetensors").write_text("old")
    save_outputs(profile, SimpleNamespace(family=family), None, None, out, lambda event: None)
    assert sorted(path.name for path in out.glob("*.safetensors")) == [
        "me-lora-kohya.safetensors", "me-lora-lora-kohya.previous.safetensors"]
    assert (out / "me-lora-lora-kohya.previous.safetensors").read_text() == "old"
