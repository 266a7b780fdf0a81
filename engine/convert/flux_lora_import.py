"""A kohya/ComfyUI Flux LoRA (``lora_unet_double_blocks_0_img_attn_qkv…``) as a diffusers Flux LoRA folder.

diffusers reads those files itself (``FluxPipeline.lora_state_dict``: kohya sd-scripts' names,
ComfyUI's ``diffusion_model.`` ones, and the fused q/k/v and ``linear1`` split back into
diffusers' modules, with alpha / rank folded into the weights), so this is that reading, saved
with ``FluxPipeline.save_lora_weights``. CLIP-L's ``lora_te1_…`` LoRA comes back under ``text_encoder.``,
renamed from the reader's older diffusers spelling (``to_q_lora.down``) to peft's (``q_proj.lora_A``), the
names dbtui's own exports use. Its reader knows Flux.1's real sizes only (a single
block's ``linear1`` is split at 3072 rows), which every Flux.1 [dev] and [schnell] LoRA has.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, Progress, atomic_dir, check_new_folder
from engine.convert.detect import detect_family
from engine.convert.errors import ConvertError, UnsupportedModelError
from engine.convert.flux_layout import SWAPPED, TOP_LEVEL
from engine.convert.load_checkpoint import read_checkpoint
from engine.convert.lora_export import LORA_WEIGHTS
from engine.convert.run_folder_hint import run_folder_hint

ORIGINAL_NAMES = ("lora_unet_double_blocks_", "lora_unet_single_blocks_", "diffusion_model.double_blocks.",
                  "diffusion_model.single_blocks.")
COMPONENTS = ("transformer", "text_encoder")


def is_original_flux_lora(keys: Mapping[str, Any]) -> bool:
    """Whether a LoRA names Flux's modules as the original model does (kohya sd-scripts, ComfyUI)."""
    return any(key.startswith(ORIGINAL_NAMES) for key in keys)


def _with_final_layer_alphas_folded(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The final layer's LoRAs with alpha / rank folded into their down weights: diffusers' reader takes
    them without their alpha (its converter's "TODO: alphas"), which would scale them by rank / alpha."""
    out = dict(state_dict)
    for key in [k for k in state_dict if "final_layer" in k and k.endswith(".alpha")]:
        down = key.removesuffix(".alpha") + ".lora_down.weight"
        if down in out:
            out[down] = out[down] * (float(out.pop(key)) / out[down].shape[0])
    return out


def _diffusers_layers(state_dict: dict[str, Any], source: Path) -> dict[str, dict[str, Any]]:
    """{"transformer": {...}, "text_encoder": {...}}: diffusers' own reading of the file, per component."""
    from diffusers import FluxPipeline
    from diffusers.utils import convert_state_dict_to_peft

    state_dict = _with_final_layer_alphas_folded(state_dict)
    try:
        layers, alphas = FluxPipeline.lora_state_dict(state_dict, return_alphas=True)
    except (ValueError, AssertionError, KeyError) as error:
        detail = f" ({str(error)[:200]})" if str(error).strip() else ""  # diffusers' asserts carry no message
        raise UnsupportedModelError(
            f"{source} could not be read as a Flux.1 LoRA{detail}; its module names or sizes are not those of "
            "Flux.1 [dev] or [schnell] (a LoRA of a smaller test model cannot be converted)"
        ) from None
    if alphas:  # kohya and ComfyUI files come back with alpha folded in; another layout would not
        raise UnsupportedModelError(f"{source} keeps alphas in a layout dbtui does not convert; FluxPipeline.load_lora_weights "
                                    "loads it as it is")
    split: dict[str, dict[str, Any]] = {component: {} for component in COMPONENTS}
    for key, value in layers.items():
        module = key.rsplit(".", 2)[0]  # without .lora_A.weight
        if module in TOP_LEVEL or module in SWAPPED:
            # diffusers' reader leaves the transformer's outer layers (img_in, txt_in, final_layer…) without
            # "transformer.", and its loader then skips them: they are the transformer's.
            key = f"transformer.{key}"
        component, _, name = key.partition(".")
        if component not in split:
            raise UnsupportedModelError(f"{source} has LoRA weights for {component}, which a Flux LoRA folder cannot hold")
        # A copy each: for a fused module trained as a whole, diffusers gives its parts one shared down weight.
        split[component][name] = value.contiguous().clone()
    if split["text_encoder"]:
        split["text_encoder"] = convert_state_dict_to_peft(split["text_encoder"])
    return split


def _not_original_flux_lora(state_dict: Mapping[str, Any], source: Path) -> str:
    """What the file is instead, and how it loads."""
    def diffusers_lora_of(*components: str) -> bool:
        return any(key.startswith(components) and (".lora_A." in key or ".lora.down." in key or "_lora.down." in key)
                   for key in state_dict)

    hint = run_folder_hint(source.parent, "LoRA")  # a checkpoint's adapter file (lora/transformer.safetensors)
    if hint:
        return hint
    family = detect_family(state_dict)
    if family.supported:
        return (f"{source} is a full model checkpoint ({family.description}), not a LoRA: `dbtui convert to-diffusers` "
                "makes a diffusers folder of it; lora-to-diffusers takes a kohya or ComfyUI Flux LoRA")
    if diffusers_lora_of("transformer."):
        return f"{source} is already a diffusers-format Flux LoRA"
    if diffusers_lora_of("unet.", "text_encoder."):  # text_encoder_2. too
        return (f"{source} is already a diffusers-format Stable Diffusion LoRA: load_lora_weights loads it as it is "
                "(lora-to-diffusers converts kohya and ComfyUI Flux LoRAs)")
    return (f"{source} is not a kohya or ComfyUI Flux LoRA (no lora_unet_double_blocks_… or "
            "diffusion_model.double_blocks.… names); Stable Diffusion LoRAs in kohya format load as they are with "
            "load_lora_weights")


def flux_lora_to_diffusers(lora_file: str | Path, out_dir: str | Path, *, emit: Emit | None = None) -> Path:
    """Write ``out_dir``: the kohya/ComfyUI Flux LoRA ``lora_file`` in diffusers format, for
    ``FluxPipeline.load_lora_weights``."""
    from diffusers import FluxPipeline

    source, out_dir = Path(lora_file), Path(out_dir)
    if (source / LORA_WEIGHTS).is_file():
        raise ConvertError(f"{source} is already a diffusers LoRA folder: load_lora_weights loads it as it is")
    hint = run_folder_hint(source, "LoRA") if source.is_dir() else None
    if hint:
        raise ConvertError(f"{hint}; a run's LoRA is in diffusers format already")
    if (source / "lora" / LORA_WEIGHTS).is_file():  # a run's outputs/
        raise ConvertError(f"{source} holds no LoRA file: its LoRA is in {source / 'lora'}, in diffusers format already")
    check_new_folder(out_dir)  # before reading the input: a Flux LoRA can be hundreds of MB
    state_dict = dict(read_checkpoint(source).state_dict)
    if not is_original_flux_lora(state_dict):
        raise ConvertError(_not_original_flux_lora(state_dict, source))
    # Announced once the file is known to be one: a refused file shows no "→ … (diffusers Flux LoRA)" line.
    progress = Progress(emit, "convert", total=2, description=f"{source.name} → {out_dir.name} (diffusers Flux LoRA)")
    layers = _diffusers_layers(state_dict, source)
    progress.step()
    with atomic_dir(out_dir) as tmp:
        FluxPipeline.save_lora_weights(tmp, transformer_lora_layers=layers["transformer"] or None,
                                       text_encoder_lora_layers=layers["text_encoder"] or None)
    progress.step()
    progress.finish()
    return out_dir
