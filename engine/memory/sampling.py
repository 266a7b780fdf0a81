"""The sampling moment between steps: previews and scoring rounds generate images on the training GPU.

Every ``sampling.every_n_steps`` (or checkpoint), at the end, and at each ``[evaluation]`` round,
``PreviewRounds._generate`` keeps the denoiser (with its LoRA) and the optimizer's state where they are
(the gradients are gone: ``zero_grad(set_to_none=True)``), brings the VAE back to the GPU, and the
text encoders too unless the prompts were cached with the captions. The denoiser runs in eval mode
without gradients at ``num_images`` images a call (twice that where the family's pipeline guides
with a negative prompt), then the VAE decodes in its own dtype outside autocast
(engine/training/sampling.py ``generate_images``: one image at a time, whole up to 512 px, in tiles above). Autocast runs
without its cache (``Trainer.half_precision``): each half-precision copy of an fp32 weight lives only while
its layer runs, so none is left during the decode.

Not counted: a scoring round's CLIP and DINO (about 0.7 GB for the default ones), which come to the GPU
after its images are generated and the VAE has left again (engine/evaluation/scorers.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from engine.memory.cuda_autocast import cuda_autocast
from engine.memory.fake_models import DEVICE, PreparedModel
from engine.memory.live_bytes import LiveBytes, storage_bytes
from engine.memory.step import cached_text
from engine.models.family import ImageGeometry, TextEmbeddings, guidance_for, stack_embeddings
from engine.training.precision import weight_dtype


@dataclass(frozen=True)
class SamplingMeasure:
    weights: int  # the denoiser, the VAE and what else is on the GPU while images are generated
    generation: int  # one denoiser pass at the sampling batch then one VAE decode (autocast caches no weight copies): the larger
    images: int  # images per pipeline call
    guided: bool  # the denoiser runs on a negative prompt's batch too (classifier-free guidance)


def images_per_call(profile: Any) -> int:
    """Images one pipeline call generates: previews' ``num_images`` or scoring's ``images_per_prompt``,
    the larger; 0 when the run neither samples nor scores."""
    counts = [profile.sampling.num_images]
    if profile.evaluation.enabled:
        counts.append(profile.evaluation.images_per_prompt)
    return max(counts)


def samples_between_steps(profile: Any) -> bool:
    """Whether previews come between steps, while the optimizer's state is on the GPU (``Trainer.after_step``);
    otherwise they come only after the last step, when ``release_training_state`` has freed it."""
    return bool(profile.sampling.every_n_steps or profile.saving.every_n_steps)


def _guided(model: PreparedModel, profile: Any, text: TextEmbeddings) -> bool:
    """Whether the pipeline runs the denoiser on a negative prompt too (the batch doubles): the family hands
    it one (SD, SDXL; Flux is guidance-distilled and does not) and diffusers guides only above a scale of 1."""
    if guidance_for(model.components.family, profile.sampling.guidance_scale) <= 1:
        return False
    return any(name.startswith("negative") for name in model.components.family.prompt_kwargs(text, text))


def _parts(model: PreparedModel, profile: Any) -> list[torch.nn.Module]:
    """The models on the GPU while generating: those the steps keep there, and the VAE back for the decode."""
    parts = model.on_device(profile)
    vae = model.components.vae
    return parts if any(m is vae for m in parts) else [*parts, vae]


def measure_sampling(model: PreparedModel, profile: Any, text: TextEmbeddings | None = None) -> SamplingMeasure | None:
    """The sampling moment of ``profile`` at its resolution, or None when it neither samples nor scores
    (inside the fake mode). ``text``: the prompts' embeddings (``cached_text``), where the caller has them already:
    with T5-XXL each encoding is seconds of the estimate."""
    images = images_per_call(profile)
    if images == 0:
        return None
    components = model.components
    family = components.family
    unet, vae = components.unet, components.vae
    text = text if text is not None else cached_text(model, profile.training.clip_skip)
    guided = _guided(model, profile, text)
    batch = images * (2 if guided else 1)
    size = profile.dataset.resolution  # PreviewRounds._generate: square previews at the profile's resolution
    scale = components.vae_scale_factor
    latents = torch.zeros(batch, vae.config.latent_channels, size // scale, size // scale)
    prompts = stack_embeddings([text] * batch)
    geometry = [ImageGeometry((size, size), (0, 0), (size, size))] * batch
    timesteps = torch.zeros(batch, dtype=torch.long)
    weights = {id(p.untyped_storage()) for m in [unet, vae, *components.text_encoders] for p in m.parameters()}
    dtype = weight_dtype(profile.precision.mixed_precision)
    was_training = unet.training
    unet.eval()
    try:
        with LiveBytes(weights) as tracker, torch.no_grad(), cuda_autocast(None if dtype == torch.float32 else dtype):
            family.denoise(unet, latents, timesteps, prompts, geometry, training=profile.training)
            denoising = tracker.peak
            tracker.peak = tracker.live  # from here, the decode's own peak
            with torch.autocast(DEVICE.type, enabled=False):
                decoding = decode_peak(tracker, vae, latents[:images].to(vae.dtype))
    finally:
        unet.train(was_training)
    parts = _parts(model, profile)
    weights_bytes = storage_bytes([t for m in parts for t in [*m.parameters(), *m.buffers()]])
    return SamplingMeasure(weights_bytes, max(denoising, decoding), images, guided)


def decode_peak(tracker: LiveBytes, vae: Any, latents: torch.Tensor) -> int:
    """The peak bytes of ``decode_previews(vae, latents)``, counted by ``tracker`` (whose ``peak`` starts at its live
    bytes) from the decode of the first image alone. ``decode_previews`` decodes each image by itself, the same
    operations on the same shapes, and keeps the ones decoded for the concatenation that ends the call: image k's decode
    meets the k - 1 before it, and the concatenation all of them twice. Counted so, the bytes are those of decoding every
    image (tests/test_sampling_meter.py), while the meter traces one: each of SDXL's previews is nine tiles, and their
    decode was a third of an SDXL estimate. Their tiles' seams are not blended (``_tiles_unblended``)."""
    from engine.training.sampling import decode_previews

    start = tracker.live
    with _tiles_unblended(vae):
        image = decode_previews(vae, latents[:1])
    others = latents.shape[0] - 1
    if not others:
        return tracker.peak
    kept = image.numel() * image.element_size()  # one decoded image, held until the concatenation
    return max(tracker.peak + others * kept, start + 2 * (others + 1) * kept)


def _keep_lower_tile(upper: torch.Tensor, lower: torch.Tensor, extent: int) -> torch.Tensor:
    return lower


@contextmanager
def _tiles_unblended(vae: Any) -> Iterator[None]:
    """Within, ``vae``'s tiled decode leaves its tiles' seams unblended. diffusers' ``AutoencoderKL`` blends each seam
    one row or column of pixels at a time, in place, each through three temporaries of that row: a few kilobytes above
    the tiles already decoded, far below a tile's own decode, so the peak is the same without them. Traced, those
    thousands of small operations were a third of a Flux estimate at 1024 px."""
    names = ("blend_v", "blend_h")
    for name in names:
        setattr(vae, name, _keep_lower_tile)
    try:
        yield
    finally:
        for name in names:
            delattr(vae, name)  # the class's own again
