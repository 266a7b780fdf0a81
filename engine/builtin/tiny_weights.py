"""The shipped pretrained weights of ``builtin:tiny-sd1``: one fp16 safetensors file in engine/builtin/assets/.

Made by ``scripts/pretrain_tiny.py`` (engine/tiny_pretrain.py). Keys are the pipeline's own
state-dict keys under ``unet.``, ``vae.`` and ``text_encoder.``; the metadata holds the VAE's
latent scaling factor, which depends on the trained VAE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import DbtuiError

WEIGHTS_FILE = Path(__file__).parent / "assets" / "tiny-sd1.safetensors"
PARTS = ("unet", "vae", "text_encoder")
# The pretrained model's architecture differs from the random tiny one in three settings:
# - GroupNorm groups of 4 channels, not 1: a one-channel group erases each channel's mean, and
#   with it the colour of flat areas, before the last convolution of the UNet and the VAE;
# - one attention head, not 8 of 4 channels each: on the CPU it trains about 1.5x faster;
# - a third VAE level, so latents are 16x16 at 64 px (not 32x32): each UNet step costs about a
#   quarter, and a few thousand steps on a CPU learn whole shapes, not only textures.
ARCHITECTURE = {"norm_groups": 8, "attention_heads": 1, "vae_channels": (32, 64, 64)}


class TinyWeightsError(DbtuiError):
    """The shipped tiny-model weights are missing or do not fit the model."""


def save_weights(pipe: Any, path: Path) -> Path:
    """Write the pipeline's UNet, VAE and text encoder in fp16 to ``path``."""
    from safetensors.torch import save_file

    tensors = {
        f"{part}.{key}": value.detach().half().contiguous()
        for part in PARTS
        for key, value in getattr(pipe, part).state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"scaling_factor": repr(pipe.vae.config.scaling_factor)})
    path.chmod(0o644)  # a package file: safetensors writes it owner-only
    return path


def load_weights(pipe: Any, path: Path = WEIGHTS_FILE) -> Any:
    """Put the weights of ``path`` into the pipeline's models (as fp32), every tensor or none."""
    from safetensors import safe_open

    if not path.is_file():
        raise TinyWeightsError(f"the pretrained tiny model is missing ({path}); reinstall dbtui or rebuild it with scripts/pretrain_tiny.py")
    with safe_open(str(path), framework="pt") as file:
        scaling_factor = float(file.metadata()["scaling_factor"])
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    for part in PARTS:
        model = getattr(pipe, part)
        own = {key[len(part) + 1:]: value.float() for key, value in tensors.items() if key.startswith(part + ".")}
        try:
            model.load_state_dict(own, strict=True)
        except RuntimeError:
            raise TinyWeightsError(f"{path} does not fit the tiny model's {part}; rebuild it with scripts/pretrain_tiny.py") from None
    pipe.vae.register_to_config(scaling_factor=scaling_factor)
    return pipe


def pretrained_pipeline() -> Any:
    """The tiny SD1 pipeline with the shipped pretrained weights."""
    from engine.builtin.tiny_model import build_pipeline

    return load_weights(build_pipeline("tiny", "sd1", **ARCHITECTURE))
