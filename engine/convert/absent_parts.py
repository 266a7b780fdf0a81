"""Which whole parts (UNet, VAE, text encoders) a Stable Diffusion single file lacks, told from its key names alone;
and which tensors of a part (``lacking_said``), told from its header against its family's architecture.

A "pruned, no VAE" download or a UNet-only file is still told its family by its UNet, yet cannot be converted as it
is. The conversion, which reads the whole file, and the checks before a run (`validate`, the wizard's Model step),
which read its header only, say so in the same words. A VAE given apart (model.vae) stands in for the VAE alone: a
text encoder's or UNet's weights are the fine-tune itself. A Flux.1 transformer file holds neither VAE nor text
encoders: those are fetched as components, so nothing is said of it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.convert.detect import (
    CONFIGS,
    SD1_TEXT,
    SD2_TEXT,
    SDXL_CLIP_TEXT,
    SDXL_OPEN_CLIP_TEXT,
    ModelFamily,
    with_text_model_prefix,
)
from engine.convert.expected import lacking_tensors_said


@dataclass(frozen=True)
class Part:
    """One part a single file holds: its diffusers subfolder, what people call it, and its keys' prefixes."""

    subfolder: str
    name: str
    prefixes: tuple[str, ...]


UNET = Part("unet", "UNet", ("model.diffusion_model.",))
VAE = Part("vae", "VAE", ("first_stage_model.",))
# SD's one text encoder is SD1.x's CLIP or SD2.x's OpenCLIP, under its own names; SDXL's two are both.
SD_TEXT = (Part("text_encoder", "text encoder", (SD1_TEXT, SD2_TEXT)),)
XL_TEXT = (
    Part("text_encoder", "first text encoder (CLIP ViT-L)", (SDXL_CLIP_TEXT,)),
    Part("text_encoder_2", "second text encoder (OpenCLIP ViT-bigG)", (SDXL_OPEN_CLIP_TEXT,)),
)
_FAMILY_WORDS = {"sd1": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "sdxl": "Stable Diffusion XL"}


def text_encoders(family: ModelFamily) -> tuple[Part, ...]:
    return XL_TEXT if family.xl else SD_TEXT


def absent_parts(keys: Iterable[str], family: ModelFamily, *, vae_given: bool = False) -> list[Part]:
    """The parts of a ``family`` file with not one tensor among ``keys``; none for a Flux.1 transformer or a family
    dbtui does not train (whose own message says what the file is). ``vae_given``: a VAE given apart (model.vae) stands
    in for the file's."""
    if family.flux or not family.supported:
        return []
    keys = list(keys)
    parts = (UNET, *(() if vae_given else (VAE,)), *text_encoders(family))
    return [part for part in parts if not any(k.startswith(part.prefixes) for k in keys)]


def _prefix(part: Part, family: ModelFamily) -> str:
    """The prefix a ``family`` file's ``part`` has: SD2.x's text encoder is OpenCLIP's (cond_stage_model.model.)."""
    return SD2_TEXT if part.prefixes == (SD1_TEXT, SD2_TEXT) and family.id.startswith("sd2") else part.prefixes[0]


def family_words(family: ModelFamily) -> str:
    """The family of a ``family`` file in words, without what it predicts: a header alone may not tell it."""
    return _FAMILY_WORDS.get(family.id.split("-")[0], family.description)


def absent_parts_said(name: str, keys: Iterable[str], family: ModelFamily, *, vae_given: bool = False) -> str | None:
    """What the ``family`` file ``name`` of tensors ``keys`` lacks (``absent_parts``) and what to do about it; None where
    it lacks no part, or only the VAE and ``vae_given``."""
    absent = absent_parts(keys, family, vae_given=vae_given)
    if not absent:
        return None
    lacks = " and no ".join(f"{part.name} weights ({_prefix(part, family)}*)" for part in absent)
    words = family_words(family)
    said = (f"{name} has no {lacks}: a {words} checkpoint saved without {'that part' if len(absent) == 1 else 'those parts'}"
            " (a \"pruned, no VAE\" or UNet-only download), which dbtui cannot convert or train from as it is. To fix: "
            "get the full checkpoint (its download page often offers it beside the pruned file)")
    if absent == [VAE]:
        # Only the VAE can be given apart: a text encoder's or UNet's weights are the fine-tune itself.
        said += (f"; or train from this file with model.vae set to a diffusers VAE folder or hub id of its family "
                 f"({'stabilityai/sdxl-vae' if family.xl else 'stabilityai/sd-vae-ft-mse'}), which stands in for the "
                 "VAE it lacks (`dbtui convert to-diffusers` takes it as --vae)")
    return said


def lacking_said(name: str, state_dict: Mapping[str, Any], family: ModelFamily, *, vae_given: bool = False) -> str | None:
    """What the ``family`` file ``name`` lacks, from its tensor names and shapes (a header's will do): whole parts
    (``absent_parts_said``), else tensors of a part its conversion refuses it for (an SD1.x file without its UNet's
    output_blocks), in that refusal's words (``lacking_tensors_said`` against the family's own architecture)."""
    if said := absent_parts_said(name, state_dict, family, vae_given=vae_given):
        return said
    if family.flux or not family.supported:
        return None
    # A VAE given apart stands in for a VAE the file has none of; one it has is converted, whole or not.
    unread = ("VAE",) if VAE in absent_parts(state_dict, family) else ()
    return lacking_tensors_said(name, with_text_model_prefix(state_dict), CONFIGS / family.config_name,
                                family_words(family), unread)
