"""Flux.1 on the model-family layer, on the tiny Flux (CPU): flow matching, packing, prompts, LoRA
(plain and on an NF4 base), its two export formats, a full fine-tune, and exact resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.models.flow_objective import FlowObjective, fixed_shift, resolution_mu
from engine.models.flux import Flux, image_ids, pack, unpack
from engine.profile.training_sections import FlowSection
from tests.training_helpers import image_latents, tiny_profile

FLUX = Flux()
CPU = torch.device("cpu")
PROMPT = "photo of zwx disc"


@pytest.fixture(scope="module")
def flux_pipe(tiny_flux: Path) -> Any:
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(tiny_flux)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _losses(run_dir: Path) -> list[float]:
    from engine.runs.sinks import read_events

    return [e.loss for e in read_events(run_dir / "events.jsonl") if e.kind == "step_ended"]


def test_latents_pack_into_2x2_tokens_row_by_row_and_unpack_back() -> None:
    latents = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)  # 2 channels, 4 rows, 6 columns
    tokens = pack(latents)
    assert tokens.shape == (1, 2 * 3, 2 * 4)  # (4/2)·(6/2) tokens of 2 channels × 2×2 pixels
    # Token 0: channel 0's pixels (0,0) (0,1) (1,0) (1,1), then channel 1's; token 1 is one patch to the right.
    assert tokens[0, 0].tolist() == [0, 1, 6, 7, 24, 25, 30, 31]
    assert tokens[0, 1].tolist() == [2, 3, 8, 9, 26, 27, 32, 33]
    assert tokens[0, 3].tolist() == [12, 13, 18, 19, 36, 37, 42, 43]  # the second row of patches
    assert torch.equal(unpack(tokens, 4, 6), latents)
    assert image_ids(4, 6, CPU, torch.float32).tolist() == [[0, r, c] for r in range(2) for c in range(3)]


def test_flow_matching_noisy_input_and_target_by_hand(flux_pipe: Any) -> None:
    objective = FlowObjective(flux_pipe.scheduler, FlowSection(), patch=2)
    latents, noise = torch.full((2, 16, 4, 4), 2.0), torch.full((2, 16, 4, 4), -1.0)
    timesteps = torch.tensor([250.0, 900.0])  # σ = 0.25 and 0.9
    noisy = objective.noisy(latents, noise, timesteps)
    assert torch.allclose(noisy[0], torch.full((16, 4, 4), 0.75 * 2 + 0.25 * -1))
    assert torch.allclose(noisy[1], torch.full((16, 4, 4), 0.1 * 2 + 0.9 * -1))
    assert torch.equal(objective.target(latents, noise, timesteps), torch.full((2, 16, 4, 4), -3.0))
    assert objective.loss_weights(timesteps) is None
    cosmap = FlowObjective(flux_pipe.scheduler, FlowSection(loss_weighting="sigma_sqrt"), patch=2)
    assert torch.allclose(cosmap.loss_weights(timesteps), torch.tensor([1 / 0.25**2, 1 / 0.9**2]))


def test_timestep_shift_is_the_schedulers_own_and_grows_with_the_image() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.training_utils import compute_density_for_timestep_sampling

    dynamic = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                              base_image_seq_len=256, max_image_seq_len=4096)
    # The dynamic shift's μ is the base shift at 256 tokens and the max shift at 4096 (512 px and 1024 px for Flux).
    assert resolution_mu(256, dynamic.config) == pytest.approx(0.5) and resolution_mu(4096, dynamic.config) == pytest.approx(1.15)
    objective = FlowObjective(dynamic, FlowSection(), patch=2)
    u = torch.linspace(0.05, 0.95, 7)
    for size in (32, 128):  # latents of 256 and 4096 tokens
        mu = resolution_mu((size // 2) ** 2, dynamic.config)
        dynamic.set_timesteps(sigmas=u.flip(0).numpy(), mu=mu)  # the inference path shifts the same way
        assert torch.allclose(objective.shifted(u, (size // 2) ** 2), dynamic.sigmas[:-1].flip(0), atol=1e-6)
    assert (objective.shifted(u, 4096) > objective.shifted(u, 256)).all()  # more tokens, more noise

    static = FlowMatchEulerDiscreteScheduler(shift=3.0)
    static.set_timesteps(sigmas=u.flip(0).numpy())
    fixed = FlowObjective(dynamic, FlowSection(shift=3.0), patch=2)  # the profile's fixed shift wins
    assert torch.allclose(fixed.shifted(u, 4096), static.sigmas[:-1].flip(0), atol=1e-6)
    assert torch.allclose(fixed_shift(u, 1.0), u)

    latents = torch.zeros(3, 16, 32, 32)
    drawn = objective.sample_timesteps(latents, torch.Generator().manual_seed(5))
    u = compute_density_for_timestep_sampling("logit_normal", 3, logit_mean=0.0, logit_std=1.0, mode_scale=1.29,
                                              generator=torch.Generator().manual_seed(5))
    assert torch.allclose(drawn, objective.shifted(u, 256) * 1000)


def test_prompts_are_encoded_as_the_flux_pipeline_encodes_them(flux_pipe: Any) -> None:
    prompts = [PROMPT, "a much longer caption " * 40]  # past CLIP's 77 tokens, within T5's 512
    with torch.no_grad():
        ours = FLUX.encode_text([flux_pipe.tokenizer, flux_pipe.tokenizer_2], [flux_pipe.text_encoder, flux_pipe.text_encoder_2],
                                prompts, 1, CPU)
        hidden, pooled, _ = flux_pipe.encode_prompt(prompts, prompt_2=None, device=CPU, max_sequence_length=512)
    assert ours["hidden"].shape == (2, 512, 32) and ours["pooled"].shape == (2, 32)
    assert torch.allclose(ours["hidden"], hidden, atol=1e-6) and torch.allclose(ours["pooled"], pooled, atol=1e-6)


def test_the_transformer_gets_packed_latents_sigma_ids_and_the_training_guidance() -> None:
    from types import SimpleNamespace

    seen: dict[str, Any] = {}

    def transformer(**kwargs: Any) -> tuple[torch.Tensor]:
        seen.update(kwargs)
        return (kwargs["hidden_states"] * 2,)

    transformer.config = SimpleNamespace(guidance_embeds=True)  # type: ignore[attr-defined]
    noisy = torch.randn(2, 16, 4, 6)
    text = {"hidden": torch.zeros(2, 7, 32), "pooled": torch.ones(2, 32)}
    training = tiny_profile(Path("."), training={"flow": {"guidance": 3.5}}).training
    out = FLUX.denoise(transformer, noisy, torch.tensor([250.0, 500.0]), text, [], training=training)
    assert torch.equal(out, noisy * 2)  # unpacked back to the latents' shape
    assert seen["hidden_states"].shape == (2, 6, 64) and seen["timestep"].tolist() == [0.25, 0.5]
    assert seen["guidance"].tolist() == [3.5, 3.5] and seen["txt_ids"].shape == (7, 3) and seen["img_ids"].shape == (6, 3)
    assert torch.equal(seen["pooled_projections"], text["pooled"])


def test_settings_flux_cannot_honour_are_refused_with_what_to_do(tmp_path: Path) -> None:
    from engine.errors import DbtuiError
    from engine.models.sd import StableDiffusion
    from engine.profile import ProfileError

    for training, key, fix in (({"min_snr_gamma": 5.0}, "training.min_snr_gamma", "remove it"),
                               ({"clip_skip": 2}, "training.clip_skip", "set it to 1"),
                               ({"train_text_encoder": True}, "training.train_text_encoder", "set it to false")):
        with pytest.raises(DbtuiError, match=f"^{key}: .*{fix}"):
            FLUX.check_profile(tiny_profile(tmp_path, training=training))
    with pytest.raises(DbtuiError, match=r"dataset.buckets.1: 72x56 is not a multiple of 16 on every side.*e\.g\. 64/80x48/64"):
        FLUX.check_profile(tiny_profile(tmp_path, dataset={"resolution": 64, "bucketing": True, "buckets": [[64, 64], [72, 56]]}))
    with pytest.raises(DbtuiError, match=r"remove \[training.flow\]"):
        StableDiffusion().check_profile(tiny_profile(tmp_path, training={"flow": {"shift": 3.0}}))
    with pytest.raises(ProfileError, match="model.quantize"):
        tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux", "quantize": "nf4"}, training={"method": "full"})


def test_flux_in_fp16_is_warned_of_where_bf16_and_fp32_are_not(tmp_path: Path) -> None:
    """fp16 can overflow Flux's T5 and transformer: a warning (some GPUs have nothing else), not a refusal."""
    from engine.models.sd import StableDiffusion

    profile = tiny_profile(tmp_path)
    [(key, message)] = FLUX.profile_warnings(profile, "fp16")
    assert key == "precision.mixed_precision" and "overflow to NaN" in message and 'Use "bf16"' in message
    assert FLUX.profile_warnings(profile, "bf16") == [] and FLUX.profile_warnings(profile, "no") == []
    assert StableDiffusion().profile_warnings(profile, "fp16") == []


def test_a_negative_prompt_for_flux_is_warned_of_as_unused(tmp_path: Path) -> None:
    """Flux's pipeline takes none: it was dropped without a word, and still changed the class images' settings."""
    profile = tiny_profile(tmp_path, sampling={"negative_prompt": "blurry"},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_negative_prompt": "low quality"}])
    said = FLUX.profile_warnings(profile, "bf16")
    assert [key for key, _ in said] == ["sampling.negative_prompt", "concepts.0.class_negative_prompt"]
    assert all("takes no negative prompt" in message for _, message in said)


def _negative_prompt_profile(tmp_path: Path) -> Any:
    """A one-step Flux LoRA whose concept has a class_negative_prompt and one class image to make, in tmp_path/class."""
    profile = _prior_lora_profile(tmp_path, class_dir=str(tmp_path / "class"), class_images=1)
    concept = profile.concepts[0].model_copy(update={"class_negative_prompt": "low quality"})
    training = profile.training.model_copy(update={"max_train_steps": 1})
    return profile.model_copy(update={"concepts": [concept], "training": training})


@pytest.fixture(scope="module")
def class_image_made(tmp_path_factory: pytest.TempPathFactory, tiny_flux: Path) -> Path:
    """The class image a run of ``_negative_prompt_profile`` generated (CLASS/generated-*/NAME): the two tests below each
    trained this same run first; now it is trained once and each test works on its own copy of CLASS."""
    [made] = [e.path for e in _trained(_negative_prompt_profile(tmp_path_factory.mktemp("negative-prompt"))).examples
              if e.is_class]
    return made


def _class_folder_copy(made: Path, tmp_path: Path) -> Path:
    """``made`` in this test's copy of its class folder (tmp_path/class, where ``_negative_prompt_profile`` looks)."""
    import shutil

    shutil.copytree(made.parents[1], tmp_path / "class")
    return tmp_path / "class" / made.parent.name / made.name


def test_a_negative_prompt_flux_does_not_read_makes_no_fresh_set_of_class_images(tmp_path: Path, class_image_made: Path) -> None:
    """It was part of the class images' settings: adding one, or removing it as validate advises, generated every class
    image again, the same images, into a fresh folder; and `dbtui dataset check` then named the wrong set as reused."""
    from engine.dataset.profile_settings import concept_settings

    profile = _negative_prompt_profile(tmp_path)
    generated = _class_folder_copy(class_image_made, tmp_path)
    assert json.loads((generated.parent / "manifest.json").read_text())["negative_prompt"] == ""
    assert concept_settings(profile)["class_generated"] == (generated.parent, 1)


def test_a_set_of_class_images_kept_by_a_negative_prompt_before_flux_ignored_it_is_reused(tmp_path: Path,
                                                                                           class_image_made: Path) -> None:
    """Runs before 375a300 kept Flux's class images by the profile's class_negative_prompt: after it, such a set was not
    found (the images are now kept by ""), and the next run generated every class image again, the same images."""
    from engine.dataset.profile_settings import concept_settings
    from engine.training.class_images import generated_folder

    profile = _negative_prompt_profile(tmp_path)
    made = _class_folder_copy(class_image_made, tmp_path)
    manifest = json.loads((made.parent / "manifest.json").read_text())
    manifest["negative_prompt"] = "low quality"  # as such a run kept it
    manifest.pop("weights_digest")  # nor did it record the model's hash
    settings = {key: value for key, value in manifest.items() if key != "images"}
    earlier = generated_folder(tmp_path / "class", settings)
    made.parent.rename(earlier)
    (earlier / "manifest.json").write_text(json.dumps(manifest))
    assert concept_settings(profile)["class_generated"] == (earlier, 1)
    [reused] = [e.path for e in _trained(profile).examples if e.is_class]
    assert reused == earlier / made.name
    assert list((tmp_path / "class").glob("generated-*")) == [earlier]


def _flow_error(transformer: Any, latents: torch.Tensor, text: dict[str, torch.Tensor], objective: FlowObjective) -> float:
    """Mean squared error of the velocity prediction on fixed noise and σ from 0.1 to 0.9."""
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
    timesteps = torch.linspace(100, 900, latents.shape[0])
    with torch.no_grad():
        prediction = FLUX.denoise(transformer.eval(), objective.noisy(latents, noise, timesteps), timesteps, text, [])
    return torch.nn.functional.mse_loss(prediction, objective.target(latents, noise, timesteps)).item()


def _instance_latents(tiny_flux: Path, demo_data: Path) -> torch.Tensor:
    from diffusers import AutoencoderKL

    from engine.data.images import list_images

    vae = AutoencoderKL.from_pretrained(tiny_flux, subfolder="vae")
    scaled = image_latents(vae, list_images(demo_data / "instance"), 64)
    return scaled - vae.config.shift_factor * vae.config.scaling_factor  # (mean - shift) · scale, as training sees them


def _prior_lora_profile(tmp_path: Path, class_dir: str = "builtin:demo-class", class_images: int = 8, **sections: Any) -> Any:
    return tiny_profile(
        tmp_path, model={"pretrained": "builtin:tiny-flux", **sections.pop("model", {})},
        concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": PROMPT, "class_dir": class_dir,
                   "class_prompt": "photo of a disc", "num_class_images": class_images}],
        prior={"enabled": True, "steps": 2}, optimizer={"learning_rate": 5e-3},
        training={"method": "lora", "max_train_steps": 30, "lora": {"rank": 8, "alpha": 4.0}}, **sections)


def _trained(profile: Any) -> Any:
    from engine.runs.in_process import train

    captured: dict[str, Any] = {}
    result = train(profile, trainer_hook=lambda trainer: captured.setdefault("trainer", trainer))
    captured["trainer"].outputs = result.outputs
    return captured["trainer"]


def _assert_learns(trainer: Any, tiny_flux: Path, demo_data: Path) -> None:
    from diffusers import FluxTransformer2DModel

    losses = _losses(trainer.run_dir)
    assert len(losses) == 30 and sum(losses[-8:]) / 8 < 0.9 * sum(losses[:8]) / 8, losses
    latents = _instance_latents(tiny_flux, demo_data)
    components = trainer.components
    with torch.no_grad():
        text = FLUX.encode_text(components.tokenizers, components.text_encoders, [PROMPT] * len(latents), 1, CPU)
    before = _flow_error(FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer"), latents, text, trainer.objective)
    after = _flow_error(components.unet, latents, text, trainer.objective)
    assert after < 0.85 * before, (before, after)


def test_a_lora_with_prior_preservation_learns_the_instance_and_exports_loras_that_load(
        tmp_path: Path, tiny_flux: Path, demo_data: Path, flux_pipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from diffusers import AutoencoderKL, FluxPipeline
    from PIL import Image
    from safetensors.torch import load_file

    calls = {"vae": 0}
    vae_encode = AutoencoderKL.encode

    def counting_encode(self, x, *args, **kwargs):
        calls["vae"] += x.shape[0]
        return vae_encode(self, x, *args, **kwargs)

    shutil.copytree(demo_data / "class", tmp_path / "class")  # 8 images: 2 more are generated with the Flux pipeline
    monkeypatch.setattr(AutoencoderKL, "encode", counting_encode)
    trainer = _trained(_prior_lora_profile(tmp_path, class_dir=str(tmp_path / "class"), class_images=10,
                                           sampling={"num_images": 1, "steps": 2},
                                           saving={"export": ["lora_diffusers", "lora_kohya"]}))
    monkeypatch.undo()
    examples = trainer.examples
    generated = [e.path for e in examples if e.is_class and e.path.parent.name.startswith("generated-")]
    assert len(generated) == 2 and all(Image.open(path).size == (64, 64) for path in generated)
    made_with = json.loads((generated[0].parent / "manifest.json").read_text())
    assert made_with["guidance_scale"] == 3.5  # prior.guidance_scale unset: Flux.1 [dev]'s usual value
    assert sum(e.is_class for e in examples) == 10 and calls["vae"] == len(examples)  # each image encoded once
    # Each caption once (both encoders), and the preview's negative prompt with them (its prompt is the instance caption).
    assert trainer.texts.encode_calls == len({e.caption for e in examples} | {""}) == 3
    assert (trainer.run_dir / "samples" / "step-000030" / "grid.png").is_file()  # a preview with the Flux pipeline
    _assert_learns(trainer, tiny_flux, demo_data)

    # The in-memory model, the diffusers LoRA in a plain FluxPipeline, and the kohya file applied as
    # ComfyUI applies it all predict the same.
    trained = trainer.components.unet.eval()
    inputs = {"hidden_states": torch.randn(1, 16, 64, generator=torch.Generator().manual_seed(1)),
              "encoder_hidden_states": torch.randn(1, 7, 32), "pooled_projections": torch.randn(1, 32),
              "timestep": torch.tensor([0.6]), "img_ids": image_ids(8, 8, CPU, torch.float32), "txt_ids": torch.zeros(7, 3),
              "guidance": torch.tensor([1.0]), "return_dict": False}
    with torch.no_grad():
        expected = trained(**inputs)[0]
        pipe = FluxPipeline.from_pretrained(tiny_flux)
        pipe.set_progress_bar_config(disable=True)
        base_image = pipe(PROMPT, num_inference_steps=2, height=64, width=64, output_type="np",
                          generator=torch.Generator().manual_seed(0)).images[0]
        pipe.load_lora_weights(trainer.outputs["lora_diffusers"])
        assert torch.allclose(pipe.transformer(**inputs)[0], expected, atol=1e-5)
        image = pipe(PROMPT, num_inference_steps=2, height=64, width=64, output_type="np",
                     generator=torch.Generator().manual_seed(0)).images[0]
        assert image.shape == (64, 64, 3) and abs(image - base_image).max() > 1e-3

        kohya = load_file(trainer.outputs["lora_kohya"])
        assert any(k.startswith("lora_unet_double_blocks_0_img_attn_qkv.") for k in kohya)
        assert any(k.startswith("lora_unet_single_blocks_1_linear1.") for k in kohya)
        base = pipe.transformer.__class__.from_pretrained(tiny_flux, subfolder="transformer")
        for module, delta in _comfyui_deltas(kohya, width=64).items():
            base.get_submodule(module).weight += delta
        assert torch.allclose(base(**inputs)[0], expected, atol=1e-5)


def _comfyui_deltas(kohya: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """Each diffusers module's weight change from a kohya Flux LoRA: up · down · alpha / rank on the
    original (fused) module, as ComfyUI applies it, split the way the original layers fuse them."""
    from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers

    deltas = {}
    # Double blocks through diffusers' own converter (independent of ours), which bakes alpha / rank in.
    double = {k: v.clone() for k, v in kohya.items() if k.startswith("lora_unet_double_blocks_")}
    converted = _convert_kohya_flux_lora_to_diffusers(double)
    for key in (k for k in converted if k.endswith(".lora_A.weight")):
        module = key.removeprefix("transformer.").removesuffix(".lora_A.weight")
        deltas[module] = converted[key.replace("lora_A", "lora_B")] @ converted[key]
    # Single blocks by hand: diffusers' converter knows only Flux.1's real widths.
    for name in {k.split(".")[0] for k in kohya if k.startswith("lora_unet_single_blocks_")}:
        block, layer = name.removeprefix("lora_unet_single_blocks_").split("_", 1)
        down, up = kohya[f"{name}.lora_down.weight"], kohya[f"{name}.lora_up.weight"]
        delta = up @ down * kohya[f"{name}.alpha"] / down.shape[0]
        prefix = f"single_transformer_blocks.{block}."
        if layer == "linear1":
            for part, rows in zip(("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), delta.split([width] * 3 + [4 * width])):
                deltas[prefix + part] = rows
        else:
            deltas[prefix + {"linear2": "proj_out"}[layer]] = delta
    return deltas


def test_a_partly_trained_fused_module_exports_with_zero_rows_for_the_untrained_parts(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from engine.convert.flux_lora import flux_lora_to_kohya

    width, rank = 8, 2
    generator = torch.Generator().manual_seed(0)
    lora = {}
    for part in ("attn.to_q", "attn.to_v"):  # no k, no MLP input: linear1 fuses q, k, v and the MLP input
        key = f"transformer.single_transformer_blocks.3.{part}"
        lora[f"{key}.lora_A.weight"] = torch.randn(rank, width, generator=generator)
        lora[f"{key}.lora_B.weight"] = torch.randn(width, rank, generator=generator)
    source = tmp_path / "lora.safetensors"
    save_file(lora, source, metadata={"lora_adapter_metadata": json.dumps({"transformer.r": rank, "transformer.lora_alpha": 1.0})})
    out = flux_lora_to_kohya(source, tmp_path / "kohya.safetensors")
    kohya = load_file(out)
    with safe_open(str(out), framework="pt") as file:
        metadata = file.metadata()
    # As sd-scripts' flux_train_network.py writes them (networks.lora is its SD1/SD2/SDXL module).
    assert (metadata["ss_base_model_version"], metadata["ss_network_module"]) == ("flux1", "networks.lora_flux")
    assert "modelspec.prediction_type" not in metadata  # Flux is flow matching: sd-scripts writes none
    name = "lora_unet_single_blocks_3_linear1"
    assert set(kohya) == {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"}
    down, up = kohya[f"{name}.lora_down.weight"], kohya[f"{name}.lora_up.weight"]
    assert down.shape == (2 * rank, width) and up.shape == (3 * width + 4 * width, 2 * rank)
    delta = up @ down * kohya[f"{name}.alpha"] / down.shape[0]  # as ComfyUI applies it
    q, k, v, mlp = delta.split([width, width, width, 4 * width])
    prefix = "transformer.single_transformer_blocks.3"
    for part, rows in (("attn.to_q", q), ("attn.to_v", v)):
        expected = lora[f"{prefix}.{part}.lora_B.weight"] @ lora[f"{prefix}.{part}.lora_A.weight"] * 1.0 / rank
        assert torch.allclose(rows, expected, atol=1e-6)
    assert not k.any() and not mlp.any()


def test_a_kohya_flux_lora_states_its_rank_and_alpha_as_sd_scripts_does(tmp_path: Path) -> None:
    """Its fused modules hold the summed rank (3 or 4 times the LoRA's): the file stated no ss_network_dim or
    ss_network_alpha, which SD and SDXL files carry, or the fused module's where only it trained (4 for rank 2).
    sd-scripts states the LoRA's rank and alpha (network_dim, network_alpha), those of each module it trains."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from engine.convert.flux_lora import flux_lora_to_kohya

    width, rank = 8, 2
    generator = torch.Generator().manual_seed(0)
    for parts in (("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp", "proj_out"), ("attn.to_q", "attn.to_v")):
        lora = {}
        for part in parts:
            key = f"transformer.single_transformer_blocks.3.{part}"
            inputs = 5 * width if part == "proj_out" else width
            lora[f"{key}.lora_A.weight"] = torch.randn(rank, inputs, generator=generator)
            lora[f"{key}.lora_B.weight"] = torch.randn(4 * width if part == "proj_mlp" else width, rank, generator=generator)
        source = tmp_path / f"lora{len(parts)}.safetensors"
        save_file(lora, source, metadata={"lora_adapter_metadata": json.dumps({"transformer.r": rank,
                                                                               "transformer.lora_alpha": 4.0})})
        out = flux_lora_to_kohya(source, tmp_path / f"kohya{len(parts)}.safetensors")
        with safe_open(str(out), framework="pt") as file:
            metadata = file.metadata()
        assert (metadata.get("ss_network_dim"), metadata.get("ss_network_alpha")) == ("2", "4")


def test_a_lora_on_an_nf4_base_learns_while_the_base_stays_quantized_and_unchanged(
        tmp_path: Path, tiny_flux: Path, demo_data: Path) -> None:
    import bitsandbytes as bnb
    from diffusers import FluxTransformer2DModel

    from engine.models.quantize import quantize_blocks

    # A preview halfway: the base runs in eval mode, then trains on.
    trainer = _trained(_prior_lora_profile(tmp_path, model={"quantize": "nf4"},
                                           sampling={"num_images": 1, "steps": 2, "every_n_steps": 15},
                                           saving={"export": ["lora_diffusers", "diffusers"]}))
    assert (trainer.run_dir / "samples" / "step-000015" / "grid.png").is_file()
    _assert_learns(trainer, tiny_flux, demo_data)
    fresh = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    assert quantize_blocks(fresh, "nf4", compute_dtype=torch.float32, device=CPU) == 40  # every block's linear layer
    expected = {name: m.weight for name, m in fresh.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    trained = {name.replace(".base_layer", ""): m.weight for name, m in trainer.components.unet.named_modules()
               if isinstance(m, bnb.nn.Linear4bit)}
    assert trained.keys() == expected.keys()
    for name, weight in trained.items():
        assert weight.dtype == torch.uint8 and not weight.requires_grad
        assert torch.equal(weight, expected[name]), name  # the 4-bit base took no step
    # The fused pipeline is the fp32 base plus the LoRA's change, not the 4-bit weights it trained on.
    base = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    fused = FluxTransformer2DModel.from_pretrained(trainer.outputs["diffusers"], subfolder="transformer")
    layer = trainer.components.unet.transformer_blocks[0].attn.to_q
    delta = layer.get_delta_weight("default")
    assert torch.allclose(fused.transformer_blocks[0].attn.to_q.weight, base.transformer_blocks[0].attn.to_q.weight + delta)
    assert delta.abs().max() > 0


def test_an_int8_base_takes_a_lora_step_and_keeps_its_weights(tiny_flux: Path) -> None:
    import bitsandbytes as bnb
    from diffusers import FluxTransformer2DModel
    from peft import LoraConfig

    from engine.models.quantize import quantize_blocks

    transformer = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer").requires_grad_(False)
    assert quantize_blocks(transformer, "int8", compute_dtype=torch.float32, device=CPU) == 40
    frozen = {name: m.weight.clone() for name, m in transformer.named_modules() if isinstance(m, bnb.nn.Linear8bitLt)}
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=list(FLUX.default_lora_targets)))
    ups = [p for name, p in transformer.named_parameters() if "lora_B" in name]  # zero until the first step
    assert len(ups) == 2 * 12 + 2 * 4 and not any(p.any() for p in ups)  # 12 targets per double block, 4 per single
    optimizer = torch.optim.AdamW([p for p in transformer.parameters() if p.requires_grad], lr=1e-2)
    noisy, text = torch.randn(1, 16, 8, 8), {"hidden": torch.randn(1, 7, 32), "pooled": torch.randn(1, 32)}
    FLUX.denoise(transformer, noisy, torch.tensor([500.0]), text, []).square().mean().backward()
    optimizer.step()
    assert all(p.any() for p in ups)  # gradients reached every adapter through the 8-bit layers
    for name, module in transformer.named_modules():
        if isinstance(module, bnb.nn.Linear8bitLt):
            assert module.weight.dtype == torch.int8 and torch.equal(module.weight, frozen[name.replace(".base_layer", "")])


def test_a_full_fine_tune_saves_a_flux_pipeline_that_generates(tmp_path: Path, tiny_flux: Path) -> None:
    from diffusers import FluxPipeline
    from safetensors.torch import load_file

    trainer = _trained(tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"},
                                    training={"method": "full", "max_train_steps": 2}, optimizer={"learning_rate": 1e-3}))
    saved = Path(trainer.outputs["diffusers"])
    weights = "transformer/diffusion_pytorch_model.safetensors"
    before, after = load_file(tiny_flux / weights), load_file(saved / weights)
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    pipe = FluxPipeline.from_pretrained(saved)
    pipe.set_progress_bar_config(disable=True)
    assert pipe(PROMPT, num_inference_steps=2, height=64, width=64).images[0].size == (64, 64)


def test_sigkill_and_resume_of_a_flux_lora_ends_with_the_same_lora(tmp_path: Path, tiny_flux: Path) -> None:
    import signal

    from safetensors.torch import load_file

    from engine.profile import load_profile
    from engine.runs.checkpoints import latest_checkpoint
    from engine.runs.folder import RunFolder
    from engine.runs.worker import main as worker_main
    from tests.runs_helpers import KILL_AFTER_STEP, profile_file, trained_as_by_dbtui_run
    from tests.test_runs import start_worker

    path = profile_file(tmp_path, model={"pretrained": "builtin:tiny-flux"},
                        training={"method": "lora", "max_train_steps": 4, "seed": 11, "flow": {"loss_weighting": "cosmap"}},
                        dataset={"resolution": 64, "hflip": True, "center_crop": False}, optimizer={"learning_rate": 1e-3},
                        saving={"every_n_steps": 2, "keep_last_n": 3, "export": ["lora_diffusers"]})
    killed = tmp_path / "killed"
    started = start_worker(killed, path, KILL_AFTER_STEP, "3")
    # The reference trains in this process meanwhile, as the trainer process trains it: a process of its own added
    # only its start (its imports) and its end.
    reference = trained_as_by_dbtui_run(load_profile(path)).path
    assert started.wait(timeout=600) == -signal.SIGKILL
    checkpoint = latest_checkpoint(RunFolder(killed))
    assert checkpoint.name == "step-00000002" and (checkpoint / "lora" / "transformer.safetensors").is_file()
    # The resume in this process, through the trainer process's own entry point: what comes back from the checkpoint
    # alone is tested (the SIGKILL ended the process that held the rest), and a process of its own cost its imports.
    assert worker_main([str(killed), "--resume", "latest"]) == 0
    a = load_file(reference / "outputs" / "lora" / "pytorch_lora_weights.safetensors")
    b = load_file(killed / "outputs" / "lora" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
