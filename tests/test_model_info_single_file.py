"""A single file as the model check and the meter see it: what it predicts, told as the import converts it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from convert_helpers import random_sd1, random_sd2v  # noqa: F401
from safetensors.torch import load_file, save_file

from engine.convert import export_single_file
from engine.convert.detect import detect_family


def _predicting(model: Path, folder: Path, prediction_type: str) -> Path:
    shutil.copytree(model, folder)
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "prediction_type": prediction_type}))
    return folder


@pytest.fixture(scope="module")
def sd1_v_file(random_sd1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """dbtui's own v-prediction SD1.x export: its metadata says it predicts v, which its weights cannot tell."""
    place = tmp_path_factory.mktemp("sd1-v")
    return export_single_file(_predicting(random_sd1, place / "model", "v_prediction"), place / "sd1v.safetensors")


@pytest.fixture(scope="module")
def sd2_file_against_its_weights(random_sd2v: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """An SD2.x file whose .yaml says the opposite of what its weights suggest (no metadata: the .yaml decides)."""
    place = tmp_path_factory.mktemp("sd2")
    exported = export_single_file(random_sd2v, place / "exported.safetensors")
    bare = place / "m.safetensors"
    save_file(load_file(exported), bare)
    guess = detect_family(load_file(bare))
    parameterization = "eps" if guess.prediction_type == "v_prediction" else "v"
    bare.with_suffix(".yaml").write_text(f"model:\n  params:\n    parameterization: {parameterization}\n")
    return bare


def test_the_model_check_tells_what_a_single_file_predicts_by_its_metadata_and_yaml(
        sd1_v_file: Path, sd2_file_against_its_weights: Path) -> None:
    """The wizard described an SD2.x-v file (with its .yaml) as SD2.x base at 512 px, and an SD1.x-v one as epsilon,
    while the import converted both as v."""
    from engine.model_info import describe_model

    assert "1.x, v-prediction" in describe_model(str(sd1_v_file)).family
    said = detect_family(load_file(sd2_file_against_its_weights),
                         prediction_type=_yaml_says(sd2_file_against_its_weights))
    described = describe_model(str(sd2_file_against_its_weights))
    assert described.family == f"single file: {said.description}" and described.resolution == said.resolution


def test_the_meter_builds_a_single_file_from_the_configs_its_yaml_and_metadata_pick(
        sd1_v_file: Path, sd2_file_against_its_weights: Path) -> None:
    import torch

    from engine.memory.architecture import architecture_of

    assert "1.x, v-prediction" in architecture_of(str(sd1_v_file)).label
    expected = _yaml_says(sd2_file_against_its_weights)
    with torch.device("meta"):  # as the meter builds it (engine/memory/fake_models.py): a 768 px SD2 on CPU took 15 s
        parts = architecture_of(str(sd2_file_against_its_weights)).build()
    assert parts.scheduler.config.prediction_type == expected
    assert parts.unet.config.sample_size == (96 if expected == "v_prediction" else 64)  # 768 px or 512 px


def _yaml_says(file: Path) -> str:
    return "v_prediction" if "parameterization: v" in file.with_suffix(".yaml").read_text() else "epsilon"


def test_a_checkpoint_file_without_an_extension_is_taken_as_the_run_takes_it(sd1_v_file: Path, tmp_path: Path) -> None:
    """`models/mymodel`, a real checkpoint, converted with `dbtui convert` and loaded by the run, but validate, run and
    the wizard's model step called it "a file, but not a model file"."""
    from engine.dataset.profile_paths import model_source_problems
    from engine.model_info import describe_model

    model = tmp_path / "mymodel"
    shutil.copyfile(sd1_v_file, model)
    assert model_source_problems(str(model)) == []
    described = describe_model(str(model))
    assert described.kind == "single-file" and described.supported and described.family.startswith("single file: ")
    (tmp_path / "notes").write_text("not a model")
    assert [problem.message for problem in model_source_problems(str(tmp_path / "notes"))] == [
        f"'{tmp_path / 'notes'}' is a file, but not a model file: give a diffusers folder or a .safetensors/.ckpt file"]


@pytest.fixture
def tensors_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the tensors whose data is asked of safetensors (``get_tensor``) from here on."""
    import safetensors

    read: list[str] = []
    real_open = safetensors.safe_open

    class Spy:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.file = real_open(*args, **kwargs)

        def __enter__(self) -> Spy:
            self.file.__enter__()
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.__exit__(*exc)

        def __getattr__(self, name: str) -> object:
            return getattr(self.file, name)

        def get_tensor(self, key: str) -> object:
            read.append(key)
            return self.file.get_tensor(key)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    return read


def test_the_model_check_and_the_meter_read_a_files_header_not_its_tensors(
        sd1_v_file: Path, sd2_file_against_its_weights: Path, tmp_path: Path, tensors_read: list[str]) -> None:
    """The wizard's Model step and the meter asked safetensors for every tensor of a single file: mapped, yet each
    tensor's first page touched, so the kernel's readahead read 1.4 GB of a 2 GB SD1.5 file from disk to tell its
    family. Only an SD2.x file that no .yaml or metadata says the prediction of has one tensor read: the bias that
    tells v from epsilon."""
    from engine.convert import checkpoint_family, read_checkpoint
    from engine.convert.detect import v_bias_key
    from engine.memory.architecture import architecture_of
    from engine.model_info import describe_model

    unsaid = shutil.copyfile(sd2_file_against_its_weights, tmp_path / "sd2.safetensors")  # without its .yaml
    for file in (sd1_v_file, sd2_file_against_its_weights, unsaid):
        tensors_read.clear()
        described, built = describe_model(str(file)), architecture_of(str(file))
        bias = [v_bias_key(load_file(file))] if file == unsaid else []
        assert tensors_read == bias * 2, file  # once by the check, once by the meter
        whole = checkpoint_family(read_checkpoint(file))  # as the import reads it: every tensor
        assert described.family == f"single file: {whole.description}" and described.resolution == whole.resolution
        assert built.label == f"{whole.description} ({file.name})"
