"""Import a Flux.1 transformer saved as one file in Black Forest Labs' layout into a diffusers Flux folder.

ComfyUI and Forge users have ``flux1-dev.safetensors`` (``double_blocks.N…``, ``single_blocks.N…``,
``img_in``, ``txt_in``…, bare or under ``model.diffusion_model.``): the transformer alone, often
fine-tuned, often stored in fp8. Its VAE, CLIP-L and T5 (with their tokenizers and the scheduler)
come from a diffusers Flux folder or hub id, the *components*: by default the original repository
of the file's variant, read from the Hugging Face cache or downloaded without its transformer.

The transformer's architecture is read from the tensors (widths, block counts, the guidance
embedding that [dev] has and [schnell] lacks), so fine-tunes and smaller variants import as they
are; the weights are mapped by engine/convert/flux_layout.py. fp8 weights (``float8_e4m3fn``, and
ComfyUI's scaled fp8 with a ``scale_weight`` per layer) are widened to bf16 on import: the
trainer quantizes the frozen base itself (model.quantize).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, Progress, atomic_dir, check_free_space, make_folder
from engine.convert.detect import FLUX_DEV, ModelFamily
from engine.convert.errors import ConvertError, ModelMismatchError
from engine.convert.flux_layout import UnknownFluxWeightError, original_to_diffusers, strip_prefix
from engine.convert.load_checkpoint import Checkpoint
from engine.events import Warning as WarningEvent

REPOSITORIES = {"flux-dev": "black-forest-labs/FLUX.1-dev", "flux-schnell": "black-forest-labs/FLUX.1-schnell"}
# What the components give, as people call each part.
PARTS = {
    "vae": "the VAE (vae/)",
    "text_encoder": "CLIP-L (text_encoder/)",
    "text_encoder_2": "T5 (text_encoder_2/)",
    "tokenizer": "CLIP-L's tokenizer (tokenizer/)",
    "tokenizer_2": "T5's tokenizer (tokenizer_2/)",
    "scheduler": "the scheduler (scheduler/)",
}
MODELS = ("vae", "text_encoder", "text_encoder_2")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
# Downloaded from a hub repository: everything but the transformer, whose config alone is read.
DOWNLOAD = ["model_index.json", "transformer/config.json", *(f"{part}/*" for part in PARTS)]
# Flux.1's rotary axes (time/text, rows, columns): not in the weights, so from the components' config if it
# has one, else these, which Flux.1's 128-wide heads use.
FLUX1_AXES = (16, 56, 56)
SCALED_FP8 = "scaled_fp8"  # ComfyUI's marker of a file whose fp8 weights carry a scale each


def _variant_label(family: ModelFamily) -> str:
    return "[dev]" if family is FLUX_DEV else "[schnell]"


def _widened(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """fp8 weights as bf16 (ComfyUI's scaled fp8 multiplied by its scales); other dtypes as they are."""
    import torch

    out = {}
    for key, tensor in state_dict.items():
        if key == SCALED_FP8 or key.endswith((".scale_weight", ".scale_input")):
            continue
        scale = state_dict.get(key.removesuffix(".weight") + ".scale_weight") if key.endswith(".weight") else None
        if scale is not None:
            tensor = tensor.float() * scale.float()
        if tensor.dtype in (torch.float8_e4m3fn, torch.float8_e5m2) or scale is not None:
            tensor = tensor.to(torch.bfloat16)
        out[key] = tensor
    return out


def _block_count(state_dict: Mapping[str, Any], kind: str) -> int:
    return 1 + max((int(k.split(".")[1]) for k in state_dict if k.startswith(kind + ".")), default=-1)


def transformer_config(state_dict: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """FluxTransformer2DModel's config for original-layout weights: every size from the tensors,
    the rotary axes from ``base`` (the components' transformer config) or Flux.1's."""
    head_dim = int(state_dict["double_blocks.0.img_attn.norm.query_norm.scale"].shape[0])
    width = int(state_dict["img_in.weight"].shape[0])
    axes = tuple(base.get("axes_dims_rope") or FLUX1_AXES)
    if sum(axes) != head_dim:
        raise ModelMismatchError(
            f"the transformer's attention heads are {head_dim} wide, but the rotary axes {list(axes)} add up to "
            f"{sum(axes)}: give --components a diffusers folder whose transformer/config.json describes this model"
        )
    return {
        "patch_size": 1,
        "in_channels": int(state_dict["img_in.weight"].shape[1]),
        "out_channels": int(state_dict["final_layer.linear.weight"].shape[0]),
        "num_layers": _block_count(state_dict, "double_blocks"),
        "num_single_layers": _block_count(state_dict, "single_blocks"),
        "attention_head_dim": head_dim,
        "num_attention_heads": width // head_dim,
        "joint_attention_dim": int(state_dict["txt_in.weight"].shape[1]),
        "pooled_projection_dim": int(state_dict["vector_in.in_layer.weight"].shape[1]),
        "guidance_embeds": "guidance_in.in_layer.weight" in state_dict,
        "axes_dims_rope": list(axes),
    }


def _mismatch(name: str, what: str, keys: list[str]) -> ModelMismatchError:
    shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    return ModelMismatchError(f"{name} {what} ({shown}): it is not a complete Flux.1 [dev] or [schnell] transformer; "
                              "check the download, or use a diffusers Flux folder instead")


def load_transformer(state_dict: Mapping[str, Any], base_config: Mapping[str, Any], name: str) -> Any:
    """A ``FluxTransformer2DModel`` holding the original-layout weights (no memory spent on a random init)."""
    from accelerate import init_empty_weights
    from diffusers import FluxTransformer2DModel

    original = _widened(strip_prefix(state_dict))
    try:
        weights = original_to_diffusers(original)
    except UnknownFluxWeightError as error:
        raise _mismatch(name, "has weights a Flux.1 transformer does not", error.args[0]) from None
    except KeyError as error:  # a weight the sizes are read from
        raise _mismatch(name, "lacks weights every Flux.1 transformer has", [str(error.args[0])]) from None
    try:
        config = transformer_config(original, base_config)
    except KeyError as error:
        raise _mismatch(name, "lacks weights every Flux.1 transformer has", [str(error.args[0])]) from None
    with init_empty_weights():
        transformer = FluxTransformer2DModel.from_config(config)
    try:
        result = transformer.load_state_dict(weights, strict=False, assign=True)
    except RuntimeError as error:  # a shape that does not fit the sizes read from the other weights
        raise ModelMismatchError(f"{name} has weights of inconsistent sizes ({str(error).splitlines()[-1].strip()}); "
                                 "the file is damaged or of another architecture") from None
    if result.missing_keys:
        raise _mismatch(name, "lacks weights every Flux.1 transformer has", list(result.missing_keys))
    if result.unexpected_keys:
        raise _mismatch(name, "has weights a Flux.1 transformer does not", list(result.unexpected_keys))
    return transformer


def _is_component(folder: Path, part: str) -> bool:
    """Whether ``folder/part`` holds what that part needs: a config and weights, or tokenizer or scheduler files."""
    sub = folder / part
    if part in MODELS:
        return (sub / "config.json").is_file() and any(f.name.endswith(WEIGHT_SUFFIXES) for f in sub.iterdir())
    if part == "scheduler":
        return (sub / "scheduler_config.json").is_file()
    return sub.is_dir() and any(sub.iterdir())


def check_components(folder: Path, source: str) -> None:
    """Raise, naming every missing part, unless ``folder`` is a diffusers Flux folder with all but its transformer."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    missing = [] if index.get("_class_name") == "FluxPipeline" else ["model_index.json naming FluxPipeline"]
    missing += [what for part, what in PARTS.items() if not _is_component(folder, part)]
    if missing:
        raise ConvertError(
            f"the components {source} lack {', '.join(missing)}. A Flux transformer file needs them from a diffusers "
            f"Flux folder or hub id: give --components with one that has them (e.g. {REPOSITORIES['flux-dev']})"
        )


def resolve_components(components: str | Path, family: ModelFamily) -> Path:
    """A local folder for ``components``: the folder itself, or a hub repository (cached, else downloaded
    without its transformer)."""
    path = Path(components).expanduser()
    if path.is_dir():
        return path
    repo = str(components)
    if path.exists() or repo.count("/") != 1:
        raise ConvertError(f"components '{components}' is neither a folder nor a hub id (owner/name): give a diffusers "
                           "Flux folder or hub id")
    from engine.hub_snapshot import HubUnavailable, hub_snapshot

    try:
        return hub_snapshot(repo, allow_patterns=DOWNLOAD)
    except HubUnavailable as unavailable:
        cause = unavailable.cause
    advice = (f"download {repo} where there is internet (its transformer/ is not needed), copy the folder here, "
              "convert with `dbtui convert to-diffusers FILE OUT --components FOLDER` and train from OUT")
    if cause == "offline":
        raise ConvertError(f"the VAE, CLIP-L and T5 for this Flux.1 {_variant_label(family)} transformer come from {repo}, "
                           f"which is not in the Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it; {advice}")
    if cause == "GatedRepoError":
        raise ConvertError(f"{repo} is gated: accept its licence on https://huggingface.co/{repo} and log in "
                           f"(huggingface-cli login), then run this again; or {advice}")
    raise ConvertError(f"the VAE, CLIP-L and T5 for this transformer come from {repo}, which could not be downloaded "
                       f"({cause}); {advice}")


def _transformer_base_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "transformer" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _link_or_copy(source: str, target: str) -> None:
    """A hard link where the file system allows one (T5 alone is 9.5 GB), else a copy. Only to one's own
    files: the output's files get the usual permissions (engine/convert/_files.py), and a link shares them.
    Like the Hugging Face cache's links, a linked file must be replaced, never written into."""
    real = os.path.realpath(source)
    if hasattr(os, "geteuid") and os.stat(real).st_uid == os.geteuid():
        try:
            os.link(real, target)
            return
        except OSError:  # another disk, or a file system without links
            pass
    shutil.copy2(source, target)


def _parts_bytes(folder: Path, out_parent: Path) -> int:
    """What copying the components takes on the output's disk: nothing where they can be hard-linked."""
    total = sum(f.stat().st_size for part in PARTS for f in (folder / part).rglob("*") if f.is_file())
    same_disk = os.stat(folder.resolve()).st_dev == os.stat(out_parent).st_dev
    return 0 if same_disk else total


def import_flux_transformer(checkpoint: Checkpoint, family: ModelFamily, out_dir: Path, *,
                            components: str | Path | None, emit: Emit | None = None) -> Path:
    """Write ``out_dir``, a diffusers Flux folder: the file's transformer with the components' other parts."""
    name = checkpoint.path.name
    label = _variant_label(family)
    source = str(components) if components is not None else REPOSITORIES[family.id]
    folder = resolve_components(source, family)
    check_components(folder, source)
    progress = Progress(emit, "convert", total=3, description=f"{name}: {family.description}")
    base = _transformer_base_config(folder)
    guidance = family is FLUX_DEV
    if base and bool(base.get("guidance_embeds")) != guidance and emit is not None:
        emit(WarningEvent(
            message=f"{name} is Flux.1 {label} but the components {source} are from the other variant: its scheduler "
                    "settings (the timestep shift) come with them",
            advice=f"give --components a Flux.1 {label} folder or hub id ({REPOSITORIES[family.id]})",
        ))
    transformer = load_transformer(checkpoint.state_dict, base, name)
    progress.step()
    out_parent = out_dir.resolve().parent
    make_folder(out_parent)
    model_bytes = sum(p.numel() * p.element_size() for p in transformer.parameters())
    check_free_space(out_parent, model_bytes + _parts_bytes(folder, out_parent))
    with atomic_dir(out_dir) as tmp:
        transformer.save_pretrained(tmp / "transformer")
        progress.step()
        for part in PARTS:
            shutil.copytree(folder / part, tmp / part, copy_function=_link_or_copy)
        shutil.copyfile(folder / "model_index.json", tmp / "model_index.json")
    progress.step()
    progress.finish()
    return out_dir
