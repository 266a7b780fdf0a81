"""Random-weight CLIP and DINO (ViT) scorers built offline: ``builtin:tiny-clip``, ``builtin:tiny-dino``.

They have the real models' interfaces (a transformers ``CLIPModel`` with its processor, a
``ViTModel`` with an image processor) at a size that scores a demo round in well under a second,
so the demo and the tests show scores with no download. Random weights make the numbers
meaningless as quality, but every metric keeps its maths: identical images still score 1.0.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 32  # the demo trains at 64 px; a 4×4 grid of 8-px patches is plenty for random features
PATCH_SIZE = 8
HIDDEN = 32
SEED = 0


def _image_processor_kwargs() -> dict:
    # The standard CLIP/DINO preprocessing (resize the short side, centre crop), at the tiny size.
    return dict(do_resize=True, size={"shortest_edge": IMAGE_SIZE}, do_center_crop=True,
                crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_normalize=True, do_convert_rgb=True)


def save_tiny_clip(folder: Path) -> Path:
    """A CLIPModel (text and vision towers, projections) with its processor (CLIP's real tokenizer)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    from engine.builtin.clip_tokenizer import MAX_LENGTH, clip_tokenizer, vocab_and_merges

    tokenizer = clip_tokenizer()
    text = dict(hidden_size=HIDDEN, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                max_position_embeddings=MAX_LENGTH, vocab_size=len(vocab_and_merges()[0]),
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(hidden_size=HIDDEN, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                  image_size=IMAGE_SIZE, patch_size=PATCH_SIZE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=HIDDEN))
    # The PIL processor: the default one needs torchvision, which must not sit beside CPU torch.
    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil(**_image_processor_kwargs()), tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Path(folder)


def save_tiny_dino(folder: Path) -> Path:
    """A ViTModel shaped like DINO's ViT-S/16 (no pooling head: DINO scores use the CLS token), scaled down."""
    import torch
    from transformers import ViTConfig, ViTImageProcessorPil, ViTModel

    config = ViTConfig(hidden_size=HIDDEN, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                       image_size=IMAGE_SIZE, patch_size=PATCH_SIZE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = ViTModel(config, add_pooling_layer=False)
    kwargs = _image_processor_kwargs()
    # ViT's processor resizes to a fixed size (DINO's own config does the same at 224).
    kwargs.pop("do_center_crop"), kwargs.pop("crop_size")
    kwargs["size"] = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    model.save_pretrained(folder)
    ViTImageProcessorPil(**kwargs).save_pretrained(folder)
    return Path(folder)
