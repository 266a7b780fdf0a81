"""LoRA export: diffusers format with its adapter config, and kohya format for the WebUIs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.convert import ConvertError, UnsupportedModelError, export_lora_diffusers, export_lora_kohya
from engine.convert.lora_export import _kohya_alpha
from engine.events import PhaseFinished
from engine.builtin.tiny_model import build_pipeline

RANK, UNET_ALPHA, TEXT_ALPHA = 4, 8, 2  # alphas unlike the rank, so a lost alpha shows


def _lora_pipeline():
    from peft import LoraConfig, inject_adapter_in_model

    pipe = build_pipeline(seed=0)
    pipe.unet.add_adapter(LoraConfig(r=RANK, lora_alpha=UNET_ALPHA, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    # transformers' own add_adapter wants peft >= 0.22; peft's injector does the same job.
    inject_adapter_in_model(
        LoraConfig(r=RANK, lora_alpha=TEXT_ALPHA, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]),
        pipe.text_encoder,
    )
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # lora_B starts at zero: make the adapters change the output
        for model in (pipe.unet, pipe.text_encoder):
            for name, param in model.named_parameters():
                if "lora_" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return pipe


def _image(pipe) -> np.ndarray:
    generator = torch.Generator().manual_seed(0)
    return pipe("a photo", num_inference_steps=1, height=32, width=32, generator=generator, output_type="np").images


def _text_features(pipe) -> torch.Tensor:
    ids = pipe.tokenizer("a photo", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    pipe = _lora_pipeline()
    folder = export_lora_diffusers(tmp_path_factory.mktemp("lora") / "lora", unet=pipe.unet, text_encoder=pipe.text_encoder)
    return pipe, folder


def test_kohya_lora_reproduces_the_in_memory_model(trained, tmp_path: Path) -> None:
    pipe, folder = trained
    events = []
    out = export_lora_kohya(folder, tmp_path / "zwx.safetensors", emit=events.append)
    assert isinstance(events[-1], PhaseFinished)

    weights = load_file(out)
    assert all(k.startswith(("lora_unet_", "lora_te_")) for k in weights)
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight" in weights
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_up.weight" in weights
    # The diffusers file holds each scale in its weights (alpha = rank), so the kohya one does too.
    assert {float(v) for k, v in weights.items() if k.endswith(".alpha")} == {RANK}
    with safe_open(str(out), framework="pt") as file:
        metadata = file.metadata()
    # AUTOMATIC1111 and Forge file a LoRA under SD1, SD2 or SDXL by these two (and hide the others' in their Lora tab).
    assert metadata["ss_base_model_version"] == "sd_v1" and metadata["ss_v2"] == "False"
    assert metadata["ss_network_dim"] == str(RANK) and metadata["ss_network_module"] == "networks.lora"

    fresh = build_pipeline(seed=0)
    base_image, base_text = _image(fresh), _text_features(fresh)
    fresh.load_lora_weights(str(out))
    want_text = _text_features(pipe)
    assert torch.allclose(_text_features(fresh), want_text, atol=1e-5)
    assert not torch.allclose(base_text, want_text, atol=1e-3)
    want = _image(pipe)
    assert np.abs(_image(fresh) - want).max() < 1e-4
    assert np.abs(base_image - want).max() > 0.05


def test_diffusers_lora_holds_each_scale_in_its_weights_and_reloads_the_same(trained) -> None:
    """ComfyUI ignores the adapter config in the file's metadata and applies B·A as it is: that must be
    the trained (alpha / rank)·B·A, and diffusers, which reads alpha = rank from the config, the same."""
    from peft.tuners.lora import LoraLayer

    pipe, folder = trained
    weights = load_file(folder / "pytorch_lora_weights.safetensors")
    with safe_open(str(folder / "pytorch_lora_weights.safetensors"), framework="pt") as file:
        packed = json.loads(file.metadata()["lora_adapter_metadata"])
    assert packed["unet.lora_alpha"] == packed["text_encoder.lora_alpha"] == RANK
    checked = 0
    for component, model in (("unet", pipe.unet), ("text_encoder", pipe.text_encoder)):
        for name, module in model.named_modules():
            if isinstance(module, LoraLayer):
                key = f"{component}.{name if component == 'unet' else 'text_model.' + name.removeprefix('text_model.')}"
                trained_delta = module.scaling["default"] * module.lora_B["default"].weight @ module.lora_A["default"].weight
                delta = weights[f"{key}.lora_B.weight"] @ weights[f"{key}.lora_A.weight"]
                assert torch.allclose(delta, trained_delta, atol=1e-6), key
                checked += 1
    assert checked == len(weights) // 2
    fresh = build_pipeline(seed=0)
    fresh.load_lora_weights(str(folder))
    assert torch.allclose(_text_features(fresh), _text_features(pipe), atol=1e-5)
    assert np.abs(_image(fresh) - _image(pipe)).max() < 1e-4


def test_a_diffusers_lora_with_alpha_only_in_its_metadata_converts_with_that_alpha(tmp_path: Path) -> None:
    """A file from elsewhere (or an older dbtui) keeps alpha in the adapter config: kohya's alpha is it."""
    key = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k"
    source = tmp_path / "pytorch_lora_weights.safetensors"
    save_file({f"{key}.lora_A.weight": torch.ones(RANK, 32), f"{key}.lora_B.weight": torch.ones(32, RANK)}, source,
              metadata={"lora_adapter_metadata": json.dumps({"unet.r": RANK, "unet.lora_alpha": UNET_ALPHA})})
    weights = load_file(export_lora_kohya(source, tmp_path / "k.safetensors"))
    assert float(weights["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k.alpha"]) == UNET_ALPHA


def test_without_adapter_metadata_alpha_is_the_rank(trained, tmp_path: Path) -> None:
    _, folder = trained
    bare = tmp_path / "bare.safetensors"
    save_file(load_file(folder / "pytorch_lora_weights.safetensors"), bare)
    weights = load_file(export_lora_kohya(bare, tmp_path / "k.safetensors"))
    assert {float(v) for k, v in weights.items() if k.endswith(".alpha")} == {RANK}


def test_alpha_rules() -> None:
    assert _kohya_alpha({"lora_alpha": 8, "use_rslora": True}, 4, "unet") == 8 * math.sqrt(4)
    with pytest.raises(UnsupportedModelError, match="alpha_pattern"):
        _kohya_alpha({"lora_alpha": 8, "alpha_pattern": {"to_q": 2}}, 4, "unet")
    # As dbtui's diffusers files say it, each scale folded in: alpha = rank, module by module.
    folded = {"r": 4, "lora_alpha": 4, "rank_pattern": {"to_q": 2}, "alpha_pattern": {"to_q": 2}}
    assert _kohya_alpha(folded, 2, "unet") == 2 and _kohya_alpha(folded, 4, "unet") == 4
    with pytest.raises(UnsupportedModelError, match="DoRA"):
        _kohya_alpha({"use_dora": True}, 4, "unet")


def test_refuses_files_that_are_not_diffusers_loras(trained, tmp_path: Path) -> None:
    _, folder = trained
    kohya = export_lora_kohya(folder, tmp_path / "k.safetensors")
    with pytest.raises(ConvertError, match="already in kohya format"):
        export_lora_kohya(kohya, tmp_path / "again.safetensors")
    other = tmp_path / "other.safetensors"
    save_file({"down_blocks.0.resnets.0.conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(ConvertError, match="not a diffusers-format LoRA"):
        export_lora_kohya(other, tmp_path / "x.safetensors")
    assert not (tmp_path / "again.safetensors").exists() and not (tmp_path / "x.safetensors").exists()


def test_diffusers_lora_metadata_holds_only_fields_every_supported_peft_knows(trained) -> None:
    from engine.convert.lora_export import PORTABLE_FIELDS

    _, folder = trained
    with safe_open(str(folder / "pytorch_lora_weights.safetensors"), framework="pt") as file:
        packed = json.loads(file.metadata()["lora_adapter_metadata"])
    fields = {key.partition(".")[2] for key in packed}
    assert fields <= set(PORTABLE_FIELDS)
    # diffusers 0.35 reads these two unconditionally.
    assert {"unet.target_modules", "unet.rank_pattern", "text_encoder.target_modules", "text_encoder.rank_pattern"} <= set(packed)
    assert "unet.peft_version" not in packed and "text_encoder.lora_alpha" in packed


def test_diffusers_lora_text_encoder_keys_carry_text_model(trained) -> None:
    _, folder = trained
    keys = [k for k in load_file(folder / "pytorch_lora_weights.safetensors") if k.startswith("text_encoder.")]
    assert keys and all(k.startswith("text_encoder.text_model.encoder.layers.") for k in keys)


def test_lora_settings_old_peft_cannot_load_are_refused() -> None:
    from peft import LoraConfig

    from engine.convert.lora_export import portable_lora_config

    plain = portable_lora_config(LoraConfig(r=4, lora_alpha=8, target_modules=["to_q"]), "unet")
    assert plain["r"] == 4 and plain["lora_alpha"] == 8 and plain["target_modules"] == ["to_q"]
    with pytest.raises(UnsupportedModelError, match="ensure_weight_tying"):
        portable_lora_config(LoraConfig(r=4, target_modules=["to_q"], ensure_weight_tying=True), "unet")


def test_an_sd2_lora_is_told_by_its_1024_wide_text_and_says_so_to_webuis(tmp_path: Path) -> None:
    rank = 2
    lora = {}
    for width, name in ((1024, "sd2"), (768, "sd1")):
        key = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k"
        lora = {f"{key}.lora_A.weight": torch.zeros(rank, width), f"{key}.lora_B.weight": torch.zeros(320, rank)}
        source = tmp_path / f"{name}.safetensors"
        save_file(lora, source)
        with safe_open(str(export_lora_kohya(source, tmp_path / f"{name}-kohya.safetensors", sdxl=False)), framework="pt") as file:
            metadata = file.metadata()
        assert (metadata["ss_base_model_version"], metadata["ss_v2"]) == (("sd_v2", "True") if width == 1024 else ("sd_v1", "False"))
        assert metadata["ss_network_alpha"] == str(rank)  # no adapter metadata: alpha is the rank


def test_a_lora_on_an_embedding_is_refused_by_the_kohya_exporters(tmp_path: Path) -> None:
    """peft names an embedding's LoRA lora_embedding_A/B, which went into the kohya file where no WebUI loads it."""
    from engine.convert.flux_lora import flux_lora_to_kohya

    embedding = "text_encoder.text_model.embeddings.token_embedding"
    lora = {f"{embedding}.lora_embedding_A": torch.zeros(2, 99), f"{embedding}.lora_embedding_B": torch.zeros(32, 2)}
    for denoiser, export in (("unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_q", export_lora_kohya),
                             ("transformer.transformer_blocks.0.attn.to_q", flux_lora_to_kohya)):
        source = tmp_path / f"{denoiser.partition('.')[0]}.safetensors"
        save_file(lora | {f"{denoiser}.lora_A.weight": torch.zeros(2, 32), f"{denoiser}.lora_B.weight": torch.zeros(32, 2)}, source)
        with pytest.raises(UnsupportedModelError, match=rf"LoRA on {embedding}, an embedding layer, .*text_encoder_targets"):
            export(source, tmp_path / "kohya.safetensors")
        assert not (tmp_path / "kohya.safetensors").exists()


def test_an_sd2_lora_is_filed_under_sd2_by_its_base_model_when_its_weights_do_not_show_it(tmp_path: Path, tiny_sd1, tiny_sd2v) -> None:
    """A LoRA on to_q and to_out.0 alone reads no text width: it was said to be SD1, which WebUIs hide beside an SD2 model."""
    from types import SimpleNamespace

    from engine.models.deferred_parts import DeferredParts
    from engine.models.registry import family_of

    key = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_q"
    source = tmp_path / "lora.safetensors"
    save_file({f"{key}.lora_A.weight": torch.zeros(2, 64), f"{key}.lora_B.weight": torch.zeros(64, 2)}, source)
    for folder, version in ((tiny_sd1, "sd_v1"), (tiny_sd2v, "sd_v2")):
        dropped = DeferredParts(lambda: pytest.fail("loaded to read a setting of its config"))  # as after caching
        components = SimpleNamespace(folder=folder, text_encoder_parts=dropped, prediction_type=_predicts(folder))
        out = family_of(folder).export_lora_kohya(source, tmp_path / f"{version}.safetensors", components)
        assert _base_model_version(out) == (version, str(version == "sd_v2"))


def _predicts(folder: Path) -> str:
    """What a diffusers folder's scheduler says its model predicts (``Components.prediction_type``)."""
    return json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["prediction_type"]


def test_a_v_prediction_base_is_said_in_the_kohya_file(tmp_path: Path, tiny_sd1, tiny_sd2v) -> None:
    """An SD2-v LoRA's kohya file said ss_v2 and not ss_v_parameterization, which tools read to sample it as v; then
    that, and not ModelSpec's modelspec.prediction_type ("v"/"epsilon", as sd-scripts writes it), which others read."""
    from types import SimpleNamespace

    from engine.models.deferred_parts import DeferredParts
    from engine.models.registry import family_of

    key = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_q"
    source = tmp_path / "lora.safetensors"
    save_file({f"{key}.lora_A.weight": torch.zeros(2, 64), f"{key}.lora_B.weight": torch.zeros(64, 2)}, source)
    for folder, said, predicts in ((tiny_sd1, "False", "epsilon"), (tiny_sd2v, "True", "v")):
        components = SimpleNamespace(folder=folder, text_encoder_parts=DeferredParts.ready([]),
                                     prediction_type=_predicts(folder))
        out = family_of(folder).export_lora_kohya(source, tmp_path / f"{said}.safetensors", components)
        with safe_open(str(out), framework="pt") as file:
            metadata = file.metadata()
        assert (metadata["ss_v_parameterization"], metadata["modelspec.prediction_type"]) == (said, predicts)
    with safe_open(str(export_lora_kohya(source, tmp_path / "bare.safetensors")), framework="pt") as file:
        # nothing said what the base predicts
        assert not {"ss_v_parameterization", "modelspec.prediction_type"} & set(file.metadata())


def _base_model_version(kohya: Path) -> tuple[str, str]:
    with safe_open(str(kohya), framework="pt") as file:
        metadata = file.metadata()
    return metadata["ss_base_model_version"], metadata["ss_v2"]


def test_the_kohya_export_reads_the_loaded_text_encoder_and_without_its_config_file_guesses(tmp_path: Path, tiny_sd2v) -> None:
    """The base's text_encoder/config.json was read from disk at export time: gone, a raw FileNotFoundError."""
    import shutil
    from types import SimpleNamespace

    from transformers import CLIPTextModel

    from engine.models.deferred_parts import DeferredParts
    from engine.models.registry import family_of

    family = family_of(tiny_sd2v)
    encoder = CLIPTextModel.from_pretrained(tiny_sd2v, subfolder="text_encoder")
    base = Path(shutil.copytree(tiny_sd2v, tmp_path / "base"))
    (base / "text_encoder" / "config.json").unlink()
    key = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k"  # reads the text: 32 wide, SD1's guess
    source = tmp_path / "lora.safetensors"
    save_file({f"{key}.lora_A.weight": torch.zeros(2, 32), f"{key}.lora_B.weight": torch.zeros(64, 2)}, source)
    loaded = SimpleNamespace(folder=base, text_encoder_parts=DeferredParts.ready([encoder]), prediction_type="v_prediction")
    assert _base_model_version(family.export_lora_kohya(source, tmp_path / "a.safetensors", loaded)) == ("sd_v2", "True")
    dropped = SimpleNamespace(folder=base, text_encoder_parts=DeferredParts(lambda: pytest.fail("loaded")),
                              prediction_type="v_prediction")
    assert _base_model_version(family.export_lora_kohya(source, tmp_path / "b.safetensors", dropped)) == ("sd_v1", "False")
