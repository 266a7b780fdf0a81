"""Loading the parts the families share from a diffusers folder: UNet, VAE, CLIP tokenizers, DDPM scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.builtin import resolve_model
from engine.errors import DbtuiError

if TYPE_CHECKING:
    import torch


class ModelNotFoundError(DbtuiError):
    """The base model is neither a local folder or file nor reachable on the hub."""


def vae_file_message(vae: str, option: str = "model.vae") -> str:
    """Why model.vae (or convert's ``option`` --vae), a single file, is not read: the VAE is loaded from diffusers'
    layout, and the file was taken for a whole checkpoint to convert ("a VAE on its own, not a full Stable Diffusion
    checkpoint")."""
    return (f"'{vae}' is a single file; {option} takes a diffusers VAE folder (its config.json and weights) or a hub "
            "id: stabilityai/sd-vae-ft-mse is vae-ft-mse-840000 for SD1.x and SD2.x, madebyollin/sdxl-vae-fp16-fix "
            "SDXL's fp16-fix VAE")


# The files a tokenizer reads (one of each set): without them transformers builds an empty tokenizer, with no error,
# that reads every caption as unknown tokens.
CLIP_TOKENIZER_FILES = ("vocab.json", "tokenizer.json")
# What model.tokenizer's hub id downloads, at its top or in the tokenizer's folder (tokenizer_hub_files).
TOKENIZER_HUB_FILES = (*CLIP_TOKENIZER_FILES, "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
T5_TOKENIZER_FILES = ("spiece.model", "tokenizer.json")
# The CLIP tokenizers' folders SDXL reads, model.tokenizer standing for each; SD and Flux read tokenizer/ alone (Flux's
# tokenizer_2/ is its T5's, which model.tokenizer does not replace).
SDXL_TOKENIZER_FOLDERS = ("tokenizer", "tokenizer_2")


def clip_tokenizer_folders(family_id: str) -> tuple[str, ...]:
    """The folders of the CLIP tokenizers the family ``family_id`` reads ("sd", "sdxl", "flux")."""
    return SDXL_TOKENIZER_FOLDERS if family_id == "sdxl" else ("tokenizer",)


def tokenizer_hub_files(subfolder: str) -> list[str]:
    """The files model.tokenizer's hub id downloads for the tokenizer in ``subfolder``: at the repo's top or in
    ``subfolder``/, not in another tokenizer's folder (an SD1 load of an SDXL repo leaves tokenizer_2/ out)."""
    return [*TOKENIZER_HUB_FILES, *(f"{subfolder}/{name}" for name in TOKENIZER_HUB_FILES)]


def holds_clip_tokenizer(folder: Path, subfolder: str = "tokenizer") -> bool:
    """Whether ``folder`` (model.tokenizer's) has a CLIP tokenizer's files in ``subfolder``/ or at its top, where the
    load looks for them."""
    return any((where / name).exists() for where in (folder / subfolder, folder) for name in CLIP_TOKENIZER_FILES)


def no_clip_tokenizer_message(override: str, subfolder: str = "tokenizer") -> str:
    """Why model.tokenizer ``override`` is refused: it holds none of a CLIP tokenizer's files."""
    return (f"model.tokenizer '{override}' holds no CLIP tokenizer: neither its {subfolder}/ nor its top has "
            f"{' or '.join(CLIP_TOKENIZER_FILES)}. Give a tokenizer folder or hub id (with vocab.json and merges.txt, or "
            "tokenizer.json), or a model with a tokenizer/ part, or leave model.tokenizer empty to use the model's own")

# A part's safetensors weights, whole or sharded, as diffusers and transformers name them (a variant's are not read).
SAFETENSORS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                       "model.safetensors", "model.safetensors.index.json")


def pretrained_part(model_class: Any, folder: Path, subfolder: str | None = None, **kwargs: Any) -> Any:
    """``model_class.from_pretrained`` of the model part in ``folder``/``subfolder`` (a diffusers or transformers model),
    which every load of a part goes through: one holding .bin weights alone (an older save_pretrained, an older hub
    repo, an older checkpoint) is asked for them, since diffusers, asked for safetensors first, logged "An error
    occurred while trying to fetch … no file named diffusion_pytorch_model.safetensors" and "Defaulting to unsafe
    serialization" for it, which read as failures of a load that was right."""
    part = folder / subfolder if subfolder else folder
    if not any((part / name).is_file() for name in SAFETENSORS_WEIGHTS):
        kwargs["use_safetensors"] = False
    return model_class.from_pretrained(folder, **({"subfolder": subfolder} if subfolder else {}), **kwargs)


# The UNet's attention projections: where SD and SDXL LoRAs train when the profile names no modules.
UNET_ATTENTION_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def load_unet(folder: Path, dtype: torch.dtype | None = None) -> Any:
    """The model folder's UNet on the CPU, in ``dtype`` (None: fp32)."""
    from diffusers import UNet2DConditionModel

    return pretrained_part(UNet2DConditionModel, folder, "unet", torch_dtype=dtype)


def unet_latent_multiple(unet: Any) -> int:
    """Latent sizes a UNet takes: each of its levels but the last halves them."""
    return 2 ** (len(unet.config.block_out_channels) - 1)


def load_scheduler(folder: Path) -> Any:
    """The training noise schedule: the folder's scheduler settings read into a DDPMScheduler."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_pretrained(folder, subfolder="scheduler")


def load_clip_tokenizer(folder: Path, subfolder: str, override: str | None = None) -> Any:
    """The CLIP tokenizer in ``folder/subfolder``; ``override`` (model.tokenizer) names a tokenizer folder or hub id,
    or a model folder or hub id whose ``subfolder`` has one. One without its files is refused: transformers builds an
    empty tokenizer from it, with no error, and the run failed later (an OverflowError)."""
    from transformers import CLIPTokenizer

    source = _tokenizer_source(override, subfolder) if override else folder
    candidates = [source / subfolder, source] if override else [source / subfolder]
    for candidate in candidates:
        if any((candidate / name).exists() for name in CLIP_TOKENIZER_FILES):
            try:
                return CLIPTokenizer.from_pretrained(candidate)
            except (OSError, ValueError) as error:
                raise ModelNotFoundError(f"the CLIP tokenizer in '{candidate}' cannot be read ({error})") from None
    if override:
        raise ModelNotFoundError(no_clip_tokenizer_message(override, subfolder))
    raise ModelNotFoundError(f"no CLIP tokenizer in '{candidates[0]}': set model.tokenizer to a folder that has one")


def _tokenizer_source(override: str, subfolder: str) -> Path:
    """model.tokenizer's folder: the local one it names, else its hub id's tokenizer files, at its top or in
    ``subfolder``/."""
    from engine.support.hub_snapshot import HubUnavailable, hub_snapshot, unavailable_advice

    source = Path(resolve_model(override)).expanduser()
    if source.is_dir():
        return source
    try:
        return hub_snapshot(override, allow_patterns=tokenizer_hub_files(subfolder))
    except HubUnavailable as unavailable:
        if unavailable.cause == "HFValidationError":
            raise ModelNotFoundError(f"model.tokenizer '{override}' is not a local folder or a valid hub id") from None
        raise ModelNotFoundError(unavailable_advice(override, "model.tokenizer", unavailable.cause)) from None


def load_t5_tokenizer(folder: Path, subfolder: str) -> Any:
    """The T5 tokenizer in ``folder/subfolder``, refused where its files are not there."""
    from transformers import T5TokenizerFast

    where = folder / subfolder
    if not any((where / name).is_file() for name in T5_TOKENIZER_FILES):
        raise ModelNotFoundError(f"no T5 tokenizer in '{where}' (neither {' nor '.join(T5_TOKENIZER_FILES)}), so every "
                                 f"caption would train as unknown tokens: copy the model's {subfolder}/ folder there (every "
                                 "Flux.1 has the same one, e.g. black-forest-labs/FLUX.1-dev's), or give a complete model "
                                 "folder or a hub id")
    return T5TokenizerFast.from_pretrained(folder, subfolder=subfolder)


def load_vae(folder: Path, vae: str | None = None) -> Any:
    """The VAE override ``vae`` (a folder, a model with a vae/ part, or a hub id), else the folder's own; fp32, CPU."""
    from diffusers import AutoencoderKL

    from engine.models.loading import vae_folder

    if not vae:
        return pretrained_part(AutoencoderKL, folder, "vae")
    given = vae_folder(vae)
    if (given / "vae").is_dir():
        return pretrained_part(AutoencoderKL, given, "vae")
    return pretrained_part(AutoencoderKL, given)
