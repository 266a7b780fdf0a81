"""Making the loaded models trainable as the profile asks: full, LoRA, text encoder, memory savers."""

from __future__ import annotations

from typing import Any

import torch

from engine.errors import DbtuiError
from engine.models.family import Components, LoadDtypes


class AttentionBackendError(DbtuiError):
    """The chosen attention backend cannot be used here."""


def _lora_config(lora: Any, targets: list[str]) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, init_lora_weights="gaussian", target_modules=targets)


def add_text_encoder_lora(text_encoder: Any, config: Any) -> None:
    """LoRA layers in the text encoder through peft itself: transformers 5's ``add_adapter``
    demands a peft release newer than any published (0.22)."""
    from peft import inject_adapter_in_model

    inject_adapter_in_model(config, text_encoder, adapter_name="default")
    text_encoder.peft_config = {"default": config}  # where peft's state-dict helpers look


def checkpoint_text_encoder(text_encoder: Any) -> None:
    """Gradient checkpointing for a trained text encoder, non-reentrant whatever the transformers release.

    transformers 4.x checkpoints reentrantly by default: a layer whose inputs need no gradient (the frozen
    embeddings' output, with a LoRA trained inside) then passes none back, and the LoRA never trained.
    transformers 5 renamed it activation_checkpointing_enable and warns at the old name (gone in 6) in every run's log.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(text_encoder, "activation_checkpointing_enable"):
        text_encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        text_encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


@torch.no_grad()
def merged_into(base: Any, trained: Any) -> Any:
    """``base`` (the model as loaded, fp32) with the LoRA of ``trained`` folded into its weights.

    The deltas come from peft's own ``get_delta_weight``, in the LoRA's fp32, so the fused weights
    are not rounded to the half precision the frozen base trained in.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = dict(base.named_modules())
    for name, module in trained.named_modules():
        if isinstance(module, BaseTunerLayer):
            weight = layers[name].weight
            for adapter in module.active_adapters:
                weight += module.get_delta_weight(adapter).to(weight.device, weight.dtype)
    return base


def weights_trained(training: Any) -> tuple[bool, bool]:
    """(UNet, text encoder): whether the model's own weights train (else they are frozen, LoRA or not).
    The text encoder's answer holds for the family's ``trained_text_encoders`` only."""
    lora = training.method == "lora"
    return not lora, training.train_text_encoder and not lora


def trained_text_encoders(family: Any, training: Any) -> tuple[int, ...]:
    """Indexes of the text encoders that train (their weights or their LoRA): the family's choice when
    the profile trains the text encoder, else none."""
    return tuple(family.trained_text_encoders) if training.train_text_encoder else ()


def load_dtypes(profile: Any, dtype: torch.dtype, trained_dtype: torch.dtype = torch.float32) -> LoadDtypes:
    """The dtypes ``prepare_models`` gives the large parts, to load them in: frozen weights in the
    weight dtype ``dtype``, trained ones in ``trained_dtype`` (fp32, the loaders' own, stays None).

    The family is not known before loading, and needs not be: under LoRA every encoder's own weights
    are frozen, and a full text-encoder fine-tune trains every encoder of the families that allow one
    (Flux, which would train only CLIP-L, refuses it in ``check_profile``)."""
    train_unet, train_text_encoder = weights_trained(profile.training)
    trained = None if trained_dtype == torch.float32 else trained_dtype
    frozen = None if dtype == torch.float32 else dtype
    return LoadDtypes(denoiser=trained if train_unet else frozen, text_encoders=trained if train_text_encoder else frozen)


def add_lora_adapters(components: Components, profile: Any) -> None:
    """The profile's LoRA adapters on the denoiser (on the family's own modules unless the profile names
    some), and on the family's trained text encoders when the text encoder trains."""
    check_lora_targets_of(components, profile)
    targets = profile.lora.unet_targets or list(components.family.default_lora_targets)
    components.unet.add_adapter(_lora_config(profile.lora, targets))
    for index in trained_text_encoders(components.family, profile.training):
        add_text_encoder_lora(components.text_encoders[index], _lora_config(profile.lora, profile.lora.text_encoder_targets))


def check_lora_targets_of(components: Components, profile: Any) -> None:
    """The profile's LoRA target names against the loaded models (nothing for a full fine-tune), and, when the
    profile exports ``lora_kohya``, the layers they reach against what that format holds."""
    from engine.models.lora_layers import kohya_refusal, kohya_unplaced_targets, targeted_embeddings
    from engine.training.lora_targets import LoraTargetsError, check_lora_targets

    if profile.training.method != "lora":
        return
    trained = trained_text_encoders(components.family, profile.training)
    check_lora_targets(components.unet, [components.text_encoders[i] for i in trained], profile.lora)
    if "lora_kohya" not in profile.saving.export:
        return
    targets = profile.lora.unet_targets or list(components.family.default_lora_targets)
    # No family's kohya layout names an embedding's LoRA (lora_embedding_A/B): no WebUI would load it.
    embeddings = [name for i in trained for name in targeted_embeddings(components.text_encoders[i], profile.lora.text_encoder_targets)]
    problems = {
        "training.lora.unet_targets": kohya_unplaced_targets(components.family, components.unet, targets),
        "training.lora.text_encoder_targets": kohya_refusal(embeddings, "leave the embedding layers out of them") if embeddings else None,
    }
    if any(problems.values()):
        raise LoraTargetsError("; ".join(f"{key}: {problem}" for key, problem in problems.items() if problem))


def vae_dtype(dtype: torch.dtype) -> torch.dtype:
    """The VAE's dtype under a weight dtype: the SD VAE overflows in fp16."""
    return torch.float32 if dtype == torch.float16 else dtype


def prepare_encoders(components: Components, profile: Any, device: torch.device, dtype: torch.dtype, *,
                     trained_dtype: torch.dtype = torch.float32) -> None:
    """The VAE and the text encoders on the device, in their dtypes, frozen unless they train: what the
    caching pass needs, before the denoiser takes its room on the device (``prepare_denoiser``)."""
    prepare_vae(components, device, dtype)
    prepare_text_encoders(components, profile, device, dtype, trained_dtype=trained_dtype)


def prepare_vae(components: Components, device: torch.device, dtype: torch.dtype) -> None:
    """The frozen VAE on the device, in its dtype under the weight dtype ``dtype``."""
    components.vae.requires_grad_(False)
    components.vae.to(device, dtype=vae_dtype(dtype))


def prepare_text_encoders(components: Components, profile: Any, device: torch.device, dtype: torch.dtype, *,
                          trained_dtype: torch.dtype = torch.float32) -> None:
    """The text encoders (loaded now if they are not yet) on the device, frozen unless they train.

    "The text encoder" means the family's ``trained_text_encoders`` (both of SDXL's, Flux's CLIP-L):
    their weights train in ``trained_dtype`` when the profile trains the text encoder without LoRA; any
    other encoder, or one whose LoRA alone trains, rests in the weight dtype.
    """
    _, train_text_encoder = weights_trained(profile.training)
    indexes = trained_text_encoders(components.family, profile.training)
    for index, text_encoder in enumerate(components.text_encoders):
        weights_train = train_text_encoder and index in indexes
        text_encoder.requires_grad_(weights_train)
        text_encoder.to(device, dtype=trained_dtype if weights_train else dtype)
        text_encoder.train(index in indexes)  # a frozen T5 in train mode would still apply its dropout


def prepare_denoiser(
    components: Components, profile: Any, device: torch.device, dtype: torch.dtype, *, trained_dtype: torch.dtype = torch.float32
) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """The denoiser on the device, quantized, with LoRA (and the trained text encoders' LoRA), casts and
    memory savers; returns (UNet params, text-encoder params) to train. Runs after ``prepare_vae``, and after
    ``prepare_text_encoders`` where the encoders are needed.

    Trained weights take ``trained_dtype``: fp32 under mixed precision (accelerate autocasts the
    forward), or bf16 for a full fine-tune with bf16 weights (its optimizer steps them through fp32
    with stochastic rounding).
    """
    unet = components.unet
    training = profile.training
    train_unet, _ = weights_trained(training)
    # Frozen text encoders are left alone: a run with their outputs cached may never load them.
    trained = [components.text_encoders[i] for i in trained_text_encoders(components.family, training)]
    unet.requires_grad_(train_unet)
    if training.method == "lora":
        quantize_frozen_base(components, profile, device, dtype)
        unet.to(device, dtype=dtype)
        add_lora_adapters(components, profile)
    else:
        # Cast before moving, so that bf16 weights never take fp32's room on the device (param by
        # param: diffusers' own .to(dtype) warns about fp32-only modules that SD does not have).
        for param in unet.parameters():
            param.data = param.data.to(trained_dtype)
        unet.to(device)
    unet_params = [p for p in unet.parameters() if p.requires_grad]
    text_params = [p for te in trained for p in te.parameters() if p.requires_grad]
    for param in unet_params + text_params:
        param.data = param.data.to(trained_dtype)
    if profile.precision.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        for text_encoder in trained:
            checkpoint_text_encoder(text_encoder)
    if profile.precision.attention == "xformers":
        try:
            unet.enable_xformers_memory_efficient_attention()
        except Exception as error:  # noqa: BLE001 - missing package or no CUDA: same advice
            raise AttentionBackendError(
                f"xformers attention is not usable here ({error}); set precision.attention = \"sdpa\" (as fast on torch 2)"
            ) from None
    unet.train()
    return unet_params, text_params


def quantize_frozen_base(components: Components, profile: Any, device: torch.device, dtype: torch.dtype) -> None:
    """The frozen denoiser's blocks quantized onto ``device`` as ``model.quantize`` asks (LoRA only); a no-op
    when there is nothing to quantize or it is done already, so class images can use the quantized base too."""
    if profile.model.quantize and profile.training.method == "lora":
        from engine.models.quantize import quantize_blocks

        quantize_blocks(components.unet, profile.model.quantize, compute_dtype=dtype, device=device)


def prepare_models(
    components: Components, profile: Any, device: torch.device, dtype: torch.dtype, *, trained_dtype: torch.dtype = torch.float32
) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """``prepare_encoders`` then ``prepare_denoiser``, with nothing in between: the meter's setup, where
    only the final placement matters."""
    prepare_encoders(components, profile, device, dtype, trained_dtype=trained_dtype)
    return prepare_denoiser(components, profile, device, dtype, trained_dtype=trained_dtype)
