"""Which parts a diffusers folder lacks of those training reads, found from its files alone (no torch).

A part that model_index.json lists but whose folder, config or weights are not there would otherwise fail in the
loader ("no file named config.json", "no file named diffusion_pytorch_model.bin"), and Flux's T5 only after the
transformer has loaded and the images were cached.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.models.parts import CLIP_TOKENIZER_FILES, T5_TOKENIZER_FILES, ModelNotFoundError
from engine.support.json_file import read_json_object

# The parts any family trains or encodes with; a pipeline's others (safety_checker, feature_extractor…) go unread.
READ_PARTS = ("unet", "transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")


class ModelPartMissingError(ModelNotFoundError):
    """A diffusers folder lacks a part that training reads."""


# The weights a model part loads (whole, or the index of its shards), by the library model_index.json names: a
# partial download often has a part's config but not its large weights. A variant's (.fp16.) are not read.
WEIGHT_FILES = {
    "diffusers": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                  "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin.index.json"),
    "transformers": ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                     "pytorch_model.bin.index.json"),
}


def _files(library: str, class_name: str) -> list[tuple[str, ...]]:
    """The sets of files a part of ``class_name`` needs one of each."""
    if "Tokenizer" in class_name:
        # CLIP's: tokenizer.json, or vocab.json with its merges.txt (the slow tokenizer reads both).
        clip = [CLIP_TOKENIZER_FILES, ("merges.txt", "tokenizer.json")]
        return [T5_TOKENIZER_FILES] if class_name.startswith("T5") else clip
    if "Scheduler" in class_name:
        return [("scheduler_config.json",)]
    return [("config.json",)] + ([WEIGHT_FILES[library]] if library in WEIGHT_FILES else [])


def missing_parts(folder: Path, *, vae: str | None = None, tokenizer: str | None = None) -> list[str]:
    """Each part model_index.json lists, that training reads and ``folder`` lacks, as "tokenizer_2/ (its T5Tokenizer's
    spiece.model or tokenizer.json)". ``vae`` and ``tokenizer``: model.vae and model.tokenizer, which replace the
    folder's VAE and CLIP tokenizers."""
    index = read_json_object(folder / "model_index.json")
    missing = []
    for part in READ_PARTS:
        entry = index.get(part)
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], str):
            continue  # not listed, or listed as absent ([null, null]): the family's load says what it needs
        library, class_name = entry
        if (part == "vae" and vae) or ("Tokenizer" in class_name and not class_name.startswith("T5") and tokenizer):
            continue
        for files in _files(str(library), class_name):
            try:
                there = any((folder / part / name).is_file() for name in files)
            except OSError as error:  # Python 3.11's is_file raises for a folder this user may not enter
                missing.append(f"{part}/ (which this user cannot read: {error.strerror})")
                break
            if not there:
                missing.append(f"{part}/ (its {class_name}'s {' or '.join(files)})")
                break
    return missing


def missing_parts_message(source: str, missing: list[str]) -> str:
    """What to do about ``missing``, parts of the model folder ``source``: those there but unreadable are not said
    lacking, nor to be copied again."""
    unreadable = [part for part in missing if "cannot read" in part]
    absent = [part for part in missing if part not in unreadable]
    said = []
    if absent:
        said.append(f"'{source}' lacks {', '.join(absent)}, which its model_index.json lists: copy "
                    f"{'that part' if len(absent) == 1 else 'those parts'} from where the model came from (a partial "
                    "download or copy leaves parts out), or give a complete model folder or a hub id")
    if unreadable:
        said.append(f"'{source}' has {', '.join(unreadable)}: let this user read "
                    f"{'it' if len(unreadable) == 1 else 'them'} (`chmod -R a+rX {shlex.quote(source)}`, as its owner "
                    "or root), or run dbtui as the user who owns the model folder")
    return "; ".join(said)


def check_parts(folder: Path, *, vae: str | None = None, tokenizer: str | None = None) -> None:
    """Refuse ``folder`` where it lacks a part training reads (``missing_parts``)."""
    missing = missing_parts(folder, vae=vae, tokenizer=tokenizer)
    if missing:
        raise ModelPartMissingError(missing_parts_message(str(folder), missing))
