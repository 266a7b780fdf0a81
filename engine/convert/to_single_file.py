"""Export a diffusers folder as one original-layout checkpoint (AUTOMATIC1111, ComfyUI, Forge, ...)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from engine.convert._files import Emit, Progress, atomic_file, check_file_output, check_free_space
from engine.convert.detect import SDXL_REFINER, V_PRED_KEY, ZERO_SNR_KEY, folder_family
from engine.convert.errors import ConvertError, OutputExistsError, UnsupportedModelError
from engine.convert.lora_export import LORA_WEIGHTS
from engine.convert.keymap import UnmappedKeyError, is_open_clip, to_original
from engine.convert.run_folder_hint import run_folder_hint
from engine.events import Warning as WarningEvent
from engine.models.folder_parts import missing_parts, missing_parts_message
from engine.models.parts import pretrained_part

SIDECAR_V = Path(__file__).parent / "configs" / "v2-inference-v.yaml"
FORMATS = ("safetensors", "ckpt")


def _family_id(unet_config: Mapping, text_config: Mapping, prediction_type: str, xl: bool) -> str:
    if xl:
        return "sdxl-v" if prediction_type == "v_prediction" else "sdxl"
    family = "sd2" if is_open_clip(text_config) else "sd1"
    if unet_config.get("in_channels") == 9:
        return family + "-inpaint"
    return family + ("-v" if prediction_type == "v_prediction" else "")


def _is_v_sidecar(sidecar: Path) -> bool:
    """Whether ``sidecar`` is the v-prediction config an SD2.x-v export writes (not a .yaml of the user's)."""
    return sidecar.is_file() and sidecar.read_bytes() == SIDECAR_V.read_bytes()


def _sidecar_taken(sidecar: Path) -> ConvertError:
    return OutputExistsError(f"{sidecar} already exists and is kept; an SD2.x-v file needs its own .yaml of that name "
                             "beside it: choose another output name, or add --overwrite to replace both")


def _check_sidecar(sidecar: Path, family: str) -> None:
    """Without overwrite: refuse a .yaml of that name that is not this model's (before converting, and again once
    the file is written, as another conversion may have written one meanwhile)."""
    if family == "sd2-v" and sidecar.is_file() and not _is_v_sidecar(sidecar):
        raise _sidecar_taken(sidecar)
    if family != "sd2-v" and _is_v_sidecar(sidecar):
        raise ConvertError(f"{sidecar} is there, the v-prediction config of another model, which AUTOMATIC1111 would read "
                           f"for this ({family}) model too: choose another output name, or add --overwrite to remove it")


def _keep_sidecar_of_another(out_file: Path, sidecar: Path, family: str) -> None:
    """The file just written (new: not overwrite) is removed again where another model's .yaml came meanwhile."""
    try:
        _check_sidecar(sidecar, family)
    except ConvertError:
        out_file.unlink(missing_ok=True)
        raise


def _scheduler_config(diffusers_dir: Path) -> dict:
    config = diffusers_dir / "scheduler" / "scheduler_config.json"
    return json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}


def _xl_markers(prediction_type: str, scheduler: Mapping) -> dict:
    """The empty marker tensors by which ComfyUI and AUTOMATIC1111 know a v-prediction SDXL."""
    import torch

    if prediction_type != "v_prediction":
        return {}
    markers = {V_PRED_KEY: torch.tensor([])}
    if scheduler.get("rescale_betas_zero_snr"):
        markers[ZERO_SNR_KEY] = torch.tensor([])
    return markers


def _load(model_class, diffusers_dir: Path, subfolder: str):
    """One component of the folder; a damaged or incomplete one is reported, not raised as is."""
    try:
        return pretrained_part(model_class, diffusers_dir, subfolder)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
        raise ConvertError(
            f"{diffusers_dir / subfolder} cannot be loaded ({type(error).__name__}): its config or weights are damaged "
            "or missing; save the model again, or convert a complete diffusers folder"
        ) from error


def export_single_file(
    diffusers_dir: str | Path,
    out_file: str | Path,
    *,
    half: bool = False,
    fmt: str = "safetensors",
    metadata: Mapping[str, str] | None = None,
    emit: Emit | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``diffusers_dir`` as one ``.safetensors`` (or ``.ckpt``) file; returns its path.

    SD1.x, SD2.x and SDXL (base and fine-tunes; not the refiner). ``half`` stores every weight in
    fp16 (half the size), else all in fp32; ``metadata`` (e.g. base model, training profile) goes
    into the safetensors header, or beside ``state_dict`` in a ckpt. SD2.x-v exports also get a
    same-named ``.yaml`` so AUTOMATIC1111 knows the model predicts v; v-prediction SDXL files
    carry the ``v_pred`` marker instead. Without ``overwrite`` a file already there is kept (OutputExistsError, also
    for one another conversion wrote meanwhile), and so is a different ``.yaml``: nothing is written. Another model
    written where that ``.yaml`` is removes it with ``overwrite`` (AUTOMATIC1111 would read it as the new model's
    config), and is refused without.
    """
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from engine.builtin import resolve_model

    diffusers_dir, out_file = Path(resolve_model(str(diffusers_dir))), Path(out_file)
    if fmt not in FORMATS:
        raise ConvertError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if not diffusers_dir.is_dir():
        raise ConvertError(f"{diffusers_dir} {'is a file' if diffusers_dir.exists() else 'does not exist'}: give the "
                           "diffusers model folder (the one holding model_index.json, e.g. RUN/outputs/diffusers)")
    if (diffusers_dir / LORA_WEIGHTS).is_file() and not (diffusers_dir / "model_index.json").is_file():
        raise ConvertError(f"{diffusers_dir} is a LoRA, not a whole model: `dbtui convert lora-to-kohya {diffusers_dir} "
                           "OUT.safetensors` writes it as one file for AUTOMATIC1111, ComfyUI and Forge")
    detected = folder_family(diffusers_dir)
    if detected == SDXL_REFINER:
        raise UnsupportedModelError(f"{diffusers_dir} is the {SDXL_REFINER.description}")
    if (diffusers_dir / "transformer").is_dir() and not (diffusers_dir / "unet").is_dir():
        raise UnsupportedModelError(f"{diffusers_dir} is a Flux (or other transformer) model: single files are written for "
                                    "SD1.x, SD2.x and SDXL. ComfyUI and Forge load a Flux diffusers folder's parts as they are, and a Flux "
                                    "LoRA in the lora_kohya format (`dbtui convert lora-to-kohya`)")
    xl = detected is not None
    parts = ("unet", "vae", "text_encoder") + (("text_encoder_2",) if xl else ())
    # A partial download or copy: the parts it lacks (a folder, or its config or weights), not every part a model has,
    # before the load fails on them.
    if lacking := [part for part in missing_parts(diffusers_dir) if part.split("/")[0] in parts]:
        raise ConvertError(missing_parts_message(str(diffusers_dir), lacking))
    if not all((diffusers_dir / sub).is_dir() for sub in parts):
        raise ConvertError(run_folder_hint(diffusers_dir, "model")
                           or f"{diffusers_dir} is not a diffusers model folder (it needs {'/, '.join(parts)}/)")
    out, model = out_file.resolve(), diffusers_dir.resolve()
    inside = out.relative_to(model).parts if out.is_relative_to(model) else ()
    if len(inside) > 1 or (inside and out_file.exists()):
        # Its parts' folders, or a file of its own (model_index.json): written over, the model would be lost.
        where = f"{inside[0]}/" if len(inside) > 1 else inside[0]
        raise ConvertError(f"{out_file} is {diffusers_dir}'s own {where}, which is being converted: choose an output "
                           "outside the model (a new file beside model_index.json is fine)")
    check_file_output(out_file)  # before minutes of loading and converting
    if not overwrite and (out_file.exists() or out_file.is_symlink()):
        raise OutputExistsError(f"{out_file} already exists and is kept: choose another name, or add --overwrite to "
                                "replace it")
    # At least this much (the parts' weight files, halved for --half): a full disk is said before the load too.
    stored = sum(f.stat().st_size for sub in parts for f in (diffusers_dir / sub).glob("*") if f.suffix in (".safetensors", ".bin"))
    check_free_space(out_file, stored // 2 if half else stored)
    metadata = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ConvertError("metadata keys and values must be strings")

    progress = Progress(emit, "convert", total=len(parts) + 1, description=f"{diffusers_dir.name} → {out_file.name}")
    unet = _load(UNet2DConditionModel, diffusers_dir, "unet")
    progress.step()
    vae = _load(AutoencoderKL, diffusers_dir, "vae")
    progress.step()
    text_encoder = _load(CLIPTextModel, diffusers_dir, "text_encoder")
    progress.step()
    text_encoder_2 = None
    if xl:
        text_encoder_2 = _load(CLIPTextModelWithProjection, diffusers_dir, "text_encoder_2")
        progress.step()

    text_config = text_encoder.config.to_dict()
    scheduler = _scheduler_config(diffusers_dir)
    prediction_type = scheduler.get("prediction_type", "epsilon")
    family = _family_id(unet.config, text_config, prediction_type, xl)
    sidecar = out_file.with_suffix(".yaml")
    v_sidecar = _is_v_sidecar(sidecar)
    if not overwrite:
        _check_sidecar(sidecar, family)
    try:
        state_dict = to_original(
            unet.state_dict(), unet.config, vae.state_dict(), vae.config, text_encoder.state_dict(), text_config,
            text_encoder_2.state_dict() if text_encoder_2 is not None else None,
        )
    except UnmappedKeyError as error:
        raise UnsupportedModelError(f"{diffusers_dir} cannot be written in the original SD layout: {error}") from error
    # One dtype per file: components load in the dtype they were saved in (transformers keeps a
    # fp16 text encoder fp16, diffusers gives fp32), so every float tensor is cast either way.
    dtype = torch.float16 if half else torch.float32
    state_dict = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state_dict.items()}
    if xl:
        state_dict.update(_xl_markers(prediction_type, scheduler))
    metadata = {"format": "pt", "dbtui.family": family, "dbtui.prediction_type": prediction_type, **metadata}

    check_free_space(out_file, sum(v.numel() * v.element_size() for v in state_dict.values()))
    with atomic_file(out_file, overwrite=overwrite) as tmp:
        if fmt == "safetensors":
            from safetensors.torch import save_file

            save_file(state_dict, str(tmp), metadata=metadata)
        else:
            torch.save({"state_dict": state_dict, "dbtui_metadata": metadata}, tmp)
    if not overwrite:
        _keep_sidecar_of_another(out_file, sidecar, family)
    if family == "sd2-v":
        if overwrite or not _is_v_sidecar(sidecar):
            try:
                with atomic_file(sidecar, overwrite=overwrite) as tmp:
                    shutil.copyfile(SIDECAR_V, tmp)
            except OutputExistsError:
                out_file.unlink(missing_ok=True)  # new (not overwrite): without its .yaml it would draw noise
                raise _sidecar_taken(sidecar) from None
        if emit is not None:
            emit(WarningEvent(message=f"{out_file.with_suffix('.yaml').name} was written beside {out_file.name}: it says the "
                                      "model predicts v", advice="keep the two together: AUTOMATIC1111 and Forge read it (ComfyUI tells v-prediction from the weights)"))
    elif v_sidecar:
        sidecar.unlink(missing_ok=True)  # the replaced SD2.x-v model's: it would make this one's images noise
    if prediction_type == "v_prediction" and family != "sd2-v" and not xl and emit is not None:
        emit(WarningEvent(
            message=f"{out_file.name} is a v-prediction SD1.x model; most clients assume epsilon for SD1.x",
            advice="tell your client to use v-prediction (a v-parameterized config .yaml in AUTOMATIC1111)",
        ))
    progress.step()
    progress.finish()
    return out_file
