"""Final outputs of a run: a diffusers pipeline, LoRA weights, and single-file exports."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from engine.convert._files import usual_permissions
from engine.convert.older_readers import write_for_older_readers
from engine.convert.partials import partial_path, remove_dead_partials
from engine.errors import DbtuiError
from engine.events import Event, PhaseFinished, PhaseStarted


class WrittenMeanwhileError(DbtuiError):
    """Another write of the same output (two exports of one step) finished while this one was renaming its own."""


def atomic_folder(target: Path, write: Callable[[Path], None]) -> Path:
    """Write a folder beside ``target`` and rename it into place. The folder it replaces is kept as
    ``NAME.previous`` (a resumed run's outputs replace those of its stop): one copy, not one per
    write, since each can be gigabytes and a repeated export writes the same weights again."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(target)  # killed writes' temporaries, gigabytes each
    tmp = partial_path(target)  # two exports of one step at once each write their own
    try:
        write(tmp)
        usual_permissions(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a full disk or a Ctrl-C leaves nothing half-written behind
        raise
    try:
        if target.exists():
            previous = target.with_name(f"{target.name}.previous")
            shutil.rmtree(previous, ignore_errors=True)
            target.rename(previous)
        os.replace(tmp, target)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        # Renames that lost to another writer's: the target or its previous copy came or went between two of ours.
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            raise WrittenMeanwhileError(f"{target} was written by another export of the same output that finished at "
                                        "the same moment; it is kept and this one was dropped: export again to have "
                                        "this one instead") from None
        raise
    return target


def keep_previous(*targets: Path) -> None:
    """Single-file outputs about to be written again are kept as ``NAME.previous.EXT``, as ``atomic_folder``
    keeps a folder (and with their extension, so that a tool still opens them). Their ``NAME.yaml`` (an SD2.x-v
    model's config, which AUTOMATIC1111 reads for every file of that name) goes with them, all at once: left, it
    would be read for the new files; moved with the first alone, it would be lost to the others."""
    moved = [target for target in targets if target.is_file()]
    for target in moved:
        os.replace(target, _previous(target))
    for sidecar in {target.with_suffix(".yaml") for target in moved}:
        if sidecar.is_file():
            os.replace(sidecar, _previous(sidecar))
        else:
            _previous(sidecar).unlink(missing_ok=True)  # the config of the previous copies just replaced, which had one


def _previous(path: Path) -> Path:
    return path.with_name(f"{path.stem}.previous{path.suffix}")


_WORK = "export"  # the work folder's name within its temporary name (.export.HOST.PID.HEX.partial)


@contextlib.contextmanager
def _work_folder(out_dir: Path) -> Iterator[Path]:
    """A hidden folder in ``out_dir`` for the files written before they take their usual names there; removed however
    the export ends (one a kill left is removed by the next write of the outputs, as a dead writer's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(out_dir / _WORK)
    work = partial_path(out_dir / _WORK)
    try:
        work.mkdir()
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _publish(work: Path, *targets: Path) -> None:
    """Move the new files written in ``work`` to ``targets`` (their names in the output folder), with their ``.yaml``
    where one was written. The files they replace go to ``NAME.previous.EXT`` only now: until the new ones are whole,
    the usual names hold the last complete export (a Ctrl-C left only the previous copies)."""
    # A folder where one of them or its previous copy goes is refused before any is renamed: found midway, the files
    # renamed before it had left their usual names empty.
    for path in (*targets, *map(_previous, targets)):
        if path.exists() and not path.is_file():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    keep_previous(*targets)
    for target in targets:
        os.replace(work / target.name, target)
    for sidecar in {target.with_suffix(".yaml") for target in targets}:
        if (work / sidecar.name).is_file():
            os.replace(work / sidecar.name, sidecar)
        else:  # left of files of this name that were not there to keep: AUTOMATIC1111 would read it for the new ones
            sidecar.unlink(missing_ok=True)


def full_precision_models(profile: Any, components: Any, unet: Any, text_encoders: list[Any] | None) -> tuple[Any, list[Any], Any]:
    """(UNet, text encoders, VAE) for a saved pipeline, all fp32, so that it loads like any other.

    Weights that trained in full are fp32 already. Frozen parts trained in the weight dtype (half
    precision under fp16/bf16), so they are read again from the base model as it was, and a LoRA
    is folded into that fp32 base; rounding them would change the user's model for nothing.
    ``text_encoders`` None: none trained, and they are read from the base model.
    """
    from engine.models.parts import load_vae
    from engine.training.trainable import merged_into, trained_text_encoders, weights_trained

    folder = components.folder
    family = components.family
    train_unet, train_text_encoder = weights_trained(profile.training)
    lora = profile.training.method == "lora"
    trained = trained_text_encoders(family, profile.training)

    def as_loaded(model: Any, load: Callable[[], Any]) -> Any:
        return model if model.dtype == torch.float32 else load()

    def text_encoder_out(index: int, model: Any) -> Any:
        if model is None:
            return family.load_text_encoder(folder, index)
        if index in trained and train_text_encoder:
            return model
        if index in trained and lora:
            return merged_into(family.load_text_encoder(folder, index), model)
        return as_loaded(model, lambda: family.load_text_encoder(folder, index))

    unet_out = unet if train_unet else merged_into(family.load_denoiser(folder), unet)
    vae_out = as_loaded(components.vae, lambda: load_vae(folder, profile.model.vae))
    models = text_encoders if text_encoders is not None else [None] * len(family.text_encoder_names)
    return unet_out, [text_encoder_out(i, m) for i, m in enumerate(models)], vae_out


def base_scheduler(folder: Path, fallback: Any) -> Any:
    """The base model's own inference scheduler (class and settings), as its model_index.json names it;
    ``fallback`` when the folder does not say or names a class this diffusers lacks."""
    import json

    import diffusers

    try:
        _, name = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))["scheduler"]
        return getattr(diffusers, name).from_pretrained(folder, subfolder="scheduler")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return fallback


def save_pipeline(folder: Path, components: Any, unet: Any, text_encoders: list[Any], *, vae: Any, unet_half: bool) -> None:
    """A complete diffusers pipeline of the model's family with these models, the base's tokenizers and
    its inference scheduler (not the training one: a loader builds the class model_index.json names)."""
    import copy

    from diffusers import DDPMScheduler

    unet_to_save = copy.deepcopy(unet).to(torch.float16) if unet_half else unet
    parts = dataclasses.replace(components, vae=vae)
    scheduler = base_scheduler(components.folder, DDPMScheduler.from_config(components.noise_scheduler.config))
    components.family.pipeline(parts, unet_to_save, text_encoders, scheduler).save_pretrained(folder, safe_serialization=True)
    write_for_older_readers(folder)


def save_outputs(
    profile: Any, components: Any, unet: Any, text_encoders: list[Any] | None, out_dir: Path, emit: Callable[[Event], None]
) -> dict[str, str]:
    """Write every export the profile asks for; returns {format: path}. ``text_encoders`` None: none trained,
    and a whole pipeline reads them from the base model."""
    from engine.convert.lora_export import kohya_file_name, older_kohya_file_name

    started = time.perf_counter()
    formats = list(profile.saving.export)
    lora = profile.training.method == "lora"
    # A LoRA run writes its diffusers LoRA whatever the formats: the other exports are made from it.
    written = list(dict.fromkeys(["lora_diffusers", *formats] if lora else formats))
    emit(PhaseStarted(phase="export", total=len(written), description=", ".join(written)))
    outputs: dict[str, str] = {}
    # The family's export takes its own trained encoders from the list (Flux's CLIP-L, not its T5).
    trained_text_encoders = text_encoders if profile.training.train_text_encoder else None
    lora_dir = out_dir / "lora"
    if lora:
        atomic_folder(lora_dir, lambda tmp: components.family.export_lora(tmp, unet, trained_text_encoders))
        outputs["lora_diffusers"] = str(lora_dir / "pytorch_lora_weights.safetensors")
    pipeline_dir = out_dir / "diffusers"
    single_files = {fmt: out_dir / f"{profile.name}.{fmt}" for fmt in ("safetensors", "ckpt") if fmt in formats}
    kohya = out_dir / kohya_file_name(profile.name) if "lora_kohya" in formats else None
    with _work_folder(out_dir) as work:
        if "diffusers" in formats or single_files:
            # Asked for single files only, the pipeline they are made from is a temporary: left in out_dir, it was an
            # output nobody asked for (gigabytes for SDXL), and the next export kept it again as diffusers.previous/.
            source = pipeline_dir if "diffusers" in formats else work / "diffusers"
            unet_out, text_encoders_out, vae_out = full_precision_models(profile, components, unet, text_encoders)
            write = lambda tmp: save_pipeline(tmp, components, unet_out, text_encoders_out, vae=vae_out,  # noqa: E731
                                              unet_half=profile.saving.unet_half and not lora)
            if source == pipeline_dir:
                atomic_folder(pipeline_dir, write)
                outputs["diffusers"] = str(pipeline_dir)
            else:
                write(source)
        if single_files:
            from engine.convert import export_single_file
            from engine.profile.io import dumps_profile

            # The keys `dbtui convert to-single-file --base-model --profile` writes: where it came from, and how.
            metadata = {"dbtui.base_model": profile.model.pretrained, "dbtui.profile": dumps_profile(profile)}
            for fmt, target in single_files.items():
                export_single_file(source, work / target.name, half=profile.saving.unet_half, fmt=fmt, metadata=metadata,
                                   emit=emit)
            _publish(work, *single_files.values())
            outputs.update({fmt: str(target) for fmt, target in single_files.items()})
        if kohya is not None:
            components.family.export_lora_kohya(lora_dir, work / kohya.name, components, emit=emit)
            _publish(work, kohya)
            outputs["lora_kohya"] = str(kohya)
            # A resume (or export) of a run an older dbtui named NAME-lora-lora-kohya: left as it was, that file of the
            # earlier weights sat beside the new one under a name as current; it goes where replaced files go.
            older = older_kohya_file_name(profile.name)
            if older is not None and (out_dir / older).is_file():
                keep_previous(out_dir / older)
    emit(PhaseFinished(phase="export", seconds=time.perf_counter() - started))
    return outputs

