"""Turning images and captions into UNet inputs, at most once when caching.

Latents: each image is resized to cover its bucket and encoded once (and once mirrored when
flipping is on). The VAE's distribution (mean and std) is kept, so every step still draws a
fresh latent sample exactly as uncached training does. Crops happen in latent space, so
random crops work with cached latents too.
Text: with the text encoders frozen, each distinct caption is encoded once, by the model's family.
Both go into a store: in a run, files in its cache folder keyed by what determines them
(engine/data/cache_keys.py), so a re-run or a resume encodes nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.data.cache_keys import content_hash, latent_key, module_fingerprint, text_key
from engine.data.disk_cache import MemoryStore, TensorStore
from engine.data.decoded_record import DecodedRecord
from engine.data.decoding import decode_each, undecodable_said
from engine.data.examples import Example
from engine.data.images import DataError, encode_size, int32_decoding, load_rgb, reach_size, within_reach
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted, Warning
from engine.models.deferred_parts import DeferredParts
from engine.models.family import Family, ImageGeometry, TextEmbeddings, stack_embeddings, vae_scale_factor


def _pixels(example: Example, multiple: int, flip: bool) -> torch.Tensor:
    from PIL import Image, ImageOps

    picture = load_rgb(example.path)
    size = encode_size(picture.width, picture.height, example.bucket, multiple)
    image = within_reach(picture, example.bucket).resize(size, Image.Resampling.BICUBIC)
    if flip:
        image = ImageOps.mirror(image)
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(size[1], size[0], 3)
    return data.permute(2, 0, 1).float().div(127.5).sub(1.0)


def _cut_before_encoding(example: Example, encoded_height: int, encoded_width: int) -> tuple[int, int]:
    """What ``within_reach`` cut off the top and left of a long picture, in the encoded picture's pixels: SDXL's crop
    coordinates count from the picture's own corner, so a panorama's middle is conditioned as the crop it is."""
    if not example.size:
        return 0, 0
    width, height = example.size
    kept_width, kept_height = reach_size(width, height, example.bucket)
    return (round((height - kept_height) // 2 * encoded_height / kept_height),
            round((width - kept_width) // 2 * encoded_width / kept_width))


class LatentSource:
    """VAE latent distributions of the examples, encoded on demand; when caching, each is encoded
    once into ``store`` (a DiskStore: a re-run and a resume read them back instead)."""

    def __init__(self, vae: Any, examples: list[Example], *, device: torch.device, dtype: torch.dtype, cache: bool, hflip: bool,
                 store: TensorStore | None = None, decoded: DecodedRecord | None = None):
        self.vae = vae
        self.decoded = decoded  # the images decoded before, not decoded again where latents are not cached
        self.examples = examples
        self.device = device
        self.dtype = dtype
        self.store: TensorStore | None = (store or MemoryStore()) if cache else None
        self.flips = (False, True) if hflip else (False,)
        self.scale = vae_scale_factor(vae)
        self.scaling_factor = vae.config.scaling_factor
        self.shift_factor = getattr(vae.config, "shift_factor", None) or 0.0
        self._image_hashes: dict[int, tuple[str, int | None]] = {}  # content hash and int32_decoding
        self._vae_fingerprint = ""
        self.encode_calls = 0

    def _key(self, index: int, flip: bool) -> str:
        if not self._vae_fingerprint:
            self._vae_fingerprint = module_fingerprint(self.vae)
        if index not in self._image_hashes:
            path = self.examples[index].path
            self._image_hashes[index] = content_hash(path), int32_decoding(path)
        image_hash, decoding = self._image_hashes[index]
        return latent_key(image_hash, self._vae_fingerprint, self.examples[index].bucket, flip, decoding)

    @torch.no_grad()
    def _encode(self, index: int, flips: list[bool]) -> dict[bool, torch.Tensor]:
        example = self.examples[index]
        pixels = torch.stack([_pixels(example, self.scale, flip) for flip in flips])
        self.encode_calls += 1
        # Uncached latents are encoded inside the training step's autocast; the VAE keeps its own
        # dtype (fp32 where fp16 would overflow), as when caching. It encodes where it is: once
        # everything is cached it has left the GPU, and a lost cache file is made again there.
        with torch.autocast(self.vae.device.type, enabled=False):
            params = self.vae.encode(pixels.to(self.vae.device, self.dtype)).latent_dist.parameters
        return {flip: params[i].to(self.device) for i, flip in enumerate(flips)}

    def _encode_into_store(self, index: int, flips: list[bool]) -> dict[bool, torch.Tensor]:
        assert self.store is not None
        encoded = self._encode(index, flips)
        for flip, params in encoded.items():
            self.store.put(self._key(index, flip), {"params": params})
        return encoded

    def fill(self, emit: Callable[[Event], None], should_stop: Callable[[], bool] = lambda: False) -> None:
        """Encode every example not in the store yet (both flips when flipping is on). Without a store (latents not
        cached) each picture not decoded before the model loaded (class images generated since) is decoded once instead:
        one damaged past its header stops the run now, not at the step that first meets it, hours in."""
        import time

        if self.store is None:
            decode_each([example.path for example in self.examples], emit, "decoding every image once",
                        should_stop=should_stop, record=self.decoded)
            return
        started = time.perf_counter()
        emit(PhaseStarted(phase="caching", total=len(self.examples), description="encoding images with the VAE, or "
                          "reading them from the cache"))
        undecodable: list[Path] = []
        stopped = False
        for index in range(len(self.examples)):
            if stopped := should_stop():
                break
            try:
                if missing := [flip for flip in self.flips if not self.store.has(self._key(index, flip))]:
                    self._encode_into_store(index, missing)
            except DataError:
                undecodable.append(self.examples[index].path)  # the pass goes on, to name every one at once
            emit(PhaseProgress(phase="caching", done=index + 1, total=len(self.examples)))
        if undecodable:
            raise DataError(undecodable_said(undecodable))
        emit(PhaseFinished(phase="caching", seconds=time.perf_counter() - started, stopped=stopped))

    def params(self, index: int, flip: bool) -> torch.Tensor:
        """The image's latent distribution (mean and logvar stacked on the channels), on the device."""
        flip = flip and len(self.flips) == 2
        if self.store is None:
            return self._encode(index, [flip])[flip]
        entry = self.store.get(self._key(index, flip))
        if entry is not None:
            return entry["params"].to(self.device)
        # Not cached yet (the caching phase was stopped) or unreadable: encode what is missing.
        missing = [f for f in self.flips if f == flip or not self.store.has(self._key(index, f))]
        return self._encode_into_store(index, missing)[flip]

    def sample(self, indexes: tuple[int, ...], flips: list[bool], center: bool, generator: torch.Generator) -> torch.Tensor:
        """A batch of scaled latents: cropped (centre or random) in latent space, then sampled."""
        return self.sample_with_geometry(indexes, flips, center, generator)[0]

    def sample_with_geometry(
        self, indexes: tuple[int, ...], flips: list[bool], center: bool, generator: torch.Generator
    ) -> tuple[torch.Tensor, list[ImageGeometry]]:
        """``sample``, with where each crop came from in pixels (what SDXL conditions on)."""
        out, geometry = [], []
        for index, flip in zip(indexes, flips):
            params = self.params(index, flip)
            example = self.examples[index]
            width, height = example.bucket
            rows, cols = height // self.scale, width // self.scale
            spare_rows, spare_cols = params.shape[1] - rows, params.shape[2] - cols
            if center:
                top, left = spare_rows // 2, spare_cols // 2
            else:
                top = int(torch.randint(0, spare_rows + 1, (1,), generator=generator))
                left = int(torch.randint(0, spare_cols + 1, (1,), generator=generator))
            mean, logvar = params[:, top : top + rows, left : left + cols].float().chunk(2, dim=0)
            std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
            noise = torch.randn(mean.shape, generator=generator).to(mean.device)
            out.append((mean + std * noise - self.shift_factor) * self.scaling_factor)
            original = (example.size[1], example.size[0]) if example.size else (height, width)
            cut_top, cut_left = _cut_before_encoding(example, params.shape[1] * self.scale, params.shape[2] * self.scale)
            geometry.append(ImageGeometry(original, (cut_top + top * self.scale, cut_left + left * self.scale), (height, width)))
        return torch.stack(out), geometry

    def release(self) -> None:
        if self.store is not None:
            self.store.clear()


class TextSource:
    """The family's text embeddings for captions (``clip_skip``: 1 = the family's usual layer, 2 = one earlier).

    When caching (the text encoders frozen), each caption is encoded once into ``store``. The encoders
    may be ``DeferredParts``, loaded only when something needs them: a caption missing from the store,
    or the keys, when ``fingerprints`` (the encoders' weight fingerprints; by default read from the
    encoders themselves) cannot give them otherwise.
    """

    def __init__(self, family: Family, tokenizers: list[Any], text_encoders: list[Any] | DeferredParts, *, device: torch.device,
                 clip_skip: int, cache: bool, store: TensorStore | None = None, fingerprints: Callable[[], list[str]] | None = None):
        self.family = family
        self.tokenizers = tokenizers
        self.text_encoders = text_encoders
        self.device = device
        self.clip_skip = clip_skip
        self.store: TensorStore | None = (store or MemoryStore()) if cache else None
        self._fingerprints = fingerprints or (lambda: [module_fingerprint(encoder) for encoder in self.text_encoders])
        self._keys: dict[str, str] = {}
        self._encoder_fingerprints: list[str] = []
        self.encode_calls = 0

    @property
    def text_encoders(self) -> list[Any]:
        """The encoders, loaded now if they are deferred and not loaded yet."""
        return self._text_encoders.get()

    @text_encoders.setter
    def text_encoders(self, encoders: list[Any] | DeferredParts) -> None:
        # A list replaces them: the trainer's prepared (DDP) wrappers of trained encoders.
        self._text_encoders = encoders if isinstance(encoders, DeferredParts) else DeferredParts.ready(list(encoders))

    def _key(self, caption: str) -> str:
        if caption not in self._keys:
            if not self._encoder_fingerprints:
                self._encoder_fingerprints = self._fingerprints()
            self._keys[caption] = text_key(caption, self.family.id, self.clip_skip, self._encoder_fingerprints, self.tokenizers)
        return self._keys[caption]

    def cut_warning(self, examples: list[Example]) -> Warning | None:
        """A warning of how many of the examples' distinct captions are cut, longer than the text encoder that reads
        them last takes (Flux's T5, which reads what CLIP-L misses); None where none is. Cheap enough for every start:
        each is tokenized once, only to one token past the limit."""
        captions = sorted({example.caption for example in examples})
        for reader, tokenizer in zip(self.family.caption_readers, self.tokenizers):
            if reader.read_by:
                continue
            limit = min(reader.context, tokenizer.model_max_length)
            cut = [c for c in captions if len(tokenizer(c, truncation=True, max_length=limit + 1).input_ids) > limit]
            if cut:
                # Said in the caption's own tokens, as `dataset check` says it (T5 reads 511 besides its end token).
                words = limit - tokenizer.num_special_tokens_to_add()
                many = "s" if len(captions) > 1 else ""
                return Warning(message=f"{len(cut)} of {len(captions)} distinct caption{many} (the images' captions, "
                                       f"each counted once) {'is' if len(cut) == 1 else 'are'} longer than the {words} "
                                       f"tokens {reader.name} reads, so {'its end is' if len(cut) == 1 else 'their ends are'} "
                                       f"cut (e.g. “{cut[0][:80]}…”)",
                               advice="shorten them, what matters first; `dbtui dataset check --profile PROFILE` names each and where it is cut")
        return None

    def encode(self, captions: list[str], device: torch.device | None = None) -> TextEmbeddings:
        """Embeddings for the captions; gradients flow when a text encoder trains."""
        self.encode_calls += 1
        return self.family.encode_text(self.tokenizers, self.text_encoders, captions, self.clip_skip, device or self.device)

    @torch.no_grad()
    def _encode_into_store(self, caption: str) -> TextEmbeddings:
        assert self.store is not None
        # Where the encoders are: once everything is cached they have left the GPU, and a lost
        # cache file is made again there.
        encoded = {name: tensor[0] for name, tensor in self.encode([caption], self.text_encoders[0].device).items()}
        self.store.put(self._key(caption), encoded)
        return encoded

    def missing(self, captions: list[str]) -> list[str]:
        """The distinct captions not in the store yet, in order."""
        assert self.store is not None
        return [caption for caption in sorted(set(captions)) if not self.store.has(self._key(caption))]

    def fill(self, captions: list[str]) -> None:
        """Encode every caption not in the store yet."""
        for caption in self.missing(captions):
            self._encode_into_store(caption)

    def get(self, captions: list[str]) -> TextEmbeddings:
        if self.store is None:
            return self.encode(captions)
        items = []
        for caption in captions:
            entry = self.store.get(self._key(caption))
            items.append(entry if entry is not None else self._encode_into_store(caption))
        return stack_embeddings(items)
