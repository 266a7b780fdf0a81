"""Before a run: whether the Flux transformer file named as model.pretrained can be converted here, offline.

The run converts it into its own folder (engine/models/loading.py) with the components of its variant's repository
(engine/convert/flux_single_file.py); offline, that repository must be in the Hugging Face cache. ``validate`` passed
such a profile, and the run failed at its load saying how to get them."""

from __future__ import annotations

from pathlib import Path


def missing_components(path: Path) -> str | None:
    """What the run's conversion of ``path`` would fail with, offline, for want of the components it takes from the
    hub: the tokenizers and scheduler, and the VAE, CLIP-L and T5 the file does not hold. None where ``path`` is no
    Flux transformer .safetensors, where downloading is allowed (the run downloads them), or where they are cached."""
    from safetensors import SafetensorError

    from engine.convert.detect import detect_family, header_shapes
    from engine.convert.errors import ConvertError
    from engine.convert.flux_components import REPOSITORIES, check_components, needed_parts, resolve_components
    from engine.convert.flux_part_files import SLOTS
    from engine.convert.flux_part_keys import find_parts
    from engine.convert.flux_single_file import variant_label
    from engine.support.hub_snapshot import hub_offline

    if not hub_offline():
        return None
    try:
        shapes = header_shapes(path)
    except (OSError, ValueError, SafetensorError):
        return None  # no .safetensors, or a damaged one: model_source_problems says so
    family = detect_family(shapes, prediction_type="epsilon")
    if not (family.flux and family.supported):
        return None
    inside = {part.kind for part in find_parts(shapes)}  # ComfyUI's all-in-one files hold their own parts
    replaced = [slot.subfolder for slot in SLOTS.values() if slot.kind in inside]
    source = REPOSITORIES[family.id]
    try:
        check_components(resolve_components(source, variant_label(family), replaced), source, needed_parts(replaced))
    except ConvertError as error:
        return f"'{path}' is a Flux.1 {variant_label(family)} transformer file, converted when the run starts: {error}"
    return None
