"""Flux.1 ([dev], [schnell]): a rectified-flow transformer conditioned on T5 and CLIP-L.

Prompts: CLIP-L's pooled output (77 tokens) and T5's last hidden states, padded to
``max_sequence_length`` tokens (512, or the T5 tokenizer's own limit when lower), as FluxPipeline
encodes them. The transformer takes latents packed 2×2 into a sequence of 4×16-channel tokens,
with (0, row, column) position ids for the image tokens and zeros for the text tokens, the
timestep as σ (timestep / 1000), and for [dev] a guidance value, the profile's training guidance.
The VAE's latents are shifted then scaled (its ``shift_factor``); the latent cache does that.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.models.deferred_parts import DeferredParts
from engine.models.family import CaptionReader, Components, ImageGeometry, LoadDtypes, SettingsRefusedError, TextEmbeddings
from engine.models.flow_objective import FlowObjective
from engine.models.lora_layers import kohya_text_encoder_refusals
from engine.models.parts import load_clip_tokenizer, load_t5_tokenizer, load_vae, pretrained_part
from engine.profile.schema import SINGLE_FILE_EXPORTS
from engine.support.multiples import nearest_size_text

if TYPE_CHECKING:
    import torch

MAX_SEQUENCE_LENGTH = 512  # Flux.1's T5 context, as FluxPipeline defaults to
PATCH = 2  # latents are packed 2×2 into one token
# Where a Flux LoRA trains when the profile names no modules: every attention projection of the
# image and text streams and their feed-forward layers in the double-stream blocks, and the
# attention projections and MLP input of the single-stream blocks (as diffusers' and SimpleTuner's
# Flux scripts choose). ``attn.`` and ``ff.`` anchor the names so the output layer stays out.
LORA_TARGETS = (
    "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
    "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
    "proj_mlp",
)


# CLIP-L is read first (the identifier's tokenizer); T5 reads what CLIP-L misses, up to its 512 tokens.
CAPTION_READERS = (
    CaptionReader("tokenizer", "CLIP-L", 77, "info", read_by="T5"),
    CaptionReader("tokenizer_2", "T5", MAX_SEQUENCE_LENGTH, "error", load=load_t5_tokenizer),
)


class FluxSettingsError(SettingsRefusedError):
    """Profile settings Flux cannot honour."""


def pack(latents: torch.Tensor) -> torch.Tensor:
    """(batch, channels, h, w) latents as (batch, h/2 · w/2, channels · 4) tokens, row by row."""
    from diffusers import FluxPipeline

    batch, channels, height, width = latents.shape
    return FluxPipeline._pack_latents(latents, batch, channels, height, width)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of ``pack`` for latents of ``height`` × ``width``."""
    from diffusers import FluxPipeline

    return FluxPipeline._unpack_latents(tokens, height, width, 1)  # 1: sizes are in latent pixels already


def image_ids(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(0, row, column) of each packed token of ``height`` × ``width`` latents."""
    from diffusers import FluxPipeline

    return FluxPipeline._prepare_latent_image_ids(1, height // PATCH, width // PATCH, device, dtype)


def sequence_length(tokenizer: Any) -> int:
    return min(MAX_SEQUENCE_LENGTH, tokenizer.model_max_length)


class Flux:
    id = "flux"
    label = "Flux.1"
    text_encoder_names = ("text_encoder", "text_encoder_2")
    trained_text_encoders = (0,)  # CLIP-L; T5-XXL (4.7 B parameters) stays frozen, as every Flux trainer keeps it
    denoiser_name = "transformer"
    default_lora_targets = LORA_TARGETS
    default_resolution = 1024
    usual_size_multiple = 16  # 8 pixels a latent × the 2×2 packing
    refuses_off_step_sizes = True  # the 2×2 packing has no half patch: check_profile refuses sizes off the step
    usual_guidance = 3.5  # [dev] is guidance-distilled: its embedding's usual value ([schnell] ignores it)
    takes_negative_prompt = False
    caption_readers = CAPTION_READERS

    def recognises(self, model_index: dict[str, Any]) -> bool:
        return model_index.get("_class_name") == "FluxPipeline"

    def load(self, folder: Path, *, vae: str | None, tokenizer: str | None, dtypes: LoadDtypes = LoadDtypes()) -> Components:
        from diffusers import FlowMatchEulerDiscreteScheduler

        return Components(
            family=self,
            folder=folder,
            tokenizers=[load_clip_tokenizer(folder, "tokenizer", tokenizer),
                        load_t5_tokenizer(folder, "tokenizer_2")],
            text_encoder_parts=DeferredParts(lambda: [self.load_text_encoder(folder, i, dtypes.text_encoders)
                                                      for i in range(len(self.text_encoder_names))]),
            vae=load_vae(folder, vae),
            unet=self.load_denoiser(folder, dtypes.denoiser),
            noise_scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler"),
        )

    def load_denoiser(self, folder: Path, dtype: torch.dtype | None = None) -> Any:
        from diffusers import FluxTransformer2DModel

        return pretrained_part(FluxTransformer2DModel, folder, "transformer", torch_dtype=dtype)

    def load_text_encoder(self, folder: Path, index: int, dtype: torch.dtype | None = None) -> Any:
        import torch
        from transformers import CLIPTextModel, T5EncoderModel

        kind = T5EncoderModel if index == 1 else CLIPTextModel
        return pretrained_part(kind, folder, self.text_encoder_names[index], torch_dtype=dtype or torch.float32)

    def check_profile(self, profile: Any, size_multiple: int | None = None) -> None:
        training, dataset = profile.training, profile.dataset
        step = size_multiple or self.usual_size_multiple
        refused: list[tuple[str, str]] = []
        if training.min_snr_gamma:
            refused.append(("training.min_snr_gamma", "min-SNR weighting is for noise-schedule models; Flux trains by flow "
                            "matching, which has no SNR to clip: remove it (training.flow.loss_weighting offers sigma_sqrt "
                            "and cosmap)"))
        if training.clip_skip != 1:
            refused.append(("training.clip_skip", "Flux uses CLIP-L's pooled output and T5's last layer, so clip_skip has "
                            "nothing to skip: set it to 1"))
        single_files = sorted(set(SINGLE_FILE_EXPORTS) & set(profile.saving.export))
        if single_files:
            # The single-file layouts (engine/convert/to_single_file.py) are SD1.x/SD2.x/SDXL's: a whole run's
            # training would end in an export that cannot be written.
            refused.append(("saving.export", f"lists {' and '.join(single_files)}, single-file layouts of SD and SDXL that "
                            "dbtui does not write for Flux: keep \"diffusers\" (and for a LoRA \"lora_diffusers\", which "
                            "diffusers loads, and \"lora_kohya\", which ComfyUI and Forge load)"))
        if training.method == "lora" and profile.lora.unet_targets and "lora_kohya" in profile.saving.export:
            from engine.models.lora_layers import kohya_unplaced_targets

            # Asked of the layer names alone, before the model loads: the trainer asks it of the loaded model too.
            if problem := kohya_unplaced_targets(self, _layout_transformer(), profile.lora.unet_targets):
                refused.append(("training.lora.unet_targets", problem))
        refused += kohya_text_encoder_refusals(profile)
        if training.train_text_encoder and training.method != "lora":
            refused.append(("training.train_text_encoder", "a full fine-tune of Flux trains the transformer only (CLIP-L "
                            "can train as a LoRA, T5 never): set it to false, or training.method = \"lora\" to train "
                            "CLIP-L's LoRA beside the transformer's"))
        sizes = [("dataset.resolution", (dataset.resolution,))]
        if dataset.bucketing and dataset.buckets:
            sizes += [(f"dataset.buckets.{index}", bucket) for index, bucket in enumerate(dataset.buckets)]
        for key, size in sizes:
            if any(side % step for side in size):
                shown = "x".join(map(str, size))
                refused.append((key, f"{shown} is not a multiple of {step} on every side, as this Flux model needs (its VAE "
                                     f"makes latents {step // PATCH}× smaller and its transformer reads them in 2×2 patches): "
                                     f"{nearest_size_text(size, step)}"))
        if refused:
            raise FluxSettingsError(refused)

    def profile_warnings(self, profile: Any, precision: str) -> list[tuple[str, str]]:
        # Flux.1 [dev] is guidance-distilled: its pipeline takes a guidance scale, no negative prompt (prompt_kwargs).
        negatives = [("sampling.negative_prompt", profile.sampling.negative_prompt)]
        negatives += [(f"concepts.{i}.class_negative_prompt", c.class_negative_prompt) for i, c in enumerate(profile.concepts)]
        warnings = [(key, "Flux takes no negative prompt (its guidance is distilled into the model): this one is not "
                          "used; leave it empty") for key, text in negatives if text.strip()]
        if precision == "fp16":
            # A warning, not a refusal: GPUs without bf16 (T4, V100, RTX 20xx) have only fp16, and a run
            # may get through; when it does not, the NaN watchdog stops it at the first non-finite loss.
            warnings.append(("precision.mixed_precision", "Flux in fp16: its T5 encoder and transformer were made for bf16, "
                             "and in fp16 their activations can overflow to NaN, which stops the run at that step. Use "
                             "\"bf16\" on an RTX 30xx/40xx, A100, H100 or newer"))
        return warnings

    def latent_multiple(self, denoiser: Any) -> int:
        return PATCH

    def latent_channels(self, denoiser: Any) -> int:
        return int(denoiser.config.in_channels) // (PATCH * PATCH)  # each token packs a PATCH x PATCH latent patch

    def objective(self, scheduler: Any, training: Any = None) -> FlowObjective:
        from engine.profile.training_sections import FlowSection

        settings = training.flow if training is not None and training.flow is not None else FlowSection()
        return FlowObjective(scheduler, settings, PATCH)

    def encode_text(self, tokenizers: list[Any], text_encoders: list[Any], captions: list[str], clip_skip: int,
                    device: torch.device) -> TextEmbeddings:
        """CLIP-L's pooled output ("pooled") and T5's hidden states ("hidden"), as FluxPipeline.encode_prompt.
        Gradients flow through CLIP-L only: T5 never trains, so its pass keeps no activations."""
        import torch

        from engine.models.clip_text import token_ids

        clip, t5 = text_encoders
        pooled = clip(token_ids(tokenizers[0], captions, device), output_hidden_states=False).pooler_output
        ids = tokenizers[1](captions, padding="max_length", max_length=sequence_length(tokenizers[1]), truncation=True,
                            return_tensors="pt").input_ids.to(device)
        with torch.no_grad():
            hidden = t5(ids, output_hidden_states=False)[0]
        return {"hidden": hidden, "pooled": pooled}

    def denoise(self, unet: Any, noisy: torch.Tensor, timesteps: torch.Tensor, text: TextEmbeddings,
                geometry: list[ImageGeometry], training: Any = None) -> torch.Tensor:
        import torch

        height, width = noisy.shape[-2:]
        hidden = text["hidden"]
        config = getattr(unet, "module", unet).config  # under DDP
        guidance = None
        if config.guidance_embeds:
            value = training.flow.guidance if training is not None and training.flow is not None else 1.0
            guidance = torch.full((noisy.shape[0],), value, device=noisy.device, dtype=torch.float32)
        prediction = unet(
            hidden_states=pack(noisy),
            encoder_hidden_states=hidden,
            pooled_projections=text["pooled"],
            timestep=timesteps / 1000,
            img_ids=image_ids(height, width, noisy.device, noisy.dtype),
            txt_ids=torch.zeros(hidden.shape[1], 3, device=noisy.device, dtype=noisy.dtype),
            guidance=guidance,
            return_dict=False,
        )[0]
        return unpack(prediction, height, width)

    def pipeline(self, components: Components, unet: Any, text_encoders: list[Any], scheduler: Any) -> Any:
        from diffusers import FluxPipeline

        return FluxPipeline(
            scheduler=scheduler, vae=components.vae, text_encoder=text_encoders[0], tokenizer=components.tokenizers[0],
            text_encoder_2=text_encoders[1], tokenizer_2=components.tokenizers[1], transformer=unet,
        )

    def sampling_scheduler(self, training_scheduler: Any) -> Any:
        from diffusers import FlowMatchEulerDiscreteScheduler

        return FlowMatchEulerDiscreteScheduler.from_config(training_scheduler.config)

    def latents_for_vae(self, pipe: Any, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = pipe.vae
        latents = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor).to(vae.dtype)
        return latents / vae.config.scaling_factor + vae.config.shift_factor

    def prompt_kwargs(self, positive: TextEmbeddings, negative: TextEmbeddings) -> dict[str, Any]:
        # Flux.1 is guidance-distilled: the guidance value steers it, with no negative prompt pass.
        return {"prompt_embeds": positive["hidden"], "pooled_prompt_embeds": positive["pooled"]}

    def zeroes_empty_negative(self, folder: Path) -> bool:
        return False  # it reads no negative prompt

    def export_lora(self, out_dir: Path, unet: Any, text_encoders: list[Any] | None) -> Path:
        from engine.convert.flux_lora import export_flux_lora

        return export_flux_lora(out_dir, unet, text_encoder=text_encoders[0] if text_encoders else None)

    def export_lora_kohya(self, lora_dir: Path, out_file: Path, components: Components, emit: Any = None) -> Path:
        from engine.convert.flux_lora import flux_lora_to_kohya

        return flux_lora_to_kohya(lora_dir, out_file, emit=emit)

    def kohya_unplaced(self, layers: list[str]) -> list[str]:
        from engine.convert.errors import UnsupportedModelError
        from engine.convert.flux_lora import original_name

        unplaced = []
        for layer in layers:
            try:
                original_name(layer)
            except UnsupportedModelError:
                unplaced.append(layer)
        return unplaced


def _layout_transformer() -> Any:
    """A Flux transformer with one block of each kind on the meta device (no memory): the layer names of every
    Flux.1 transformer, less the other blocks' indexes, which the kohya layout places alike."""
    import torch
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        return FluxTransformer2DModel(num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=1,
                                      joint_attention_dim=16, pooled_projection_dim=16, in_channels=16,
                                      axes_dims_rope=(4, 6, 6))
