from pathlib import Path

import torch

from engine.tiny_model import build_pipeline


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
