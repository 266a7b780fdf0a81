"""The profile's sections on how the model trains: the method and its length, LoRA, flow matching, the optimizer and
its schedule, and precision (``engine.profile.schema.Profile`` holds them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.profile.section import MAX_STEPS, Section, Seed

Scheduler = Literal[
    "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"
]
OptimizerName = Literal["adamw", "adamw8bit", "lion", "lion8bit", "prodigy", "adafactor"]
Precision = Literal["no", "fp16", "bf16"]


class LoraSection(Section):
    rank: int = Field(8, ge=1, le=1024)
    """LoRA rank: capacity of the adapter (4–32 is common)."""
    alpha: float = Field(8.0, gt=0.0)
    """LoRA alpha: the update is scaled by alpha / rank."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout inside the LoRA layers."""
    unet_targets: list[str] | None = Field(None, min_length=1)
    """Denoiser modules that get LoRA adapters; empty means the family's own: the attention projections to_q, to_k, to_v, to_out.0 for SD and SDXL; for Flux also the text stream's add_q/k/v_proj and to_add_out and the feed-forward layers."""
    text_encoder_targets: list[str] = Field(["q_proj", "k_proj", "v_proj", "out_proj"], min_length=1)
    """Text-encoder modules that get LoRA adapters (when the text encoder is trained)."""


class FlowSection(Section):
    """How a flow-matching model (Flux) trains: noisy = (1 - σ)·image + σ·noise, target noise - image."""

    timestep_sampling: Literal["uniform", "logit_normal", "mode"] = "logit_normal"
    """How σ is drawn before the shift: uniform, logit-normal (favours the middle; the SD3 paper's best) or mode (a bump set by mode_scale)."""
    logit_mean: float = Field(0.0, ge=-5.0, le=5.0)
    """Mean of the logit-normal draw (negative: more low-noise steps)."""
    logit_std: float = Field(1.0, gt=0.0, le=5.0)
    """Spread of the logit-normal draw."""
    mode_scale: float = Field(1.29, ge=-1.0, le=2.0)
    """Scale of the mode draw (1.29 as in the SD3 paper)."""
    shift: float | None = Field(None, gt=0.0, le=100.0)
    """Shift σ towards noise: empty uses the model's own rule (Flux.1 [dev]: more shift for more image tokens, from its scheduler config); a number is a fixed shift (1: none, 3: SD3's)."""
    loss_weighting: Literal["none", "sigma_sqrt", "cosmap"] = "none"
    """Weight each sample's loss by its σ: none, sigma_sqrt (1/σ²) or cosmap, as diffusers' training utilities define them."""
    guidance: float = Field(1.0, ge=0.0, le=30.0)
    """The guidance value fed to Flux.1 [dev]'s guidance embedding while training (1, as the Flux examples of diffusers' and kohya's scripts train; diffusers' script alone defaults to 3.5); models without that embedding ([schnell]) have nothing to feed."""


class TrainingSection(Section):
    method: Literal["full", "lora"] = "lora"
    """Full fine-tune of the denoiser, or a small LoRA adapter (far less memory)."""
    seed: Seed = 42
    """Random seed: the same seed and profile give the same run."""
    train_batch_size: int = Field(1, ge=1, le=256)
    """Images per step on each GPU."""
    max_train_steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    """Total optimizer steps; empty means 100 × instance images (or from epochs)."""
    num_train_epochs: int | None = Field(None, ge=1, le=MAX_STEPS)
    """Epochs to train, used when max_train_steps is empty."""
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    """Batches accumulated before each optimizer step."""
    train_text_encoder: bool = False
    """Also train the text encoder (better faces, more memory)."""
    text_encoder_stop_fraction: float = Field(1.0, gt=0.0, le=1.0)
    """Stop training the text encoder after this fraction of the steps."""
    clip_skip: int = Field(1, ge=1, le=12)
    """Use the text encoder's N-th hidden layer from the end (1 = last, 2 = penultimate)."""
    noise_offset: float = Field(0.0, ge=0.0, le=1.0)
    """Offset noise strength; helps very dark and very bright images (0.05–0.1)."""
    min_snr_gamma: float | None = Field(None, gt=0.0)
    """Min-SNR-γ loss weighting (5 is the paper's value); empty turns it off."""
    lora: LoraSection | None = None
    """LoRA options; only with method = "lora"."""
    flow: FlowSection | None = None
    """Flow-matching options (Flux); Stable Diffusion models refuse them."""


class OptimizerSection(Section):
    name: OptimizerName = "adamw"
    """Optimizer: adamw, adamw8bit (less memory, needs bitsandbytes), lion, lion8bit, prodigy, adafactor."""
    learning_rate: float | None = Field(None, gt=0.0, le=1.0)
    """Learning rate; empty means 1e-4 for LoRA, 2e-6 for full fine-tunes (1.0 for prodigy)."""
    scale_lr: bool = False
    """Multiply the learning rate by batch size × accumulation × processes."""
    lr_scheduler: Scheduler = "constant"
    """How the learning rate changes over the run."""
    lr_warmup_steps: int = Field(0, ge=0, le=MAX_STEPS)
    """Steps of linear warm-up at the start."""
    lr_cycles: int = Field(1, ge=1, le=MAX_STEPS)
    """Restarts for cosine_with_restarts."""
    lr_power: float = Field(1.0, gt=0.0)
    """Power of the polynomial scheduler."""
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    """First moment decay (Adam/Lion)."""
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    """Second moment decay (Adam/Lion)."""
    weight_decay: float = Field(1e-2, ge=0.0, le=1.0)
    """Weight decay."""
    eps: float = Field(1e-8, gt=0.0)
    """Adam epsilon."""
    max_grad_norm: float = Field(1.0, ge=0.0)
    """Clip gradients to this norm (0 turns clipping off); with fused_backward each weight's gradient is clipped on its own."""
    fused_backward: bool = False
    """Step each weight in the backward pass as soon as its gradient is ready, then free it: no full set of gradients is ever held (less memory; needs bf16 or no mixed precision, accumulation 1, one process; not prodigy)."""


class PrecisionSection(Section):
    mixed_precision: Precision = "fp16"
    """Mixed precision: fp16 (most GPUs), bf16 (Ampere and newer), no (fp32; CPU)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: much less memory, ~20% slower."""
    attention: Literal["sdpa", "xformers"] = "sdpa"
    """Attention kernel: PyTorch SDPA, or xformers when installed."""
    tf32: bool = True
    """On Ampere-or-newer GPUs, fp32 matrix maths on TF32 tensor cores: several times faster, no effect on CPU."""
    bf16_weights: bool = False
    """Full fine-tunes under bf16: keep the trained weights in bf16 with no fp32 copy, each update computed in fp32 and rounded stochastically (less memory; not prodigy)."""
