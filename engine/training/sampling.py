"""Preview images during and after training: fixed prompts and seeds, saved with a grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.data.encoders import encode_text


def assemble_pipeline(*, vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, scheduler: Any) -> Any:
    """A StableDiffusionPipeline over these models (no safety checker: it is not ours to train)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sampling_pipeline(components: Any, unet: Any, text_encoder: Any, device: torch.device) -> Any:
    """A pipeline over the models being trained, with a fast multistep sampler."""
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler.from_config(components.noise_scheduler.config)
    pipe = assemble_pipeline(vae=components.vae, text_encoder=text_encoder, tokenizer=components.tokenizer, unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@torch.no_grad()
def generate_images(pipe: Any, **kwargs: Any) -> list[Any]:
    """``pipe(**kwargs)`` as PIL images, the VAE decoding in its own dtype.

    Generation runs under autocast (the UNet being trained stays fp32), which would run the VAE in
    half precision too, where it is kept fp32 because fp16 can overflow: so the pipeline stops
    at the latents and the VAE decodes them outside autocast.
    """
    latents = pipe(**kwargs, output_type="latent").images
    vae = pipe.vae
    with torch.autocast(latents.device.type, enabled=False):
        images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(images, output_type="pil")


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
    negative_prompt: str,
    num_images: int,
    steps: int,
    guidance: float,
    seed: int,
    resolution: int,
    clip_skip: int,
) -> tuple[list[Path], Path | None, list[Any]]:
    """Write ``num_images`` per prompt and a grid into ``folder``; returns (paths, grid, images)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, images = [], []
    for p, prompt in enumerate(prompts):
        generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(num_images)]
        device = pipe.text_encoder.device
        positive = encode_text(pipe.tokenizer, pipe.text_encoder, [prompt] * num_images, clip_skip, device)
        negative = encode_text(pipe.tokenizer, pipe.text_encoder, [negative_prompt] * num_images, clip_skip, device)
        generated = generate_images(
            pipe,
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
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
