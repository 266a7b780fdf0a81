"""What a model source is, as the wizard and the CLI show it: its kind, family, folder and native size,
and which family's hardware advice applies.

One engine entry point for both user interfaces, so that neither reaches into engine.models or
engine.convert on its own. It reads configs and file headers only: no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.models.folder_parts import missing_parts, missing_parts_message
from engine.profile.model_source import ModelKind, holds_model_index, local_path, model_kind
from engine.support.json_file import read_json_object

# The embedding of pooled text and image sizes only SDXL's UNet has, in the original layout (with ComfyUI's bare UNet
# files' prefix-less names) and in diffusers'.
XL_UNET = ("model.diffusion_model.label_emb.", "label_emb.", "add_embedding.")
# An SD file's text encoder in the original layout: SD1's CLIP under cond_stage_model.transformer., SD2's OpenCLIP
# under cond_stage_model.model. (engine/convert/detect.py's SD1_TEXT and SD2_TEXT).
SD_TEXT = "cond_stage_model."
SD2_TEXT = SD_TEXT + "model."
# The SD family's versions in words, by advice_family's ids: its label, "Stable Diffusion 1.x/2.x", names either, and
# the Model step and the run's line named one model two ways.
SD_VERSION_WORDS = {"sd": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x"}
REFINER = ("the Stable Diffusion XL refiner, which refines finished images and cannot be DreamBooth-trained: "
           "use the SDXL base model or a fine-tune of it")


@dataclass(frozen=True)
class ModelDescription:
    source: str
    kind: ModelKind
    family: str  # what the model is, in words
    folder: str | None  # the diffusers folder a profile can use; None until a single file is converted
    supported: bool = True
    resolution: int | None = None  # the image size the model was made for, when known
    family_id: str | None = None  # the family that trains it ("sd", "sdxl"); None when unknown or untrainable


def _config(folder: Path, part: str, name: str = "config.json") -> dict[str, Any]:
    return read_json_object(folder / part / name)


def _is_sd2(model: Path) -> bool | None:
    """An SD model of SD2.x, by its text encoder: a folder's OpenCLIP config uses gelu, SD1's CLIP ViT-L quick_gelu
    (also in the tiny models); a .safetensors file's header names OpenCLIP's weights (SD2_TEXT). None for a file whose
    header names no SD text encoder, or cannot be read. engine.convert.keymap.is_open_clip says the same of a config,
    and engine.convert.detect of a file's keys, but importing either loads all of engine.convert."""
    if model.is_dir():
        return _config(model, "text_encoder").get("hidden_act") == "gelu"
    keys = _header_keys(model) or []
    return any(key.startswith(SD2_TEXT) for key in keys) if any(key.startswith(SD_TEXT) for key in keys) else None


def _variant(folder: Path, family_id: str, label: str) -> str:
    """The family's label, told apart further where its configs say how (SD1 or SD2, v-prediction)."""
    words = label
    if family_id == "sd":
        words = SD_VERSION_WORDS["sd2" if _is_sd2(folder) else "sd"]
    return words + ", v-prediction" if _predicts_velocity(folder) else words


def _predicts_velocity(folder: Path) -> bool:
    """Whether the diffusers folder's scheduler config says v-prediction."""
    return _config(folder, "scheduler", "scheduler_config.json").get("prediction_type") == "v_prediction"


def describe_folder(folder: Path) -> tuple[str, str | None]:
    """(the family of a diffusers folder in words, the id of the family that trains it or None)."""
    from engine.models.registry import FAMILIES, family_of, read_model_index
    from engine.models.sdxl import RefinerNotTrainableError

    try:
        family = family_of(folder)
    except RefinerNotTrainableError:
        return REFINER, None
    except DbtuiError as error:
        try:
            pipeline = read_model_index(folder).get("_class_name") or "an unnamed pipeline"
        except DbtuiError:
            return str(error), None
        trained = " and ".join(f.label for f in FAMILIES)
        return f"a {pipeline}, which dbtui does not train (it trains {trained})", None
    return _variant(folder, family.id, family.label), family.id


def describe_model(source: str, *, vae: str | None = None, tokenizer: str | None = None) -> ModelDescription:
    """Describe ``model.pretrained`` before anything is downloaded or converted; ``vae`` and ``tokenizer``
    (model.vae, model.tokenizer) stand for the folder's parts they replace."""
    from engine.models.loading import native_resolution

    kind = model_kind(source)
    if kind == "builtin":
        from engine.builtin import MODELS, PREFIX, resolve_model

        name = source.removeprefix(PREFIX)
        if name not in MODELS:
            resolve_model(source)  # a misspelt name: raises UnknownBuiltinError, which names the built-in models
        size, _, pretrained = MODELS[name]
        if size != "tiny":
            return _unbuilt_builtin(source, size)
        folder = resolve_model(source)
        family, family_id = describe_folder(Path(folder))
        words = f"built-in {'tiny ' if size == 'tiny' else ''}{family} with {'demo' if pretrained else 'random'} weights"
        return ModelDescription(source, kind, words, folder, family_id is not None, native_resolution(folder), family_id)
    if kind == "diffusers":
        folder = local_path(source)
        if not holds_model_index(folder):
            from engine.dataset.profile_paths import model_source_problems

            said = [problem.message for problem in model_source_problems(source)]
            return ModelDescription(source, kind, said[0] if said else "not a diffusers folder (no model_index.json)", None,
                                    supported=False)
        family, family_id = describe_folder(folder)
        if family_id is not None and (missing := missing_parts(folder, vae=vae, tokenizer=tokenizer)):
            return ModelDescription(source, kind, f"diffusers folder: {family}, but {missing_parts_message(source, missing)}",
                                    None, supported=False, family_id=family_id)
        return ModelDescription(source, kind, f"diffusers folder: {family}", str(folder), family_id is not None,
                                native_resolution(folder), family_id)
    if kind == "hub":
        from engine.dataset.profile_paths import model_source_problems

        if said := [problem.message for problem in model_source_problems(source)]:
            return ModelDescription(source, kind, said[0], None, supported=False)
        return ModelDescription(source, kind, "Hugging Face hub id: downloaded when training starts", source)
    from engine.convert import checkpoint_family
    from engine.convert.absent_parts import lacking_said
    from engine.convert.checkpoint_header import header_checkpoint
    from engine.dataset.profile_paths import model_source_problems

    if said := [problem.message for problem in model_source_problems(source, vae)]:  # not there, damaged, or no model
        return ModelDescription(source, kind, said[0], None, supported=False)
    # ``~`` and ``$VAR`` read as the profile reads them; with what its .yaml or metadata says it predicts.
    checkpoint = header_checkpoint(local_path(source))
    detected = checkpoint_family(checkpoint)
    # A .safetensors file's header or a zip .ckpt's pickle said this already, above; a legacy pickle's keys are read
    # only now.
    if said := lacking_said(f"'{source}'", checkpoint.state_dict, detected, vae_given=bool(vae)):
        return ModelDescription(source, kind, said, None, supported=False)
    family_id = detected.trains_as if detected.supported else None
    return ModelDescription(source, kind, f"single file: {detected.description}", None, supported=detected.supported,
                            resolution=detected.resolution, family_id=family_id)


def _unbuilt_builtin(source: str, size: str) -> ModelDescription:
    """A built-in larger than tiny, described from its family without building it: building reads nothing it does
    not know already, and takes minutes and tens of GB (builtin:flux-random 34 GB, more than many machines hold)."""
    from engine.builtin import builtin_family
    from engine.builtin.tiny_model import default_resolution
    from engine.models.registry import family_named

    family = family_named(builtin_family(source) or "sd")
    # The SD sizes are tiny_model's (medium-sd1 256 px, sd15-random 512); SDXL's and Flux's are their families' own.
    resolution = default_resolution(size) if family.id == "sd" else family.default_resolution
    words = family_words(source)
    return ModelDescription(source, "builtin", f"built-in {words} with random weights, built when first used", source,
                            True, resolution, family.id)


def likely_family(source: str) -> str:
    """The family id whose advice applies to ``model.pretrained``, found without downloading anything.

    A diffusers folder or a built-in model says it in its model_index.json, and so does a hub model
    already in the Hugging Face cache; a .safetensors file by its keys (``family_from_files``). Otherwise
    the name decides: SDXL and its fine-tunes carry "XL" in nearly every name (stable-diffusion-xl-base-1.0,
    juggernautXL_v9, Pony_Diffusion_V6_XL, noobai-XL-1.1), and Flux models "flux".
    """
    return family_from_files(source) or family_by_name(source)


def advice_family(source: str) -> str:
    """``likely_family``, with SD2.x told apart ("sd2") where the model's text encoder (a folder's config, a single
    file's weights) or, without it, its name says so: the hardware advice's figures differ (SD2's OpenCLIP text encoder
    is three times SD1.5's)."""
    family = likely_family(source)
    return (_sd_version(source) or "sd") if family == "sd" else family


def _sd_version(source: str) -> str | None:
    """"sd2" or "sd" (1.x) of an SD model, by its files, else by its name; None where neither says."""
    from engine.builtin import MODELS, PREFIX, is_builtin

    if is_builtin(source):  # by its variant, without building it
        entry = MODELS.get(source.removeprefix(PREFIX))  # None: a built-in of another version, whose version is unsaid
        return None if entry is None else "sd2" if entry[1].startswith("sd2") else "sd"
    path = Path(source).expanduser()
    index = path / "model_index.json" if path.is_dir() else _cached_model_index(source)
    if index is not None and holds_model_index(index.parent):
        return "sd2" if _is_sd2(index.parent) else "sd"
    # A .safetensors file by its header; one without an SD text encoder (a bare UNet), or a .ckpt, by its name.
    if (sd2 := _is_sd2(path) if path.is_file() else None) is not None:
        return "sd2" if sd2 else "sd"
    from engine.memory.absent_model import guessed_family

    return {"sd1": "sd", "sd2": "sd2"}.get(guessed_family(source) or "")


def family_words(source: str) -> str:
    """The family of ``model.pretrained`` in words, SD's version told apart as the Model step says it, where its files
    or its name say which (its label, "1.x/2.x", where neither does), read without downloading or building anything."""
    from engine.models.registry import family_named

    family = family_named(likely_family(source))
    words = SD_VERSION_WORDS.get(_sd_version(source) or "", family.label) if family.id == "sd" else family.label
    return words + ", v-prediction" if _v_prediction(source) else words


def _v_prediction(source: str) -> bool:
    """Whether ``model.pretrained`` predicts the velocity, where its scheduler's config says so on this machine (a
    built-in by its variant, unbuilt), as the Model step tells it (``_variant``)."""
    from engine.builtin import MODELS, PREFIX, is_builtin

    if is_builtin(source):
        entry = MODELS.get(source.removeprefix(PREFIX))
        return entry is not None and entry[1] == "sd2v"
    folder = _config_folder(source)
    return folder is not None and _predicts_velocity(folder)


def guessed_by_name(source: str) -> tuple[str, int] | None:
    """(the family id, its usual image size) of a model whose files do not say its family here (a hub id not
    downloaded), from its name as the memory meter guesses a model not on this machine
    (``engine.memory.absent_model.guessed_family``); None where the name says no family dbtui trains."""
    from engine.convert.detect import SD2_V
    from engine.memory.absent_model import guessed_family
    from engine.models.registry import family_named

    guess = guessed_family(source)
    if guess is None:
        return None
    family = family_named("sd" if guess in ("sd1", "sd2") else guess.removesuffix("-schnell"))
    # SD2.x's own 2 and 2.1 are 768 px models (v-prediction), their "-base" and "512" ones 512 px: the SD family's
    # usual 512 told stabilityai/stable-diffusion-2-1 "Likely made for 512 px" and a draft of it at 1024 px to take 512.
    if guess == "sd2" and not re.search(r"base|512", Path(source).name.lower()):
        return family.id, SD2_V.resolution
    return family.id, family.default_resolution


def family_by_name(source: str) -> str:
    """The family id ``source``'s name says ("flux", "sdxl", else "sd"), its files unread."""
    # The file's or folder's own name (a hub id's repo part) decides, not the folders it is in: FluxGym keeps
    # SDXL models under /workspace/fluxgym/models.
    name = source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    # Flux and its fine-tunes say so in their names (FLUX.1-dev, flux1-dev-fp8, fluxmania).
    if "flux" in name.lower():
        return "flux"
    # "XL" in any case-joined name (animagineXLV3, sdxlTurbo), but not the "xl" inside a word (xlarge, pixlart).
    return "sdxl" if re.search(r"XL|xl(?![a-z])", name) else "sd"


def family_from_files(source: str) -> str | None:
    """The family id the model's own files give (a built-in's by its name), or None where only its name could tell."""
    from engine.builtin import builtin_family, is_builtin

    if is_builtin(source):
        return builtin_family(source)  # asking its files would build it (Flux's full size is 34 GB)
    path = Path(source).expanduser()
    index = path / "model_index.json" if path.is_dir() else _cached_model_index(source)
    if index is not None and holds_model_index(index.parent):
        from engine.models.registry import family_of

        try:
            return family_of(index.parent).id
        except DbtuiError:
            return None
    if (keys := _header_keys(path)) is not None:
        # SDXL's original layout: both text encoders under conditioner.embedders (see engine/convert/detect.py). A UNet
        # without them (a UNet-only file) by its XL_UNET embedding, unless an SD text encoder says SD2's unCLIP, which
        # has a label_emb too.
        sd_text = any(key.startswith(SD_TEXT) for key in keys)
        if any(key.startswith(("conditioner.embedders.", *(() if sd_text else XL_UNET))) for key in keys):
            return "sdxl"
        from engine.convert.detect import UNET_IN, is_flux_transformer

        # Flux's transformer in BFL's layout, alone or inside ComfyUI's model.diffusion_model., by the weight validate
        # knows it by: a Flux LoRA names double_blocks too, but holds no base weight.
        if is_flux_transformer(dict.fromkeys(keys)):
            return "flux"
        # An SD UNet in the original layout, by its first conv as validate knows it: SD3's joint_blocks share the
        # model.diffusion_model. prefix, and a VAE, a LoRA or anything else says no family.
        return "sd" if UNET_IN in keys else None
    return None


def _header_keys(path: Path) -> list[str] | None:
    """The tensor names a .safetensors file's header lists (its tensors unread); None for another file, or a damaged
    one: the checks before the run say what is wrong with it."""
    if not (path.is_file() and path.suffix.lower() == ".safetensors"):
        return None
    from safetensors import SafetensorError

    from engine.support.safetensors_header import read_header

    try:
        return list(read_header(path).shapes)
    except (OSError, ValueError, SafetensorError):
        return None


def size_multiple(source: str) -> int:
    """The pixel step of ``model.pretrained``'s bucket sizes, as training will have it (``Components.size_multiple``),
    read from the VAE's and denoiser's configs without loading weights. A model whose configs are not on this
    machine (a hub id not yet downloaded, a single file) gets its family's usual step."""
    from types import SimpleNamespace

    from engine.builtin import PREFIX, TINY_SIZES, is_builtin
    from engine.models.registry import family_named

    if is_builtin(source) and source.removeprefix(PREFIX) in TINY_SIZES:
        return TINY_SIZES[source.removeprefix(PREFIX)][1]
    family = family_named(likely_family(source))
    folder = _config_folder(source)
    if folder is not None:
        vae = _config(folder, "vae").get("block_out_channels")
        denoiser = _config(folder, family.denoiser_name)
        if vae and denoiser:
            # The family reads only the denoiser's config (as diffusers' models hold it, by attribute); one that
            # leaves out what it reads (diffusers' defaults then) is told by the family's usual step.
            try:
                latent_step = family.latent_multiple(SimpleNamespace(config=SimpleNamespace(**denoiser)))
            except (AttributeError, TypeError):
                return family.usual_size_multiple
            return 2 ** (len(vae) - 1) * latent_step
    return family.usual_size_multiple


def _config_folder(source: str) -> Path | None:
    """The diffusers folder whose configs describe ``source`` on this machine: a folder, a hub model in the Hugging Face
    cache; None otherwise. A built-in is never built for it: what its configs say is known (``native_size``,
    ``size_multiple``)."""
    from engine.builtin import is_builtin

    if is_builtin(source):
        return None
    path = Path(source).expanduser()
    index = path / "model_index.json" if path.is_dir() else _cached_model_index(source)
    return index.parent if index is not None and holds_model_index(index.parent) else None


def _cached_model_index(source: str) -> Path | None:
    """model_index.json of a hub id from the local Hugging Face cache, or None (never downloads)."""
    if source.count("/") != 1 or Path(source).expanduser().exists():
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(source, "model_index.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(found) if isinstance(found, str) else None


def native_size(source: str) -> int | None:
    """The image size ``model.pretrained`` was made for, where that is known on this machine without a download or
    a build: a built-in's, a diffusers folder's or a cached hub model's configs; None otherwise (a single file)."""
    from engine.builtin import MODELS, PREFIX, TINY_SIZES, is_builtin
    from engine.models.loading import native_resolution

    key = source.removeprefix(PREFIX)
    if is_builtin(source) and key in MODELS:
        return TINY_SIZES[key][0] if key in TINY_SIZES else _unbuilt_builtin(source, MODELS[key][0]).resolution
    folder = _config_folder(source)
    return native_resolution(folder) if folder is not None else None
