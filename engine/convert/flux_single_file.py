"""Import a Flux.1 transformer saved as one file in Black Forest Labs' layout into a diffusers Flux folder.

ComfyUI and Forge users have ``flux1-dev.safetensors`` (``double_blocks.N…``, ``single_blocks.N…``,
``img_in``, ``txt_in``…, bare or under ``model.diffusion_model.``): the transformer alone, often
fine-tuned, often stored in fp8. Its VAE, CLIP-L and T5 come from the single files they have too
(``ae.safetensors``, ``clip_l.safetensors``, ``t5xxl_fp16.safetensors``: engine/convert/flux_part_files.py),
from the transformer file itself where it holds them (ComfyUI's all-in-one checkpoints), or else from
a diffusers Flux folder or hub id, the *components* (engine/convert/flux_components.py): by default the
original repository of the file's variant. The tokenizers and the scheduler always come from the components.

The transformer's architecture is read from the tensors (widths, block counts, the guidance
embedding that [dev] has and [schnell] lacks), so fine-tunes and smaller variants import as they
are; the weights are mapped by engine/convert/flux_layout.py. fp8 weights (``float8_e4m3fn``, and
ComfyUI's scaled fp8 with a ``scale_weight`` per layer) are widened to bf16 on import: the
trainer quantizes the frozen base itself (model.quantize).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, Progress, atomic_dir, check_free_space, make_folder
from engine.convert.detect import FLUX_DEV, ModelFamily
from engine.convert.errors import ModelMismatchError
from engine.convert.flux_components import (
    REPOSITORIES,
    check_components,
    copy_bytes,
    copy_components,
    needed_parts,
    resolve_components,
    transformer_base_config,
)
from engine.convert.flux_fp8 import widened
from engine.convert.flux_layout import BFL_PREFIX, UnknownFluxWeightError, original_to_diffusers, strip_prefix
from engine.convert.flux_part_files import SLOTS, FluxPartFiles, check_part_files, load_part
from engine.convert.flux_part_keys import find_parts
from engine.convert.load_checkpoint import Checkpoint, read_checkpoint
from engine.convert.older_readers import write_for_older_readers
from engine.convert.weight_dtypes import check_float_weights
from engine.events import Warning as WarningEvent

# Flux.1's rotary axes (time/text, rows, columns): not in the weights, so from the components' config if it
# has one, else these, which Flux.1's 128-wide heads use.
FLUX1_AXES = (16, 56, 56)


def variant_label(family: ModelFamily) -> str:
    """"[dev]" or "[schnell]", as messages name a Flux.1 variant."""
    return "[dev]" if family is FLUX_DEV else "[schnell]"


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

    original = widened(strip_prefix(state_dict))
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


def _part_sources(checkpoint: Checkpoint, part_files: FluxPartFiles | None) -> dict[str, Path | None]:
    """{slot: its file} for the parts that do not come from the components: the files given, else the
    transformer file itself where it holds that part (ComfyUI's all-in-one checkpoints); None for the latter."""
    given = part_files.given() if part_files is not None else {}
    inside = {part.kind for part in find_parts(checkpoint.state_dict)}
    return {slot.name: given.get(slot.name) for slot in SLOTS.values() if slot.name in given or slot.kind in inside}


def _parts_bytes(checkpoint: Checkpoint, sources: dict[str, Path | None]) -> int:
    """What the parts read from files take once written, fp8 twice (widened to bf16): a part file by its size
    (ComfyUI names its fp8 files so), the transformer file's own parts by their tensors."""
    files = sum(path.stat().st_size * (2 if "fp8" in path.name.lower() else 1)
                for path in sources.values() if path is not None)
    inside = any(path is None for path in sources.values())
    return files + inside * sum(v.numel() * max(v.element_size(), 2) for k, v in checkpoint.state_dict.items()
                                if not k.startswith(BFL_PREFIX))


def import_flux_transformer(checkpoint: Checkpoint, family: ModelFamily, out_dir: Path, *,
                            components: str | Path | None, part_files: FluxPartFiles | None = None,
                            emit: Emit | None = None, before_publish: Callable[[Path], None] | None = None) -> Path:
    """Write ``out_dir``, a diffusers Flux folder: the file's transformer, the VAE, CLIP-L and T5 from
    ``part_files`` (or from the transformer file, where it holds them) or else from the components, and the
    components' tokenizers and scheduler."""
    if part_files is not None:
        check_part_files(part_files)
    name = checkpoint.path.name
    label = variant_label(family)
    source = str(components) if components is not None else REPOSITORIES[family.id]
    sources = _part_sources(checkpoint, part_files)
    replaced = [SLOTS[slot].subfolder for slot in sources]
    folder = resolve_components(source, label, replaced)
    copied = needed_parts(replaced)
    check_components(folder, source, copied)
    progress = Progress(emit, "convert", total=3 + len(sources), description=f"{name}: {family.description}")
    base = transformer_base_config(folder)
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
    check_free_space(out_parent / out_dir.name, model_bytes + _parts_bytes(checkpoint, sources) + copy_bytes(folder, copied, out_parent))
    with atomic_dir(out_dir, before_publish) as tmp:
        # The parts first, one file in memory at a time: a wrong file is refused before the long transformer write.
        for slot_name, path in sources.items():
            part_checkpoint = read_checkpoint(path) if path is not None else checkpoint
            check_float_weights(part_checkpoint.path.name, part_checkpoint.state_dict)
            slot = SLOTS[slot_name]
            load_part(slot, part_checkpoint.state_dict, part_checkpoint.path.name, folder).save_pretrained(tmp / slot.subfolder)
            del part_checkpoint
            progress.step()
        transformer.save_pretrained(tmp / "transformer")
        progress.step()
        copy_components(folder, copied, tmp)
        write_for_older_readers(tmp)
    progress.step()
    progress.finish()
    return out_dir
