"""Import a single-file SD1.x/SD2.x checkpoint into a diffusers folder, offline.

The weights go through diffusers' own single-file converters (``from_single_file`` per
component, given the already safely-read state dict). The architecture comes from the small
diffusers configs shipped in ``configs/<family>/``, so nothing is fetched from the Hub; only
the CLIP tokenizer (vocabulary files) must come from the user's disk or, when allowed, the Hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, Progress, atomic_dir, check_free_space
from engine.convert.detect import EMA_PREFIX, SD1_TEXT, SD2_TEXT, ModelFamily, detect_family, has_ema, prediction_hint
from engine.convert.errors import ConvertError, ModelMismatchError, TokenizerNotFoundError, UnsupportedModelError
from engine.convert.expected import explain_mismatch
from engine.convert.load_checkpoint import read_checkpoint
from engine.events import Warning as WarningEvent

CONFIGS = Path(__file__).parent / "configs"
# Where the tokenizer of each family lives on the Hub (looked up in the local cache first).
HUB_TOKENIZERS = {
    "sd1": [("stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"), ("openai/clip-vit-large-patch14", "")],
    "sd2": [("stabilityai/stable-diffusion-2-1", "tokenizer"), ("stabilityai/stable-diffusion-2-1-base", "tokenizer")],
}


def _base(family: ModelFamily) -> str:
    return "sd2" if family.id.startswith("sd2") else "sd1"


def _tokenizer_folder(path: Path) -> Path | None:
    for folder in (path / "tokenizer", path):
        if (folder / "tokenizer.json").is_file() or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
            return folder
    return None


def _hub_tokenizer_folder(repo: str, subfolder: str, allow_download: bool) -> Path | None:
    """The tokenizer files of ``repo`` from the Hub cache (or the Hub when allowed), if any."""
    from huggingface_hub import snapshot_download

    pattern = f"{subfolder}/*" if subfolder else "*.json"
    try:
        folder = Path(snapshot_download(repo, allow_patterns=[pattern, "*.txt"], local_files_only=not allow_download))
    except (OSError, ValueError):
        return None
    return _tokenizer_folder(folder / subfolder)


def load_tokenizer(family: ModelFamily, tokenizer: str | Path | None, config: Path | None, allow_download: bool):
    """The CLIP tokenizer: the one given, the config folder's, the Hub cache's, or the Hub's."""
    from transformers import CLIPTokenizer

    if tokenizer is not None:
        folder = _tokenizer_folder(Path(tokenizer))
        if folder is None:
            raise TokenizerNotFoundError(
                f"{tokenizer} holds no CLIP tokenizer: give a folder with tokenizer.json (or vocab.json and merges.txt), "
                "or a diffusers model folder that has a tokenizer/ subfolder"
            )
        return CLIPTokenizer.from_pretrained(folder)
    if config is not None and (folder := _tokenizer_folder(config)) is not None:
        return CLIPTokenizer.from_pretrained(folder)
    candidates = HUB_TOKENIZERS[_base(family)]
    # Resolved to files first: transformers 5 returns an empty tokenizer, not an error, for a
    # repo missing from the cache.
    for repo, subfolder in candidates:
        if (folder := _hub_tokenizer_folder(repo, subfolder, allow_download)) is not None:
            return CLIPTokenizer.from_pretrained(folder)
    repo, subfolder = candidates[0]
    where = f"{repo}/{subfolder}".rstrip("/")
    raise TokenizerNotFoundError(
        f"the {family.description} CLIP tokenizer is not on this machine (dbtui cannot ship it). "
        "Pass --tokenizer PATH: a folder with tokenizer.json (or vocab.json and merges.txt), or any diffusers model folder of "
        f"the same family that has a tokenizer/ subfolder. Or run once with --online to fetch it from {where} "
        "on the Hugging Face Hub (it is cached for next time)."
    )


def _with_text_model_prefix(state_dict: dict[str, Any]) -> dict[str, Any]:
    """SD1 files written under transformers 5 by naive exporters lack ``text_model.``; restore it."""
    clip = SD1_TEXT + "text_model."
    if not any(k.startswith(SD1_TEXT) and not k.startswith(clip) for k in state_dict):
        return state_dict
    return {(clip + k[len(SD1_TEXT):] if k.startswith(SD1_TEXT) and not k.startswith(clip) else k): v
            for k, v in state_dict.items()}


def _mismatch(state_dict: dict[str, Any], config: Path, family: ModelFamily, name: str, what: str,
              cause: str) -> ModelMismatchError:
    """Our account of which parts the file lacks, rather than the loader's internal advice."""
    message = explain_mismatch(state_dict, config, name, family.description) or (
        f"the {what} weights in {name} could not be loaded into a {family.description} model ({cause}); the file "
        "is damaged or of another architecture: for a non-standard one, pass --config with a diffusers folder "
        "that describes it"
    )
    return ModelMismatchError(message)


def _load_components(state_dict: dict[str, Any], config: Path, family: ModelFamily, name: str, use_ema: bool, progress):
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel

    # The same calls diffusers' pipeline-level from_single_file makes per component; it only takes a
    # path, and we hold a state dict that was read safely.
    loaders = [
        ("UNet", lambda: UNet2DConditionModel.from_single_file(
            state_dict, config=str(config), subfolder="unet", local_files_only=True, extract_ema=use_ema)),
        ("VAE", lambda: AutoencoderKL.from_single_file(
            state_dict, config=str(config), subfolder="vae", local_files_only=True)),
        ("text encoder", lambda: create_diffusers_clip_model_from_ldm(
            CLIPTextModel, state_dict, config=str(config), subfolder="text_encoder", local_files_only=True)),
    ]
    models = []
    for what, load in loaders:
        try:
            model = load()
        except (ValueError, RuntimeError, KeyError, TypeError, NotImplementedError) as error:
            raise _mismatch(state_dict, config, family, name, what, type(error).__name__) from error
        unloaded = [n for n, p in model.named_parameters() if p.device.type == "meta"]
        if unloaded:
            raise _mismatch(state_dict, config, family, name, what, f"{len(unloaded)} weights not in the file")
        models.append(model)
        progress.step()
    # A --config folder without a scheduler gets the detected family's.
    scheduler_dir = config if (config / "scheduler" / "scheduler_config.json").is_file() else CONFIGS / family.id
    scheduler_config = json.loads((scheduler_dir / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    scheduler = getattr(diffusers, scheduler_config["_class_name"]).from_pretrained(scheduler_dir, subfolder="scheduler")
    return (*models, scheduler)


def import_single_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    tokenizer: str | Path | None = None,
    use_ema: bool = False,
    emit: Emit | None = None,
    config: str | Path | None = None,
    allow_download: bool = False,
) -> Path:
    """Convert ``path`` (.safetensors or .ckpt) into the diffusers folder ``out_dir``; returns it.

    ``config`` is a diffusers folder describing the architecture (default: the shipped config of
    the detected family); ``tokenizer`` a tokenizer or model folder; ``allow_download`` lets the
    tokenizer come from the Hub when it is nowhere on disk.
    """
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    path, out_dir = Path(path), Path(out_dir)
    checkpoint = read_checkpoint(path)
    state_dict = _with_text_model_prefix(checkpoint.state_dict)
    family = detect_family(state_dict, prediction_type=prediction_hint(path, checkpoint.metadata))
    if not family.supported:
        raise UnsupportedModelError(f"{path.name}: {family.description}")
    if not any(k.startswith((SD1_TEXT, SD2_TEXT)) for k in state_dict):
        raise UnsupportedModelError(f"{path.name} has no text encoder weights (a UNet-only file?); dbtui needs a full checkpoint")
    if use_ema and not has_ema(state_dict):
        raise ConvertError(f"{path.name} holds no EMA weights; run without --ema")

    progress = Progress(emit, "convert", total=4, description=f"{path.name}: {family.description}")
    if has_ema(state_dict) and not use_ema and emit is not None:
        emit(WarningEvent(
            message=f"{path.name} also holds EMA weights; the regular (non-EMA) weights were used",
            advice="pass --ema to use the EMA weights (often better for generating; the regular ones suit further training)",
        ))
    config_dir = Path(config) if config is not None else CONFIGS / family.id
    missing = [sub for sub in ("unet", "vae", "text_encoder") if not (config_dir / sub / "config.json").is_file()]
    if missing:
        raise ConvertError(f"--config {config_dir} is not a diffusers model folder (no config for {', '.join(missing)})")
    tok = load_tokenizer(family, tokenizer, Path(config) if config is not None else None, allow_download)
    model_bytes = sum(v.numel() for k, v in state_dict.items() if not k.startswith(EMA_PREFIX)) * 4  # saved as fp32
    check_free_space(out_dir.parent, model_bytes)

    unet, vae, text_encoder, scheduler = _load_components(state_dict, config_dir, family, path.name, use_ema, progress)
    pipeline_class = StableDiffusionInpaintPipeline if family.inpainting else StableDiffusionPipeline
    pipe = pipeline_class(
        vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    with atomic_dir(out_dir) as tmp:
        pipe.save_pretrained(tmp)
    progress.step()
    progress.finish()
    return out_dir
