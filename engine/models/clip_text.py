"""CLIP text encoding shared by the CLIP-based families (SD1/SD2, SDXL).

Written here rather than taken from the diffusers pipelines' ``encode_prompt`` because their
``clip_skip`` path fails under transformers 5, whose CLIPTextModel has no ``text_model``, and
because the trainer needs gradients through the encoders when they train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def token_ids(tokenizer: Any, captions: list[str], device: torch.device) -> torch.Tensor:
    """Token ids padded to the tokenizer's context (77 for CLIP), long captions cut."""
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids.to(device)


def final_layer_norm(text_encoder: Any) -> Any:
    encoder = getattr(text_encoder, "module", text_encoder)  # under DDP
    return getattr(encoder, "text_model", encoder).final_layer_norm


def clip_hidden_states(text_encoder: Any, ids: torch.Tensor, layer_from_end: int) -> tuple[torch.Tensor, Any]:
    """(hidden states of layer ``-layer_from_end``, the encoder's output); 1 is the last layer."""
    output = text_encoder(ids, output_hidden_states=layer_from_end != 1)
    if layer_from_end == 1:
        return output[0], output
    return output.hidden_states[-layer_from_end], output
