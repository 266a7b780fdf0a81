"""Pure helpers of training: optimizers, schedulers, losses, precision, model resolution."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.models.loading import ModelNotFoundError, resolve_model_folder
from engine.profile.training_sections import OptimizerSection
from engine.models.noise_objective import min_snr_weights, target_for
from engine.training.losses import make_noise
from engine.training.optim import build_lr_scheduler, build_optimizer
from engine.training.precision import configure_gpu_maths, effective_precision


@pytest.mark.parametrize("name", ["adamw", "adamw8bit", "lion", "lion8bit", "prodigy", "adafactor"])
def test_every_optimizer_takes_a_step(name: str) -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 64)
    before = layer.weight.detach().clone()
    optimizer = build_optimizer(name, [{"params": list(layer.parameters())}], OptimizerSection(), 1e-3 if name != "prodigy" else 1.0)
    layer(torch.randn(4, 64)).pow(2).mean().backward()
    optimizer.step()
    assert not torch.equal(before, layer.weight)


def test_adamw_on_a_cpu_is_torch_fused_step_with_adamw_maths() -> None:
    """The demo's optimizer: torch's default on a CPU stepped weight by weight in Python, a fifth of its step."""
    torch.manual_seed(0)
    layers = [torch.nn.Linear(64, 64) for _ in range(2)]
    layers[1].load_state_dict(layers[0].state_dict())
    fused = build_optimizer("adamw", [{"params": list(layers[0].parameters())}], OptimizerSection(), 1e-3)
    looped = torch.optim.AdamW(layers[1].parameters(), lr=1e-3, weight_decay=OptimizerSection().weight_decay)
    assert fused.defaults["fused"] is True
    batch = torch.randn(4, 64)
    for layer, optimizer in zip(layers, (fused, looped)):
        for _ in range(3):
            optimizer.zero_grad()
            layer(batch).pow(2).mean().backward()
            optimizer.step()
    torch.testing.assert_close(layers[0].weight, layers[1].weight)


@pytest.mark.parametrize("scheduler", ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"])
def test_every_lr_scheduler(scheduler: str) -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=1.0)
    settings = OptimizerSection(lr_scheduler=scheduler, lr_warmup_steps=2, lr_cycles=2, lr_power=2.0)
    lr = build_lr_scheduler(optimizer, settings, total_steps=10)
    seen = []
    for _ in range(10):
        optimizer.step()
        lr.step()
        seen.append(lr.get_last_lr()[0])
    if scheduler == "constant":
        assert set(seen) == {1.0}
    else:
        assert len(set(seen)) > 1


def test_the_polynomial_schedule_steps_a_per_weight_optimizer() -> None:
    """A fused backward step or bf16 weights (one optimizer per weight) under the polynomial schedule stopped the run
    in its set-up with "KeyError: 'lr'": diffusers reads the rate it decays from in the optimizer's defaults."""
    from engine.training.optim import build_step_optimizer

    settings = OptimizerSection(lr_scheduler="polynomial")
    weights = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    optimizer = build_step_optimizer([{"params": weights, "lr": 1e-4}], settings, 1e-4, per_weight=True)
    schedule = build_lr_scheduler(optimizer, settings, total_steps=10)
    for _ in range(5):
        optimizer.step()
        schedule.step()
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([(1e-4 - 1e-7) / 2 + 1e-7] * 2)


def test_velocity_target_and_noise_offset() -> None:
    scheduler = SimpleNamespace(config=SimpleNamespace(prediction_type="v_prediction"), get_velocity=lambda x, n, t: x * 2 + n)
    x, n = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    assert torch.equal(target_for(scheduler, x, n, torch.tensor([1])), x * 2)
    g = torch.Generator().manual_seed(0)
    plain = make_noise(x, g, 0.0)
    g = torch.Generator().manual_seed(0)
    offset = make_noise(x, g, 0.5)
    difference = offset - plain
    assert not torch.allclose(difference, torch.zeros_like(difference))
    assert torch.allclose(difference, difference[:, :, :1, :1].expand_as(difference))  # constant per channel


def test_min_snr_weights_clip_high_snr_only(tiny_sd1: Path) -> None:
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_pretrained(tiny_sd1, subfolder="scheduler")
    weights = min_snr_weights(scheduler, torch.tensor([1, 999]), gamma=5.0)
    assert weights[0] < 0.1 and torch.isclose(weights[1], torch.tensor(1.0))


def test_min_snr_weights_stay_finite_where_a_zero_terminal_snr_schedule_ends(tiny_sd1: Path) -> None:
    """An epsilon model's weight min(SNR, γ)/SNR was 0/0 at SNR 0: one such sample made the whole loss NaN."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_pretrained(tiny_sd1, subfolder="scheduler", rescale_betas_zero_snr=True)
    weights = min_snr_weights(scheduler, torch.tensor([1, 500, 999]), gamma=5.0)
    assert torch.isfinite(weights).all() and weights[2] == 1.0


def test_a_text_encoder_lora_trains_under_checkpointing_with_transformers_4_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers 4.x checkpoints reentrantly unless told otherwise: the LoRA inside a frozen encoder got no gradient."""
    import functools

    from peft import LoraConfig
    from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedModel

    from engine.training.trainable import add_text_encoder_lora, checkpoint_text_encoder

    def as_in_transformers_4(self, gradient_checkpointing_kwargs=None):  # noqa: ANN001, ANN202 - its signature there
        kwargs = gradient_checkpointing_kwargs if gradient_checkpointing_kwargs is not None else {"use_reentrant": True}
        self._set_gradient_checkpointing(enable=True, gradient_checkpointing_func=functools.partial(torch.utils.checkpoint.checkpoint, **kwargs))

    monkeypatch.setattr(PreTrainedModel, "gradient_checkpointing_enable", as_in_transformers_4)
    # transformers 4 has no activation_checkpointing_enable (the name 5 gives it): the old one is used there.
    monkeypatch.delattr(PreTrainedModel, "activation_checkpointing_enable", raising=False)
    torch.manual_seed(0)
    encoder = CLIPTextModel(CLIPTextConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                           vocab_size=50, max_position_embeddings=8))
    encoder.requires_grad_(False)
    add_text_encoder_lora(encoder, LoraConfig(r=2, lora_alpha=2, init_lora_weights="gaussian", target_modules=["q_proj"]))
    checkpoint_text_encoder(encoder)
    encoder.train()
    (encoder(torch.tensor([[1, 2, 3, 4]])).last_hidden_state ** 2).sum().backward()  # a plain sum after a layer norm is constant
    grads = [p.grad for name, p in encoder.named_parameters() if "lora_B" in name]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_a_trained_text_encoder_is_checkpointed_without_a_deprecation_warning() -> None:
    """`dbtui fit --set training.train_text_encoder=true` (and each such run's log) printed transformers 5's FutureWarning
    that gradient_checkpointing_enable is deprecated and goes in v6: the encoder is checkpointed by the name it has now."""
    import warnings

    from transformers import CLIPTextConfig, CLIPTextModel

    from engine.training.trainable import checkpoint_text_encoder

    encoder = CLIPTextModel(CLIPTextConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                           vocab_size=50, max_position_embeddings=8))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        checkpoint_text_encoder(encoder)
    assert not [str(w.message) for w in said if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert encoder.is_gradient_checkpointing


def test_cpu_downgrades_mixed_precision_with_a_warning() -> None:
    assert effective_precision("no") == ("no", None)
    precision, warning = effective_precision("fp16")
    if not torch.cuda.is_available():
        assert precision == "no" and "CUDA" in warning


def test_a_gpu_that_only_emulates_bf16_trains_in_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    # A T4 or RTX 20xx: torch runs bf16 there in emulation only.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    precision, warning = effective_precision("bf16")
    assert precision == "fp16" and "no bf16 support" in warning
    assert effective_precision("fp16") == ("fp16", None)


@pytest.mark.parametrize("tf32", [True, False])
def test_gpu_maths_follow_the_tf32_setting(tf32: bool) -> None:
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    try:
        configure_gpu_maths(tf32)
        assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
        assert torch.backends.cudnn.allow_tf32 is tf32
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = before[1:]


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the Hugging Face cache"):
        resolve_model_folder("nobody/no-such-model")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_folder("/no/such/model.safetensors")


def test_offline_advice_names_a_download_command_huggingface_hub_has(monkeypatch: pytest.MonkeyPatch) -> None:
    """The advice said `huggingface-cli download NAME`, a command huggingface_hub 1.0 no longer installs."""
    from importlib.metadata import entry_points

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as raised:
        resolve_model_folder("nobody/no-such-model")
    command = re.search(r"`([^`]+)`", str(raised.value)).group(1)
    assert command == "hf download nobody/no-such-model --local-dir FOLDER"
    assert entry_points(group="console_scripts", name=command.split()[0])


def test_a_relative_model_folder_not_found_here_says_where_relative_folders_are_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`model.pretrained = "models/mine"` from another folder was said only as a hub id that cannot be downloaded."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError) as raised:
        resolve_model_folder("models/mine")
    assert f"If 'models/mine' is a folder, it is read from the folder dbtui runs in ({tmp_path})" in str(raised.value)
