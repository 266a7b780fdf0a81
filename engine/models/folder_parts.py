"""Which parts a diffusers folder lacks of those training reads, found from its files alone (no torch).

A part that model_index.json lists but whose folder or config is not there would otherwise fail in the loader
("no file named config.json"), and Flux's T5 only after the transformer has loaded and the images were cached.
"""

from __future__ import annotations

from pathlib import Path

from engine.json_file import read_json_object
from engine.models.parts import CLIP_TOKENIZER_FILES, T5_TOKENIZER_FILES, ModelNotFoundError

# The parts any family trains or encodes with; a pipeline's others (safety_checker, feature_extractor…) go unread.
READ_PARTS = ("unet", "transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")


class ModelPartMissingError(ModelNotFoundError):
    """A diffusers folder lacks a part that training reads."""


def _files(class_name: str) -> tuple[str, ...]:
    """The files of which a part of ``class_name`` needs one."""
    if "Tokenizer" in class_name:
        return T5_TOKENIZER_FILES if class_name.startswith("T5") else CLIP_TOKENIZER_FILES
    return ("scheduler_config.json",) if "Scheduler" in class_name else ("config.json",)


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
        class_name = entry[1]
        if (part == "vae" and vae) or ("Tokenizer" in class_name and not class_name.startswith("T5") and tokenizer):
            continue
        files = _files(class_name)
        if not any((folder / part / name).is_file() for name in files):
            missing.append(f"{part}/ (its {class_name}'s {' or '.join(files)})")
    return missing


def missing_parts_message(source: str, missing: list[str]) -> str:
    """What to do about ``missing``, parts of the model folder ``source``."""
    return (f"'{source}' lacks {', '.join(missing)}, which its model_index.json lists: copy "
            f"{'that part' if len(missing) == 1 else 'those parts'} from where the model came from (a partial download "
            "or copy leaves parts out), or give a complete model folder or a hub id")


def check_parts(folder: Path, *, vae: str | None = None, tokenizer: str | None = None) -> None:
    """Refuse ``folder`` where it lacks a part training reads (``missing_parts``)."""
    missing = missing_parts(folder, vae=vae, tokenizer=tokenizer)
    if missing:
        raise ModelPartMissingError(missing_parts_message(str(folder), missing))
