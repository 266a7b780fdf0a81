"""The identity of the base model a run trained on, recorded with its weights and checked by ``dbtui export``.

An export reads the trained weights into the base model RUN/profile.toml names now. Shapes alone told nothing of
which model that is: a LoRA trained on one SD1.5 fine-tune merged silently into another, a model other than the one
trained and previewed. The identity is the denoiser's config and a sample of its weight files' bytes (size, and
64 KiB read at evenly spaced places), from the files alone: no loading, a copy of the folder keeps it, and the dtype
a run loads the model in does not change it. A fine-tune, a merge or another model changes nearly every byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.events import Event, Warning
from engine.support.json_file import read_json_object

RECORD = "base_model.json"  # in RUN/outputs, beside the final weights; a checkpoint's manifest holds it as "base_model"
_CHUNKS = 16
_CHUNK = 4096
_LORA_ONLY = {"lora_diffusers", "lora_kohya"}


class OtherBaseModelError(DbtuiError):
    """The base model an export would merge trained weights into is not the one they were trained on."""


def _loaded(name: str) -> bool:
    """Whether ``name`` is a weight file diffusers loads (whole or a shard), not a variant's (.fp16.) nor an index."""
    stem = name.removeprefix("diffusion_pytorch_model")
    return stem != name and stem.endswith((".safetensors", ".bin")) and "." not in stem.rsplit(".", 1)[0]


def base_model_identity(folder: Path | str) -> str | None:
    """The identity of the diffusers folder's denoiser (unet or transformer); None where it cannot be read."""
    part = next((Path(folder) / name for name in ("unet", "transformer") if (Path(folder) / name).is_dir()), None)
    if part is None:
        return None
    config = {key: value for key, value in read_json_object(part / "config.json").items() if not key.startswith("_")}
    hasher = hashlib.sha256(json.dumps({"part": part.name, "config": config}, sort_keys=True, default=str).encode())
    try:
        weights = sorted(path for path in part.iterdir() if _loaded(path.name) and path.is_file())
        # diffusers loads a folder's .safetensors where it has them: a .bin beside them (a hub repo's clone) is unread.
        weights = [path for path in weights if path.suffix == ".safetensors"] or weights
        for path in weights:
            size = path.stat().st_size
            hasher.update(f"{path.name}:{size}".encode())
            with open(path, "rb") as file:
                for index in range(_CHUNKS):
                    file.seek(size * index // _CHUNKS)
                    hasher.update(file.read(_CHUNK))
    except OSError:
        return None
    return hasher.hexdigest() if weights else None


def folder_named(pretrained: str) -> Path | None:
    """The diffusers folder ``pretrained`` names, where it is one here (or a built-in model built already); None for a
    hub id, a single file (converted on load) or a folder without model_index.json: nothing is loaded, downloaded or
    built to tell."""
    from engine.builtin import built, is_builtin, known_builtin, resolve_model

    if is_builtin(pretrained) and (known_builtin(pretrained, "model") or not built(pretrained)):
        return None
    folder = Path(resolve_model(pretrained)).expanduser()
    return folder if (folder / "model_index.json").is_file() else None


def identity_named(pretrained: str) -> str | None:
    """The identity of the base model ``pretrained`` names (see ``folder_named``); None where it is not a folder here."""
    folder = folder_named(pretrained)
    return base_model_identity(folder) if folder is not None else None


def same_source(was: str, now: str) -> bool:
    """One model or VAE, however its path is written: `./models/base` and its absolute path, or a symlink to it,
    were refused as another model."""
    if was == now:
        return True
    return os.path.exists(was) and os.path.exists(now) and os.path.realpath(was) == os.path.realpath(now)


def moved_base_model(recorded: Any, now: dict[str, Any]) -> Warning | None:
    """Where a resume's base model (``now``, its ``base_model_record``) is the one the checkpoint ``recorded`` was
    trained on, read from another place (a copied or moved folder, let through by resume_point.check_same_model): the
    line that says the run reads it from there now."""
    record = recorded if isinstance(recorded, dict) else {}
    was, identity = record.get("pretrained"), record.get("identity")
    if not isinstance(was, str) or not isinstance(identity, str) or identity != now["identity"]:
        return None
    if same_source(was, now["pretrained"]):
        return None  # the same place, written another way
    return Warning(message=f"the base model is now read from {now['pretrained']}, which holds the same weights as "
                           f"{was}, where the checkpoint was trained on it",
                   advice=f"the run's profile.toml names {now['pretrained']} from now on; keep the model there")


def scheduler_prediction(folder: Path | str) -> str | None:
    """What the diffusers folder's scheduler config says its model predicts, as written ("epsilon", "v_prediction");
    None where it says nothing (diffusers' default: epsilon) or has no scheduler config (Flux's says nothing either)."""
    value = read_json_object(Path(folder) / "scheduler" / "scheduler_config.json").get("prediction_type")
    return value if isinstance(value, str) else None


def family_id(folder: Path | str) -> str | None:
    """The SD family of a diffusers folder's configs as engine/convert/detect.py names it ("sd1", "sd2-v", "sdxl"),
    which a kohya LoRA's metadata tells apart; None for another (Flux) or unreadable configs."""
    from engine.convert.keymap import is_open_clip

    unet = read_json_object(Path(folder) / "unet" / "config.json")
    text = read_json_object(Path(folder) / "text_encoder" / "config.json")
    if not unet or not text:
        return None
    base = "sdxl" if unet.get("addition_embed_type") == "text_time" else "sd2" if is_open_clip(text) else "sd1"
    return base + ("-v" if scheduler_prediction(folder) == "v_prediction" else "")


def base_model_record(pretrained: str, folder: Path | str) -> dict[str, Any]:
    """What a checkpoint's manifest and RUN/outputs/base_model.json record of the base model: model.pretrained as the
    run named it, the identity of the folder it loaded, what its scheduler says it predicts (which the identity,
    the denoiser's, leaves out, and which sets the loss's target), and its family (``family_id``)."""
    return {"pretrained": pretrained, "identity": base_model_identity(folder), "prediction_type": scheduler_prediction(folder),
            "family": family_id(folder)}


def recorded_family(lora: Path) -> str | None:
    """The family (``family_id``) of the base model a run's LoRA (RUN/outputs/lora or RUN/exports/step-N/lora, or its
    weights file there) trained on, from the record beside that lora folder: as recorded, else as the model it names
    says where it is here; None where nothing does. A LoRA laid out otherwise has no record of its own: a loose
    file's grandparent (the working folder, say) may hold another run's."""
    from engine.convert.lora_export import LORA_WEIGHTS

    folder = lora.absolute() if lora.is_dir() else lora.absolute().parent
    if folder.name != "lora" or not (lora.is_dir() or lora.name == LORA_WEIGHTS):
        return None
    record = read_record(folder.parent)
    if isinstance(record.get("family"), str):
        return record["family"]
    pretrained = record.get("pretrained")
    folder = folder_named(pretrained) if isinstance(pretrained, str) else None
    return family_id(folder) if folder is not None else None


_FAMILY_NAMES = {"sd1": "SD1.x", "sd2": "SD2.x", "sdxl": "SDXL", "flux": "Flux.1"}


def _other_family(trained: Any, model: Path) -> str | None:
    """"an SD1.x model, where they are SDXL's" where ``model`` (a diffusers folder) is of another family than the
    ``trained`` one recorded (``family_id``'s name; v-prediction aside, which changes no weight's shape); None where
    they are alike or either is not known (a Flux run records none)."""
    now = family_id(model) or ("flux" if (Path(model) / "transformer").is_dir() else None)
    if not isinstance(trained, str) or now is None:
        return None
    was, now = trained.removesuffix("-v"), now.removesuffix("-v")
    if was == now:
        return None
    named = _FAMILY_NAMES.get(now, now)
    return f"{'an' if named.startswith('SD') else 'a'} {named} model, where they are {_FAMILY_NAMES.get(was, was)}'s"


def write_record(outputs: Path, record: dict[str, Any]) -> None:
    """RUN/outputs' record of the base model their weights were trained on (``base_model_record``)."""
    (outputs / RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")


def read_record(outputs: Path) -> dict[str, Any]:
    """RUN/outputs' record of the base model; empty where there is none (outputs written before dbtui kept one)."""
    return read_json_object(outputs / RECORD)


def check_base_model(recorded: Any, model: Path, profile: Any, profile_file: Path, weights: str,
                     emit: Callable[[Event], None], trained_family: str | None = None) -> None:
    """Refuse to merge ``weights`` into ``model`` (the base model resolved now) where ``recorded`` (``{"pretrained",
    "identity"}``, as they were trained) says they were trained on another; only warn where the profile asks for LoRA
    files alone, which hold the trained adapters only and are the same on any base. No record (written before dbtui
    kept one), or a model that cannot be read: nothing to compare. ``trained_family``: the family the weights' own
    files say (``family_of_weights``), for a record that names none."""
    record = recorded if isinstance(recorded, dict) else {}
    was = record.get("identity")
    now = base_model_identity(model) if isinstance(was, str) else None
    if now is None or now == was:
        return
    trained_from = str(record.get("pretrained") or "another model")
    named = profile.model.pretrained
    what = (f"{weights} were trained on {trained_from}, and the base model model.pretrained names in {profile_file} "
            f"({named}) is another model" if trained_from != named else
            f"{weights} were trained on {trained_from}, and the model there now is not that one (replaced since)")
    put_back = (f"write {trained_from} back as model.pretrained in {profile_file} (an export reads the base model from "
                "there)" if trained_from != named else f"put the model they were trained on back at {named}, or write where "
                f"it is now as model.pretrained in {profile_file}")
    # A Flux run's record names no family (family_id's are SD's): its weights' transformer says it.
    other_family = _other_family(record.get("family") or trained_family, model)
    if other_family:
        # Said before the load: it was warned "the LoRA files are written all the same", then refused once loaded.
        raise OtherBaseModelError(f"{what}, {other_family}: the trained weights fit neither its LoRA files nor a merge "
                                  f"into it. To export them, {put_back}")
    if profile.training.method == "lora" and set(profile.saving.export) <= _LORA_ONLY:
        emit(Warning(message=f"{what}: the LoRA files are written all the same, since they hold the trained adapters "
                             f"only, none of the base model's weights",
                     advice=f"used on {named} they make other images than the run's previews, made on {trained_from}"))
        return
    raise OtherBaseModelError(f"{what}: merged into it, they would make a model other than the one trained and "
                              f"previewed. To export them, {put_back}")
