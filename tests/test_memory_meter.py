"""The memory meter (engine/memory) on a micro SD model small enough to check by hand.

Weights and optimizer state must be exact; the step's activations are checked against torch's
own CPU allocator on a real trainer step, within 5 % (kernel workspaces the allocator sees and
the meter does not: 0.7 % and 2.2 % here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.memory import estimate_peak
from engine.memory.estimate import GIB, MemoryEstimate
from tests.training_helpers import merge, tiny_profile

RESOLUTION = 32  # the micro VAE halves, the UNet has two levels: 32 px trains 16x16 latents
ACTIVATION_TOLERANCE = 0.05


def _micro_pipeline():
    import tempfile

    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from engine.builtin.tiny_model import write_byte_tokenizer
    from engine.models.sd import assemble_pipeline

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16, layers_per_block=1, block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16, attention_head_dim=8, norm_num_groups=8,
    )
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, layers_per_block=1, norm_num_groups=8)
    with tempfile.TemporaryDirectory() as tmp:
        write_byte_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1, max_position_embeddings=77,
        vocab_size=len(tokenizer), hidden_act="quick_gelu", bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    # Trained weights are never exactly zero, and Prodigy's state depends on that: no zero-initialised biases.
    for model in (unet, vae, text_encoder):
        for param in model.parameters():
            param.data.normal_(0, 0.02)
    return assemble_pipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=DDPMScheduler())


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory, _isolated_cache: Path) -> Path:
    folder = tmp_path_factory.mktemp("micro-sd")
    _micro_pipeline().save_pretrained(folder)
    return folder


def micro_profile(folder: Path, tmp_path: Path, **sections):
    """A profile of the micro model: fp16 mixed precision with gradient checkpointing unless ``sections`` say otherwise."""
    base = {"model": {"pretrained": str(folder)}, "dataset": {"resolution": RESOLUTION},
            "precision": {"mixed_precision": "fp16", "gradient_checkpointing": True}}
    return tiny_profile(tmp_path, **merge(base, sections))


@pytest.fixture(scope="module")
def estimates(micro: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, MemoryEstimate]:
    """The micro model's estimates the tests share (each takes a few seconds)."""
    tmp = tmp_path_factory.mktemp("estimates")
    settings = {
        "full": {},
        "full-fp32": {"precision": {"mixed_precision": "no", "gradient_checkpointing": False}},
        "full-fp32-checkpointing": {"precision": {"mixed_precision": "no", "gradient_checkpointing": True}},
        "lora": {"training": {"method": "lora"}},
        "lora-prior": {"training": {"method": "lora"}, "prior": {"enabled": True},
                       "concepts": [{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                     "class_dir": "builtin:demo-class", "class_prompt": "photo of a disc"}]},
        "full-savers": {"precision": {"mixed_precision": "bf16", "bf16_weights": True}, "optimizer": {"fused_backward": True}},
    }
    return {name: estimate_peak(micro_profile(micro, tmp, **extra)) for name, extra in settings.items()}


def prepared(folder: Path, profile, dtype: torch.dtype = torch.float16):
    """The micro model loaded for real and prepared by the trainer's own code."""
    from engine.models.loading import load_components
    from engine.training.trainable import prepare_models

    components = load_components(folder)
    unet_params, text_params = prepare_models(components, profile, torch.device("cpu"), dtype)
    return components, unet_params + text_params


def unet_numel(folder: Path) -> int:
    from diffusers import UNet2DConditionModel

    return sum(p.numel() for p in UNet2DConditionModel.from_pretrained(folder, subfolder="unet").parameters())


# -- weights and optimizer state: exact ------------------------------------------------------

def test_the_weights_of_a_full_fine_tune_are_the_fp32_unet_and_nothing_else(micro: Path, estimates) -> None:
    # Latents and prompts are cached, so the VAE and the text encoder have left the GPU.
    assert estimates["full"].weights == unet_numel(micro) * 4


def test_the_weights_of_a_lora_are_the_half_precision_unet_and_the_fp32_adapter(micro: Path, estimates, tmp_path: Path) -> None:
    _, adapter = prepared(micro, micro_profile(micro, tmp_path, training={"method": "lora"}))
    adapter_numel = sum(p.numel() for p in adapter)
    assert adapter_numel > 0
    assert estimates["lora"].weights == unet_numel(micro) * 2 + adapter_numel * 4


def test_without_cached_latents_the_fp32_vae_stays_on_the_gpu(micro: Path, tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    profile = micro_profile(micro, tmp_path, training={"method": "lora"}, dataset={"cache_latents": False})
    vae_numel = sum(p.numel() for p in AutoencoderKL.from_pretrained(micro, subfolder="vae").parameters())
    _, adapter = prepared(micro, profile)
    # fp16 training keeps the VAE in fp32 (it overflows in fp16).
    assert estimate_peak(profile).weights == unet_numel(micro) * 2 + sum(p.numel() for p in adapter) * 4 + vae_numel * 4


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("name", ["adamw", "adamw8bit", "lion", "lion8bit", "prodigy", "adafactor"])
def test_the_optimizer_state_rule_equals_the_real_optimizer_state(name: str, method: str, micro: Path, tmp_path: Path) -> None:
    from engine.memory.fake_models import PreparedModel
    from engine.memory.live_bytes import storage_bytes
    from engine.memory.meter import trained_shapes
    from engine.memory.optimizer_state import state_bytes
    from engine.training.optim import build_optimizer

    profile = micro_profile(micro, tmp_path, training={"method": method}, optimizer={"name": name})
    components, trainable = prepared(micro, profile)
    shapes = trained_shapes(PreparedModel(components, trainable, []))
    optimizer = build_optimizer(name, [{"params": trainable, "lr": 1e-4}], profile.optimizer, 1e-4)
    for param in trainable:
        param.grad = torch.randn_like(param)
    optimizer.step()
    real = storage_bytes([v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)])
    assert state_bytes(name, shapes, beta1=profile.optimizer.beta1) == real


def test_every_optimizer_a_profile_can_name_has_a_rule() -> None:
    from typing import get_args

    from engine.memory.optimizer_state import UPDATE_TEMPORARIES, NoOptimizerRuleError, ParamShape, state_bytes
    from engine.profile.training_sections import OptimizerName

    shapes = [ParamShape((64, 64), 4)]
    for name in get_args(OptimizerName):
        assert state_bytes(name, shapes) > 0 and name in UPDATE_TEMPORARIES
    with pytest.raises(NoOptimizerRuleError, match="no rule for optimizer 'sgd'"):
        state_bytes("sgd", shapes)


def test_the_estimate_carries_the_rule_for_its_optimizer(micro: Path, estimates, tmp_path: Path) -> None:
    """AdamW: two fp32 moments and a 4-byte step per trained tensor, by hand."""
    _, trainable = prepared(micro, micro_profile(micro, tmp_path))
    assert estimates["full"].optimizer_state == sum(8 * p.numel() + 4 for p in trainable)


def test_lora_cuts_gradients_and_optimizer_state_to_the_adapters_size(micro: Path, estimates, tmp_path: Path) -> None:
    _, adapter = prepared(micro, micro_profile(micro, tmp_path, training={"method": "lora"}))
    lora, full = estimates["lora"], estimates["full"]
    assert lora.optimizer_state == sum(8 * p.numel() + 4 for p in adapter)
    assert lora.gradients <= sum(4 * p.numel() for p in adapter)
    assert lora.optimizer_state < full.optimizer_state / 10 and lora.gradients < full.gradients / 10


def test_8bit_adamw_keeps_about_a_quarter_of_adamws_state_at_sd15_size() -> None:
    from diffusers import UNet2DConditionModel

    from engine.convert.to_diffusers import CONFIGS
    from engine.memory.optimizer_state import ParamShape, state_bytes

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(CONFIGS / "sd1", subfolder="unet"))
    shapes = [ParamShape(tuple(p.shape), 4) for p in unet.parameters()]
    ratio = state_bytes("adamw8bit", shapes) / state_bytes("adamw", shapes)
    # One byte per moment instead of four, plus a float32 absmax per 256 values: 2.03 / 8.
    assert ratio == pytest.approx(0.254, abs=0.002)


# -- activations ---------------------------------------------------------------------------

def _allocator_peak(step) -> int:
    """The most bytes torch's CPU allocator held at once during ``step``, counted from its start.

    The profiler's memory reporter sees every allocation and free the allocator makes, kernel
    workspaces included, and reports its running total with each.
    """
    from torch._C._profiler import _ExtraFields_Allocation
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()

    def events(nodes):
        for node in nodes:
            yield node
            yield from events(node.children)

    totals = [node.extra_fields.total_allocated for node in events(profiler.profiler.kineto_results.experimental_event_tree())
              if isinstance(node.extra_fields, _ExtraFields_Allocation)]
    return max(totals)


@pytest.mark.parametrize("kind", ["full-fp32", "full-fp32-checkpointing"])
def test_the_steps_memory_matches_the_cpu_allocator_on_a_real_trainer_step(kind: str, micro: Path, estimates, tmp_path: Path) -> None:
    """The trainer's own step (forward, loss, backward) on the CPU in fp32, as the meter counts it on fake tensors."""
    from engine.training.trainer import Trainer

    checkpointing = kind.endswith("checkpointing")
    profile = micro_profile(micro, tmp_path, precision={"mixed_precision": "no", "gradient_checkpointing": checkpointing})
    trainer = Trainer(profile, tmp_path / "run")
    trainer.setup()
    batch = trainer.batches_for(0)[0]

    def step() -> None:
        with trainer.accelerator.autocast():
            loss = trainer.loss(batch)
        trainer.accelerator.backward(loss)
        for param in trainer.unet_params:
            param.grad = None

    step()  # the first step also fills kernels' one-time caches; a steady step is what the meter counts
    measured = _allocator_peak(step)
    estimate = estimates[kind]
    assert estimate.peak_phase == "backward"
    # What the step itself allocates: gradients and activations (weights and the state exist before it).
    assert estimate.gradients + estimate.activations == pytest.approx(measured, rel=ACTIVATION_TOLERANCE)


def test_gradient_checkpointing_lowers_activations(estimates) -> None:
    assert estimates["full-fp32-checkpointing"].activations < 0.6 * estimates["full-fp32"].activations


def test_prior_preservation_doubles_the_batch_and_raises_activations(estimates) -> None:
    alone, prior = estimates["lora"], estimates["lora-prior"]
    assert (alone.batch, prior.batch) == (1, 2)
    assert prior.activations > 1.5 * alone.activations


def test_autocast_copies_of_fp32_weights_are_gone_before_the_backward_pass_peaks(micro: Path, estimates) -> None:
    """Autocast caches an fp16 copy of every fp32 weight it casts (those of convolutions and linear
    layers; norms run in fp32) until its context ends. The trainer runs the backward pass outside it,
    so at the backward pass's peak only the copies that gradient checkpointing makes again for one
    block are alive. Counting all of them, the meter was 16.5 % over SD1.5's fp16 run on an H200."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(micro, subfolder="unet")
    cast = sum(p.numel() for m in unet.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for p in m.parameters(recurse=False))
    assert 0 < estimates["full"].autocast_weight_copies < cast * 2 / 4
    assert estimates["full-fp32"].autocast_weight_copies == 0


def test_the_fused_step_with_bf16_weights_holds_no_gradients_and_halves_the_weights(micro: Path, estimates) -> None:
    savers, plain = estimates["full-savers"], estimates["full"]
    assert savers.weights == unet_numel(micro) * 2  # bf16, no fp32 master copy
    assert savers.gradients < plain.gradients / 10  # each freed once its weight has stepped
    # bf16 weights need no bf16 copy (only the norms' few weights are cast, to fp32).
    assert savers.autocast_weight_copies < plain.weights / 100
    assert savers.peak_phase == "backward"


def test_cuda_autocast_rules_hold_inside_and_are_gone_after() -> None:
    import torch.nn.functional as F

    from engine.memory.cuda_autocast import cuda_autocast

    x = torch.randn(1, 8, 4, 4)
    weight = torch.randn(8, 8, 1, 1, requires_grad=True)
    with cuda_autocast(torch.float16):
        conv = F.conv2d(x, weight)
        # On CUDA, norms and softmax run in fp32 under autocast; CPU autocast alone would keep fp16.
        assert (conv.dtype, F.group_norm(conv, 2).dtype, F.softmax(conv, -1).dtype) == (torch.float16, torch.float32, torch.float32)
    with torch.autocast("cpu", dtype=torch.float16):
        assert F.group_norm(F.conv2d(x, weight), 2).dtype == torch.float16


# -- other families, where users read it ----------------------------------------------------

def test_sdxl_counts_both_text_encoders_when_they_train(tiny_sdxl: Path, tmp_path: Path) -> None:
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    profile = tiny_profile(tmp_path, model={"pretrained": str(tiny_sdxl)},
                           training={"method": "full", "train_text_encoder": True}, precision={"mixed_precision": "bf16"})
    numel = sum(p.numel() for p in UNet2DConditionModel.from_pretrained(tiny_sdxl, subfolder="unet").parameters())
    numel += sum(p.numel() for kind, sub in ((CLIPTextModel, "text_encoder"), (CLIPTextModelWithProjection, "text_encoder_2"))
                 for p in kind.from_pretrained(tiny_sdxl, subfolder=sub).parameters())
    estimate = estimate_peak(profile)
    # Both encoders train in fp32 beside the UNet; the buffers (CLIP's position ids) add a little.
    assert numel * 4 <= estimate.weights < numel * 4 * 1.01
    assert estimate.optimizer_state == pytest.approx(8 * numel, rel=0.01)


def test_a_single_file_is_measured_at_its_familys_architecture(micro: Path, tmp_path: Path) -> None:
    """The trainer converts a single file with the configs dbtui ships for its family; the meter reads the same."""
    from engine.convert import export_single_file
    from engine.memory.architecture import architecture_of

    architecture = architecture_of(str(export_single_file(micro, tmp_path / "micro.safetensors")))
    with torch.device("meta"):
        parts = architecture.build()
    assert architecture.family.id == "sd" and "micro.safetensors" in architecture.label
    assert sum(p.numel() for p in parts.unet.parameters()) == pytest.approx(859.5e6, rel=0.001)  # SD1.5's UNet


def test_a_hub_model_whose_configs_cannot_be_had_is_a_clear_error(monkeypatch) -> None:
    from engine.memory.architecture import ArchitectureUnavailableError, architecture_of

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArchitectureUnavailableError, match="hf download nobody-here/no-such-model --local-dir FOLDER"):
        architecture_of("nobody-here/no-such-model")


@pytest.mark.parametrize("source, family, unet_parameters", [
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "sd", 859.5e6),
    ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl", 2567.5e6),
])
def test_the_shipped_profiles_base_models_are_estimated_offline(source: str, family: str, unet_parameters: float,
                                                                 tmp_path: Path, monkeypatch) -> None:
    """Neither cached nor downloadable: the configs dbtui keeps for conversion describe them."""
    from engine.memory.architecture import architecture_of

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    architecture = architecture_of(source)
    with torch.device("meta"):
        parts = architecture.build()
    assert architecture.family.id == family and source in architecture.label
    assert sum(p.numel() for p in parts.unet.parameters()) == pytest.approx(unet_parameters, rel=0.001)


def test_the_fit_line_says_which_cards_hold_the_peak_with_the_context_and_slack() -> None:
    from engine.memory.estimate import ALLOCATOR_SLACK, CUDA_CONTEXT_BYTES

    def estimate(peak_gib: float) -> MemoryEstimate:
        return MemoryEstimate(weights=int(peak_gib * GIB), gradients=0, optimizer_state=0, activations=0, caches=0,
                              autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8, seconds=0.0)

    room = (12 * GIB - CUDA_CONTEXT_BYTES) / (1 + ALLOCATOR_SLACK) / GIB
    assert estimate(room - 0.01).fit_line() == "fits 8 GB ✗ · 12 GB ✓ · 16 GB ✓ · 24 GB ✓"
    assert estimate(room + 0.01).fit_line() == "fits 8 GB ✗ · 12 GB ✗ · 16 GB ✓ · 24 GB ✓"
    assert MemoryEstimate.from_dict(estimate(3.0).to_dict()) == estimate(3.0)


def test_dbtui_fit_shows_the_estimate_on_a_machine_without_a_gpu(micro: Path, tmp_path: Path, capsys) -> None:
    from dbtui.cli import main
    from engine.profile import save_profile

    path = save_profile(micro_profile(micro, tmp_path), tmp_path / "fit.toml")
    assert main(["fit", str(path), "--estimate-only"]) == 0
    out = capsys.readouterr().out
    assert "memory estimate:   fits 8 GB ✓ · 12 GB ✓ · 16 GB ✓ · 24 GB ✓" in out
    for part in ("weights", "gradients", "optimizer state", "activations", "caches", "peak allocated", "CUDA context"):
        assert part in out
    assert "fit test:" not in out  # nothing trained


def test_dbtui_fit_says_a_lora_target_that_matches_no_module_and_exits_2(micro: Path, tmp_path: Path, capsys) -> None:
    """It was a crash (exit 3, peft's error); the run failed the same way after caching."""
    from dbtui.cli import main
    from engine.profile import save_profile

    profile = micro_profile(micro, tmp_path, training={"method": "lora", "lora": {"unet_targets": ["to_q", "nonexistent_layer"]}})
    assert main(["fit", str(save_profile(profile, tmp_path / "fit.toml")), "--estimate-only"]) == 2
    out = capsys.readouterr().out
    assert "not available (training.lora.unet_targets: 'nonexistent_layer' matches no module of the model" in out
    assert "to_q, to_k, to_v, to_out.0" in out


def test_the_step_shape_is_the_largest_bucket(micro: Path, tmp_path: Path) -> None:
    profile = micro_profile(micro, tmp_path, training={"method": "lora"},
                            dataset={"bucketing": True, "buckets": [[32, 32], [48, 32], [32, 48], [40, 40]]})
    estimate = estimate_peak(profile)
    assert (estimate.width, estimate.height) == (40, 40)
