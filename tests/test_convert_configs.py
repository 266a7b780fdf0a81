"""The shipped configs build real-size SD models whose original layout is the published one."""

from __future__ import annotations

import json

import pytest

from engine.convert.detect import FAMILIES
from engine.convert.keymap import to_original
from engine.convert.to_diffusers import CONFIGS


def _original_shapes(family: str) -> dict[str, tuple[int, ...]]:
    """Build the family's models on the meta device (no memory) and map them."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = CONFIGS / family
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    state_dict = to_original(unet.state_dict(), unet.config, vae.state_dict(), vae.config,
                             text.state_dict(), text.config.to_dict())
    return {k: tuple(v.shape) for k, v in state_dict.items()}


SD1_SHAPES = {  # as in v1-5-pruned-emaonly.safetensors
    "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
    "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 768),
    "model.diffusion_model.input_blocks.9.0.op.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.input_blocks.11.0.out_layers.3.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.middle_block.1.proj_out.weight": (1280, 1280, 1, 1),
    "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.output_blocks.5.2.conv.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.output_blocks.8.2.conv.weight": (640, 640, 3, 3),
    "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.ff.net.0.proj.weight": (2560, 320),
    "first_stage_model.decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
    "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight": (256, 128, 1, 1),
    "first_stage_model.encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
    "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc1.weight": (3072, 768),
}
SD2_SHAPES = {  # as in v2-1_768-ema-pruned.safetensors
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
    "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias": (320,),
    "cond_stage_model.model.token_embedding.weight": (49408, 1024),
    "cond_stage_model.model.positional_embedding": (77, 1024),
    "cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight": (3072, 1024),
    "cond_stage_model.model.transformer.resblocks.22.mlp.c_fc.weight": (4096, 1024),
    "cond_stage_model.model.text_projection": (1024, 1024),
}


@pytest.mark.parametrize("family", sorted({family.config_name for family in FAMILIES.values() if not family.xl}))
def test_shipped_config_has_the_published_layout(family: str) -> None:
    shapes = _original_shapes(family)
    sd2 = family.startswith("sd2")
    expected = dict(SD2_SHAPES if sd2 else SD1_SHAPES)
    if "inpaint" in family:
        expected["model.diffusion_model.input_blocks.0.0.weight"] = (320, 9, 3, 3)
    for key, shape in expected.items():
        assert shapes[key] == shape, key
    assert sum(k.startswith("model.diffusion_model.") for k in shapes) == 686  # as the published files
    assert sum(k.startswith("first_stage_model.") for k in shapes) == 248
    assert sum(k.startswith("cond_stage_model.") for k in shapes) == (294 if sd2 else 196)
    scheduler = json.loads((CONFIGS / family / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == FAMILIES[family].prediction_type
    pipeline = json.loads((CONFIGS / family / "model_index.json").read_text())["_class_name"]
    assert pipeline == ("StableDiffusionInpaintPipeline" if "inpaint" in family else "StableDiffusionPipeline")


SDXL_SHAPES = {  # as in sd_xl_base_1.0.safetensors
    "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
    "model.diffusion_model.input_blocks.3.0.op.weight": (320, 320, 3, 3),
    "model.diffusion_model.input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight": (640, 2048),
    "model.diffusion_model.input_blocks.7.1.transformer_blocks.9.ff.net.2.weight": (1280, 5120),
    "model.diffusion_model.middle_block.1.transformer_blocks.9.attn1.to_q.weight": (1280, 1280),
    "model.diffusion_model.output_blocks.2.2.conv.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.output_blocks.5.2.conv.weight": (640, 640, 3, 3),
    "first_stage_model.encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
    "conditioner.embedders.0.transformer.text_model.encoder.layers.11.mlp.fc1.weight": (3072, 768),
    "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
    "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight": (3840, 1280),
    "conditioner.embedders.1.model.text_projection": (1280, 1280),
}


def test_shipped_sdxl_config_has_the_published_layout() -> None:
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = CONFIGS / "sdxl"
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
        text_2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2"))
    state_dict = to_original(unet.state_dict(), unet.config, vae.state_dict(), vae.config,
                             text.state_dict(), text.config.to_dict(), text_2.state_dict())
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    for key, shape in SDXL_SHAPES.items():
        assert shapes[key] == shape, key
    counts = {prefix: sum(k.startswith(prefix) for k in shapes) for prefix in
              ("model.diffusion_model.", "first_stage_model.", "conditioner.embedders.0.", "conditioner.embedders.1.")}
    # All 32 bigG layers are kept; each has 12 tensors (q/k/v fused), plus embeddings, final norm, projection.
    assert counts == {"model.diffusion_model.": 1680, "first_stage_model.": 248,
                      "conditioner.embedders.0.": 196, "conditioner.embedders.1.": 32 * 12 + 5}
    assert len(shapes) == sum(counts.values())
    # diffusers' own reader maps our UNet names back onto every weight of the full-size model.
    unet_original = {k: v for k, v in state_dict.items() if k.startswith("model.diffusion_model.")}
    back = convert_ldm_unet_checkpoint(unet_original, unet.config)
    assert set(back) == set(unet.state_dict())
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert (scheduler["_class_name"], scheduler["prediction_type"], scheduler["timestep_spacing"]) == (
        "EulerDiscreteScheduler", "epsilon", "leading")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline" and index["tokenizer_2"] == ["transformers", "CLIPTokenizer"]
