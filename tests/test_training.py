"""The trainer on the tiny model, CPU: it learns, preserves, caches, buckets and exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.data.images import list_images
from engine.runs.in_process import train
from engine.runs.sinks import read_events
from engine.training.trainer import RunResult
from tests.training_helpers import image_latents, predictions, tiny_profile


def events_of(run_dir: Path, kind: str) -> list:
    return [e for e in read_events(run_dir / "events.jsonl") if e.kind == kind]


def test_loss_falls_and_the_model_learns_the_instance(tmp_path: Path, demo_data: Path) -> None:
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    from engine.builtin import resolve_model

    # From random weights: the pretrained tiny-sd1 already predicts these images' noise well. At 32 px (16x16
    # latents), where a step costs a quarter of one at 64 px, it learns as plainly (the loss falls to about 0.55).
    random_base = Path(resolve_model("builtin:tiny-sd1-random"))
    profile = tiny_profile(tmp_path, model={"pretrained": str(random_base)}, training={"max_train_steps": 30}, optimizer={"learning_rate": 2e-4},
                           dataset={"resolution": 32}, sampling={"num_images": 1, "steps": 2})
    result = train(profile)
    assert result.status == "finished" and result.step == 30
    run_dir = tmp_path / "runs" / "t"
    losses = [e.loss for e in events_of(run_dir, "step_ended")]
    assert len(losses) == 30
    assert sum(losses[-8:]) / 8 < 0.8 * sum(losses[:8]) / 8

    vae = AutoencoderKL.from_pretrained(random_base, subfolder="vae")
    latents = image_latents(vae, list_images(demo_data / "instance"), 32)
    before, noise = predictions(random_base, latents, "photo of zwx disc")
    after, _ = predictions(Path(result.outputs["diffusers"]), latents, "photo of zwx disc")
    error_before = torch.nn.functional.mse_loss(before, noise).item()
    error_after = torch.nn.functional.mse_loss(after, noise).item()
    assert error_after < 0.7 * error_before, (error_before, error_after)

    pipe = StableDiffusionPipeline.from_pretrained(result.outputs["diffusers"])
    assert pipe("photo of zwx disc", num_inference_steps=2, height=32, width=32).images[0].size == (32, 32)
    [finished] = events_of(run_dir, "run_finished")
    assert finished.outputs["diffusers"] == result.outputs["diffusers"]
    samples = events_of(run_dir, "sample_saved")
    assert samples and Path(samples[-1].grid).is_file()
    assert (run_dir / "samples" / "step-000030" / "grid.png").is_file()


def test_prior_preservation_preserves_the_class(tmp_path: Path, demo_data: Path, tiny_sd1: Path) -> None:
    """A base that knows the class drifts less on class inputs when its class images' loss counts (prior preservation)
    than when it is weighted 0."""
    from diffusers import AutoencoderKL

    class_dir = demo_data / "class"
    # The pretrained tiny-sd1 knows discs. Weighted 0, the class images still share every batch: both runs make the
    # same draws (batches, noise, timesteps), so the prior term's gradient is all that differs. Seeds 1-16 at this
    # rate and length gave ratios of 0.58-0.85 (a run without the prior term gives 1).
    concept = {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
               "class_dir": str(class_dir), "class_prompt": "photo of a disc", "num_class_images": 8}
    common = dict(model={"pretrained": str(tiny_sd1)}, concepts=[concept], training={"max_train_steps": 20, "seed": 3},
                  optimizer={"learning_rate": 2e-3})
    runs = {weight: train(tiny_profile(tmp_path / str(weight), prior={"enabled": True, "loss_weight": weight}, **common))
            for weight in (0.0, 1.0)}

    vae = AutoencoderKL.from_pretrained(tiny_sd1, subfolder="vae")
    latents = image_latents(vae, list_images(class_dir), 64)
    reference, _ = predictions(tiny_sd1, latents, "photo of a disc")
    drift = {weight: (predictions(Path(run.outputs["diffusers"]), latents, "photo of a disc")[0] - reference).pow(2).mean().item()
             for weight, run in runs.items()}
    assert drift[1.0] < 0.9 * drift[0.0], drift


def test_lora_run_exports_weights_that_load_in_a_plain_pipeline(tmp_path: Path, tiny_sd1: Path) -> None:
    from diffusers import StableDiffusionPipeline

    profile = tiny_profile(tmp_path, training={"method": "lora", "max_train_steps": 8, "lora": {"rank": 4, "alpha": 4}},
                           optimizer={"learning_rate": 1e-2}, saving={"export": ["lora_diffusers"]})
    result = train(profile)
    assert set(result.outputs) == {"lora_diffusers"}
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(num_inference_steps=2, height=64, width=64, output_type="np")
    plain = pipe("photo of zwx disc", generator=torch.Generator().manual_seed(0), **kwargs).images
    pipe.load_lora_weights(Path(result.outputs["lora_diffusers"]).parent)
    with_lora = pipe("photo of zwx disc", generator=torch.Generator().manual_seed(0), **kwargs).images
    assert with_lora.shape == (1, 64, 64, 3)
    assert abs(with_lora - plain).mean() > 1e-4


def test_lora_with_text_encoder_and_fused_diffusers_export(tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    profile = tiny_profile(tmp_path, training={"method": "lora", "max_train_steps": 3, "train_text_encoder": True,
                                               "text_encoder_stop_fraction": 0.5},
                           saving={"export": ["lora_diffusers", "diffusers"]})
    captured = {}
    result = train(profile, trainer_hook=lambda t: captured.setdefault("trainer", t))
    assert not captured["trainer"].train_text_encoder  # stopped after half the steps
    from safetensors.torch import load_file

    keys = load_file(result.outputs["lora_diffusers"]).keys()
    assert any(k.startswith("text_encoder.") for k in keys) and any(k.startswith("unet.") for k in keys)
    assert StableDiffusionPipeline.from_pretrained(result.outputs["diffusers"])("x", num_inference_steps=1, height=64, width=64).images


def test_caching_encodes_each_image_once_and_each_caption_once(tmp_path: Path, encode_calls: dict[str, int]) -> None:
    calls = encode_calls
    profile = tiny_profile(tmp_path, dataset={"resolution": 64, "hflip": True, "cache_latents": True},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "caption_mode": "caption_file_then_prompt"}], training={"max_train_steps": 12})
    captured = {}
    train(profile, trainer_hook=lambda t: captured.setdefault("trainer", t))
    trainer = captured["trainer"]
    images = len(trainer.examples)
    assert calls["vae"] == 2 * images  # each image once, plain and mirrored; none per step
    assert trainer.latents.encode_calls == images
    assert calls["text"] == len({e.caption for e in trainer.examples})

    calls.update(vae=0, text=0)
    uncached = tiny_profile(tmp_path / "u", dataset={"resolution": 64, "cache_latents": False}, training={"max_train_steps": 5})
    train(uncached)
    assert calls["vae"] == 5  # one per step: batch size 1


def test_v_prediction_trains_against_the_velocity(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-sd2v"}, training={"max_train_steps": 1})
    captured = {}
    train(profile, trainer_hook=lambda t: captured.setdefault("trainer", t))
    trainer = captured["trainer"]
    assert trainer.components.prediction_type == "v_prediction"
    batch = trainer.batches_for(0)[0]
    state = trainer.generator.get_state()
    with torch.no_grad():
        loss = trainer.loss(batch)
    # Recompute by hand from the same random draws: v = sqrt(a)·noise − sqrt(1−a)·x0.
    trainer.generator.set_state(state)
    g = trainer.generator
    latents = trainer.latents.sample(batch.instance, [False], True, g)
    noise = torch.randn(latents.shape, generator=g)
    t = torch.randint(0, 1000, (latents.shape[0],), generator=g)
    alpha = trainer.components.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    velocity = alpha.sqrt() * noise - (1 - alpha).sqrt() * latents
    noisy = alpha.sqrt() * latents + (1 - alpha).sqrt() * noise
    hidden = trainer.texts.get([trainer.examples[i].caption for i in batch.instance])["hidden"]
    with torch.no_grad():
        prediction = trainer.accelerator.unwrap_model(trainer.unet)(noisy, t, hidden).sample
    assert torch.allclose(loss, torch.nn.functional.mse_loss(prediction, velocity), rtol=1e-4)
    assert not torch.allclose(loss, torch.nn.functional.mse_loss(prediction, noise), rtol=1e-2)


@pytest.fixture(scope="module")
def full_run_with_exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult]:
    """(its run folder, its result): a full run of 2 steps named t, exported as diffusers and as one .safetensors file,
    for the two tests that read it (its event log, its exports), which each made that run. They only read it."""
    tmp = tmp_path_factory.mktemp("full")
    return tmp / "runs" / "t", train(tiny_profile(tmp, training={"max_train_steps": 2},
                                                  saving={"export": ["diffusers", "safetensors"]}))


def test_events_jsonl_is_one_object_a_line_and_complete(full_run_with_exports: tuple[Path, RunResult]) -> None:
    run_dir, _ = full_run_with_exports
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["event"] for line in lines]
    assert kinds[0] == "phase_started" and kinds[-1] == "run_finished"
    assert {"run_started", "step_ended", "phase_finished"} <= set(kinds)
    started = next(json.loads(line) for line in lines if '"run_started"' in line)
    assert started["profile"]["name"] == "t" and "torch" in started["versions"] and "gpus" in started["hardware"]


def test_single_file_and_kohya_exports_after_training(full_run_with_exports: tuple[Path, RunResult], tmp_path: Path) -> None:
    from safetensors import safe_open

    _, full = full_run_with_exports
    with safe_open(full.outputs["safetensors"], "pt") as file:
        keys = list(file.keys())
        assert file.metadata()["dbtui.base_model"] == "builtin:tiny-sd1"
        assert 'pretrained = "builtin:tiny-sd1"' in file.metadata()["dbtui.profile"]  # the profile, as convert writes it
    assert any(k.startswith("model.diffusion_model.") for k in keys)
    assert any(k.startswith("first_stage_model.") for k in keys)
    assert any(k.startswith("cond_stage_model.transformer.") for k in keys)

    lora = train(tiny_profile(tmp_path / "lora", training={"method": "lora", "max_train_steps": 2}, saving={"export": ["lora_kohya"]}))
    assert set(lora.outputs) == {"lora_diffusers", "lora_kohya"}
    with safe_open(lora.outputs["lora_kohya"], "pt") as file:
        assert all(k.startswith("lora_unet_") for k in file.keys())


def test_the_model_is_saved_before_the_final_samples_without_the_optimizer_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A final preview that fails (out of GPU memory, say) must not lose the trained model, and
    the optimizer's state is gone before the exports and previews need memory."""
    import engine.training.outputs
    import engine.training.sampling

    seen: dict[str, int] = {}
    trainers: list = []
    real_save_outputs = engine.training.outputs.save_outputs

    def save_outputs(*args, **kwargs):
        seen["optimizer_state_at_export"] = len(trainers[0].optimizer.state)
        return real_save_outputs(*args, **kwargs)

    def broken_preview(*args, **kwargs):
        raise RuntimeError("the preview ran out of memory")

    monkeypatch.setattr(engine.training.outputs, "save_outputs", save_outputs)
    monkeypatch.setattr(engine.training.sampling, "save_samples", broken_preview)
    profile = tiny_profile(tmp_path, training={"max_train_steps": 2}, sampling={"num_images": 1, "steps": 2})
    with pytest.raises(RuntimeError, match="preview ran out of memory"):
        train(profile, trainer_hook=trainers.append,
              step_hooks=[lambda trainer, step: seen.setdefault("optimizer_state_in_training", len(trainer.optimizer.state))])
    assert seen["optimizer_state_in_training"] > 0 and seen["optimizer_state_at_export"] == 0
    assert (tmp_path / "runs" / "t" / "outputs" / "diffusers" / "model_index.json").is_file()
    assert [e.reason for e in events_of(tmp_path / "runs" / "t", "run_failed")] == ["RuntimeError: the preview ran out of memory"]


def _parameters(model) -> dict[str, torch.Tensor]:
    """A copy of the model's weights (fuse_lora changes them in place)."""
    return {name: param.detach().clone() for name, param in model.named_parameters()}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_half_precision_runs_export_fp32_pipelines_with_the_base_weights_untouched(
    method: str, tmp_path: Path, tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under fp16/bf16 the frozen parts train in half precision. The saved pipeline must still be
    all fp32 (a plain from_pretrained then runs it), frozen parts exactly the base's, and a LoRA
    folded into the fp32 base as diffusers' own fuse_lora does. A CPU trains in fp32, so the
    precision a CUDA machine gets is put in by hand (bf16: CPU autocast runs it)."""
    from diffusers import StableDiffusionPipeline

    import engine.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "effective_precision", lambda requested: ("bf16", None))
    lora = method == "lora"
    profile = tiny_profile(tmp_path, training={"method": method, "max_train_steps": 3, "train_text_encoder": lora},
                           precision={"mixed_precision": "bf16"}, optimizer={"learning_rate": 1e-3},
                           saving={"export": ["diffusers"] + (["lora_diffusers"] if lora else [])})
    result = train(profile)

    saved = StableDiffusionPipeline.from_pretrained(result.outputs["diffusers"])
    base = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    assert {saved.unet.dtype, saved.text_encoder.dtype, saved.vae.dtype} == {torch.float32}
    saved.set_progress_bar_config(disable=True)
    assert saved("photo of zwx disc", num_inference_steps=2, height=64, width=64, output_type="np").images.shape == (1, 64, 64, 3)
    assert all(torch.equal(a, b) for a, b in zip(_parameters(saved.vae).values(), _parameters(base.vae).values()))
    unet, base_unet = _parameters(saved.unet), _parameters(base.unet)
    if lora:
        assert torch.equal(unet["conv_in.weight"], base_unet["conv_in.weight"])  # no adapter there
        base.load_lora_weights(Path(result.outputs["lora_diffusers"]).parent)
        base.fuse_lora()
        fused = {**_parameters(base.unet), **{f"te.{k}": v for k, v in _parameters(base.text_encoder).items()}}
        ours = {**unet, **{f"te.{k}": v for k, v in _parameters(saved.text_encoder).items()}}
        fused = {k.replace(".base_layer", ""): v for k, v in fused.items() if "lora_" not in k}
        assert fused.keys() == ours.keys()
        assert all(torch.allclose(ours[k], fused[k], rtol=0, atol=1e-6) for k in ours)
        assert not torch.equal(ours["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"],
                               base_unet["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"])
    else:
        assert not torch.equal(unet["conv_in.weight"], base_unet["conv_in.weight"])  # it trained
        assert all(torch.equal(a, b) for a, b in zip(_parameters(saved.text_encoder).values(), _parameters(base.text_encoder).values()))


def test_a_second_run_in_the_same_process_may_change_the_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wizard's fit test trains in the wizard's process, once per press: accelerate's per-process
    state must not pin the first run's precision."""
    import engine.training.trainer as trainer_module

    precisions = iter([("bf16", None), ("no", None)])
    monkeypatch.setattr(trainer_module, "effective_precision", lambda requested: next(precisions))
    seen = []
    for name in ("first", "second"):
        profile = tiny_profile(tmp_path, name=name, training={"max_train_steps": 1})
        train(profile, trainer_hook=lambda trainer: seen.append(trainer.accelerator.mixed_precision))
    assert seen == ["bf16", "no"]
