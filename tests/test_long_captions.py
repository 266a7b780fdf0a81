"""A caption longer than the text encoder reads is cut: the run says how many are, once, where it said nothing
and transformers' log warned of "indexing errors" that never happen (the cache key read the caption whole)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from engine.data.cache_keys import text_key
from engine.data.encoders import TextSource
from engine.data.examples import Example
from engine.models.flux import Flux
from engine.models.parts import load_clip_tokenizer, load_t5_tokenizer

LONG = "photo of zwx disc, " + ", ".join(f"detail number {n} with intricate ornamentation" for n in range(120))


@pytest.fixture
def tokenizers(tiny_flux: Path) -> list:
    return [load_clip_tokenizer(tiny_flux, "tokenizer"), load_t5_tokenizer(tiny_flux, "tokenizer_2")]


def _examples(*captions: str) -> list[Example]:
    return [Example(Path(f"{n}.png"), caption, 0, False, (64, 64)) for n, caption in enumerate(captions)]


def test_the_run_says_how_many_captions_t5_cuts(tokenizers: list) -> None:
    texts = TextSource(Flux(), tokenizers, [], device=torch.device("cpu"), clip_skip=1, cache=False)
    # CLIP-L's 77 tokens are no limit for Flux: T5 reads what CLIP-L misses.
    assert texts.cut_warning(_examples("photo of zwx disc, " + "detail " * 60, "photo of zwx disc")) is None
    warning = texts.cut_warning(_examples(LONG, LONG, "photo of zwx disc"))
    # In the caption's own tokens, as `dataset check` counts them: T5 reads 511 besides its end token.
    assert warning is not None and warning.message.startswith(
        "1 of 2 distinct captions (the images' captions, each counted once) is longer than the 511 tokens T5 reads, so "
        "its end is cut")


def test_a_long_caption_s_cache_key_logs_no_indexing_error_warning(tokenizers: list) -> None:
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("transformers.tokenization_utils_base")
    logger.addHandler(handler)
    try:
        text_key(LONG, "flux", 1, ["encoder"], tokenizers)
    finally:
        logger.removeHandler(handler)
    assert not [text for text in said if "sequence length is longer" in text]
