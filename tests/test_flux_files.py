"""Flux files in and out: a Black Forest Labs-layout transformer file imported into a diffusers Flux
folder (bf16, fp8, scaled fp8), and Flux LoRAs converted both ways by ``dbtui convert``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from dbtui.cli import main
from engine.convert import detect_family
from engine.convert.flux_layout import original_to_diffusers

BFL = "model.diffusion_model."
FLUX1 = {"width": 3072, "double": 19, "single": 38, "head": 128}  # Flux.1 [dev]'s transformer


@pytest.fixture(scope="module")
def tiny_transformer(tiny_flux: Path) -> dict[str, torch.Tensor]:
    """The tiny Flux transformer's weights, every one random (norms too), so a swapped pair shows."""
    weights = load_file(tiny_flux / "transformer" / "diffusion_pytorch_model.safetensors")
    generator = torch.Generator().manual_seed(1)
    return {key: torch.randn(value.shape, generator=generator) for key, value in weights.items()}


def to_original(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers Flux weights in BFL's layout, written out name by name (independent of the importer's tables)."""
    original: dict[str, torch.Tensor] = {}

    def put(name: str, module: str, *parts: str) -> None:
        for param in ("weight", "bias"):
            original[f"{name}.{param}"] = torch.cat([weights[f"{p}.{param}"] for p in (module, *parts)])

    put("img_in", "x_embedder")
    put("txt_in", "context_embedder")
    put("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1")
    put("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2")
    put("vector_in.in_layer", "time_text_embed.text_embedder.linear_1")
    put("vector_in.out_layer", "time_text_embed.text_embedder.linear_2")
    put("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1")
    put("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2")
    put("final_layer.linear", "proj_out")
    for param in ("weight", "bias"):  # BFL keeps (shift, scale), diffusers (scale, shift)
        scale, shift = weights[f"norm_out.linear.{param}"].chunk(2)
        original[f"final_layer.adaLN_modulation.1.{param}"] = torch.cat([shift, scale])
    doubles = {int(k.split(".")[1]) for k in weights if k.startswith("transformer_blocks.")}
    for i in doubles:
        d, b = f"double_blocks.{i}", f"transformer_blocks.{i}"
        put(f"{d}.img_mod.lin", f"{b}.norm1.linear")
        put(f"{d}.txt_mod.lin", f"{b}.norm1_context.linear")
        put(f"{d}.img_attn.qkv", f"{b}.attn.to_q", f"{b}.attn.to_k", f"{b}.attn.to_v")
        put(f"{d}.txt_attn.qkv", f"{b}.attn.add_q_proj", f"{b}.attn.add_k_proj", f"{b}.attn.add_v_proj")
        put(f"{d}.img_attn.proj", f"{b}.attn.to_out.0")
        put(f"{d}.txt_attn.proj", f"{b}.attn.to_add_out")
        put(f"{d}.img_mlp.0", f"{b}.ff.net.0.proj")
        put(f"{d}.img_mlp.2", f"{b}.ff.net.2")
        put(f"{d}.txt_mlp.0", f"{b}.ff_context.net.0.proj")
        put(f"{d}.txt_mlp.2", f"{b}.ff_context.net.2")
        original[f"{d}.img_attn.norm.query_norm.scale"] = weights[f"{b}.attn.norm_q.weight"]
        original[f"{d}.img_attn.norm.key_norm.scale"] = weights[f"{b}.attn.norm_k.weight"]
        original[f"{d}.txt_attn.norm.query_norm.scale"] = weights[f"{b}.attn.norm_added_q.weight"]
        original[f"{d}.txt_attn.norm.key_norm.scale"] = weights[f"{b}.attn.norm_added_k.weight"]
    singles = {int(k.split(".")[1]) for k in weights if k.startswith("single_transformer_blocks.")}
    for i in singles:
        s, b = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        put(f"{s}.modulation.lin", f"{b}.norm.linear")
        put(f"{s}.linear1", f"{b}.attn.to_q", f"{b}.attn.to_k", f"{b}.attn.to_v", f"{b}.proj_mlp")
        put(f"{s}.linear2", f"{b}.proj_out")
        original[f"{s}.norm.query_norm.scale"] = weights[f"{b}.attn.norm_q.weight"]
        original[f"{s}.norm.key_norm.scale"] = weights[f"{b}.attn.norm_k.weight"]
    assert sum(v.numel() for v in original.values()) == sum(v.numel() for v in weights.values())
    return original


def flux1_row_ids() -> dict[str, torch.Tensor]:
    """Flux.1 [dev]'s whole original layout, each weight one column whose rows hold numbers found nowhere
    else: both converters only move rows, so this checks every row's destination at no memory cost."""
    w, shapes = FLUX1["width"], {}
    for name in ("time_in.in_layer", "time_in.out_layer", "vector_in.in_layer", "vector_in.out_layer",
                 "guidance_in.in_layer", "guidance_in.out_layer", "txt_in", "img_in"):
        shapes[name] = w
    shapes.update({"final_layer.linear": 64, "final_layer.adaLN_modulation.1": 2 * w})
    for i in range(FLUX1["double"]):
        for stream in ("img", "txt"):
            shapes.update({f"double_blocks.{i}.{stream}_mod.lin": 6 * w, f"double_blocks.{i}.{stream}_attn.qkv": 3 * w,
                           f"double_blocks.{i}.{stream}_attn.proj": w, f"double_blocks.{i}.{stream}_mlp.0": 4 * w,
                           f"double_blocks.{i}.{stream}_mlp.2": w})
    for i in range(FLUX1["single"]):
        shapes.update({f"single_blocks.{i}.modulation.lin": 3 * w, f"single_blocks.{i}.linear1": 7 * w,
                       f"single_blocks.{i}.linear2": w})
    norms = [f"double_blocks.{i}.{s}_attn.norm.{q}_norm.scale" for i in range(FLUX1["double"]) for s in ("img", "txt")
             for q in ("query", "key")] + [f"single_blocks.{i}.norm.{q}_norm.scale" for i in range(FLUX1["single"])
                                            for q in ("query", "key")]
    out, start = {}, 0
    for key, rows, column in ([(f"{n}.weight", r, True) for n, r in shapes.items()]
                              + [(f"{n}.bias", r, False) for n, r in shapes.items()]
                              + [(n, FLUX1["head"], False) for n in norms]):
        ids = torch.arange(start, start + rows, dtype=torch.float32)
        out[key], start = (ids.unsqueeze(1) if column else ids), start + rows
    return out


def test_the_layout_mapping_agrees_with_diffusers_converter_on_flux1s_real_layout() -> None:
    from diffusers import FluxTransformer2DModel
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    original = flux1_row_ids()
    theirs = convert_flux_transformer_checkpoint_to_diffusers(dict(original))
    ours = original_to_diffusers(original)
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
    with torch.device("meta"):  # and they are exactly the weights of diffusers' Flux.1 [dev] transformer
        assert set(FluxTransformer2DModel(guidance_embeds=True).state_dict()) == set(ours)


def write_bfl_file(path: Path, original: dict[str, torch.Tensor], prefix: str = BFL) -> Path:
    save_file({prefix + key: value.contiguous() for key, value in original.items()}, path)
    return path


def test_a_bfl_transformer_file_imports_into_a_flux_folder_with_the_same_weights(
        tmp_path: Path, tiny_flux: Path, tiny_transformer: dict[str, torch.Tensor], capsys) -> None:
    from diffusers import FluxPipeline

    file = write_bfl_file(tmp_path / "flux1-dev-finetune.safetensors", to_original(tiny_transformer))
    out = tmp_path / "flux"
    assert main(["convert", "to-diffusers", str(file), str(out), "--components", str(tiny_flux)]) == 0
    assert "Flux.1 [dev]" in capsys.readouterr().out
    imported = load_file(out / "transformer" / "diffusion_pytorch_model.safetensors")
    assert set(imported) == set(tiny_transformer)
    assert all(torch.equal(imported[key], tiny_transformer[key]) for key in tiny_transformer)
    config = json.loads((out / "transformer" / "config.json").read_text())
    expected = json.loads((tiny_flux / "transformer" / "config.json").read_text())
    assert {k: config[k] for k in expected if not k.startswith("_") and k != "out_channels"} == {
        k: v for k, v in expected.items() if not k.startswith("_") and k != "out_channels"}
    # The components' parts came along, and the folder is a Flux pipeline that generates.
    for part in ("vae", "text_encoder", "text_encoder_2", "scheduler"):
        assert (out / part / ("scheduler_config.json" if part == "scheduler" else "config.json")).is_file()
    [t5] = (tiny_flux / "text_encoder_2").glob("*.safetensors")  # linked, not copied, on the same disk
    assert (out / "text_encoder_2" / t5.name).stat().st_ino == t5.stat().st_ino
    pipe = FluxPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    image = pipe("photo of zwx disc", height=64, width=64, num_inference_steps=1, max_sequence_length=32,
                 generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()


def test_fp8_and_comfyuis_scaled_fp8_files_are_widened_to_bf16(
        tmp_path: Path, tiny_flux: Path, tiny_transformer: dict[str, torch.Tensor]) -> None:
    from engine.convert import import_single_file

    original = to_original(tiny_transformer)
    fp8 = {key: value.to(torch.float8_e4m3fn) for key, value in original.items()}
    out = import_single_file(write_bfl_file(tmp_path / "fp8.safetensors", fp8, prefix=""), tmp_path / "fp8",
                             components=tiny_flux)
    imported = load_file(out / "transformer" / "diffusion_pytorch_model.safetensors")
    rounded = {k: v.to(torch.float8_e4m3fn).to(torch.bfloat16) for k, v in tiny_transformer.items()}
    assert all(imported[key].dtype == torch.bfloat16 and torch.equal(imported[key], rounded[key]) for key in rounded)

    # ComfyUI's scaled fp8: each weight divided by its scale before rounding, multiplied back on load.
    scaled = dict(fp8, scaled_fp8=torch.zeros(0, dtype=torch.float8_e4m3fn))
    for key in [k for k in original if k.endswith(".weight") and original[k].dim() == 2]:
        scale = original[key].abs().max() / 448  # e4m3's largest value
        scaled[key] = (original[key] / scale).to(torch.float8_e4m3fn)
        scaled[key.removesuffix(".weight") + ".scale_weight"] = scale.reshape(1)
        scaled[key.removesuffix(".weight") + ".scale_input"] = torch.ones(1)
    out = import_single_file(write_bfl_file(tmp_path / "scaled.safetensors", scaled), tmp_path / "scaled",
                             components=tiny_flux)
    imported = load_file(out / "transformer" / "diffusion_pytorch_model.safetensors")
    qkv = "double_blocks.0.img_attn.qkv"
    expected_q = (scaled[f"{qkv}.weight"].float() * scaled[f"{qkv}.scale_weight"]).to(torch.bfloat16).chunk(3)[0]
    assert torch.equal(imported["transformer_blocks.0.attn.to_q.weight"], expected_q)
    error = (imported["transformer_blocks.0.attn.to_q.weight"].float() - tiny_transformer["transformer_blocks.0.attn.to_q.weight"])
    assert error.abs().max() < 0.1 * tiny_transformer["transformer_blocks.0.attn.to_q.weight"].abs().max()


def test_missing_components_are_named_with_what_to_give(
        tmp_path: Path, tiny_flux: Path, tiny_transformer: dict[str, torch.Tensor], capsys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    file = write_bfl_file(tmp_path / "flux.safetensors", to_original(tiny_transformer))
    partial = tmp_path / "partial"
    shutil.copytree(tiny_flux, partial, ignore=shutil.ignore_patterns("text_encoder_2", "tokenizer_2"))
    assert main(["convert", "to-diffusers", str(file), str(tmp_path / "a"), "--components", str(partial)]) == 2
    message = capsys.readouterr().err
    assert "T5 (text_encoder_2/)" in message and "T5's tokenizer (tokenizer_2/)" in message
    assert "CLIP-L (text_encoder/)" not in message and "--components" in message
    # Without --components the variant's own repository is used; offline and not cached, the message says so.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert main(["convert", "to-diffusers", str(file), str(tmp_path / "b")]) == 2
    message = capsys.readouterr().err
    assert "black-forest-labs/FLUX.1-dev" in message and "--components" in message
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _tiny_original(**changes: Any) -> dict[str, torch.Tensor]:
    keys = {"double_blocks.0.img_attn.norm.key_norm.scale": (16,), "img_in.weight": (64, 64), "guidance_in.in_layer.weight": (64, 256)}
    keys.update(changes)
    return {key: torch.zeros(shape) for key, shape in keys.items() if shape is not None}


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, "Flux.1 [dev] transformer"),
    ({"guidance_in.in_layer.weight": None}, "Flux.1 [schnell] transformer"),
    ({"img_in.weight": (64, 384)}, "384 input channels (Fill or Depth?): not supported"),
    ({"single_stream_modulation.lin.weight": (8, 8)}, "a Flux.2 transformer: not supported"),
    ({"distilled_guidance_layer.in_proj.bias": (8,)}, "a Chroma transformer: not supported"),
])
def test_flux_files_are_recognised_by_their_keys(changes: dict[str, Any], expected: str) -> None:
    for prefix in ("", BFL):
        family = detect_family({prefix + k: v for k, v in _tiny_original(**changes).items()})
        assert expected in family.description
        assert family.supported == ("not supported" not in expected)
        assert family.trains_as == "flux" or not family.supported


def test_a_file_that_is_not_a_whole_flux1_transformer_is_refused_with_its_weights_named(
        tmp_path: Path, tiny_flux: Path, tiny_transformer: dict[str, torch.Tensor], capsys) -> None:
    original = to_original(tiny_transformer)
    del original["single_blocks.1.linear2.weight"]
    file = write_bfl_file(tmp_path / "cut.safetensors", original)
    assert main(["convert", "to-diffusers", str(file), str(tmp_path / "out"), "--components", str(tiny_flux)]) == 2
    message = capsys.readouterr().err
    assert "lacks weights every Flux.1 transformer has" in message and "proj_out.weight" in message
    assert main(["convert", "to-diffusers", str(file), str(tmp_path / "out"), "--components", str(tiny_flux),
                 "--ema"]) == 2
    assert "EMA weights are for Stable Diffusion files" in capsys.readouterr().err


def test_a_bfl_file_as_model_pretrained_trains_from_its_variants_repository_in_the_cache(
        tmp_path: Path, tiny_flux: Path, tiny_transformer: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch) -> None:
    """As SD files do, a Flux file loads straight from model.pretrained; its components come from the cache."""
    import huggingface_hub.constants

    from engine.models.loading import load_components, resolve_model_folder

    repo = tmp_path / "hub" / "models--black-forest-labs--FLUX.1-dev"
    def transformer_weights(folder: str, names: list[str]) -> list[str]:  # as the download leaves them out
        return [n for n in names if Path(folder).name == "transformer" and n.endswith(".safetensors")]

    shutil.copytree(tiny_flux, repo / "snapshots" / ("0" * 40), ignore=transformer_weights)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    file = write_bfl_file(tmp_path / "flux1-dev.safetensors", to_original(tiny_transformer))
    folder = resolve_model_folder(str(file), work_dir=tmp_path / "run")
    components = load_components(folder)
    assert components.family.id == "flux" and folder.is_relative_to(tmp_path / "run")
    weights = components.unet.state_dict()
    assert all(torch.equal(weights[key], tiny_transformer[key]) for key in tiny_transformer)

    # Another file saved under the same name (a run that stopped in set-up, re-run on a new version): converted
    # again, where the old conversion was reused.
    doubled = {key: value * 2 for key, value in tiny_transformer.items()}
    file.unlink()
    write_bfl_file(file, to_original(doubled))
    weights = load_components(resolve_model_folder(str(file), work_dir=tmp_path / "run")).unet.state_dict()
    assert all(torch.equal(weights[key], doubled[key]) for key in doubled)


# -- Flux LoRAs through dbtui convert -------------------------------------------------------------

# Double-stream blocks and top-level layers only: diffusers' reader of kohya files splits a single
# block's linear1 at Flux.1's real 3072 rows (the real-size test below covers single blocks).
TINY_TARGETS = (r"transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v|add_q_proj|add_k_proj|add_v_proj|to_out\.0|to_add_out)"
                r"|ff\.net\.(0\.proj|2)|ff_context\.net\.2|norm1\.linear)|x_embedder|context_embedder|proj_out")


def test_a_flux_lora_converts_to_kohya_and_back_and_the_pipeline_generates_the_same(
        tmp_path: Path, tiny_flux: Path, capsys) -> None:
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig

    from engine.convert.flux_lora import export_flux_lora

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=2.0, init_lora_weights=False, target_modules=TINY_TARGETS))
    export_flux_lora(tmp_path / "lora", transformer)
    kohya, back = tmp_path / "zwx-kohya.safetensors", tmp_path / "back"
    assert main(["convert", "lora-to-kohya", str(tmp_path / "lora"), str(kohya)]) == 0  # told Flux by its names
    assert main(["convert", "lora-to-diffusers", str(kohya), str(back)]) == 0
    assert f"wrote {back}" in capsys.readouterr().out
    assert "lora_unet_double_blocks_1_txt_attn_qkv.lora_down.weight" in load_file(kohya)

    pipe = FluxPipeline.from_pretrained(tiny_flux)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(tmp_path / "lora", adapter_name="trained")
    pipe.load_lora_weights(back, adapter_name="converted")

    def latents(adapter: str | None) -> torch.Tensor:
        if adapter:
            pipe.enable_lora()
            pipe.set_adapters(adapter)
        else:
            pipe.disable_lora()
        return pipe("photo of zwx disc", height=64, width=64, num_inference_steps=2, max_sequence_length=32,
                    generator=torch.Generator().manual_seed(0), output_type="latent").images

    trained, converted, base = latents("trained"), latents("converted"), latents(None)
    assert torch.allclose(converted, trained, atol=1e-5)
    assert (trained - base).abs().max() > 100 * (converted - trained).abs().max()


def test_real_size_flux1_loras_convert_both_ways_with_the_same_weight_changes(tmp_path: Path) -> None:
    """At Flux.1's own sizes (rank 2, so it stays small): single blocks' linear1 too, and a fused module
    with only one trained part comes back with zero changes for the others."""
    from engine.convert import flux_lora_to_diffusers, lora_to_kohya

    w, rank, alpha = FLUX1["width"], 2, 4.0
    shapes = {  # module: (in, out)
        "transformer_blocks.0.attn.to_q": (w, w), "transformer_blocks.0.attn.to_k": (w, w),
        "transformer_blocks.0.attn.to_v": (w, w), "transformer_blocks.0.attn.add_q_proj": (w, w),
        "transformer_blocks.0.ff.net.0.proj": (w, 4 * w), "transformer_blocks.18.attn.to_out.0": (w, w),
        "single_transformer_blocks.0.attn.to_q": (w, w), "single_transformer_blocks.0.attn.to_k": (w, w),
        "single_transformer_blocks.0.attn.to_v": (w, w), "single_transformer_blocks.0.proj_mlp": (w, 4 * w),
        "single_transformer_blocks.37.proj_out": (5 * w, w),
    }
    generator = torch.Generator().manual_seed(0)
    lora = {}
    for module, (fan_in, fan_out) in shapes.items():
        lora[f"transformer.{module}.lora_A.weight"] = torch.randn(rank, fan_in, generator=generator)
        lora[f"transformer.{module}.lora_B.weight"] = torch.randn(fan_out, rank, generator=generator)
    source = tmp_path / "pytorch_lora_weights.safetensors"
    save_file(lora, source, metadata={"lora_adapter_metadata": json.dumps({"transformer.r": rank,
                                                                           "transformer.lora_alpha": alpha})})
    back = load_file(flux_lora_to_diffusers(lora_to_kohya(tmp_path, tmp_path / "kohya.safetensors"), tmp_path / "back")
                     / "pytorch_lora_weights.safetensors")
    modules = {k.removesuffix(".lora_A.weight") for k in back if k.endswith(".lora_A.weight")}
    assert {f"transformer.{m}" for m in shapes} <= modules
    assert modules - {f"transformer.{m}" for m in shapes} == {"transformer.transformer_blocks.0.attn.add_k_proj",
                                                            "transformer.transformer_blocks.0.attn.add_v_proj"}
    for module in modules:  # the weight change on a few inputs: B · A · x (· alpha / rank for the original)
        name = module.removeprefix("transformer.")
        x = torch.randn(back[f"{module}.lora_A.weight"].shape[1], 3, generator=generator)
        got = back[f"{module}.lora_B.weight"] @ (back[f"{module}.lora_A.weight"] @ x)
        expected = (lora[f"{module}.lora_B.weight"] @ (lora[f"{module}.lora_A.weight"] @ x) * alpha / rank
                    if name in shapes else torch.zeros_like(got))
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-3), module


def test_lora_files_of_the_wrong_kind_are_refused_with_what_they_are(tmp_path: Path, capsys) -> None:
    diffusers_lora = tmp_path / "d.safetensors"
    save_file({"transformer.x_embedder.lora_A.weight": torch.zeros(2, 4),
               "transformer.x_embedder.lora_B.weight": torch.zeros(4, 2)}, diffusers_lora)
    assert main(["convert", "lora-to-diffusers", str(diffusers_lora), str(tmp_path / "a")]) == 2
    assert "already a diffusers-format Flux LoRA" in capsys.readouterr().err
    sd_kohya = tmp_path / "sd.safetensors"
    save_file({"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 4)}, sd_kohya)
    assert main(["convert", "lora-to-diffusers", str(sd_kohya), str(tmp_path / "b")]) == 2
    assert "not a kohya or ComfyUI Flux LoRA" in capsys.readouterr().err


# -- bench/suite.py's Flux rows -----------------------------------------------------------------

def test_the_flux_bench_rows_are_valid_runs_and_skip_without_a_gpu(tmp_path: Path, capsys,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.bench_helpers import bench_module

    suite_modules, train_modules = bench_module("suite"), bench_module("bench_train")
    suite, bench_train = next(suite_modules), next(train_modules)
    for model, scale in (("flux", 1), ("tiny-flux", 8)):  # the tiny Flux runs the same rows (tested on a CPU)
        rows = suite.configs_for(model)
        assert set(rows) == {f"flux-lora-{b}-{s}" for b in ("nf4", "bf16") for s in (512, 1024)}
        for name, args in rows.items():
            profile = bench_train.profile_for(bench_train.parse_args(["--model", model, *args]), tmp_path)
            assert profile.model.pretrained == bench_train.MODELS[model][0]
            assert profile.model.quantize == ("nf4" if "-nf4-" in name else None)
            assert profile.dataset.resolution == int(name.rsplit("-", 1)[1]) // scale
            assert (profile.training.method, profile.precision.mixed_precision) == ("lora", "bf16")
    assert bench_train.MODELS["flux"] == ("builtin:flux-random", 1024)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert suite.main(["--model", "flux"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(": skipped: Flux.1's 12 B parameters need a CUDA GPU" in line for line in lines)
    for modules in (suite_modules, train_modules):
        next(modules, None)


def test_the_random_flux_has_flux1_devs_real_sizes() -> None:
    from engine.builtin.flux_random import build_flux_random_pipeline

    with torch.device("meta"):  # no memory: only the shapes
        pipe = build_flux_random_pipeline()
    counts = {name: sum(p.numel() for p in getattr(pipe, name).parameters())
              for name in ("transformer", "vae", "text_encoder", "text_encoder_2")}
    # black-forest-labs/FLUX.1-dev: the transformer's 11.9 B, T5-XXL's encoder 4.76 B, CLIP-L 123 M, the VAE 84 M.
    assert counts["transformer"] == 11_901_408_320 and counts["text_encoder_2"] == 4_762_310_656
    assert 83_000_000 < counts["vae"] < 85_000_000 and counts["text_encoder"] == 123_060_480
    assert pipe.transformer.config.guidance_embeds and pipe.scheduler.config.use_dynamic_shifting


def test_components_of_the_other_variant_are_used_with_a_warning(
        tmp_path: Path, tiny_flux: Path, tiny_transformer: dict[str, torch.Tensor]) -> None:
    from engine.convert import import_single_file

    schnell = tmp_path / "schnell"  # the tiny Flux's parts, described as [schnell] (no guidance embedding)
    shutil.copytree(tiny_flux, schnell)
    config = json.loads((schnell / "transformer" / "config.json").read_text())
    (schnell / "transformer" / "config.json").write_text(json.dumps({**config, "guidance_embeds": False}))
    events: list[Any] = []
    out = import_single_file(write_bfl_file(tmp_path / "dev.safetensors", to_original(tiny_transformer)),
                             tmp_path / "out", components=schnell, emit=events.append)
    [warning] = [e for e in events if e.kind == "warning"]
    assert "is Flux.1 [dev] but the components" in warning.message and "FLUX.1-dev" in warning.advice
    assert json.loads((out / "transformer" / "config.json").read_text())["guidance_embeds"]  # the file decides


def test_a_lora_diffusers_cannot_read_as_flux_is_said_without_an_empty_assertion(tmp_path: Path, monkeypatch) -> None:
    from diffusers import FluxPipeline

    from engine.convert import UnsupportedModelError
    from engine.convert.flux_lora_import import _diffusers_layers

    def refuses(state_dict, **options):
        raise AssertionError()  # as diffusers' key checks do, with no message

    monkeypatch.setattr(FluxPipeline, "lora_state_dict", refuses)
    with pytest.raises(UnsupportedModelError) as raised:
        _diffusers_layers({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": torch.zeros(1)}, tmp_path / "k.safetensors")
    message = str(raised.value)
    assert "could not be read as a Flux.1 LoRA;" in message and "AssertionError" not in message and "()" not in message


def test_to_single_file_of_a_flux_folder_says_single_files_are_for_sd_and_sdxl(tmp_path: Path, capsys) -> None:
    flux = tmp_path / "flux"
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        (flux / part).mkdir(parents=True)
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    assert main(["convert", "to-single-file", str(flux), str(tmp_path / "f.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "is a Flux (or other transformer) model: single files are written for SD1.x, SD2.x and SDXL" in err


def test_a_bfl_file_is_metered_as_flux1_of_its_variant(tmp_path: Path, tiny_transformer: dict[str, torch.Tensor]) -> None:
    """`dbtui fit --estimate-only` on a Flux file: the file holds the transformer alone, so the meter takes FLUX.1's
    published architecture of the variant its keys show (there is no configs/ folder for Flux)."""
    from engine.memory.architecture import architecture_of

    file = write_bfl_file(tmp_path / "flux1-dev-finetune.safetensors", to_original(tiny_transformer))
    architecture = architecture_of(str(file))
    with torch.device("meta"):
        parts = architecture.build()
    assert architecture.family.id == "flux"
    assert sum(p.numel() for p in parts.unet.parameters()) == pytest.approx(11.9e9, rel=0.01)  # FLUX.1 [dev]'s transformer
