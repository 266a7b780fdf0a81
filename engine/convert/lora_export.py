"""LoRA files: diffusers format (with the adapter config) and kohya format (AUTOMATIC1111, ComfyUI)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, Progress, atomic_dir, atomic_file
from engine.convert.errors import ConvertError, UnsupportedModelError
from engine.convert.load_checkpoint import read_checkpoint

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
COMPONENTS = ("unet", "text_encoder")


# The LoraConfig fields that shape a trained adapter and that every peft we support (>= 0.17)
# knows. Older peft refuses a config with fields it does not know, and diffusers >= 0.35 needs
# ``target_modules`` and ``rank_pattern`` to be present.
PORTABLE_FIELDS = (
    "r", "lora_alpha", "target_modules", "exclude_modules", "rank_pattern", "alpha_pattern", "lora_dropout",
    "use_rslora", "use_dora", "lora_bias", "bias", "fan_in_fan_out", "layers_to_transform", "layers_pattern",
)
# Fields that say nothing about the trained weights: bookkeeping, and initialisation schemes
# (the saved weights replace whatever an initialiser made).
IRRELEVANT_FIELDS = (
    "peft_type", "task_type", "peft_version", "base_model_name_or_path", "revision", "inference_mode",
    "auto_mapping", "runtime_config", "init_lora_weights", "loftq_config", "eva_config", "corda_config",
    "lora_ga_config",
)


def portable_lora_config(config: Any, name: str) -> dict[str, Any]:
    """The part of a peft ``LoraConfig`` that every supported peft loads; refuses what it cannot carry."""
    from peft import LoraConfig

    values = config.to_dict()
    defaults = LoraConfig().to_dict()
    unportable = sorted(
        key for key, value in values.items()
        if key not in PORTABLE_FIELDS and key not in IRRELEVANT_FIELDS and value != defaults.get(key)
    )
    if unportable:
        raise UnsupportedModelError(
            f"the {name} LoRA uses {', '.join(unportable)}, which older peft releases cannot load; "
            "train it with a plain LoRA configuration"
        )
    return {
        key: sorted(value) if isinstance(value, (set, frozenset)) else value
        for key, value in values.items() if key in PORTABLE_FIELDS
    }


def _text_model_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """CLIP text-encoder LoRA keys spelled with ``text_model.``, as transformers 4 names the modules.

    transformers 5 dropped that level and diffusers strips it again for such models, so this
    one spelling loads on both.
    """
    return {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in state_dict.items()}


def export_lora_diffusers(out_dir: str | Path, *, unet: Any, text_encoder: Any = None) -> Path:
    """Save the peft LoRA of ``unet`` (and ``text_encoder``) as a diffusers LoRA folder.

    The adapter configs go into the file's metadata; without them a loader must assume
    alpha == rank, which is wrong for any LoRA trained with another alpha. The file loads with
    every diffusers/transformers/peft release that pyproject.toml allows.
    """
    from diffusers import StableDiffusionPipeline
    from peft import get_peft_model_state_dict

    out_dir = Path(out_dir)
    layers: dict[str, Any] = {}
    for name, model in (("unet", unet), ("text_encoder", text_encoder)):
        if model is None:
            continue
        if not getattr(model, "peft_config", None):
            raise ConvertError(f"the {name} has no LoRA adapter to save")
        weights = get_peft_model_state_dict(model)
        layers[f"{name}_lora_layers"] = _text_model_keys(weights) if name == "text_encoder" else weights
        layers[f"{name}_lora_adapter_metadata"] = portable_lora_config(next(iter(model.peft_config.values())), name)
    with atomic_dir(out_dir) as tmp:
        StableDiffusionPipeline.save_lora_weights(tmp, **layers)
    return out_dir


def _adapter_configs(metadata: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{"unet": {...}, "text_encoder": {...}} from diffusers' ``lora_adapter_metadata`` header."""
    packed = json.loads(metadata.get("lora_adapter_metadata", "{}"))
    configs: dict[str, dict[str, Any]] = {c: {} for c in COMPONENTS}
    for key, value in packed.items():
        component, _, field = key.partition(".")
        if component in configs:
            configs[component][field] = value
    return configs


def _kohya_alpha(config: Mapping[str, Any], rank: int, name: str) -> float:
    """The kohya ``alpha`` giving the same scale as peft (alpha / rank, or alpha / sqrt(rank))."""
    if config.get("alpha_pattern"):
        raise UnsupportedModelError(f"the {name} LoRA uses per-layer alphas (alpha_pattern), which kohya files cannot express")
    if config.get("use_dora"):
        raise UnsupportedModelError(f"the {name} adapter is DoRA; export it in diffusers format instead")
    alpha = float(config.get("lora_alpha", rank))
    return alpha * math.sqrt(rank) if config.get("use_rslora") else alpha


def _peft_keys(state_dict: Mapping[str, Any], source: Path) -> dict[str, Any]:
    if any(k.startswith(("lora_unet_", "lora_te")) for k in state_dict):
        raise ConvertError(f"{source} is already in kohya format")
    if not any(".lora_A." in k for k in state_dict) or not all(k.startswith(("unet.", "text_encoder.")) for k in state_dict):
        raise ConvertError(
            f"{source} is not a diffusers-format LoRA (expected unet./text_encoder. keys with lora_A/lora_B, "
            "as written by save_lora_weights)"
        )
    # transformers 5 names CLIP weights without "text_model."; kohya names keep it.
    return {
        ("text_encoder.text_model." + k[len("text_encoder."):]
         if k.startswith("text_encoder.") and not k.startswith("text_encoder.text_model.") else k): v
        for k, v in state_dict.items()
    }


def export_lora_kohya(lora_dir_or_file: str | Path, out_file: str | Path, *, emit: Emit | None = None) -> Path:
    """Convert a diffusers-format LoRA (folder or .safetensors) to one kohya-format .safetensors."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    source, out_file = Path(lora_dir_or_file), Path(out_file)
    if source.is_dir():
        source = source / LORA_WEIGHTS
    progress = Progress(emit, "export", total=2, description=f"{source.name} → {out_file.name} (kohya LoRA)")
    checkpoint = read_checkpoint(source)
    configs = _adapter_configs(checkpoint.metadata)
    kohya = convert_state_dict_to_kohya(_peft_keys(checkpoint.state_dict, source))
    progress.step()

    out: dict[str, Any] = {}
    for key, value in kohya.items():
        # kohya sd-scripts names SD1/SD2's single text encoder "lora_te"; "lora_te1" means SDXL's first.
        key = key.replace("lora_te1_", "lora_te_", 1)
        out[key] = value.contiguous()
    for key in [k for k in out if k.endswith(".alpha")]:
        module = key.removesuffix(".alpha")
        name = "text_encoder" if module.startswith("lora_te_") else "unet"
        rank = out[module + ".lora_down.weight"].shape[0]
        out[key] = torch.tensor(_kohya_alpha(configs[name], rank, name))
    with atomic_file(out_file) as tmp:
        save_file(out, str(tmp), metadata={"format": "pt", "ss_network_module": "networks.lora"})
    progress.step()
    progress.finish()
    return out_file
