"""Resolve a profile's model to a local diffusers folder and load its parts for training.

``ModelNotFoundError`` and ``Components`` are re-exported here for callers of this module.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path
from typing import Callable, Iterable

from engine.builtin import resolve_model
from engine.errors import DbtuiError
from engine.events import Event
from engine.models.conversion_lock import converting_into, waiting_said
from engine.models.conversion_note import CONVERTED_FROM, conversion_source, note_conversion, noted_as, read_note
from engine.models.family import Components, LoadDtypes
from engine.models.parts import ModelNotFoundError
from engine.models.vae_fit import vae_misfit
from engine.support.json_file import read_json_object

__all__ = ["Components", "ModelNotFoundError", "load_components", "native_resolution", "resolve_model_folder",
           "resolve_vae_folder"]

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")

# The parts' folders only: many repos also hold whole-model single files at the top
# (flux1-dev.safetensors and ae.safetensors are 24 GB), which loading a folder never reads.
MODEL_FILES = ["model_index.json", "*/*.json", "*/*.txt", "*/*.model", "*/*.safetensors"]
# model.vae's: a VAE repo's at its top (stabilityai/sd-vae-ft-mse, beside other copies such as sdxl_vae.safetensors),
# a model repo's in its vae/ folder (the rest of the model is not read).
VAE_FILES = [f"{folder}{name}" for folder in ("", "vae/") for name in ("config.json", "diffusion_pytorch_model.safetensors")]
# Half-precision and EMA copies beside the weights loading reads: the same model again.
HUB_SKIPPED = ["*.fp16.safetensors", "*.fp16.bin", "*non_ema*", "*.ema.safetensors"]
_COMMIT = re.compile(r"[0-9a-f]{40}")  # the name of a snapshot folder in the Hugging Face cache


def native_resolution(folder: Path | str) -> int | None:
    """The image size a diffusers folder's model was made for, from the configs alone; None when they do not say.

    A UNet says it by its latent size (× the VAE's downscale). Flux's transformer has no size in its config: its
    VAE's sample_size says it (1024 in Flux.1, 64 in builtin:tiny-flux), else the family's usual size.
    """
    folder = Path(folder)
    vae = read_json_object(folder / "vae" / "config.json")
    try:
        return int(read_json_object(folder / "unet" / "config.json")["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (KeyError, ValueError, TypeError):
        pass
    if not (folder / "transformer").is_dir():
        return None
    if isinstance(vae.get("sample_size"), int) and vae["sample_size"] > 0:
        return vae["sample_size"]
    from engine.models.registry import family_of

    try:
        return family_of(folder).default_resolution
    except DbtuiError:
        return None


def resolve_model_folder(
    name: str,
    *,
    revision: str | None = None,
    work_dir: Path | None = None,
    emit: Callable[[Event], None] | None = None,
    tokenizer: str | None = None,
    vae: str | None = None,
    run_base: bool = False,
) -> Path:
    """A local diffusers folder for ``name``: builtin, folder, single file (converted) or hub id. ``vae``: model.vae,
    which stands in for the VAE a single file lacks. ``run_base``: ``work_dir`` is a run's own, and a conversion there
    the base it trains on, kept whatever changed since."""
    name = resolve_model(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise ModelNotFoundError(f"'{path}' is a folder but not a diffusers model (no model_index.json)")
        return path
    if path.is_file():
        # Whatever its name: the converter tells the format from the bytes and says what is wrong.
        return _converted(path, work_dir, emit, tokenizer, vae, run_base)
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        raise ModelNotFoundError(f"model file '{path}' does not exist")
    return _from_hub(name, revision)


def converted_folder(path: Path, work_dir: Path | None = None) -> Path:
    """Where the single file ``path`` is converted to diffusers: in ``work_dir`` (a run's own, ``run_models(RUN)``), else
    beside it."""
    return (work_dir or path.parent) / f"{path.stem}-diffusers"


def run_models(run_dir: Path) -> Path:
    """The folder of a run's own conversions, the base it trains on (``resolve_model_folder``'s ``run_base``)."""
    return run_dir / "model"


def _converted(path: Path, work_dir: Path | None, emit: Callable[[Event], None] | None, tokenizer: str | None,
               vae: str | None, run_base: bool) -> Path:
    """The diffusers folder converted from the single file ``path``, made once and reused while it is what this
    converter would make now: another file of the same name, one written over, a .yaml beside it added or changed
    (it says what the model predicts), or a conversion by an older converter is converted again, except as a run's
    base (see _kept_as_base)."""
    from engine.convert import import_single_file

    out = converted_folder(path, work_dir)
    with converting_into(out, waiting_said(emit, path, out)):  # then finds the other's conversion, below
        source = conversion_source(path)
        if (out / "model_index.json").exists():
            made_from = read_note(out / CONVERTED_FROM)
            # None: converted before dbtui noted the source, so not known to be ours to replace. A note without what the
            # conversion became was written by a converter that read no .yaml nor metadata (an SD1.x-v file as epsilon).
            if made_from is None or ({"family", "prediction_type"} <= made_from.keys()
                                     and noted_as(out, made_from, source)):
                return out
            if run_base:
                return _kept_as_base(path, out, made_from, source, emit)
            shutil.rmtree(out)  # ours (it notes its source), and made from another file or by another converter
        # Noted inside before it is renamed into place: a kill between the two left a folder without its note, which
        # passes for a conversion of before notes (reused unchecked), or holds the place of a new one.
        return Path(import_single_file(path, out, tokenizer=tokenizer, emit=emit, vae=standin_vae_folder(vae),
                                       before_publish=lambda made: note_conversion(made, source)))


def _kept_as_base(path: Path, out: Path, made_from: dict[str, object], source: dict[str, object],
                  emit: Callable[[Event], None] | None) -> Path:
    """A run's conversion, kept: its checkpoints were trained on it, and a live trainer reads it. An older
    converter's, or one noted before what it became was, is the same model; where the file or what its .yaml says it
    predicts changed, the run keeps its base and is told so, not silently trained or exported on another."""
    file_changed = any(made_from.get(key) != source[key] for key in ("path", "size", "mtime_ns")) or (
        "sample" in made_from and made_from["sample"] != source["sample"])
    sidecar_changed = made_from.get("sidecar") != source["sidecar"]
    before = made_from.get("prediction_type") or read_json_object(out / "scheduler" / "scheduler_config.json").get(
        "prediction_type", "epsilon")
    # A note without it: converted before the .yaml was read, which may say otherwise.
    now = _said_prediction(path) if sidecar_changed or "prediction_type" not in made_from else before
    if file_changed:
        what = f"{path} changed since this run's base was converted from it"
    elif now is not None and now != before:
        what = f"{path.with_suffix('.yaml')} says the model predicts {now}; this run's base was converted as {before}"
    elif now is None and sidecar_changed:
        what = f"the .yaml beside {path} was removed since this run's base was converted from it"
    else:
        return out  # the same model: an older converter's conversion, or a note of before what it became was
    if emit is not None:
        from engine.events import Warning

        emit(Warning(message=f"{what}; the run keeps its base, {out}",
                     advice="to train on the file as it is now, start a new run from this profile (dbtui run "
                            "PROFILE, or New run in the app), not a resume of this one"))
    return out


def _said_prediction(path: Path) -> str | None:
    """What the .yaml beside ``path`` says the model predicts; None where none is (the file's own metadata, or a
    guess from its weights, then decides, which only a conversion reads)."""
    from engine.convert.detect import prediction_hint

    return prediction_hint(path, {}) if path.with_suffix(".yaml").is_file() else None


def standin_vae_folder(vae: str | None) -> Path | None:
    """model.vae's folder, to stand in for the VAE a single file lacks; None without one, or for a VAE file, which is
    no folder to convert with: validate says so, and so does the VAE's load."""
    return resolve_vae_folder(vae) if vae and not Path(vae).expanduser().is_file() else None


def vae_folder(vae: str, key: str = "model.vae") -> Path:
    """The folder model.vae (or convert's ``key`` --vae) names, for the VAE to load from; a single file is refused."""
    from engine.models.parts import vae_file_message

    if Path(vae).expanduser().is_file():
        raise ModelNotFoundError(vae_file_message(vae, key))
    return resolve_vae_folder(vae)


def resolve_vae_folder(vae: str) -> Path:
    """model.vae's folder, a VAE's own or a model's with a vae/ folder: the local one it names, else its hub id's."""
    name = resolve_model(vae)
    path = Path(name).expanduser()
    return path if path.is_dir() else _from_hub(name, None, VAE_FILES, key="model.vae")


def bin_weight_patterns(folder: Path, parts: Iterable[str]) -> list[str]:
    """The .bin weights to download of ``parts`` (folders of ``folder``, "" its top) whose config ``folder`` holds but
    no .safetensors weights: older repos ship those alone, which diffusers and transformers load as well. Each part
    that has .safetensors keeps its .bin (the same weights again) on the hub."""
    def read(weights: Path) -> bool:
        return not any(fnmatch.fnmatch(weights.name, skip) for skip in HUB_SKIPPED)

    lacking = [part for part in parts if (folder / part / "config.json").is_file()
               and not any(map(read, (folder / part).glob("*.safetensors")))]
    return [f"{part}/*.bin" if part else "diffusion_pytorch_model*.bin" for part in lacking]


def _from_hub(name: str, revision: str | None, patterns: list[str] = MODEL_FILES, key: str = "model.pretrained") -> Path:
    """The hub id ``name``'s files that ``patterns`` match, with the .bin weights of each part read that has no
    .safetensors (``bin_weight_patterns``)."""
    from engine.models.folder_parts import READ_PARTS

    folder = _hub_files(name, revision, patterns, key)
    parts = ("", "vae") if key == "model.vae" else READ_PARTS
    bins = bin_weight_patterns(folder, parts)
    # At the commit of the files above (a cache snapshot is named by it): asked by branch again, a repo whose main moved
    # on since they were cached gave a snapshot of the new commit holding the .bin alone, without the configs.
    commit = folder.name if _COMMIT.fullmatch(folder.name) else revision
    return _hub_files(name, commit, bins, key) if bins else folder


def _hub_files(name: str, revision: str | None, patterns: list[str], key: str) -> Path:
    from engine.support.hub_snapshot import HubUnavailable, hub_snapshot, unavailable_advice

    try:
        return hub_snapshot(name, revision=revision, allow_patterns=patterns, ignore_patterns=HUB_SKIPPED)
    except HubUnavailable as unavailable:
        if unavailable.cause == "HFValidationError":
            raise ModelNotFoundError(f"'{name}' is not a local folder, a model file or a valid hub id") from None
        raise ModelNotFoundError(unavailable_advice(name, key, unavailable.cause)) from None


def load_components(folder: Path, *, vae: str | None = None, tokenizer: str | None = None, revision: str | None = None,
                    dtypes: LoadDtypes | None = None) -> Components:
    """Load every part the trainer uses from a diffusers folder, through the folder's family;
    ``dtypes`` says which large parts load in a narrower dtype than fp32. A part missing is refused before any loads."""
    from engine.models.folder_parts import check_parts
    from engine.models.registry import family_of

    folder = Path(folder)
    family = family_of(folder)
    check_parts(folder, vae=vae, tokenizer=tokenizer)
    components = family.load(folder, vae=vae, tokenizer=tokenizer, dtypes=dtypes or LoadDtypes())
    if vae and (misfit := vae_misfit(components.vae.config.latent_channels, components.unet, family, vae)):
        raise ModelNotFoundError(misfit)
    return components
