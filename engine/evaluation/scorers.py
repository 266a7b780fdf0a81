"""The scorer models (CLIP, DINO): loaded for one round, then released, so training keeps the memory."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from engine.errors import DbtuiError

OFFLINE_ADVICE = (
    "run once with network access so the scorer is kept in the Hugging Face cache, or set "
    "evaluation.clip_model / evaluation.dino_model to local folders (builtin:tiny-clip and builtin:tiny-dino "
    "need no download), or set evaluation.enabled = false"
)


class ScorersUnavailableError(DbtuiError):
    """A scorer model could not be loaded (offline and not cached, a wrong folder): scoring is skipped."""

    def __init__(self, message: str, advice: str = OFFLINE_ADVICE):
        super().__init__(message)
        self.advice = advice


@functools.lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    """Whether the hub's host answers within seconds. Checked by hand because the hub client retries
    an unreachable host for about a minute per file before it gives up; the run should not wait."""
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    url = urlsplit(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)), timeout=3):
            return True
    except OSError:
        return False


def _load(loader: Any, name: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` from the cache first (no network wait when it is there), then the hub."""
    from engine.builtin import resolve_scorer

    source = resolve_scorer(name)
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except (OSError, ValueError) as cached_error:
        if os.path.isdir(source):
            raise ScorersUnavailableError(f"cannot load the scorer '{name}': the folder holds no usable model ({cached_error})",
                                          advice="name a transformers CLIP or ViT model folder, or a hub id") from cached_error
        if not _hub_reachable():
            raise ScorersUnavailableError(f"cannot load the scorer '{name}': offline, and not in the Hugging Face cache") from cached_error
    try:
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        raise ScorersUnavailableError(f"cannot load the scorer '{name}' (offline and not cached?): {error}") from error


@dataclass
class Scorers:
    clip: Any
    clip_images: Any  # CLIP's image processor
    clip_tokenizer: Any
    dino: Any
    dino_images: Any  # DINO's image processor
    device: torch.device

    @torch.no_grad()
    def dino_features(self, images: list[Any]) -> torch.Tensor:
        """DINO's CLS token (after the final layer norm), the embedding the paper's DINO score compares."""
        pixels = self.dino_images(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return self.dino(pixel_values=pixels).last_hidden_state[:, 0].float().cpu()

    @torch.no_grad()
    def clip_image_features(self, images: list[Any]) -> torch.Tensor:
        pixels = self.clip_images(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return _projected(self.clip.get_image_features(pixel_values=pixels))

    @torch.no_grad()
    def clip_text_features(self, texts: list[str]) -> torch.Tensor:
        tokens = self.clip_tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        return _projected(self.clip.get_text_features(**tokens))


def _projected(output: Any) -> torch.Tensor:
    # transformers 5 returns the projected embedding as the output's pooler_output; 4.x returned the tensor.
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return tensor.float().cpu()


@contextlib.contextmanager
def loaded_scorers(clip_model: str, dino_model: str, device: torch.device) -> Iterator[Scorers]:
    """CLIP and DINO on ``device`` for one round; afterwards they are deleted and the GPU cache emptied.

    Raises ScorersUnavailableError when either cannot be loaded.
    """
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, ViTModel

    scorers = Scorers(
        clip=_load(CLIPModel, clip_model).to(device).eval(),
        clip_images=_load(AutoImageProcessor, clip_model),
        clip_tokenizer=_load(AutoTokenizer, clip_model),
        # DINO's score reads the CLS token: no pooling head (DINO checkpoints ship none that is trained).
        dino=_load(ViTModel, dino_model, add_pooling_layer=False).to(device).eval(),
        dino_images=_load(AutoImageProcessor, dino_model),
        device=device,
    )
    try:
        yield scorers
    finally:
        scorers.clip = scorers.dino = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
