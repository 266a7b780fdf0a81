"""Load a diffusers-format LoRA the way a user's script would, and dump what it did.

Run as ``python lora_probe.py BASE_DIR LORA_DIR OUT_FILE`` by any Python whose diffusers,
transformers and peft are under test (the tests run it in an older stack's venv too). It writes
the fused UNet and text-encoder weights, and the text features of fixed token ids, to OUT_FILE; the
versions go into its metadata. Only the installed libraries are used: no dbtui import.
"""

from __future__ import annotations

import sys
from pathlib import Path


def text_encoder(base_dir: str):
    """The base CLIP text encoder, whichever transformers saved it and whichever reads it.

    transformers 5 writes its keys without ``text_model.``, which transformers 4 then ignores
    (leaving random weights), so the weights are loaded here, strictly, in this version's spelling.
    """
    from safetensors.torch import load_file
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(base_dir) / "text_encoder"
    model = CLIPTextModel(CLIPTextConfig.from_pretrained(folder))
    saved = {k.removeprefix("text_model."): v for k, v in load_file(folder / "model.safetensors").items()}
    prefix = "text_model." if hasattr(model, "text_model") else ""
    model.load_state_dict({prefix + k: v for k, v in saved.items()}, strict=True)
    return model.eval()


def main(base_dir: str, lora_dir: str, out_file: str) -> None:
    import diffusers
    import peft
    import torch
    import transformers
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from safetensors.torch import save_file

    # No tokenizer: transformers 4 cannot read the tokenizer files transformers 5 writes, and
    # the LoRA does not touch it.
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(base_dir, subfolder="vae"),
        text_encoder=text_encoder(base_dir),
        tokenizer=None,
        unet=UNet2DConditionModel.from_pretrained(base_dir, subfolder="unet"),
        scheduler=DDPMScheduler.from_pretrained(base_dir, subfolder="scheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.load_lora_weights(lora_dir)
    pipe.fuse_lora()
    pipe.unload_lora_weights()
    ids = torch.arange(77).unsqueeze(0) % pipe.text_encoder.config.vocab_size
    with torch.no_grad():
        features = pipe.text_encoder(ids)[0]
    out = {"text_features": features.contiguous()}
    out.update({f"unet.{k}": v.contiguous() for k, v in pipe.unet.state_dict().items()})
    # transformers 4 names CLIP weights text_model.*, transformers 5 does not: compare one spelling.
    out.update({f"text_encoder.{k.removeprefix('text_model.')}": v.contiguous()
                for k, v in pipe.text_encoder.state_dict().items()})
    versions = {"diffusers": diffusers.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    save_file(out, out_file, metadata=versions)


if __name__ == "__main__":
    main(*sys.argv[1:4])
