"""A single file lacking part of its UNet (every output_blocks.* tensor) is told at `validate` and the wizard's Model
step, in the words its conversion refuses it with; not only once the run has converted it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from convert_helpers import random_sd1  # noqa: F401
from PIL import Image
from safetensors.torch import load_file, save_file

from dbtui.cli import main
from engine.convert import ModelMismatchError, export_single_file, import_single_file


@pytest.fixture(scope="module")
def files(random_sd1: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    """The tiny SD1 model whole as a single file, the same without its UNet's output_blocks, and its configs as the
    family's (the shipped SD1 configs describe the full size, which a tiny file does not fit)."""
    place = tmp_path_factory.mktemp("incomplete")
    whole = export_single_file(random_sd1, place / "whole.safetensors")
    cut = place / "no-output-blocks.safetensors"
    save_file({key: value for key, value in load_file(whole).items() if ".output_blocks." not in key}, cut)
    configs = place / "configs"
    shutil.copytree(random_sd1, configs / "sd1", ignore=shutil.ignore_patterns("*.safetensors", "tokenizer*"))
    return {"whole": whole, "cut": cut, "configs": configs}


@pytest.fixture
def tiny_family(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The checks before a run compare a file with the tiny model's architecture, as the conversion given it as
    --config does."""
    monkeypatch.setattr("engine.convert.absent_parts.CONFIGS", files["configs"])
    return files["configs"] / "sd1"


def _profile(tmp_path: Path, model: Path) -> Path:
    images = tmp_path / "dog"
    images.mkdir()
    for index in range(2):
        Image.new("RGB", (64, 64), (index * 90, 40, 40)).save(images / f"{index}.png")
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "{model}"\n\n[[concepts]]\ninstance_dir = "{images}"\n'
                       'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
    return profile


def test_validate_says_what_the_conversion_refuses_a_file_lacking_output_blocks_for(
        files: dict[str, Path], tiny_family: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """validate called the file valid; the conversion then refused it with a count of the tensors it lacks."""
    from engine.model_info import describe_model

    with pytest.raises(ModelMismatchError) as refused:
        import_single_file(files["cut"], tmp_path / "out", config=tiny_family)
    said = str(refused.value).replace(f"{files['cut'].name}", f"'{files['cut']}'")
    said = said.replace("Stable Diffusion 1.x (512 px, epsilon)", "Stable Diffusion 1.x")  # a header cannot tell v
    assert "the UNet lacks" in said and "output_blocks" in said

    assert main(["validate", str(_profile(tmp_path, files["cut"]))]) == 2
    assert said in " ".join(capsys.readouterr().err.split())
    described = describe_model(str(files["cut"]))  # the wizard's Model step, `dbtui hardware --profile`
    assert not described.supported and described.family == said


def test_a_whole_file_is_still_valid(files: dict[str, Path], tiny_family: Path, tmp_path: Path) -> None:
    from engine.model_info import describe_model

    assert main(["validate", str(_profile(tmp_path, files["whole"]))]) == 0
    assert describe_model(str(files["whole"])).supported
