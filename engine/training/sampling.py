"""Preview images during and after training: fixed prompts and seeds, saved with a grid."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from engine.models.family import Family, TextEmbeddings, vae_scale_factor, zero_embeddings


def sampling_pipeline(components: Any, unet: Any, text_encoders: list[Any] | None) -> Any:
    """The family's pipeline over the models being trained, with the family's fast sampler.

    It moves nothing: the caller has put the denoiser and the VAE (and the text encoders) on the device.
    ``text_encoders`` None: a pipeline without them, for prompts given as embeddings; encoders resting on
    the host inside it would make diffusers before 0.42 run the whole pipeline on the host."""
    scheduler = components.family.sampling_scheduler(components.noise_scheduler)
    encoders = text_encoders if text_encoders is not None else [None] * len(components.family.text_encoder_names)
    pipe = components.family.pipeline(components, unet, encoders, scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def generate_images(pipe: Any, family: Family | None = None, *, previews: bool = False, **kwargs: Any) -> list[Any]:
    """``pipe(**kwargs)`` as PIL images, the VAE decoding in its own dtype. ``family``: the pipeline's
    (None: recognised from the pipeline, which a pipeline without text encoders cannot be); ``previews``:
    decoded as previews are (``decode_previews``).

    Generation runs under autocast (the UNet being trained stays fp32), which would run the VAE in
    half precision too, where it is kept fp32 because fp16 can overflow: so the pipeline stops
    at the latents (in the family's own form: Flux packs them) and the VAE decodes them outside autocast.
    """
    from engine.models.registry import family_of_pipeline

    latents = pipe(**kwargs, output_type="latent").images
    vae = pipe.vae
    with torch.autocast(latents.device.type, enabled=False):
        for_vae = (family or family_of_pipeline(pipe)).latents_for_vae(pipe, latents, kwargs.get("height"), kwargs.get("width"))
        images = decode_previews(vae, for_vae) if previews else decode_one_by_one(vae, for_vae)
    return pipe.image_processor.postprocess(images, output_type="pil")


# The decode is the largest part of a preview at SDXL's and Flux's 1024 px: about 1.5 GB an image in bf16
# and 3 GB in fp32 (the memory meter), beside the denoiser and the optimizer's state, which took the 8 GB
# SDXL LoRA preset over its card. Larger images are decoded one at a time in overlapping, blended tiles of
# this size (diffusers' VAE slicing and tiling): about 0.4 GB in bf16 at any size. Images this size or
# smaller decode whole, one at a time: four SD1.5 previews at 512 px decoded as one batch held 3.4 GB,
# above the LoRA preset's training step.
DECODE_TILE_PIXELS = 512


@contextlib.contextmanager
def _sliced_and_tiled(vae: Any) -> Iterator[None]:
    """The VAE decoding one image at a time in ``DECODE_TILE_PIXELS`` tiles; its settings restored afterwards.

    diffusers tiles only images larger than the VAE's ``sample_size`` (1024 px for SDXL's and Flux's),
    so the tile size is set here."""
    saved = {name: getattr(vae, name) for name in ("use_slicing", "use_tiling", "tile_sample_min_size", "tile_latent_min_size")}
    vae.enable_slicing()
    vae.enable_tiling()
    vae.tile_sample_min_size = DECODE_TILE_PIXELS
    vae.tile_latent_min_size = DECODE_TILE_PIXELS // vae_scale_factor(vae)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(vae, name, value)


def decode_one_by_one(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Class images (and previews up to ``DECODE_TILE_PIXELS``) from ``latents``, decoded whole (class images train the
    model: never in tiles, whose blended seams change pixels) and one at a time, as diffusers' VAE slicing does, to the
    byte. Decoded as one batch, prior.sample_batch_size images at 1024 px held 1.5-3 GB each at once; one at a time the
    decode holds one image's, whatever that setting, so the memory meter need not read it (engine/memory/inputs.py). The
    decoder sees each image alone either way: a batch's pixels differ only by the batched kernels' rounding."""
    return torch.cat([vae.decode(latent, return_dict=False)[0] for latent in latents.split(1)])


def decode_previews(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Preview images from ``latents`` (in the VAE's form and dtype), one at a time, so that the decode's memory does not
    grow with ``sampling.num_images``: whole up to ``DECODE_TILE_PIXELS``, in tiles above; the caller has turned autocast off.

    The memory meter decodes through this too (engine/memory/sampling.py), so it counts what previews do."""
    pixels = max(latents.shape[-2:]) * vae_scale_factor(vae)
    if pixels <= DECODE_TILE_PIXELS:
        return decode_one_by_one(vae, latents)
    with _sliced_and_tiled(vae):
        return vae.decode(latents, return_dict=False)[0]


def make_grid(images: list[Any], columns: int) -> Any:
    from PIL import Image

    columns = max(1, min(columns, len(images)))
    rows = (len(images) + columns - 1) // columns
    width, height = images[0].size
    grid = Image.new("RGB", (columns * width, rows * height))
    for i, image in enumerate(images):
        grid.paste(image, ((i % columns) * width, (i // columns) * height))
    return grid


@torch.no_grad()
def save_samples(
    pipe: Any,
    folder: Path,
    *,
    prompts: list[str],
    negative_prompt: str | None,
    num_images: int,
    steps: int,
    guidance: float,
    seed: int,
    resolution: int,
    encode: Callable[[list[str]], TextEmbeddings],
    prompt_kwargs: Callable[[TextEmbeddings, TextEmbeddings], dict[str, Any]],
    family: Family | None = None,
) -> tuple[list[Path], Path | None, list[Any]]:
    """Write ``num_images`` per prompt and a grid into ``folder``; returns (paths, grid, images).

    Prompts are encoded by ``encode`` (the family's own text encoding, with the run's clip_skip) and
    handed to the pipeline as embeddings through ``prompt_kwargs``; ``family`` as for ``generate_images``. ``negative_prompt``
    None: none, for a model that conditions on zeros then (``Family.zeroes_empty_negative``)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, images = [], []
    for p, prompt in enumerate(prompts):
        generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(num_images)]
        positive = encode([prompt] * num_images)
        negative = zero_embeddings(positive) if negative_prompt is None else encode([negative_prompt] * num_images)
        generated = generate_images(
            pipe, family, previews=True, **prompt_kwargs(positive, negative),
            num_inference_steps=steps,
            guidance_scale=guidance,
            height=resolution,
            width=resolution,
            generator=generators,
        )
        for i, image in enumerate(generated):
            path = folder / f"prompt{p:02d}_{i:02d}.png"
            image.save(path)
            paths.append(path)
            images.append(image)
    grid = None
    if images:
        grid = folder / "grid.png"
        make_grid(images, num_images).save(grid)
    return paths, grid, images
