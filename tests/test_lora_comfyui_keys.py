"""Every key of the LoRA files dbtui writes reaches a weight of the model in ComfyUI, by its key maps' naming
rules (tests/comfy_lora_keys.py), with matrices and alphas of the shapes that weight needs: SD1, SD2, SDXL and
Flux, text encoders included, on every layer a LoRA can train (the default targets and the rest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.convert import export_lora_diffusers, lora_to_kohya
from engine.convert.flux_lora import export_flux_lora
from tests.comfy_lora_keys import flux_targets, sd_targets, unapplied
from tests.training_helpers import tiny_profile

RANK, ALPHA = 4, 2.0


def _trainable(model: Any) -> list[str]:
    """Every linear and convolution layer: targets beyond the defaults (embeddings are refused for kohya)."""
    kinds = (torch.nn.Linear, torch.nn.Conv2d)
    return [name for name, module in model.named_modules() if isinstance(module, kinds) and "embeddings" not in name]


def _with_lora(model: Any, targets: list[str]) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=targets)
    inject_adapter_in_model(config, model)
    model.peft_config = {"default": config}


def _kohya(folder: Path, out: Path, **family: str) -> dict[str, Any]:
    file = lora_to_kohya(folder, out, **family)
    with safe_open(str(file), framework="pt") as opened:
        metadata = opened.metadata()
    return {"weights": load_file(file), "metadata": metadata}


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_an_sd_lora_on_every_layer_loads_whole_in_comfyui_as_kohya(family: str, tmp_path: Path, tiny_sd2v: Path) -> None:
    from diffusers import StableDiffusionPipeline

    from engine.builtin.tiny_model import build_pipeline
    from engine.builtin.tiny_sdxl import build_sdxl_pipeline

    sdxl = family == "sdxl"
    pipe = build_sdxl_pipeline(seed=0) if sdxl else StableDiffusionPipeline.from_pretrained(tiny_sd2v) \
        if family == "sd2-v" else build_pipeline(seed=0)
    encoders = [pipe.text_encoder, pipe.text_encoder_2] if sdxl else [pipe.text_encoder]
    targets = sd_targets(pipe.unet, encoders, sdxl=sdxl)
    layers = [_trainable(model) for model in (pipe.unet, *encoders)]
    for model, names in zip((pipe.unet, *encoders), layers):
        _with_lora(model, names)
    folder = export_lora_diffusers(tmp_path / "lora", unet=pipe.unet, text_encoder=encoders[0],
                                   text_encoder_2=encoders[1] if sdxl else None, sdxl=sdxl)
    kohya = _kohya(folder, tmp_path / "kohya.safetensors", family=family)

    assert unapplied(kohya["weights"], targets) == []
    modules = {key.rsplit(".", 2)[0] for key in kohya["weights"] if key.endswith(".lora_down.weight")}
    assert all(f"{module}.alpha" in kohya["weights"] for module in modules)
    assert len(modules) == sum(map(len, layers))  # each trained layer, once
    te = "lora_te2_" if sdxl else "lora_te_"
    assert any(key.startswith(te) for key in kohya["weights"])
    # What AUTOMATIC1111 and Forge read to file it, and sd-scripts' statement of one rank and alpha.
    metadata = kohya["metadata"]
    assert metadata["ss_base_model_version"] == {"sd1": "sd_v1", "sd2-v": "sd_v2", "sdxl": "sdxl_base_v1-0"}[family]
    assert metadata["ss_v2"] == str(family == "sd2-v")
    assert metadata["ss_network_dim"] == str(RANK) and float(metadata["ss_network_alpha"]) == RANK  # scale in the weights


def test_a_flux_lora_on_every_layer_kohya_holds_loads_whole_in_comfyui_in_both_formats(tmp_path: Path) -> None:
    from engine.builtin.tiny_flux import build_flux_pipeline

    pipe = build_flux_pipeline(seed=0)
    targets = flux_targets(pipe.transformer, pipe.text_encoder)
    # The final modulation (norm_out.linear) is refused before training when lora_kohya is exported.
    _with_lora(pipe.transformer, [name for name in _trainable(pipe.transformer) if name != "norm_out.linear"])
    _with_lora(pipe.text_encoder, _trainable(pipe.text_encoder))
    folder = export_flux_lora(tmp_path / "lora", pipe.transformer, pipe.text_encoder)

    assert unapplied(load_file(folder / "pytorch_lora_weights.safetensors"), targets) == []
    kohya = _kohya(folder, tmp_path / "kohya.safetensors")
    assert unapplied(kohya["weights"], targets) == []
    assert any(key.startswith("lora_te1_") for key in kohya["weights"])
    assert {key.split("_")[2] for key in kohya["weights"] if key.startswith("lora_unet_")} >= {"double", "single", "img", "txt"}
    assert kohya["metadata"]["ss_base_model_version"] == "flux1"
    assert kohya["metadata"]["ss_network_module"] == "networks.lora_flux"


def test_the_rules_refuse_what_comfyui_would_not_load() -> None:
    """The check itself: a name ComfyUI has no entry for, or matrices of another layer's shape, are reported."""
    from engine.builtin.tiny_model import build_pipeline

    pipe = build_pipeline(seed=0)
    targets = sd_targets(pipe.unet, [pipe.text_encoder], sdxl=False)
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    width = pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.in_features
    good = {f"{name}.lora_down.weight": torch.zeros(2, width), f"{name}.lora_up.weight": torch.zeros(width, 2),
            f"{name}.alpha": torch.tensor(2.0)}
    assert unapplied(good, targets) == []
    # diffusers' peft names of attention, which ComfyUI spells with "processor", and a shape of another layer.
    assert unapplied({"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, width)},
                     targets) == ["not loaded: unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight"]
    wrong = {**good, f"{name}.lora_down.weight": torch.zeros(2, width + 1)}
    assert len(unapplied(wrong, targets)) == 1


def test_a_trained_sd1_lora_with_its_text_encoder_on_other_targets_loads_whole_in_comfyui(tmp_path: Path, tiny_sd1: Path) -> None:
    from diffusers import StableDiffusionPipeline

    from engine.runs.export import export_checkpoint
    from engine.runs.in_process import train

    profile = tiny_profile(tmp_path, training={
        "method": "lora", "train_text_encoder": True, "max_train_steps": 2,
        "lora": {"rank": RANK, "alpha": ALPHA, "unet_targets": ["conv1", "proj_in", "ff.net.2", "time_emb_proj"],
                 "text_encoder_targets": ["fc1", "fc2", "q_proj"]}},
        saving={"output_dir": str(tmp_path / "runs"), "every_n_steps": 1000,
                "export": ["lora_diffusers", "lora_kohya"]})
    outputs = train(profile).outputs
    base = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    targets = sd_targets(base.unet, [base.text_encoder], sdxl=False)

    kohya = load_file(outputs["lora_kohya"])
    assert unapplied(kohya, targets) == []
    assert any("_mlp_fc1." in key for key in kohya) and any("_proj_in." in key for key in kohya)
    # The diffusers file: ComfyUI takes these layers' names (none is an attention projection).
    assert unapplied(load_file(outputs["lora_diffusers"]), targets) == []
    # `dbtui export RUN --step 2`: the final LoRA read back onto the base model and exported again, alike.
    exported = export_checkpoint(Path(outputs["lora_kohya"]).parent.parent, step=2)
    step = load_file(exported["lora_kohya"])
    assert unapplied(step, targets) == [] and step.keys() == kohya.keys()


REAL_UNETS = {  # the real models' UNet layouts (SD1.5's and SDXL base's), built on the meta device: no memory
    "sd1": dict(down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",), block_out_channels=(320, 640, 1280, 1280),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=768, attention_head_dim=8),
    "sdxl": dict(down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(320, 640, 1280),
                 transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048, attention_head_dim=(5, 10, 20),
                 use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816),
}


@pytest.mark.parametrize("family", sorted(REAL_UNETS))
def test_a_lora_on_every_layer_of_a_real_size_unet_converts_to_names_comfyui_loads(family: str, tmp_path: Path) -> None:
    """The tiny models have fewer levels and transformer layers than the real ones: the kohya names of every layer of
    SD1.5's and SDXL's own layouts (rank-1 matrices, no weights) reach ComfyUI's."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    with torch.device("meta"):
        unet = UNet2DConditionModel(**REAL_UNETS[family])
    lora = {}
    for name in _trainable(unet):
        weight = unet.get_submodule(name).weight
        lora[f"unet.{name}.lora_A.weight"] = torch.zeros(1, *weight.shape[1:])
        lora[f"unet.{name}.lora_B.weight"] = torch.zeros(weight.shape[0], 1, *[1] * (weight.dim() - 2))
    (tmp_path / "lora").mkdir()
    save_file(lora, str(tmp_path / "lora" / "pytorch_lora_weights.safetensors"))
    kohya = _kohya(tmp_path / "lora", tmp_path / "kohya.safetensors", family=family)["weights"]

    assert unapplied(kohya, sd_targets(unet, [], sdxl=family == "sdxl")) == []
    assert len([key for key in kohya if key.endswith(".lora_down.weight")]) == len(lora) // 2
