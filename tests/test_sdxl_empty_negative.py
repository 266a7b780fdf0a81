"""SDXL with no negative prompt: class images and previews conditioned as diffusers' SDXL pipeline conditions them
(zeros where the model's force_zeros_for_empty_prompt says so), and class images made before that still reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training_helpers import tiny_profile

PROMPT = "photo of a disc"


def _profile(tmp_path: Path, class_images: int, previews: int = 0) -> Any:
    return tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-sdxl"}, training={"max_train_steps": 1},
                        concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": PROMPT,
                                   "class_dir": str(tmp_path / "class"), "class_prompt": PROMPT,
                                   "num_class_images": class_images}],
                        prior={"enabled": True, "steps": 1, "sample_batch_size": 1},
                        sampling={"num_images": previews, "steps": 1})


def _trained(profile: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each call's prompt arguments to the pipeline, as (previews, kwargs); the run finishes."""
    import engine.training.sampling as sampling
    from engine.runs.in_process import train

    calls: list[dict[str, Any]] = []
    generate = sampling.generate_images

    def recording(pipe: Any, family: Any = None, **kwargs: Any) -> list[Any]:
        calls.append(kwargs)
        return generate(pipe, family, **kwargs)

    monkeypatch.setattr(sampling, "generate_images", recording)
    assert train(profile).status == "finished"
    return calls


def test_class_images_and_previews_without_a_negative_prompt_are_conditioned_as_the_sdxl_pipeline_does(
        tmp_path: Path, tiny_sdxl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """They encoded "" for it, where the pipeline (force_zeros_for_empty_prompt, true for SDXL base) gives zeros: the
    class images differed from those the same model makes in diffusers."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    assert pipe.config.force_zeros_for_empty_prompt
    with torch.no_grad():
        theirs = pipe.encode_prompt(PROMPT, device="cpu", do_classifier_free_guidance=True)
    class_call, preview_call = _trained(_profile(tmp_path, class_images=1, previews=1), monkeypatch)
    assert preview_call.pop("previews") is True
    for call in (class_call, preview_call):
        ours = [call[name] for name in ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
                                        "negative_pooled_prompt_embeds")]
        assert all(torch.allclose(mine, their, atol=1e-5) for mine, their in zip(ours, theirs))
        assert not call["negative_prompt_embeds"].any() and not call["negative_pooled_prompt_embeds"].any()


def test_a_model_that_encodes_an_empty_negative_prompt_keeps_encoding_it(tmp_path: Path, tiny_sdxl: Path) -> None:
    from engine.models.sdxl import StableDiffusionXL

    model = tmp_path / "model"
    model.mkdir()
    index = json.loads((tiny_sdxl / "model_index.json").read_text())
    (model / "model_index.json").write_text(json.dumps({**index, "force_zeros_for_empty_prompt": False}))
    assert not StableDiffusionXL().zeroes_empty_negative(model)
    del index["force_zeros_for_empty_prompt"]  # the pipeline's default, as diffusers loads it
    (model / "model_index.json").write_text(json.dumps(index))
    assert StableDiffusionXL().zeroes_empty_negative(model)


def test_a_set_of_class_images_made_with_an_empty_negative_prompt_encoded_is_reused_and_topped_up_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Such sets (every SDXL set made before the pipeline's zeros were followed) were not found under the new settings:
    every class image was made again on the user's GPU."""
    from engine.training.class_images import generated_folder

    _trained(_profile(tmp_path, class_images=1), monkeypatch)
    [made] = list((tmp_path / "class").glob("generated-*"))
    manifest = json.loads((made / "manifest.json").read_text())
    assert manifest.pop("negative_prompt_embeds") == "zeros"
    manifest.pop("weights_digest")  # nor did a run before record the model's hash
    earlier = generated_folder(tmp_path / "class", {key: value for key, value in manifest.items() if key != "images"})
    made.rename(earlier)  # as a run before kept it
    (earlier / "manifest.json").write_text(json.dumps(manifest))
    [top_up] = _trained(_profile(tmp_path, class_images=2), monkeypatch)
    assert list((tmp_path / "class").glob("generated-*")) == [earlier]
    assert json.loads((earlier / "manifest.json").read_text())["images"] == ["class_00000.png", "class_00001.png"]
    assert top_up["negative_prompt_embeds"].any()  # "" encoded, as the rest of its set


def test_a_fine_tune_of_a_model_that_encodes_an_empty_negative_prompt_is_exported_to_encode_it(
        tmp_path: Path, tiny_sdxl: Path) -> None:
    """The exported model_index.json said force_zeros_for_empty_prompt true whatever the base said: the fine-tune,
    loaded in diffusers, conditioned on zeros where the base (and the run's own previews) encoded ""."""
    from engine.runs.in_process import train

    model = tmp_path / "model"
    model.mkdir()
    for part in tiny_sdxl.iterdir():
        if part.name != "model_index.json":
            (model / part.name).symlink_to(part)
    index = json.loads((tiny_sdxl / "model_index.json").read_text())
    (model / "model_index.json").write_text(json.dumps({**index, "force_zeros_for_empty_prompt": False}))
    result = train(tiny_profile(tmp_path, model={"pretrained": str(model)}, training={"max_train_steps": 1}))
    assert result.status == "finished"
    exported = next((tmp_path / "runs").rglob("model_index.json"))
    assert json.loads(exported.read_text())["force_zeros_for_empty_prompt"] is False
