"""Which family a diffusers-format LoRA was trained on, and SDXL's UNet names in kohya files.

kohya sd-scripts trains SD1/SD2 on the diffusers UNet, so those LoRAs keep diffusers' UNet
names, but it trains SDXL on the original (SGM) UNet: SDXL LoRAs on model sites name UNet
modules ``input_blocks.4.1.…``. ComfyUI, AUTOMATIC1111, Forge and diffusers all read that
spelling, so it is the one written here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from engine.convert.errors import UnsupportedModelError
from engine.convert.keymap import UNET_PREFIX, UnmappedKeyError, unet_to_original

# The block layout of every SDXL UNet (base and fine-tunes). The original names depend only on
# it, so a LoRA file, which carries no UNet config, maps without one. Smaller SDXL-shaped UNets
# (the tiny test model) are a prefix of it and map the same.
SDXL_UNET_LAYOUT: Mapping[str, Any] = {
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "layers_per_block": 2,
    "transformer_layers_per_block": [1, 2, 10],
    "addition_embed_type": "text_time",
}

# Only SDXL has a second text encoder, the text_time embedding, or transformers of more than one
# layer in a block.
_SDXL_SIGNS = re.compile(r"^(text_encoder_2\.|unet\.add_embedding\.|unet\..*\.transformer_blocks\.[1-9])")
# Only SD1/SD2 have attention in the first level, and a fourth level.
_SD_SIGNS = re.compile(r"^unet\.(down_blocks\.0\.attentions\.|down_blocks\.3\.|up_blocks\.3\.)")


def looks_sdxl(keys: Iterable[str]) -> bool:
    """Whether a diffusers-format LoRA (``unet.``/``text_encoder.``/``text_encoder_2.`` keys) is SDXL's.

    A LoRA on every attention layer of the UNet (what target modules such as ``to_q`` give) or on
    the second text encoder shows its family. One that shows neither (resnets alone) is taken as
    SD1/SD2's: those diffusers-style UNet names load into SDXL too (ComfyUI, AUTOMATIC1111 and
    diffusers map them). Callers that know the family pass it instead.
    """
    keys = list(keys)
    return any(_SDXL_SIGNS.match(k) for k in keys) and not any(_SD_SIGNS.match(k) for k in keys)


def sgm_unet_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """``unet.down_blocks.1.attentions.0.….lora_A.weight`` → ``unet.input_blocks.4.1.….lora_A.weight``."""
    unet = {k[len("unet."):]: v for k, v in state_dict.items() if k.startswith("unet.")}
    try:
        original = unet_to_original(unet, SDXL_UNET_LAYOUT)
    except UnmappedKeyError as error:
        raise UnsupportedModelError(f"this SDXL LoRA has a UNet layer kohya files cannot name ({error})") from error
    renamed = {"unet." + k[len(UNET_PREFIX):]: v for k, v in original.items()}
    return {**{k: v for k, v in state_dict.items() if not k.startswith("unet.")}, **renamed}
