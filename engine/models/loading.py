"""Resolve a profile's model to a local diffusers folder and load its parts for training."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.builtin import resolve_model
from engine.errors import DbtuiError
from engine.events import Event

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


class ModelNotFoundError(DbtuiError):
    """The base model is neither a local folder or file nor reachable on the hub."""


def native_resolution(folder: Path | str) -> int | None:
    """The image size a diffusers folder's UNet was made for (its latent size × the VAE's
    downscale), from the configs alone; None when they do not say."""
    import json

    try:
        unet = json.loads((Path(folder) / "unet" / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((Path(folder) / "vae" / "config.json").read_text(encoding="utf-8"))
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class Components:
    """The parts of a Stable Diffusion pipeline the trainer uses."""

    folder: Path
    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    noise_scheduler: Any

    @property
    def prediction_type(self) -> str:
        return self.noise_scheduler.config.prediction_type

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Pixel sizes must be multiples of this for the VAE and every UNet level."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)


def resolve_model_folder(
    name: str,
    *,
    revision: str | None = None,
    work_dir: Path | None = None,
    emit: Callable[[Event], None] | None = None,
    tokenizer: str | None = None,
) -> Path:
    """A local diffusers folder for ``name``: builtin, folder, single file (converted) or hub id."""
    name = resolve_model(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise ModelNotFoundError(f"'{path}' is a folder but not a diffusers model (no model_index.json)")
        return path
    if path.is_file():
        # Whatever its name: the converter tells the format from the bytes and says what is wrong.
        return _converted(path, work_dir, emit, tokenizer)
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        raise ModelNotFoundError(f"model file '{path}' does not exist")
    return _from_hub(name, revision)


def _converted(path: Path, work_dir: Path | None, emit: Callable[[Event], None] | None, tokenizer: str | None) -> Path:
    from engine.convert import import_single_file

    out = (work_dir or path.parent) / f"{path.stem}-diffusers"
    if (out / "model_index.json").exists():
        return out
    return Path(import_single_file(path, out, tokenizer=tokenizer, emit=emit))


def _from_hub(name: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    patterns = ["*.json", "*.txt", "*.safetensors", "tokenizer/*", "*.model"]
    try:
        return Path(snapshot_download(name, revision=revision, allow_patterns=patterns, local_files_only=True))
    except HFValidationError:
        raise ModelNotFoundError(f"'{name}' is not a local folder, a model file or a valid hub id") from None
    except Exception:  # noqa: BLE001 - not cached: try the network below
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotFoundError(_offline_advice(name))
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    try:
        return Path(snapshot_download(name, revision=revision, allow_patterns=patterns))
    except Exception as error:  # noqa: BLE001 - any network or hub failure gets the same advice
        raise ModelNotFoundError(f"{_offline_advice(name)} ({type(error).__name__})") from None


def _offline_advice(name: str) -> str:
    return (
        f"model '{name}' is not a local folder and is not in the Hugging Face cache, and the hub "
        "cannot be reached. Download it where there is internet (huggingface-cli download NAME), "
        "copy the folder here and set model.pretrained to its path, or use a .safetensors file."
    )


def load_components(
    folder: Path, *, vae: str | None = None, tokenizer: str | None = None, revision: str | None = None
) -> Components:
    """Load tokenizer, text encoder, VAE, UNet and the training noise scheduler from a folder."""
    from diffusers import DDPMScheduler
    from transformers import CLIPTokenizer

    folder = Path(folder)
    tokenizer_source = (resolve_model(tokenizer), None) if tokenizer else (str(folder), "tokenizer")
    try:
        tok = (
            CLIPTokenizer.from_pretrained(tokenizer_source[0], subfolder=tokenizer_source[1])
            if tokenizer_source[1]
            else CLIPTokenizer.from_pretrained(tokenizer_source[0])
        )
    except OSError as error:
        raise ModelNotFoundError(f"no CLIP tokenizer in '{tokenizer_source[0]}': set model.tokenizer to a folder that has one ({error})") from None
    return Components(
        folder=folder,
        tokenizer=tok,
        text_encoder=load_text_encoder(folder),
        vae=load_vae(folder, vae),
        unet=load_unet(folder),
        noise_scheduler=DDPMScheduler.from_pretrained(folder, subfolder="scheduler"),
    )


def load_unet(folder: Path) -> Any:
    """The model folder's UNet, in fp32 on the CPU."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(folder, subfolder="unet")


def load_text_encoder(folder: Path) -> Any:
    """The model folder's text encoder, in fp32 on the CPU."""
    from transformers import CLIPTextModel

    return CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")


def load_vae(folder: Path, vae: str | None = None) -> Any:
    """The VAE override ``vae`` (a folder, a model with a vae/ part, or a hub id), else the folder's own; fp32, CPU."""
    from diffusers import AutoencoderKL

    if not vae:
        return AutoencoderKL.from_pretrained(folder, subfolder="vae")
    vae_folder = resolve_model_folder(vae, revision=None) if not Path(vae).is_dir() else Path(vae)
    if (vae_folder / "vae").is_dir():
        return AutoencoderKL.from_pretrained(vae_folder, subfolder="vae")
    return AutoencoderKL.from_pretrained(vae_folder)
