"""The model of a profile as the trainer sets it up, built from configs on fake tensors.

The trainable setup is the trainer's own ``prepare_models`` (LoRA, dtypes, gradient
checkpointing, which parameters train), so the meter cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.memory.architecture import Architecture
from engine.memory.inputs import as_metered
from engine.memory.quantized_layers import nf4_saving, stand_in_quantized
from engine.models.deferred_parts import DeferredParts
from engine.models.family import Components
from engine.models.quantize import block_linear_layers
from engine.training.precision import weight_dtype
from engine.training.trainable import prepare_models

DEVICE = torch.device("cpu")  # fake tensors stand for the GPU's; their device does not matter


class FixedLengthTokenizer:
    """Token ids of the right shape for any caption: the meter's text carries no meaning."""

    def __init__(self, length: int):
        self.model_max_length = length

    def __call__(self, captions: list[str], **_: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(input_ids=torch.zeros(len(captions), self.model_max_length, dtype=torch.long))


@dataclass
class PreparedModel:
    """A model's parts after ``prepare_models``, with the parameters that train (fake or real tensors)."""

    components: Components
    unet_params: list[torch.nn.Parameter]
    text_params: list[torch.nn.Parameter]
    nf4_saving: int = 0  # bytes model.quantize = "nf4" would take off the weights (a LoRA's base not yet in NF4)

    @property
    def trainable(self) -> list[torch.nn.Parameter]:
        return self.unet_params + self.text_params

    def on_device(self, profile: Any) -> list[torch.nn.Module]:
        """The models that stay on the GPU during the steps: the trainer moves the cached ones off."""
        from engine.training.trainer import cached_parts

        components = self.components
        # Text encoders that train are never cached.
        cached = cached_parts(components, latents_cached=profile.dataset.cache_latents,
                              text_cached=not profile.training.train_text_encoder)
        return [m for m in [components.unet, *components.text_encoders, components.vae] if all(m is not c for c in cached)]


def _as_measured(profile: Any) -> Any:
    """The profile ``prepare_models`` sets the fake model up with. xformers cannot run on the CPU; its
    memory-efficient kernel keeps no attention matrix, as SDPA's does. A quantized base is put in
    place beforehand (engine/memory/quantized_layers.py), since bitsandbytes cannot quantize fake tensors.
    The exports are the meter's own (engine/memory/inputs.py): lora_kohya's check of the LoRA targets is the run's."""
    profile = as_metered(profile)
    update: dict[str, Any] = {}
    if profile.precision.attention != "sdpa":
        update["precision"] = profile.precision.model_copy(update={"attention": "sdpa"})
    if profile.model.quantize:
        update["model"] = profile.model.model_copy(update={"quantize": None})
    return profile.model_copy(update=update) if update else profile


def token_length(config: Any) -> int:
    """The tokens a text encoder is given: CLIP's context; T5 has relative positions and no context of
    its own, and Flux pads its prompts to 512 tokens (engine/models/flux.py)."""
    from engine.models.flux import MAX_SEQUENCE_LENGTH

    return getattr(config, "max_position_embeddings", None) or MAX_SEQUENCE_LENGTH


def _to_fake(models: list[torch.nn.Module], mode: Any) -> dict[int, torch.nn.Parameter]:
    """Replace every meta parameter and buffer by a fake CPU one; returns {id(meta parameter): fake parameter}.

    Fake CPU tensors run CPU kernels (SDPA's flash kernel among them) with no memory. The models
    are set up on the meta device first because ``Module.to`` cannot convert parameters that are
    already fake (it swaps them, and the fake mode keeps weak references to them).
    """
    converter = mode.fake_tensor_converter
    made: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # the meta tensor is kept, so that its id stays its own

    def fake(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in made:
            made[id(tensor)] = tensor, converter.from_meta_and_device(mode, tensor.detach(), DEVICE)
        return made[id(tensor)][1]

    params: dict[int, torch.nn.Parameter] = {}
    for model in models:
        for module in model.modules():
            for name, param in module._parameters.items():
                if param is None:
                    continue
                if id(param) not in params:
                    data = fake(param)
                    with mode:  # a Parameter of a fake tensor is made inside its mode
                        params[id(param)] = torch.nn.Parameter(data, requires_grad=param.requires_grad)
                module._parameters[name] = params[id(param)]
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[name] = fake(buffer)
    return params


def build_fake_model(architecture: Architecture, profile: Any, mode: Any, *, trained_dtype: torch.dtype) -> PreparedModel:
    """The parts as fake tensors of ``mode`` (a FakeTensorMode), prepared for training as ``profile``
    says at its requested precision, the trained weights in ``trained_dtype``."""
    # The precision a GPU trains at (engine.training.precision.effective_precision would say fp32 here).
    dtype = weight_dtype(profile.precision.mixed_precision)
    lora = profile.training.method == "lora"
    with torch.device("meta"):
        parts = architecture.build()
        quantizable = [layer for _, _, layer in block_linear_layers(parts.unet)] if lora else []
        if profile.model.quantize and lora:  # as prepare_models quantizes
            stand_in_quantized(parts.unet, profile.model.quantize, compute_dtype=dtype)
    # The noise schedule's tables must be CPU tensors, not meta ones.
    scheduler = type(parts.scheduler).from_config(parts.scheduler.config)
    tokenizers = [FixedLengthTokenizer(token_length(te.config)) for te in parts.text_encoders]
    components = Components(
        family=architecture.family, folder=Path("."), tokenizers=tokenizers, text_encoder_parts=DeferredParts.ready(parts.text_encoders),
        vae=parts.vae, unet=parts.unet, noise_scheduler=scheduler,
    )
    unet_params, text_params = prepare_models(components, _as_measured(profile), torch.device("meta"), dtype,
                                              trained_dtype=trained_dtype)
    # Read once set up: the layers NF4 would quantize, in the dtype prepare_models left them (or as quantized now).
    saving = 0 if profile.model.quantize == "nf4" else nf4_saving(quantizable, profile.model.quantize)
    fakes = _to_fake([components.unet, components.vae, *components.text_encoders], mode)
    return PreparedModel(components, [fakes[id(p)] for p in unet_params], [fakes[id(p)] for p in text_params], saving)
