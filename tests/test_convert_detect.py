"""Family detection from state dicts built here (keys and shapes as the real files have them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.convert import detect_family
from engine.convert.detect import folder_family, prediction_hint

U = "model.diffusion_model."


def _sd(*, in_channels: int = 4, text: str | None = "sd1", context: int = 768, norm_std: float = 0.0) -> dict:
    sd = {
        U + "input_blocks.0.0.weight": torch.zeros(320, in_channels, 3, 3),
        U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, context),
        U + "output_blocks.11.1.transformer_blocks.0.norm1.bias": torch.randn(320) * norm_std,
        U + "output_blocks.5.1.transformer_blocks.0.norm1.bias": torch.zeros(640),
        "first_stage_model.encoder.conv_in.weight": torch.zeros(128, 3, 3, 3),
    }
    if text == "sd1":
        sd["cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"] = torch.zeros(77, 768)
    elif text == "sd2":
        sd["cond_stage_model.model.token_embedding.weight"] = torch.zeros(49408, 1024)
    return sd


@pytest.mark.parametrize(
    ("state_dict", "family"),
    [
        (_sd(), "sd1"),
        (_sd(text=None), "sd1"),  # no text encoder: told by the cross-attention width
        (_sd(text="sd2", context=1024), "sd2"),
        (_sd(text="sd2", context=1024, norm_std=0.5), "sd2-v"),  # ComfyUI's statistic
        (_sd(text=None, context=1024, norm_std=0.5), "sd2-v"),
        (_sd(in_channels=9), "sd1-inpaint"),
        (_sd(in_channels=9, text="sd2", context=1024, norm_std=0.5), "sd2-inpaint"),  # inpainting is never v
    ],
)
def test_detects_sd_families(state_dict: dict, family: str) -> None:
    found = detect_family(state_dict)
    assert found.id == family
    assert found.supported
    assert found.description


def test_family_descriptions_say_size_and_prediction() -> None:
    assert "768" in detect_family(_sd(text="sd2", context=1024, norm_std=0.5)).description
    assert "v-prediction" in detect_family(_sd(text="sd2", context=1024, norm_std=0.5)).description
    assert "epsilon" in detect_family(_sd(text="sd2", context=1024)).description
    assert detect_family(_sd(text="sd2", context=1024, norm_std=0.5)).prediction_type == "v_prediction"


def test_prediction_hint_overrides_the_statistic() -> None:
    assert detect_family(_sd(text="sd2", context=1024), prediction_type="v_prediction").id == "sd2-v"
    assert detect_family(_sd(text="sd2", context=1024, norm_std=0.5), prediction_type="epsilon").id == "sd2"


def test_an_sd1_file_that_says_it_predicts_v_is_sd1_v() -> None:
    """dbtui writes dbtui.prediction_type into a v-prediction SD1.x export; reading it back ignored it."""
    family = detect_family(_sd(), prediction_type="v_prediction")
    assert (family.id, family.prediction_type, family.config_name) == ("sd1-v", "v_prediction", "sd1")
    assert "v-prediction" in family.description
    assert detect_family(_sd(), prediction_type="epsilon").id == "sd1"


def _sdxl(*, text: str | None = "base", in_channels: int = 4, context: int = 2048, adm: int = 2816) -> dict:
    """Keys and shapes of sd_xl_base_1.0 (``text="refiner"``: the refiner's bigG-only conditioner)."""
    sd = {
        U + "input_blocks.0.0.weight": torch.zeros(320, in_channels, 3, 3),
        U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(640, context),
        U + "label_emb.0.0.weight": torch.zeros(1280, adm),
        "first_stage_model.encoder.conv_in.weight": torch.zeros(128, 3, 3, 3),
    }
    if text == "base":
        sd["conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight"] = torch.zeros(77, 768)
        sd["conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"] = torch.zeros(1280)
    elif text == "refiner":
        sd["conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias"] = torch.zeros(1280)
        sd["conditioner.embedders.0.model.text_projection"] = torch.zeros(1280, 1280)
    return sd


def test_sdxl_and_its_fine_tunes_are_detected() -> None:
    family = detect_family(_sdxl())
    assert (family.id, family.supported, family.resolution, family.prediction_type) == ("sdxl", True, 1024, "epsilon")
    assert "Stable Diffusion XL" in family.description
    assert detect_family(_sdxl(text=None)).id == "sdxl"  # a UNet-only file: told by label_emb
    # v-prediction fine-tunes (NoobAI-XL v-pred) carry an empty v_pred tensor; metadata can say so too.
    v = detect_family({**_sdxl(), "v_pred": torch.zeros(0)})
    assert (v.id, v.supported, v.prediction_type) == ("sdxl-v", True, "v_prediction")
    assert detect_family(_sdxl(), prediction_type="v_prediction").id == "sdxl-v"


@pytest.mark.parametrize("state_dict", [_sdxl(text="refiner", context=1280, adm=2560), _sdxl(text=None, context=1280, adm=2560)])
def test_sdxl_refiner_is_refused_with_advice(state_dict: dict) -> None:
    family = detect_family(state_dict)
    assert family.id == "sdxl-refiner" and not family.supported
    assert "the SDXL refiner cannot be DreamBooth-trained; use the SDXL base model or a fine-tune of it" in family.description


def test_sdxl_inpainting_is_refused() -> None:
    family = detect_family(_sdxl(in_channels=9))
    assert not family.supported and "SDXL inpainting" in family.description


def test_folder_family_from_model_index(tmp_path: Path) -> None:
    import json

    def folder(name: str, index: dict) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model_index.json").write_text(json.dumps(index))
        return tmp_path / name

    base = {"_class_name": "StableDiffusionXLPipeline", "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}
    refiner = {"_class_name": "StableDiffusionXLImg2ImgPipeline", "text_encoder": [None, None],
               "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "requires_aesthetics_score": True}
    assert folder_family(folder("base", base)).id == "sdxl"
    assert folder_family(folder("refiner", refiner)).id == "sdxl-refiner"
    assert folder_family(folder("sd1", {"_class_name": "StableDiffusionPipeline"})) is None
    assert folder_family(tmp_path / "absent") is None


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"], "LoRA"),
        (["unet.down_blocks.0.attentions.0.proj_in.lora_A.weight"], "LoRA"),
        (["down_blocks.0.resnets.0.conv1.weight"], "diffusers format"),
        # A Flux transformer/ file was "not a Stable Diffusion checkpoint", as if dbtui could not train it.
        (["x_embedder.weight", "transformer_blocks.0.attn.to_q.weight", "single_transformer_blocks.0.proj_out.weight"],
         "one component in diffusers format"),
        (["encoder.down.0.block.0.conv1.weight", "decoder.up.0.block.0.conv1.weight"], "VAE"),
        (["model.diffusion_model.double_blocks.0.img_attn.proj.weight"], "Flux"),
        (["classifier.weight", "features.0.weight"], "not a Stable Diffusion checkpoint"),
    ],
)
def test_not_stable_diffusion_says_what_it_is(keys: list[str], says: str) -> None:
    family = detect_family({k: torch.zeros(1) for k in keys})
    assert family.id == "unknown" and not family.supported
    assert says in family.description


def test_other_input_channels_are_refused() -> None:
    family = detect_family(_sd(in_channels=7))
    assert family.id == "unknown" and "7 input channels" in family.description


def test_prediction_hint_from_sidecar_and_metadata(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    assert prediction_hint(model, {}) is None
    assert prediction_hint(model, {"modelspec.prediction_type": "v"}) == "v_prediction"
    assert prediction_hint(model, {"dbtui.prediction_type": "epsilon"}) == "epsilon"
    model.with_suffix(".yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert prediction_hint(model, {"dbtui.prediction_type": "epsilon"}) == "v_prediction"  # the client reads the yaml
    model.with_suffix(".yaml").write_text("model:\n  params:\n    linear_start: 0.00085\n")
    assert prediction_hint(model, {}) == "epsilon"
