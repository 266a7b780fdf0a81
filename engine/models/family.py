"""What differs between model families, as one small protocol the trainer is written against.

A family (SD1/SD2, SDXL, Flux) is one module in this package that says how to load its
parts, encode prompts, condition and call its denoiser, what the denoiser learns to predict, and
how to build its inference pipeline and save its LoRA. The trainer, caching, samples, class
images and outputs never ask which family they have; shared helpers live beside this protocol
as functions, not in a base class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import DbtuiError
from engine.models.deferred_parts import DeferredParts
from engine.models.parts import load_clip_tokenizer

if TYPE_CHECKING:
    import torch

# A batch of encoded prompts: batch-first tensors by name ("hidden" for the denoiser's
# cross-attention, "pooled" for SDXL's pooled projection; Flux adds its own).
TextEmbeddings = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class CaptionReader:
    """A tokenizer the family reads captions with, how far it reads, and what a longer caption costs
    (the dataset doctor's caption-length checks, engine/dataset/checks.py)."""

    subfolder: str  # the tokenizer's folder in a diffusers model
    name: str  # its text encoder, for people: "the text encoder", "T5", "CLIP-L"
    context: int  # token positions the family encodes, special tokens included
    severity: str  # of a finding about a longer caption: "error", "warning" or "info"
    read_by: str = ""  # the encoder that still reads what this one misses; "" when the rest is lost
    # How the run reads it from (model folder, subfolder): the check counts with the very class and files that train.
    load: Callable[[Path, str], Any] = load_clip_tokenizer


# One CLIP tokenizer answers for SD's encoder and for both of SDXL's (the same vocabulary and window).
CLIP_READER = CaptionReader("tokenizer", "the text encoder", 77, "warning")


@dataclass(frozen=True)
class LoadDtypes:
    """The dtype the large parts load in (None: fp32). Parts a run keeps frozen load straight in its
    weight dtype, so the host never holds an fp32 copy first: Flux's transformer is 48 GB in fp32."""

    denoiser: torch.dtype | None = None
    text_encoders: torch.dtype | None = None


@dataclass(frozen=True)
class ImageGeometry:
    """Where one training sample's pixels came from: what SDXL conditions on, in pixels."""

    original: tuple[int, int]  # (height, width) of the image file
    crop_top_left: tuple[int, int]  # (top, left) of the crop inside the resized image
    target: tuple[int, int]  # (height, width) that trains


class Objective(Protocol):
    """What the denoiser learns: how noise is added at a timestep, and what it should predict."""

    def sample_timesteps(self, latents: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One timestep per sample of ``latents`` (whose size a flow-matching shift depends on)."""

    def noisy(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor: ...
    def target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor: ...
    def min_snr_weights(self, timesteps: torch.Tensor, gamma: float) -> torch.Tensor: ...

    def loss_weights(self, timesteps: torch.Tensor) -> torch.Tensor | None:
        """The objective's own per-sample loss weights (flow matching's σ weighting); None: all 1."""


def vae_scale_factor(vae: Any) -> int:
    """Pixels per latent a side, as diffusers' pipelines compute it."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


@dataclass
class Components:
    """The loaded parts of one model, in the family's terms. The text encoders load at their first use
    (``text_encoder_parts``): a run with every caption's embeddings cached never needs them."""

    family: Family
    folder: Path
    tokenizers: list[Any]
    text_encoder_parts: DeferredParts
    vae: Any
    unet: Any  # the denoiser: a UNet for SD1/SD2/SDXL, a transformer for Flux
    noise_scheduler: Any

    @property
    def tokenizer(self) -> Any:
        return self.tokenizers[0]

    @property
    def text_encoders(self) -> list[Any]:
        """The family's text encoders, in encoding order, loaded now if they are not yet."""
        return self.text_encoder_parts.get()

    @property
    def text_encoder(self) -> Any:
        return self.text_encoders[0]

    @property
    def prediction_type(self) -> str:
        return self.noise_scheduler.config.get("prediction_type", "flow_matching")

    @property
    def vae_scale_factor(self) -> int:
        return vae_scale_factor(self.vae)

    @property
    def size_multiple(self) -> int:
        """Pixel sizes must be multiples of this for the VAE and the denoiser (every UNet level, Flux's 2×2 packing)."""
        return self.vae_scale_factor * self.family.latent_multiple(self.unet)


def guidance_for(family: "Family", set_value: float | None) -> float:
    """The profile's guidance value (prior.guidance_scale, sampling.guidance_scale), else the family's usual one."""
    return family.usual_guidance if set_value is None else set_value


class SettingsRefusedError(DbtuiError):
    """Profile settings a family cannot honour: every one at once, each with its profile key."""

    def __init__(self, refused: list[tuple[str, str]]):
        self.refused = refused
        super().__init__("; ".join(f"{key}: {message}" for key, message in refused))


class Family(Protocol):
    """One model family. Implementations: engine/models/sd.py, engine/models/sdxl.py, engine/models/flux.py."""

    id: str  # stable, for profiles and events: "sd", "sdxl", "flux"
    label: str  # for people: "Stable Diffusion XL"
    text_encoder_names: tuple[str, ...]  # sub-folders of the diffusers folder, in encoding order
    # Indexes (into text_encoder_names) of the encoders that train, in full or by LoRA, when the profile
    # trains "the text encoder"; the others stay frozen (Flux's T5, 4.7 B parameters, never trains).
    trained_text_encoders: tuple[int, ...]
    denoiser_name: str  # the denoiser's sub-folder ("unet", "transformer"), also its name in checkpoints
    default_lora_targets: tuple[str, ...]  # the denoiser's modules that get LoRA when the profile names none
    default_resolution: int  # what its real models are made for
    usual_size_multiple: int  # the pixel step of its real models' sizes (Components.size_multiple), for buckets before a load
    refuses_off_step_sizes: bool  # whether check_profile refuses a size off that step (else the buckets round it)
    usual_guidance: float  # the guidance its images are made with when the profile sets none
    takes_negative_prompt: bool  # whether its pipeline reads a negative prompt (prompt_kwargs)
    caption_readers: tuple[CaptionReader, ...]  # the tokenizers captions are checked against, identifier's first

    def recognises(self, model_index: dict[str, Any]) -> bool:
        """Whether a diffusers folder's model_index.json is this family."""

    def load(self, folder: Path, *, vae: str | None, tokenizer: str | None, dtypes: LoadDtypes = LoadDtypes()) -> Components: ...

    def load_denoiser(self, folder: Path, dtype: torch.dtype | None = None) -> Any:
        """The denoiser as the base model has it, on the CPU, in ``dtype`` (None: fp32)."""

    def load_text_encoder(self, folder: Path, index: int, dtype: torch.dtype | None = None) -> Any:
        """Text encoder ``index`` as the base model has it, on the CPU, in ``dtype`` (None: fp32)."""

    def check_profile(self, profile: Any, size_multiple: int | None = None) -> None:
        """Refuse (with a SettingsRefusedError saying what to change) profile settings this family cannot honour.
        ``size_multiple``: the model's own pixel step (``Components.size_multiple``); None: the family's usual one."""

    def profile_warnings(self, profile: Any, precision: str) -> list[tuple[str, str]]:
        """(profile key, message) for settings this family runs with but likely not as meant. ``precision`` is
        the mixed precision in force ("no", "fp16", "bf16"): the profile's, or what this machine falls back to."""

    def latent_multiple(self, denoiser: Any) -> int:
        """Latent sizes must be multiples of this for the denoiser."""

    def latent_channels(self, denoiser: Any) -> int:
        """The channels of the VAE latents the denoiser takes (a model.vae must make as many)."""

    def objective(self, scheduler: Any, training: Any = None) -> Objective:
        """The training objective over ``scheduler``, with the profile's [training] settings (None: defaults)."""

    def encode_text(self, tokenizers: list[Any], text_encoders: list[Any], captions: list[str], clip_skip: int,
                    device: torch.device) -> TextEmbeddings:
        """Embeddings of ``captions``; gradients flow when an encoder trains. ``clip_skip``: 1 is the
        family's usual layer, 2 one layer earlier, and so on."""

    def denoise(self, unet: Any, noisy: torch.Tensor, timesteps: torch.Tensor, text: TextEmbeddings,
                geometry: list[ImageGeometry], training: Any = None) -> torch.Tensor:
        """The denoiser's prediction, shaped like ``noisy``; ``training`` (the profile's [training], None:
        defaults) carries what a family conditions on besides the prompt, such as Flux's guidance."""

    def pipeline(self, components: Components, unet: Any, text_encoders: list[Any], scheduler: Any) -> Any:
        """An inference pipeline over these models (the ones training, or the ones to save)."""

    def sampling_scheduler(self, training_scheduler: Any) -> Any:
        """The fast inference sampler for previews and class images, from the training schedule's settings."""

    def latents_for_vae(self, pipe: Any, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The pipeline's ``output_type="latent"`` result as the VAE decodes it, in the VAE's dtype."""

    def prompt_kwargs(self, positive: TextEmbeddings, negative: TextEmbeddings) -> dict[str, Any]:
        """The pipeline call's arguments for prompts encoded with ``encode_text``."""

    def zeroes_empty_negative(self, folder: Path) -> bool:
        """Whether the model in ``folder``, given no negative prompt, conditions on zeros (``zero_embeddings``) in place
        of "" encoded, as its diffusers pipeline does (SDXL's ``force_zeros_for_empty_prompt``)."""

    def export_lora(self, out_dir: Path, unet: Any, text_encoders: list[Any] | None) -> Path:
        """Save the peft LoRA of the UNet (and of the text encoders, when they trained) in diffusers format."""

    def export_lora_kohya(self, lora_dir: Path, out_file: Path, components: Components, emit: Any = None) -> Path:
        """That LoRA in the kohya/WebUI format that ComfyUI, AUTOMATIC1111 and Forge load; ``components`` (the
        base model it trained on) say which version of the family its metadata names."""

    def kohya_unplaced(self, layers: list[str]) -> list[str]:
        """Those of the denoiser's ``layers`` (full module names) a LoRA on which the kohya format cannot hold:
        asked before training when the profile exports ``lora_kohya``, so that the export cannot fail at the end."""


def stack_embeddings(items: list[TextEmbeddings]) -> TextEmbeddings:
    """One batch from single-prompt embeddings (as cached per caption)."""
    import torch

    return {name: torch.stack([item[name] for item in items]) for name in items[0]}


def zero_embeddings(like: TextEmbeddings) -> TextEmbeddings:
    """The negative conditioning of a model that ``zeroes_empty_negative``, for prompts encoded as ``like``."""
    import torch

    return {name: torch.zeros_like(tensor) for name, tensor in like.items()}


def embeddings_to(text: TextEmbeddings, device: torch.device) -> TextEmbeddings:
    return {name: tensor.to(device) for name, tensor in text.items()}
