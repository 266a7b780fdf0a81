"""Keys for cached latents and text embeddings: a digest of everything that determines them.

A key changes whenever its entry would: the image's bytes, the model part's weights and
config, the size an image is resized to, the flip, the caption as the tokenizers read, pad and
cut it, clip_skip and the family. Bump ``FORMAT`` when the code that makes an entry changes
(resizing, normalisation, what is stored).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

FORMAT = 1
# Elements read from each weight tensor for its fingerprint (all of a smaller one).
_SAMPLED = 1024


def digest(parts: dict[str, Any]) -> str:
    """The SHA-256 of ``parts`` as canonical JSON."""
    text = json.dumps({"format": FORMAT, **parts}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(path: Path) -> str:
    """The SHA-256 of a file's bytes: a renamed or re-saved copy of the same image keeps its entry."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _public_config(module: Any) -> dict[str, Any]:
    """The module's config without bookkeeping keys (its path, the library version)."""
    config = getattr(module, "config", None)
    if config is None:
        return {}
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return {k: v for k, v in data.items() if not k.startswith("_") and k != "transformers_version"}


@torch.no_grad()
def module_fingerprint(module: Any) -> str:
    """A digest of a model part's class, config, and weights (each tensor's name, shape, dtype and
    the bytes of up to 1,024 evenly spaced elements).

    Sampled rather than whole: hashing every weight reads them all (3 GB for SDXL's two text
    encoders) at every start, more than the encoding it would save. A sample is still correct in
    practice: fine-tuning, merging or swapping a part changes nearly every element of each tensor
    it touches, and the dtype (an fp16 VAE encodes differently) is part of it. The model's path
    is left out on purpose: a copy of the same weights elsewhere keeps its entries, and a folder
    whose weights were replaced in place does not.
    """
    hasher = hashlib.sha256(type(module).__name__.encode())
    hasher.update(json.dumps(_public_config(module), sort_keys=True, default=str).encode())
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().reshape(-1)
        if flat.numel() > _SAMPLED:
            positions = torch.linspace(0, flat.numel() - 1, _SAMPLED, dtype=torch.float64).long().to(flat.device)
            flat = flat[positions]
        hasher.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        hasher.update(flat.cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def latent_key(image_hash: str, vae_fingerprint: str, bucket: tuple[int, int], flip: bool,
               decoding: int | None = None) -> str:
    """The key of one image's latent distribution, resized to cover ``bucket``. ``decoding``: the version of a
    decoding that changed for images like this one alone (images.int32_decoding); left out of the key when None, so
    the latents every other image has cached (hours of a rented card, for a large set) stay found."""
    parts = {"kind": "latent", "image": image_hash, "vae": vae_fingerprint, "bucket": list(bucket), "flip": flip}
    return digest(parts | ({"decoding": decoding} if decoding is not None else {}))


def text_key(caption: str, family: str, clip_skip: int, encoder_fingerprints: list[str], tokenizers: list[Any]) -> str:
    """The key of one caption's text embeddings. The token ids stand for the tokenizers: they are what
    the encoders read, so a changed vocabulary (a textual-inversion token, say) changes the key. They are
    taken unpadded, cut at the tokenizer's own limit (as the encoder reads them; the whole caption is in the key, and
    a longer one would have transformers warn of "indexing errors" that cutting avoids), and what pads and cuts them
    to the encoder's length is in the key too: a tokenizer that differs only in its pad token or sides makes other
    embeddings."""
    tokens = [{"ids": tokenizer(caption, truncation=True).input_ids, "max_length": tokenizer.model_max_length,
               "pad_token_id": tokenizer.pad_token_id, "padding_side": tokenizer.padding_side,
               "truncation_side": tokenizer.truncation_side} for tokenizer in tokenizers]
    return digest({"kind": "text", "caption": caption, "family": family, "clip_skip": clip_skip,
                   "encoders": encoder_fingerprints, "tokens": tokens})
