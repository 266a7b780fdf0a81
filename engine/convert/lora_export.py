"""LoRA files: diffusers format (with the adapter config) and kohya format (AUTOMATIC1111, ComfyUI)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, Progress, atomic_dir, atomic_file
from engine.convert.errors import ConvertError, UnsupportedModelError
from engine.convert.kohya_lora_names import looks_sdxl, sgm_unet_keys
from engine.convert.load_checkpoint import read_checkpoint
from engine.events import Warning as WarningEvent

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
# A run name whose last word is "lora" (me-lora, me_LoRA): its kohya file says "lora" once, not me-lora-lora-kohya.
_ENDS_IN_LORA = re.compile(r"(^|[-_.])lora$", re.IGNORECASE)


def kohya_file_name(run_name: str) -> str:
    """The name of a run's kohya LoRA file in its outputs and exports: NAME-lora-kohya.safetensors, or
    NAME-kohya.safetensors where NAME ends in "lora" as a word of its own."""
    return f"{run_name}-kohya.safetensors" if _ENDS_IN_LORA.search(run_name) else f"{run_name}-lora-kohya.safetensors"


def older_kohya_file_name(run_name: str) -> str | None:
    """The name an older dbtui gave this run's kohya file, where it differs from kohya_file_name's (NAME-lora-lora-kohya)."""
    older = f"{run_name}-lora-kohya.safetensors"
    return None if older == kohya_file_name(run_name) else older


def is_kohya_file(path: Path) -> bool:
    """Whether ``path`` is named as kohya_file_name names a run's kohya LoRA file (whatever the run's name)."""
    return path.name.lower().endswith("-kohya.safetensors") and bool(_ENDS_IN_LORA.search(path.name[:-len("-kohya.safetensors")]))


def open_lora(lora_dir_or_file: str | Path, out_file: str | Path) -> tuple[Path, Path, Any]:
    """A diffusers LoRA's weights file (given it or its folder), read."""
    source, out_file = Path(lora_dir_or_file), Path(out_file)
    if source.is_dir():
        source = source / LORA_WEIGHTS
    return source, out_file, read_checkpoint(source)


def lora_progress(emit: Emit | None, source: Path, out_file: Path, kind: str) -> Progress:
    """The conversion's two-step progress. Made once the input is known to be a LoRA it converts, so a refused
    file shows no "→ …" line (as lora-to-diffusers)."""
    return Progress(emit, "convert", total=2, description=f"{source.name} → {out_file.name} ({kind})")
COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
# kohya names per component: SD1/SD2's single text encoder is "lora_te", SDXL's two are te1/te2.
SD_KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te_": "text_encoder"}
SDXL_KOHYA_PREFIXES = {"lora_unet_": "unet", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2"}


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


# Where peft multiplies by a module's scale: the up weights (and their bias), an embedding's up matrix.
_SCALED = (".lora_B.weight", ".lora_B.bias", ".lora_embedding_B")


def scale_folded_lora(model: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(weights, portable adapter config) of ``model``'s peft LoRA, each module's scale (alpha / rank, as
    peft applies it) folded into its up weights and the config saying alpha = rank, so scale 1.

    A diffusers LoRA file keeps alpha only in its metadata, which ComfyUI and Forge ignore: they apply
    B·A as it is. Folded, the file means the same to them as to diffusers, and ``lora-to-kohya``
    (alpha = rank) stays exact.
    """
    import torch
    from peft import get_peft_model_state_dict
    from peft.tuners.lora import LoraLayer

    if not getattr(model, "peft_config", None):
        raise ConvertError(f"the {name} has no LoRA adapter to save")
    adapter, peft_config = next(iter(model.peft_config.items()))
    config = portable_lora_config(peft_config, name)
    scales = {module_name: float(module.scaling[adapter]) for module_name, module in model.named_modules()
              if isinstance(module, LoraLayer) and adapter in module.scaling}
    weights = get_peft_model_state_dict(model, adapter_name=adapter)
    with torch.no_grad():
        for key, value in weights.items():
            suffix = next((s for s in _SCALED if key.endswith(s)), None)
            if suffix is not None:
                scale = scales[key.removesuffix(suffix)]
                weights[key] = (value.float() * scale).to(value.dtype)
    # Every module's alpha its rank: the pattern of ranks, when there is one, is that of alphas too.
    config.update(lora_alpha=config["r"], alpha_pattern=dict(config.get("rank_pattern") or {}), use_rslora=False)
    return weights, config


def _scale_is_one(config: Mapping[str, Any]) -> bool:
    """Whether the adapter config says alpha = rank for every module, as ``scale_folded_lora`` writes it."""
    return ("r" in config and config.get("lora_alpha") == config["r"] and not config.get("use_rslora")
            and (config.get("alpha_pattern") or {}) == (config.get("rank_pattern") or {}))


def _text_model_key(key: str) -> str:
    """A CLIP text-encoder LoRA key spelled with ``text_model.``, as transformers 4 names the modules.

    transformers 5 dropped that level and diffusers strips it again for such models, so this
    one spelling loads on both. SDXL's second encoder keeps ``text_projection`` beside it.
    """
    return key if key.startswith(("text_model.", "text_projection.")) else "text_model." + key


def export_lora_diffusers(
    out_dir: str | Path, *, unet: Any, text_encoder: Any = None, text_encoder_2: Any = None, sdxl: bool = False
) -> Path:
    """Save the peft LoRA of ``unet`` (and the text encoders given) as a diffusers LoRA folder.

    ``sdxl`` saves through SDXL's pipeline, whose files name its second encoder
    ``text_encoder_2``. The adapter configs go into the file's metadata, and each module's scale into its
    weights (see ``scale_folded_lora``). The file loads with every diffusers/transformers/peft release
    that pyproject.toml allows.
    """
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if text_encoder_2 is not None and not sdxl:
        raise ValueError("text_encoder_2 is SDXL's second text encoder: pass sdxl=True")
    out_dir = Path(out_dir)
    layers: dict[str, Any] = {}
    for name, model in (("unet", unet), ("text_encoder", text_encoder), ("text_encoder_2", text_encoder_2)):
        if model is None:
            continue
        weights, config = scale_folded_lora(model, name)
        layers[f"{name}_lora_layers"] = (
            {_text_model_key(k): v for k, v in weights.items()} if name in TEXT_ENCODERS else weights
        )
        layers[f"{name}_lora_adapter_metadata"] = config
    pipeline = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    with atomic_dir(out_dir) as tmp:
        pipeline.save_lora_weights(tmp, **layers)
    return out_dir


def _adapter_configs(metadata: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{"unet": {...}, "text_encoder": {...}, ...} from diffusers' ``lora_adapter_metadata`` header."""
    packed = json.loads(metadata.get("lora_adapter_metadata", "{}"))
    configs: dict[str, dict[str, Any]] = {c: {} for c in COMPONENTS}
    for key, value in packed.items():
        component, _, field = key.partition(".")
        if component in configs:
            configs[component][field] = value
    return configs


def refuse_unlike_kohya(config: Mapping[str, Any], name: str) -> None:
    """Refuse the ``name`` adapter's config where no kohya alpha can express it: called before the conversion is
    announced, so a refused file shows no "→ …" line."""
    if config.get("use_dora"):
        raise UnsupportedModelError(f"the {name} adapter is DoRA, which kohya files cannot hold; keep the diffusers "
                                    "file: load_lora_weights loads it as it is")
    if not _scale_is_one(config) and config.get("alpha_pattern"):
        raise UnsupportedModelError(f"the {name} LoRA uses per-layer alphas (alpha_pattern), which kohya files cannot express")


def _kohya_alpha(config: Mapping[str, Any], rank: int, name: str) -> float:
    """The kohya ``alpha`` giving the same scale as peft (alpha / rank, or alpha / sqrt(rank))."""
    refuse_unlike_kohya(config, name)
    if _scale_is_one(config):
        return float(rank)  # the module's own rank, which a rank_pattern may set
    alpha = float(config.get("lora_alpha", rank))
    return alpha * math.sqrt(rank) if config.get("use_rslora") else alpha


def kohya_metadata(base_model_version: str, layers: Mapping[str, Any], network_module: str = "networks.lora",
                   v_prediction: bool | None = None, trained: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The metadata of a kohya LoRA as kohya sd-scripts writes it, for WebUIs that read it: AUTOMATIC1111 and
    Forge tell SDXL by ``ss_base_model_version`` starting "sdxl_" and SD2 by ``ss_v2``, call any other file that
    has metadata SD1, and hide a LoRA of another version than the loaded model from their Lora tab.
    ``base_model_version``: sd-scripts' names, "sd_v1", "sd_v2", "sdxl_base_v1-0" or "flux1"; ``network_module``
    the sd-scripts module that trains such a LoRA ("networks.lora", Flux's "networks.lora_flux"). ``v_prediction``:
    whether the base model predicts v, said as ``ss_v_parameterization`` and as ModelSpec's
    ``modelspec.prediction_type`` ("v" or "epsilon", as sd-scripts writes it): WebUI extensions and model tools
    read either to sample a v-prediction LoRA as such; None, unknown (or Flux, which sd-scripts gives none), leaves
    both out. ``trained``: the modules as trained, in the same layout, where ``layers`` fuses some (Flux's fused
    modules hold their parts' summed rank and alpha; sd-scripts states the rank and alpha of one trained module)."""
    trained = layers if trained is None else trained
    dims = {value.shape[0] for key, value in trained.items() if key.endswith(".lora_down.weight")}
    alphas = {float(value) for key, value in trained.items() if key.endswith(".alpha")}
    metadata = {"format": "pt", "ss_network_module": network_module, "ss_base_model_version": base_model_version,
                "ss_v2": str(base_model_version.startswith("sd_v2"))}
    if v_prediction is not None:
        metadata["ss_v_parameterization"] = str(v_prediction)
        metadata["modelspec.prediction_type"] = "v" if v_prediction else "epsilon"
    if len(dims) == 1:  # one rank and one alpha for the whole file, as sd-scripts states them
        metadata["ss_network_dim"] = str(dims.pop())
    if len(alphas) == 1:
        metadata["ss_network_alpha"] = f"{alphas.pop():g}"
    return metadata


def _looks_sd2(layers: Mapping[str, Any]) -> bool | None:
    """SD2's UNet attends to 1024-wide text (OpenCLIP-H), SD1's to 768 (CLIP-L): the width that the LoRA's
    cross-attention key or value, or its text encoder's attention, reads; None where no layer reads it."""
    for key, value in layers.items():
        if key.endswith(".lora_A.weight") and (".attn2.to_k." in key or ".attn2.to_v." in key or ".self_attn.q_proj." in key):
            return value.shape[1] == 1024
    return None


def refuse_embedding_loras(state_dict: Mapping[str, Any], source: Path) -> None:
    """Refuse a LoRA on an embedding layer (peft's ``lora_embedding_A/B``): the kohya format has no name for
    one, and a file holding it would load in no WebUI."""
    embeddings = sorted({key.partition(".lora_embedding_")[0] for key in state_dict if ".lora_embedding_" in key})
    if embeddings:
        raise UnsupportedModelError(
            f"{source} has a LoRA on {', '.join(embeddings)}, an embedding layer, which the kohya format has no place "
            "for; keep it in diffusers format (lora_diffusers), or train again with the embedding left out of "
            "training.lora.text_encoder_targets")


def _split_component(key: str) -> tuple[str, str]:
    """("text_encoder_2", "text_model.…") from "text_encoder_2.text_model.…"; ("", key) for no component."""
    component, _, rest = key.partition(".")
    return (component, rest) if component in COMPONENTS else ("", key)


def _peft_keys(state_dict: Mapping[str, Any], source: Path) -> dict[str, Any]:
    if any(k.startswith(("lora_unet_", "lora_te")) for k in state_dict):
        raise ConvertError(f"{source} is already in kohya format")
    if not any(".lora_A." in k for k in state_dict) or not all(_split_component(k)[0] for k in state_dict):
        raise ConvertError(
            f"{source} is not a diffusers-format LoRA (expected unet./text_encoder./text_encoder_2. keys with "
            "lora_A/lora_B, as written by save_lora_weights)"
        )
    # transformers 5 names CLIP weights without "text_model."; kohya names keep it.
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        component, rest = _split_component(key)
        if component in TEXT_ENCODERS:
            rest = _text_model_key(rest)
        out[f"{component}.{rest}"] = value
    return out


def export_lora_kohya(
    lora_dir_or_file: str | Path, out_file: str | Path, *, sdxl: bool | None = None, sd2: bool | None = None,
    v_prediction: bool | None = None, emit: Emit | None = None, overwrite: bool = True,
) -> Path:
    """Convert a diffusers-format LoRA (folder or .safetensors) to one kohya-format .safetensors (a file already
    there is replaced only with ``overwrite``).

    ``sdxl`` says which family the LoRA is for; ``None`` tells it from the layer names (see
    ``looks_sdxl``). SDXL files name their parts ``lora_unet_`` (in the original UNet's layout,
    as kohya sd-scripts does), ``lora_te1_`` and ``lora_te2_``; SD1/SD2 files ``lora_unet_`` and
    ``lora_te_``. Each alpha is its component's, from the adapter configs in the file. ``sd2`` (for SD1/SD2) says
    which the base model was, for the metadata; ``None`` tells it from the text width the LoRA's layers read,
    where one does (see ``_looks_sd2``), else says SD1 with a warning: the bare converter knows no base model. ``v_prediction``:
    whether that base model predicts v (see ``kohya_metadata``).
    """
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    source, out_file, checkpoint = open_lora(lora_dir_or_file, out_file)
    configs = _adapter_configs(checkpoint.metadata)
    layers = _peft_keys(checkpoint.state_dict, source)
    refuse_embedding_loras(layers, source)
    if sdxl is None:
        sdxl = looks_sdxl(layers)
    if not sdxl and any(k.startswith("text_encoder_2.") for k in layers):
        raise ConvertError(f"{source} has a second text encoder, which only SDXL has: convert it with sdxl=True")
    for name in sorted({key.partition(".")[0] for key in layers}):
        refuse_unlike_kohya(configs[name], name)
    progress = lora_progress(emit, source, out_file, "kohya LoRA")
    kohya = convert_state_dict_to_kohya(sgm_unet_keys(layers) if sdxl else layers)
    progress.step()

    prefixes = SDXL_KOHYA_PREFIXES if sdxl else SD_KOHYA_PREFIXES
    out: dict[str, Any] = {}
    for key, value in kohya.items():
        if not sdxl:
            # diffusers names every first text encoder "lora_te1"; kohya sd-scripts keeps that for SDXL's.
            key = key.replace("lora_te1_", "lora_te_", 1)
        out[key] = value.contiguous()
    for key in [k for k in out if k.endswith(".alpha")]:
        module = key.removesuffix(".alpha")
        name = next(component for prefix, component in prefixes.items() if module.startswith(prefix))
        rank = out[module + ".lora_down.weight"].shape[0]
        out[key] = torch.tensor(_kohya_alpha(configs[name], rank, name))
    if not sdxl and sd2 is None:
        sd2 = _looks_sd2(layers)
        if sd2 is None and emit is not None:
            emit(WarningEvent(message=f"{source.name}: no layer of this LoRA reads the text, whose width tells SD1 from "
                                      "SD2, and nothing said which its base model is: it is filed under SD1 "
                                      "(ss_base_model_version sd_v1), which WebUIs hide beside an SD2 model",
                              advice="for an SD2 LoRA, convert it again with its base model's family: "
                                     "`dbtui convert lora-to-kohya … --family sd2` (sd2-v for SD2-v)"))
    with atomic_file(out_file, overwrite=overwrite) as tmp:
        version = "sdxl_base_v1-0" if sdxl else "sd_v2" if sd2 else "sd_v1"
        save_file(out, str(tmp), metadata=kohya_metadata(version, out, v_prediction=v_prediction))
    progress.step()
    progress.finish()
    return out_file
