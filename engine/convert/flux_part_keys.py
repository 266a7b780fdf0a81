"""What a file holds, told by its keys: Flux.1's VAE, CLIP-L and T5 in the layouts ComfyUI users have.

- the VAE: Black Forest Labs' ``ae.safetensors`` (the original autoencoder's names, ``encoder.down.0.block.0…``),
  or a diffusers VAE's weights (``encoder.down_blocks.0.resnets.0…``);
- CLIP-L: ComfyUI's ``clip_l.safetensors``, transformers' names (``text_model.encoder.layers.0…``);
- T5: ``t5xxl_fp16.safetensors`` / ``t5xxl_fp8_e4m3fn(_scaled).safetensors``, transformers' names
  (``shared.weight``, ``encoder.block.0…``).

Each may sit under a prefix: ComfyUI's all-in-one checkpoints keep them under ``vae.``,
``text_encoders.clip_l.transformer.`` and ``text_encoders.t5xxl.transformer.``, Stable Diffusion ones
under ``first_stage_model.`` and ``cond_stage_model.transformer.``. So a part is found by a weight every
file of its kind has, at the end of a key, and whatever comes before it is that part's prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.convert.flux_layout import FLUX_KEY

# kind → (the key every file of that kind ends one key with, its layout)
ANCHORS: dict[str, tuple[tuple[str, str], ...]] = {
    "vae": (("encoder.down.0.block.0.conv1.weight", "original"),
            ("encoder.down_blocks.0.resnets.0.conv1.weight", "diffusers")),
    "clip": (("embeddings.token_embedding.weight", "transformers"),),
    "open_clip": (("transformer.resblocks.0.attn.in_proj_weight", "open_clip"),),
    "t5": (("encoder.block.0.layer.0.SelfAttention.q.weight", "transformers"),),
    "flux": ((FLUX_KEY, "original"),),
}
CLIP_NAMES = {768: "CLIP-L", 1280: "CLIP-G, OpenCLIP ViT-bigG", 1024: "OpenCLIP ViT-H, SD2.x's"}
T5_NAMES = {4096: "T5-XXL", 1024: "T5-large", 768: "T5-base"}
VAE_NAMES = {(16, 4): "Flux.1's or SD3's", (4, 4): "Stable Diffusion's or SDXL's"}


@dataclass(frozen=True)
class FoundPart:
    """One model part inside a file: its kind, the prefix its keys sit under, and its sizes."""

    kind: str  # "vae", "clip", "open_clip", "t5" or "flux"
    prefix: str
    layout: str  # "original", "diffusers", "transformers" or "open_clip"
    width: int  # the VAE's latent channels; a text encoder's or the transformer's width
    layers: int  # a text encoder's layers; the VAE's resolution levels; the transformer's double blocks

    def describe(self) -> str:
        """The part in words, with the sizes that tell one model from another."""
        if self.kind == "vae":
            named = VAE_NAMES.get((self.width, self.layers))
            return f"a VAE with {self.width} latent channels and {self.layers} levels" + (f" ({named})" if named else "")
        if self.kind == "clip":
            named = CLIP_NAMES.get(self.width)
            return f"a CLIP text encoder {self.width} wide with {self.layers} layers" + (f" ({named})" if named else "")
        if self.kind == "open_clip":
            return (f"a CLIP text encoder in OpenCLIP's layout, {self.width} wide with {self.layers} layers "
                    "(SD2.x's, or SDXL's second)")
        if self.kind == "t5":
            named = T5_NAMES.get(self.width)
            return f"a T5 text encoder {self.width} wide with {self.layers} blocks" + (f" ({named})" if named else "")
        return "a Flux transformer"


def _count(keys: list[str], pattern: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    return len(found)


def _sizes(kind: str, prefix: str, state_dict: Mapping[str, Any], anchor: str) -> tuple[int, int]:
    keys = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    if kind == "vae":
        latent = state_dict.get(prefix + "encoder.conv_out.weight")
        levels = max(_count(keys, r"encoder\.down\.(\d+)\."), _count(keys, r"encoder\.down_blocks\.(\d+)\."))
        return (int(latent.shape[0]) // 2 if latent is not None else 0), levels
    if kind == "clip":
        return int(state_dict[prefix + anchor].shape[1]), _count(keys, r"encoder\.layers\.(\d+)\.")
    if kind == "open_clip":
        return int(state_dict[prefix + anchor].shape[1]), _count(keys, r"transformer\.resblocks\.(\d+)\.")
    if kind == "t5":
        return int(state_dict[prefix + anchor].shape[1]), _count(keys, r"encoder\.block\.(\d+)\.")
    image_in = state_dict.get(prefix + "img_in.weight")
    return (int(image_in.shape[0]) if image_in is not None else 0), _count(keys, r"double_blocks\.(\d+)\.")


def find_parts(state_dict: Mapping[str, Any]) -> list[FoundPart]:
    """Every model part the keys hold, in the order their anchors come in the file."""
    found = []
    for key in state_dict:
        for kind, anchors in ANCHORS.items():
            for anchor, layout in anchors:
                prefix = key[: -len(anchor)]
                if key.endswith(anchor) and (not prefix or prefix.endswith(".")):
                    width, layers = _sizes(kind, prefix, state_dict, anchor)
                    found.append(FoundPart(kind, prefix, layout, width, layers))
    return found


def describe_file(state_dict: Mapping[str, Any]) -> str:
    """What a file holds, for a message: its parts, else its first keys."""
    parts = find_parts(state_dict)
    if parts:
        return " and ".join(part.describe() for part in parts)
    keys = list(state_dict)[:3]
    return f"none of a VAE, CLIP-L or T5 (its first keys: {', '.join(keys) or 'none'})"


def part_weights(state_dict: Mapping[str, Any], part: FoundPart) -> dict[str, Any]:
    """The part's weights without their prefix (other parts of the file left out)."""
    return {key[len(part.prefix):]: value for key, value in state_dict.items() if key.startswith(part.prefix)}
