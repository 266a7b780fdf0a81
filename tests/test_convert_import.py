"""Importing single files: safety, wrappers, EMA, fp16, damaged files and clear refusals."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from convert_helpers import assert_same_weights, load_components, random_sd1, save_random_model  # noqa: F401
from safetensors.torch import load_file, save_file

from engine.convert import (
    CheckpointReadError,
    ConvertError,
    ModelMismatchError,
    OutputExistsError,
    TokenizerNotFoundError,
    UnsafeCheckpointError,
    UnsupportedModelError,
    export_single_file,
    import_single_file,
    read_checkpoint,
)
from engine.events import Warning as WarningEvent
from engine.runs.library_noise import hold_back_library_noise


class _Payload:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def sd1_file(random_sd1: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_single_file(random_sd1, tmp_path_factory.mktemp("sd1-file") / "model.safetensors")


@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle", "torch-zip-4", "raw-pickle-4"])
def test_malicious_pickle_is_refused_and_never_runs(container: str, tmp_path: Path, recwarn) -> None:
    """A protocol-4 pickle (FRAME, STACK_GLOBAL) was said to be damaged, with torch's protocol warning on stderr."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    payload = {"x": _Payload(marker), "state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}}
    protocol = 4 if container.endswith("-4") else 2
    if container.startswith("torch-zip"):
        torch.save(payload, evil, pickle_protocol=protocol)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=protocol))

    with pytest.raises(UnsafeCheckpointError, match=r"\.safetensors") as error:
        import_single_file(evil, tmp_path / "out", config=tmp_path)
    assert "calls posix.system" in str(error.value)  # names what it would have run
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]

    # The payload is real: an unrestricted load does run it.
    if container.startswith("torch-zip"):
        torch.load(evil, weights_only=False)
    else:
        pickle.loads(evil.read_bytes())
    assert marker.exists()


def test_a_tensors_only_pickle_of_a_newer_protocol_is_not_said_to_be_damaged(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, legacy, _use_new_zipfile_serialization=False, pickle_protocol=4)
    with pytest.raises(CheckpointReadError, match="pickle protocol that PyTorch's safe .* cannot read.*safetensors"):
        read_checkpoint(legacy)


def test_state_dict_wrapped_ckpt_imports(sd1_file: Path, random_sd1: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "wrapped.ckpt"
    torch.save({"state_dict": load_file(sd1_file), "global_step": 1000, "epoch": 3}, ckpt)
    assert set(read_checkpoint(ckpt).state_dict) == set(load_file(sd1_file))
    folder = import_single_file(ckpt, tmp_path / "out", config=random_sd1)
    assert_same_weights(load_components(random_sd1), load_components(folder))


class _Said(logging.Handler):
    """The records a logger lets through (diffusers' loggers do not propagate to caplog's root)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def diffusers_said() -> Iterator[_Said]:
    """What diffusers' single-file converter logs past the filters every dbtui command installs."""
    hold_back_library_noise()
    said, logger = _Said(), logging.getLogger("diffusers.loaders.single_file_utils")
    logger.addHandler(said)
    yield said
    logger.removeHandler(said)


def test_ema_weights_are_used_on_request(sd1_file: Path, random_sd1: Path, tmp_path: Path, diffusers_said: _Said) -> None:
    regular = load_file(sd1_file)
    generator = torch.Generator().manual_seed(7)
    ema = {}
    for key, value in regular.items():
        if key.startswith("model.diffusion_model."):
            # LDM's EMA names drop the dots: model_ema.diffusion_modelinput_blocks00weight
            ema["model_ema." + "".join(key.split(".")[1:])] = torch.randn(value.shape, generator=generator)
    ckpt = tmp_path / "ema.ckpt"
    torch.save({"state_dict": {**regular, **ema, "model_ema.num_updates": torch.tensor(5)}}, ckpt)

    with_ema = load_components(import_single_file(ckpt, tmp_path / "ema", config=random_sd1, use_ema=True))
    unet_keys = [k for k in regular if k.startswith("model.diffusion_model.")]
    conv_in = "model_ema.diffusion_modelinput_blocks00weight"
    assert torch.equal(with_ema["unet"]["conv_in.weight"], ema[conv_in])
    assert len(unet_keys) == len(with_ema["unet"])

    events = []
    without = load_components(import_single_file(ckpt, tmp_path / "plain", config=random_sd1, emit=events.append))
    assert_same_weights(load_components(random_sd1), without)
    assert any(isinstance(e, WarningEvent) and "--ema" in e.advice for e in events)
    # diffusers' own advice names its script's flag, which dbtui has not: ours says --ema.
    assert diffusers_said.messages and not any("--extract_ema" in m for m in diffusers_said.messages)

    with pytest.raises(ConvertError, match="no EMA weights"):
        import_single_file(sd1_file, tmp_path / "none", config=random_sd1, use_ema=True)


def test_fp16_file_imports_as_fp32(random_sd1: Path, tmp_path: Path) -> None:
    half = export_single_file(random_sd1, tmp_path / "half.safetensors", half=True)
    folder = import_single_file(half, tmp_path / "out", config=random_sd1)
    got = load_components(folder)
    assert got["unet"]["conv_in.weight"].dtype == torch.float32
    assert_same_weights(load_components(random_sd1), got, half=True)


def test_sd1_text_keys_without_text_model_prefix_are_repaired(sd1_file: Path, random_sd1: Path, tmp_path: Path) -> None:
    # What a naive exporter writes under transformers 5; diffusers alone would reject it.
    broken = {k.replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."): v
              for k, v in load_file(sd1_file).items()}
    save_file(broken, tmp_path / "broken.safetensors")
    folder = import_single_file(tmp_path / "broken.safetensors", tmp_path / "out", config=random_sd1)
    assert_same_weights(load_components(random_sd1), load_components(folder))


@pytest.mark.parametrize("kind", ["safetensors", "ckpt"])
def test_truncated_file_gives_a_clear_error_and_no_output(kind: str, sd1_file: Path, random_sd1: Path, tmp_path: Path) -> None:
    source = sd1_file
    if kind == "ckpt":
        source = tmp_path / "full.ckpt"
        torch.save({"state_dict": load_file(sd1_file)}, source)
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(CheckpointReadError, match="truncated"):
        import_single_file(cut, tmp_path / "out", config=random_sd1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cut." + kind] + (["full.ckpt"] if kind == "ckpt" else []))


def test_unknown_file_and_non_sd_checkpoint(tmp_path: Path) -> None:
    page = tmp_path / "model.safetensors"
    page.write_text("<html>404 Not Found</html>")
    with pytest.raises(CheckpointReadError, match="is a web page"):
        import_single_file(page, tmp_path / "out")
    classifier = tmp_path / "resnet.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2), "conv1.weight": torch.zeros(1)}, classifier)
    with pytest.raises(UnsupportedModelError, match="not a Stable Diffusion checkpoint"):
        import_single_file(classifier, tmp_path / "out")
    refiner = tmp_path / "refiner.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(384, 4, 3, 3),
               "conditioner.embedders.0.model.positional_embedding": torch.zeros(77, 1280)}, refiner)
    with pytest.raises(UnsupportedModelError, match="SDXL refiner cannot be DreamBooth-trained"):
        import_single_file(refiner, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("variant", "pad"), [("sd1", "<|endoftext|>"), ("sd2v", "!")])
def test_no_tokenizer_needed_the_shipped_one_is_used(variant: str, pad: str, tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    model = save_random_model(tmp_path / "model", variant, seed=4)
    config = tmp_path / "config"  # the architecture only: no tokenizer to borrow
    for sub in ("unet", "vae", "text_encoder"):
        (config / sub).mkdir(parents=True)
        (config / sub / "config.json").write_bytes((model / sub / "config.json").read_bytes())
    folder = import_single_file(export_single_file(model, tmp_path / "m.safetensors"), tmp_path / "out", config=config)
    assert_same_weights(load_components(model), load_components(folder))
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    assert tokenizer("a photo of zwx dog").input_ids == [49406, 320, 1125, 539, 89, 3561, 1929, 49407]
    assert tokenizer.pad_token == pad and tokenizer.model_max_length == 77


def test_a_tokenizer_path_without_one_says_what_to_pass(sd1_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TokenizerNotFoundError, match="holds no CLIP tokenizer") as error:
        import_single_file(sd1_file, tmp_path / "out", tokenizer=tmp_path)
    assert "leave --tokenizer out" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_shapes_that_do_not_fit_the_standard_config_point_to_config(sd1_file: Path, random_sd1: Path, tmp_path: Path) -> None:
    # A tiny model with the shipped SD1.5 config: the tokenizer is found, the shapes are not SD1.5.
    with pytest.raises(ModelMismatchError, match="--config"):
        import_single_file(sd1_file, tmp_path / "out", tokenizer=random_sd1)
    assert not (tmp_path / "out").exists()


def test_existing_output_is_not_overwritten(sd1_file: Path, random_sd1: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        import_single_file(sd1_file, tmp_path / "out", config=random_sd1)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("dropped", [
    "model.diffusion_model.input_blocks.1.0.in_layers.0.weight",
    "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
])
def test_a_missing_tensor_is_an_error_not_a_random_weight(dropped: str, sd1_file: Path, random_sd1: Path, tmp_path: Path) -> None:
    weights = load_file(sd1_file)
    del weights[dropped]
    save_file(weights, tmp_path / "incomplete.safetensors")
    with pytest.raises(ModelMismatchError):
        import_single_file(tmp_path / "incomplete.safetensors", tmp_path / "out", config=random_sd1)
    assert not (tmp_path / "out").exists()


def test_config_folder_without_scheduler_uses_the_family_one(sd1_file: Path, random_sd1: Path, tmp_path: Path) -> None:
    import json
    import shutil

    config = tmp_path / "config"
    for sub in ("unet", "vae", "text_encoder", "tokenizer"):
        shutil.copytree(random_sd1 / sub, config / sub)
    for sub in ("unet", "vae", "text_encoder"):  # configs only: the weights come from the file
        for weights in (config / sub).glob("*.safetensors"):
            weights.unlink()
    folder = import_single_file(sd1_file, tmp_path / "out", config=config)
    assert_same_weights(load_components(random_sd1), load_components(folder))
    assert json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["_class_name"] == "PNDMScheduler"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConvertError, match="no config for unet, vae, text_encoder"):
        import_single_file(sd1_file, tmp_path / "out2", config=tmp_path / "empty")
