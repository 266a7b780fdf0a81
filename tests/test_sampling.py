"""Images from the models being trained: the VAE works in its own dtype even under autocast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.data.encoders import LatentSource
from engine.data.examples import Example
from engine.training.sampling import generate_images


def _pipeline(tiny_sd1: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _conv_dtypes(module: torch.nn.Module) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d):
            layer.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    return seen


def _generate(pipe) -> list:
    generator = torch.Generator().manual_seed(3)
    return generate_images(pipe, prompt=["photo of a disc"], num_inference_steps=2, height=64, width=64, generator=generator)


def test_generated_images_are_the_pipelines_own(tiny_sd1: Path) -> None:
    pipe = _pipeline(tiny_sd1)
    [ours] = _generate(pipe)
    [theirs] = pipe(["photo of a disc"], num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(3)).images
    assert ours.size == (64, 64) and np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_under_autocast_an_fp32_vae_decodes_and_encodes_in_fp32(tiny_sd1: Path, demo_data: Path) -> None:
    """Previews and class images are made under half-precision autocast, and uncached latents
    are encoded inside the training step's; the VAE, kept fp32 where fp16 overflows, must not
    be run in half precision by it."""
    pipe = _pipeline(tiny_sd1)
    decoder, unet = _conv_dtypes(pipe.vae.decoder), _conv_dtypes(pipe.unet)
    image = next((demo_data / "instance").glob("*.png"))
    source = LatentSource(pipe.vae, [Example(path=image, caption="", concept=0, is_class=False, bucket=(64, 64))],
                          device=torch.device("cpu"), dtype=torch.float32, cache=False, hflip=False)
    encoder = _conv_dtypes(pipe.vae.encoder)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _generate(pipe)
        source.params(0, False)
    assert set(unet) == {torch.bfloat16}  # autocast was on
    assert decoder and set(decoder) == {torch.float32}
    assert encoder and set(encoder) == {torch.float32}


def test_class_images_decode_one_at_a_time_as_vae_slicing_does(tiny_sd1: Path) -> None:
    """A batch of prior.sample_batch_size images was decoded at once, 1.5-3 GB an image at 1024 px, which the memory
    meter does not count. One at a time gives diffusers' VAE slicing's bytes; a whole batch's differ only where the
    CPU's batched maths (about 1e-5) crosses a rounding step, by one level of 255."""
    pipe = _pipeline(tiny_sd1)
    batches: list[int] = []
    decode = pipe.vae.decode
    pipe.vae.decode = lambda latents, *a, **k: batches.append(len(latents)) or decode(latents, *a, **k)

    def generators() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(seed) for seed in (3, 4, 5)]

    def pixels(images: list) -> list[np.ndarray]:
        return [np.asarray(image).astype(int) for image in images]

    ours = pixels(generate_images(pipe, prompt=["photo of a disc"] * 3, num_inference_steps=2, height=64, width=64,
                                  generator=generators()))
    assert batches == [1, 1, 1]
    pipe.vae.enable_slicing()
    sliced = pixels(pipe(["photo of a disc"] * 3, num_inference_steps=2, height=64, width=64, generator=generators()).images)
    pipe.vae.disable_slicing()
    whole = pixels(pipe(["photo of a disc"] * 3, num_inference_steps=2, height=64, width=64, generator=generators()).images)
    assert batches[3:] == [3, 3]  # the pipeline's own decodes: given the whole batch
    assert [image.tobytes() for image in ours] == [image.tobytes() for image in sliced]
    assert max(int(np.abs(a - b).max()) for a, b in zip(ours, whole)) <= 1
