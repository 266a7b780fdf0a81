"""Field help in the words of the model's family: SDXL has two text encoders and its own sizes,
Flux a guidance value instead of classifier-free guidance; and why a family does not read a field at all.

The schema's docstrings (engine/profile/schema.py and training_sections.py) are the help for
Stable Diffusion 1.x/2.x and for a model not checked yet; a family overrides only the fields where its facts differ.
"""

from __future__ import annotations

HELP: dict[str, dict[str, str]] = {
    "sd": {
        "training.clip_skip": "Use the text encoder's N-th hidden layer from the end: 1 = the last, what SD1 and SD2 "
                              "were trained with; 2 = the penultimate, for fine-tunes made that way (many anime models).",
    },
    "sdxl": {
        "training.method": "Full fine-tune of the UNet, or a small LoRA adapter. For SDXL a LoRA fits a 12 GB card; "
                           "a full fine-tune needs far more (the fit test measures it).",
        "training.train_text_encoder": "Also train both text encoders, CLIP ViT-L and OpenCLIP ViT-bigG (better faces, "
                                       "much more memory).",
        "training.text_encoder_stop_fraction": "Stop training both text encoders after this fraction of the steps.",
        "training.clip_skip": "Which hidden layer of both text encoders conditions the UNet: 1 = SDXL's own (the "
                              "penultimate), 2 = one layer earlier.",
        "training.lora.text_encoder_targets": "Modules of both text encoders that get LoRA adapters (the same names "
                                              "in each).",
        "dataset.resolution": "Training resolution in pixels: 1024 for SDXL and its fine-tunes (768 trains faster "
                              "but loses detail).",
    },
    "flux": {
        "training.method": "LoRA: small adapter matrices on the frozen 12 B transformer (the way Flux trains on one "
                           "card, on a 4-bit or 8-bit base). A full fine-tune needs several large GPUs.",
        "dataset.resolution": "Training resolution in pixels: Flux was made for 1024; 512 trains faster in far less "
                              "memory and still learns a subject well.",
        "precision.mixed_precision": "bf16 for Flux (RTX 30xx and newer): Flux was not made for fp16, which can overflow.",
        "training.train_text_encoder": "Also train a LoRA on CLIP-L (the prompt's pooled meaning); T5 stays frozen. "
                                       "Helps an identifier stick; costs a little memory and speed.",
        "sampling.guidance_scale": "The guidance value of Flux.1 [dev]'s previews (it is guidance-distilled: 3.5 is "
                                   "usual, and there is no negative prompt).",
        "prior.guidance_scale": "The guidance value of Flux.1 [dev] for generated class images (3.5 is usual).",
        "saving.unet_half": "Save the trained transformer (the denoiser) in fp16, half the size; full fine-tunes only, "
                            "as a LoRA is small already.",
    },
}

# Fields a family does not read at all, and why: greyed out, their value kept for a model of another family. One that
# holds text stays editable, so that the problems panel's warning of it (engine/models/flux.py) can be acted on.
UNREAD: dict[str, dict[str, str]] = {
    "flux": {"sampling.negative_prompt": "Not used by Flux, which takes no negative prompt (its guidance is distilled "
                                         "into the model); kept for an SD model."},
}


def field_help(key: str, default: str, family_id: str | None) -> str:
    """The help for field ``key`` with a model of ``family_id`` (None: not checked yet)."""
    return HELP.get(family_id or "", {}).get(key, default)


def unread_help(key: str, family_id: str | None) -> str | None:
    """Why a model of ``family_id`` does not read field ``key``; None where it does."""
    return UNREAD.get(family_id or "", {}).get(key)
