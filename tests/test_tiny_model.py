from pathlib import Path

import pytest
import torch

from engine.builtin.tiny_model import build_pipeline


def test_tiny_model_loads_and_generates_a_64px_image(tiny_sd1: Path) -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    image = pipe("a photo", num_inference_steps=1, height=64, width=64, output_type="pil").images[0]
    assert image.size == (64, 64)
    assert pipe.scheduler.config.prediction_type == "epsilon"


def test_v_prediction_variant(tiny_sd2v: Path) -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd2v)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.text_encoder.config.hidden_act == "gelu"
    assert pipe("x", num_inference_steps=1, height=64, width=64).images[0].size == (64, 64)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a = build_pipeline(seed=3).unet.state_dict()
    b = build_pipeline(seed=3).unet.state_dict()
    c = build_pipeline(seed=4).unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_demo_dataset_has_captioned_instances_and_class_images(demo_data: Path) -> None:
    instances = sorted((demo_data / "instance").glob("*.png"))
    assert len(instances) >= 4
    for image in instances:
        assert "zwx" in image.with_suffix(".txt").read_text()
    assert len(list((demo_data / "class").glob("*.png"))) >= 4


def test_sd15_size_has_the_published_sd15_parameter_counts() -> None:
    """bench/ measures VRAM on this model, so it must be SD1.5's shape (built on meta: no memory)."""
    with torch.device("meta"):
        pipe = build_pipeline("sd15")
    counts = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("unet", "vae", "text_encoder")}
    assert counts == {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}


def test_builtin_tiny_sd1_carries_the_shipped_pretrained_weights(tiny_sd1: Path) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file

    from engine.builtin.tiny_weights import WEIGHTS_FILE

    shipped = load_file(str(WEIGHTS_FILE))
    unet = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet").state_dict()
    vae = AutoencoderKL.from_pretrained(tiny_sd1, subfolder="vae")
    assert all(torch.equal(unet[k], shipped[f"unet.{k}"].float()) for k in unet)
    assert all(torch.equal(v, shipped[f"vae.{k}"].float()) for k, v in vae.state_dict().items())
    assert vae.config.scaling_factor != 0.18215  # measured on the trained VAE, not SD's default


def test_weights_that_do_not_fit_are_a_dbtui_error(tmp_path: Path) -> None:
    from engine.builtin.tiny_weights import TinyWeightsError, load_weights, save_weights

    path = save_weights(build_pipeline("tiny", "sd2v"), tmp_path / "other.safetensors")
    with pytest.raises(TinyWeightsError, match="does not fit"):
        load_weights(build_pipeline(), path)
    with pytest.raises(TinyWeightsError, match="missing"):
        load_weights(build_pipeline(), tmp_path / "absent.safetensors")


@pytest.mark.parametrize("name", ["builtin:tiny-sd2v", "builtin:tiny-sdxl"])
def test_building_a_builtin_model_leaves_the_callers_random_state_alone(name: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that builds the model on first use must draw the same numbers as one that finds it built."""
    from engine.builtin import resolve_model

    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path))  # an empty cache: the model is built here
    torch.manual_seed(123)
    before = torch.get_rng_state()
    assert Path(resolve_model(name), "model_index.json").is_file()
    assert torch.equal(torch.get_rng_state(), before)


def test_a_builtin_cache_that_cannot_be_written_says_to_set_dbtui_cache(tmp_path: Path, monkeypatch) -> None:
    """A read-only or full ~/.cache, or a file in its place, failed `fit` as a bug and gave a run resume advice."""
    from engine.builtin import BuiltinCacheError, resolve_dir

    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(BuiltinCacheError, match=r"cannot build builtin:demo-data in .*set DBTUI_CACHE to a folder you can write"):
        resolve_dir("builtin:demo-instance")
