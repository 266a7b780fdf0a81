"""What a single file must hold for an architecture, and a plain account of what a file lacks.

Used after a load failed, to replace the loader's internal advice with the parts, key prefixes
and tensor counts that are missing or shaped differently; and by the checks before a run
(`validate`, the wizard's Model step) on a file's header, so that a file lacking tensors is told
there in the words its conversion refuses it with. The expected keys come from the same
config-driven key map the exporter writes with; the models are built on the meta device, so
this costs no memory even at full size. The shipped configs' keys are also kept, built once, in
their folders (``SHAPES_FILE``): the checks before a run read them without importing torch.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.convert.keymap import OPEN_CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX, UnmappedKeyError, is_open_clip, to_original

# SD1/SD2 files hold one text encoder, SDXL files two; a component with no expected key is skipped.
COMPONENTS = (
    ("UNet", UNET_PREFIX),
    ("VAE", VAE_PREFIX),
    ("text encoder", "cond_stage_model."),
    ("first text encoder", "conditioner.embedders.0."),
    ("second text encoder", "conditioner.embedders.1."),
)
# Written by the exporter for other clients, never read by the converter (see keymap).
IGNORED = (OPEN_CLIP_PREFIX + "text_projection", OPEN_CLIP_PREFIX + "logit_scale")
# In each shipped config folder: ``built_shapes`` of it, as gzipped JSON (scripts/write_original_shapes.py writes
# them; tests/test_expected_shapes.py checks them against the models their configs build).
SHAPES_FILE = "original_shapes.json.gz"


@dataclass
class Gap:
    """One component's tensors that are absent from the file or shaped differently there."""

    component: str
    prefix: str
    expected: int
    missing: list[str] = field(default_factory=list)
    misshapen: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)


def expected_shapes(config_dir: Path) -> dict[str, tuple[int, ...]]:
    """Original-layout key → shape for the architecture that ``config_dir`` describes: a shipped config's kept table,
    else built from its configs."""
    table = config_dir / SHAPES_FILE
    if table.is_file():
        return {key: tuple(shape) for key, shape in json.loads(gzip.decompress(table.read_bytes())).items()}
    return built_shapes(config_dir)


def built_shapes(config_dir: Path) -> dict[str, tuple[int, ...]]:
    """``expected_shapes``, from the models ``config_dir``'s configs build (on the meta device)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def config(sub: str) -> dict[str, Any]:
        return json.loads((config_dir / sub / "config.json").read_text(encoding="utf-8"))

    xl = (config_dir / "text_encoder_2" / "config.json").is_file()
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config("unet"))
        vae = AutoencoderKL.from_config(config("vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(config_dir / "text_encoder"))
        text_encoder_2 = (CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(config_dir / "text_encoder_2"))
                          if xl else None)
    text_config = text_encoder.config.to_dict()
    original = to_original(unet.state_dict(), unet.config, vae.state_dict(), vae.config,
                           text_encoder.state_dict(), text_config,
                           text_encoder_2.state_dict() if text_encoder_2 is not None else None)
    if xl or not is_open_clip(text_config):
        return {k: tuple(v.shape) for k, v in original.items()}
    # SD2: the OpenCLIP copy of the last layer is an extra for other clients (see keymap).
    extra_layer = f"{OPEN_CLIP_PREFIX}transformer.resblocks.{text_config['num_hidden_layers']}."
    return {k: tuple(v.shape) for k, v in original.items() if k not in IGNORED and not k.startswith(extra_layer)}


def find_gaps(state_dict: Mapping[str, Any], config_dir: Path) -> list[Gap]:
    """Per component, the expected tensors the file lacks or holds in another shape."""
    gaps = []
    expected = expected_shapes(config_dir)
    for component, prefix in COMPONENTS:
        keys = [k for k in expected if k.startswith(prefix)]
        if not keys:
            continue
        gap = Gap(component, prefix, len(keys))
        for key in keys:
            if key not in state_dict:
                gap.missing.append(key)
            elif tuple(state_dict[key].shape) != expected[key]:
                gap.misshapen.append((key, tuple(state_dict[key].shape), expected[key]))
        if gap.missing or gap.misshapen:
            gaps.append(gap)
    return gaps


def _where(keys: list[str]) -> str:
    """A short pointer to a set of keys: their common dotted prefix, or a few examples."""
    common = os.path.commonprefix(keys)
    common = common[: common.rfind(".") + 1] if "." in common else ""
    if common.count(".") >= 2:
        return common + "*"
    return ", ".join(keys[:2]) + (", …" if len(keys) > 2 else "")


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) or "scalar"


def describe_gaps(name: str, family: str, gaps: list[Gap], config: Path | None = None) -> str:
    """One message: what is missing or misshapen, per component, and what to do about it. ``config``: the folder the
    user gave as --config, which then is what another size or layout comes from."""
    parts = []
    for gap in gaps:
        if gap.missing:
            every = len(gap.missing) == gap.expected
            count, where = ("all", f"{gap.prefix}*") if every else (f"{len(gap.missing)} of", _where(gap.missing))
            parts.append(f"the {gap.component} lacks {count} {gap.expected} tensors ({where})")
        if gap.misshapen:
            key, got, want = gap.misshapen[0]
            parts.append(f"{len(gap.misshapen)} {gap.component} tensors have another shape "
                         f"(e.g. {key}: {_shape(got)} in the file, {_shape(want)} expected)")
    # Shapes that differ mean another architecture; that explains missing tensors too.
    other_layout = any(gap.misshapen for gap in gaps)
    # With the user's --config, the file may be whole: the folder given describes another model (SDXL, SD2.x…).
    blame_config = config is not None and other_layout
    advice = []
    if blame_config:
        advice.append(f"give as --config a diffusers model folder of the file's own architecture, or leave --config out "
                      f"to convert it as a standard {family} model")
    elif other_layout:
        advice.append("for a model of another size or layout, convert it with `dbtui convert to-diffusers FILE OUT "
                      "--config FOLDER` (FOLDER: a diffusers model that describes it) and train from OUT")
    if any(gap.missing for gap in gaps):
        advice.append("if the file was cut off or saved without that part, get the full checkpoint")
    what = (f"{name}, a {family} file, does not fit the model --config {config} describes" if blame_config else
            f"{name} does not hold a complete {family} model")
    return f"{what}: {'; '.join(parts)}. To fix: {'; or '.join(advice)}."


def lacking_tensors_said(name: str, state_dict: Mapping[str, Any], config_dir: Path, family: str,
                         unread: tuple[str, ...] = ()) -> str | None:
    """``describe_gaps`` for a file whose tensors are all shaped as ``config_dir``'s model's, where some are absent (an
    SD1.x file without its UNet's output_blocks): its conversion refuses it in these words once the load fails. None
    where it lacks none, or where some are shaped otherwise: a model of another size or layout, whose conversion says
    what differs. ``unread``: the components not to say (a VAE given apart for one the file lacks)."""
    try:
        gaps = [gap for gap in find_gaps(state_dict, config_dir) if gap.component not in unread]
    except (UnmappedKeyError, OSError, ValueError, KeyError):
        return None
    if not gaps or any(gap.misshapen for gap in gaps):
        return None
    return describe_gaps(name, family, gaps)


def explain_mismatch(state_dict: Mapping[str, Any], config_dir: Path, name: str, family: str,
                     given: bool = False) -> str | None:
    """``describe_gaps`` for this file, or None when no gap is found (or the config cannot be mapped). ``given``:
    ``config_dir`` is the user's --config, not dbtui's own for the family."""
    try:
        gaps = find_gaps(state_dict, config_dir)
    except (UnmappedKeyError, OSError, ValueError, KeyError):
        return None
    return describe_gaps(name, family, gaps, config_dir if given else None) if gaps else None
