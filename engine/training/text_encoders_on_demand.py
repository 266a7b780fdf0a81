"""Frozen text encoders as the text cache needs them, and no longer.

They load (in a phase of their own: Flux's T5 is 9.5 GB) only when a caption is not cached yet. The cache
keys take their weights' fingerprints from ``RUN/cache/fingerprints.json`` while their files are
unchanged, so a re-run with every caption cached never loads them. Once the captions are cached they are
dropped from memory; an entry lost mid-run is encoded again on the host, and a full export reads them
from the base model.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

from engine.data.encoders import TextSource
from engine.models.deferred_parts import DeferredParts
from engine.models.family import Components
from engine.training.trainable import prepare_text_encoders

PhaseFactory = Callable[..., AbstractContextManager]


class TextEncodersOnDemand:
    """Loads, prepares, fingerprints and drops the frozen text encoders for the trainer's text cache."""

    def __init__(self, components: Components, profile: Any, *, device: torch.device, dtype: torch.dtype,
                 trained_dtype: torch.dtype, phase: PhaseFactory):
        self.components = components
        self.profile = profile
        self.device = device
        self.dtype = dtype
        self.trained_dtype = trained_dtype
        self.phase = phase

    def prepared(self, device: torch.device) -> list[Any]:
        """The text encoders loaded and prepared as the caching pass uses them (frozen, eval, weight dtype), on ``device``."""
        components = self.components
        if not components.text_encoder_parts.is_loaded:
            with self.phase("load_text_encoders", ", ".join(components.family.text_encoder_names)):
                components.text_encoder_parts.get()
        prepare_text_encoders(components, self.profile, device, self.dtype, trained_dtype=self.trained_dtype)
        return components.text_encoders

    def fingerprints(self, book: Any) -> list[str]:
        """Each encoder's weight fingerprint for the cache keys: remembered in ``book`` (a ``FingerprintBook``)
        while its files are unchanged, else read from the encoder as the caching pass uses it (loaded and
        prepared now), so that it does not depend on what loaded it first (class images, say)."""
        from importlib.metadata import version

        from engine.data.cache_keys import module_fingerprint

        components = self.components

        def read(index: int) -> str:
            return module_fingerprint(self.prepared(self.device)[index])

        # The library that loads them is part of their use: a new release may load the same files differently.
        usage = {"family": components.family.id, "dtype": str(self.dtype), "transformers": version("transformers")}
        return [book.fingerprint(components.folder / name, {**usage, "index": index}, lambda index=index: read(index))
                for index, name in enumerate(components.family.text_encoder_names)]

    def fill(self, texts: TextSource, prompts: list[str]) -> None:
        """Encodes the prompts not cached yet, loading the encoders only if there is one."""
        missing = texts.missing(prompts)
        if missing:
            self.prepared(self.device)
        with self.phase("caching_text", "encoding captions, or reading them from the cache"):
            texts.fill(missing)

    def release(self, texts: TextSource) -> None:
        """Drops the encoders once every prompt is cached; ``texts`` falls back to encoders loaded again on the host."""
        # Dropped rather than moved to the host (9.5 GB for Flux's T5): a later use reads them again.
        self.components.text_encoder_parts.release()
        # The denoiser has the device, so a lost cache entry is encoded on the host.
        texts.text_encoders = DeferredParts(lambda: self.prepared(torch.device("cpu")))
