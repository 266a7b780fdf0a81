"""Flux with its text encoder trained: a LoRA on CLIP-L beside the transformer's, T5 frozen throughout,
and CLIP-L's LoRA in both export formats (diffusers, kohya ``lora_te1_``) and back (tiny Flux, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.models.flux import Flux
from tests.training_helpers import tiny_profile

FLUX = Flux()
PROMPT = "photo of zwx disc"
# Double-stream modules only: diffusers' reader of kohya files splits a single block's fused linear1 at
# Flux.1's real width, which the tiny model has not (tests/test_flux_files.py converts those at real size).
DOUBLE_BLOCK_TARGETS = ["attn.to_out.0", "attn.add_q_proj"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_flux: Path) -> Any:
    """A short LoRA run with train_text_encoder = true, exporting both LoRA formats."""
    from engine.runs.in_process import train

    tmp_path = tmp_path_factory.mktemp("clip-l")
    profile = tiny_profile(
        tmp_path, model={"pretrained": "builtin:tiny-flux"},
        concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": PROMPT}],
        optimizer={"learning_rate": 5e-3},
        training={"method": "lora", "train_text_encoder": True, "max_train_steps": 4,
                  "lora": {"rank": 4, "alpha": 2.0, "unet_targets": DOUBLE_BLOCK_TARGETS}},
        saving={"output_dir": str(tmp_path / "runs"), "every_n_steps": 1000, "export": ["lora_diffusers", "lora_kohya"]})
    captured: dict[str, Any] = {"t5_grad_enabled": []}

    def hook(trainer: Any) -> None:
        captured["trainer"] = trainer
        trainer.components.text_encoders[1].register_forward_pre_hook(
            lambda module, args: captured["t5_grad_enabled"].append(torch.is_grad_enabled()))

    result = train(profile, trainer_hook=hook)
    trainer = captured["trainer"]
    trainer.outputs, trainer.t5_grad_enabled = result.outputs, captured["t5_grad_enabled"]
    return trainer


def _pipe(tiny_flux: Path) -> Any:
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(tiny_flux)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def _embeddings(pipe: Any) -> dict[str, torch.Tensor]:
    return FLUX.encode_text([pipe.tokenizer, pipe.tokenizer_2], [pipe.text_encoder.eval(), pipe.text_encoder_2.eval()],
                            [PROMPT], 1, torch.device("cpu"))


def test_flux_refuses_a_full_fine_tune_of_its_text_encoders_and_takes_a_clip_l_lora(tmp_path: Path) -> None:
    from engine.models.flux import FluxSettingsError

    flux = {"pretrained": "builtin:tiny-flux"}
    with pytest.raises(FluxSettingsError, match='training.method = "lora"'):
        FLUX.check_profile(tiny_profile(tmp_path, model=flux, training={"method": "full", "train_text_encoder": True}))
    FLUX.check_profile(tiny_profile(tmp_path, model=flux, training={"method": "lora", "train_text_encoder": True}))


def test_clip_l_trains_a_lora_while_t5_stays_frozen_bit_for_bit(trained: Any, tiny_flux: Path) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer
    from transformers import CLIPTextModel, T5EncoderModel

    clip, t5 = trained.components.text_encoders
    # Captions were encoded at every step (no text cache), T5's pass each time without autograd.
    assert trained.global_step == 4 and trained.texts.encode_calls == 4
    assert len(trained.t5_grad_enabled) >= 4 and not any(trained.t5_grad_enabled)
    assert any(isinstance(m, BaseTunerLayer) for m in clip.modules())
    assert not any(isinstance(m, BaseTunerLayer) for m in t5.modules()) and not getattr(t5, "peft_config", None)
    assert not t5.training and all(not p.requires_grad and p.grad is None for p in t5.parameters())
    # The optimizer holds the transformer's and CLIP-L's LoRA weights, nothing of T5.
    t5_params = {id(p) for p in t5.parameters()}
    assert not any(id(p) in t5_params for group in trained.optimizer.param_groups for p in group["params"])

    base_t5 = T5EncoderModel.from_pretrained(tiny_flux, subfolder="text_encoder_2").state_dict()
    assert all(torch.equal(t5.state_dict()[key], value) for key, value in base_t5.items())
    clip_lora = {k: v for k, v in clip.state_dict().items() if "lora_" in k}
    assert clip_lora and any(k.endswith("lora_B.default.weight") and v.abs().max() > 0 for k, v in clip_lora.items())
    base_clip = CLIPTextModel.from_pretrained(tiny_flux, subfolder="text_encoder").state_dict()
    own = {k.replace(".base_layer", ""): v for k, v in clip.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(own[key], value) for key, value in base_clip.items())  # its own weights frozen too


def _deltas(model: Any) -> dict[str, torch.Tensor]:
    """{module: the weight change its LoRA makes, (alpha / rank)·B·A}, named without CLIP's "text_model."."""
    from peft.tuners.lora import LoraLayer

    return {name.removeprefix("text_model."): m.scaling[a] * m.lora_B[a].weight @ m.lora_A[a].weight
            for name, m in model.named_modules() if isinstance(m, LoraLayer) for a in m.scaling}


def test_the_diffusers_lora_holds_each_scale_in_its_weights(trained: Any, tiny_flux: Path) -> None:
    """ComfyUI takes the diffusers file's names but not its metadata (alpha), and applies B·A as it is: that is the
    trained change, with alpha = rank in the metadata for diffusers, which loads the same changes."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    file = trained.outputs["lora_diffusers"]
    saved = load_file(file)
    with safe_open(file, framework="pt") as handle:
        packed = json.loads(handle.metadata()["lora_adapter_metadata"])
    assert packed["transformer.lora_alpha"] == packed["text_encoder.lora_alpha"] == 4  # the rank; the profile's is 2
    pipe = _pipe(tiny_flux)
    pipe.load_lora_weights(file)
    for prefix, model, loaded in (("transformer.", trained.components.unet, pipe.transformer),
                                  ("text_encoder.text_model.", trained.components.text_encoders[0], pipe.text_encoder)):
        expected, reloaded = _deltas(model), _deltas(loaded)
        assert expected and set(reloaded) == set(expected)
        for name, delta in expected.items():
            as_is = saved[f"{prefix}{name}.lora_B.weight"] @ saved[f"{prefix}{name}.lora_A.weight"]
            assert torch.allclose(as_is, delta, atol=1e-6) and torch.allclose(reloaded[name], delta, atol=1e-6), name


def test_the_diffusers_lora_loads_clip_l_into_a_plain_flux_pipeline(trained: Any, tiny_flux: Path) -> None:
    from safetensors.torch import load_file

    saved = load_file(trained.outputs["lora_diffusers"])
    assert any(k.startswith("text_encoder.") for k in saved) and not any(k.startswith("text_encoder_2.") for k in saved)
    components = trained.components
    with torch.no_grad():
        expected = FLUX.encode_text(components.tokenizers, [m.eval() for m in components.text_encoders], [PROMPT], 1,
                                    torch.device("cpu"))
    pipe = _pipe(tiny_flux)
    base = _embeddings(pipe)
    pipe.load_lora_weights(trained.outputs["lora_diffusers"])
    loaded = _embeddings(pipe)
    assert torch.allclose(loaded["pooled"], expected["pooled"], atol=1e-5)
    assert (loaded["pooled"] - base["pooled"]).abs().max() > 100 * (loaded["pooled"] - expected["pooled"]).abs().max()
    assert torch.equal(loaded["hidden"], base["hidden"])  # T5's output as the base model's


def test_the_kohya_file_names_clip_l_lora_te1_and_converts_back_to_the_same_embeddings(
        trained: Any, tiny_flux: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from engine.convert import flux_lora_to_diffusers, lora_to_kohya

    kohya = load_file(trained.outputs["lora_kohya"])
    te = {k for k in kohya if k.startswith("lora_te1_")}
    # Every CLIP-L layer's q, k, v and out projections (the profile's text-encoder targets), as ComfyUI maps clip_l.
    layers = trained.components.text_encoders[0].config.num_hidden_layers
    assert te == {f"lora_te1_text_model_encoder_layers_{i}_self_attn_{m}.{part}" for i in range(layers)
                  for m in ("q_proj", "k_proj", "v_proj", "out_proj") for part in ("lora_down.weight", "lora_up.weight", "alpha")}
    assert all(float(kohya[k]) == 4.0 for k in te if k.endswith(".alpha"))  # the rank: the scale is in the weights
    assert not any(k.startswith(("lora_te2_", "lora_te_")) for k in kohya)

    back = flux_lora_to_diffusers(trained.outputs["lora_kohya"], tmp_path / "back")
    base, reference, converted = _pipe(tiny_flux), _pipe(tiny_flux), _pipe(tiny_flux)
    reference.load_lora_weights(trained.outputs["lora_diffusers"])
    converted.load_lora_weights(back)
    before, expected, got = _embeddings(base), _embeddings(reference), _embeddings(converted)
    assert torch.allclose(got["pooled"], expected["pooled"], atol=1e-5)
    assert (got["pooled"] - before["pooled"]).abs().max() > 100 * (got["pooled"] - expected["pooled"]).abs().max()
    assert torch.equal(got["hidden"], expected["hidden"])
    # In dbtui's own (peft) names, so that it converts to kohya again with CLIP-L kept.
    again = load_file(lora_to_kohya(back, tmp_path / "again.safetensors"))
    assert {k for k in again if k.startswith("lora_te1_")} == te
