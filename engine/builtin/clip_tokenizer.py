"""The real CLIP tokenizer of Stable Diffusion 1.x, 2.x and XL, built offline from a shipped file.

Every SD family tokenizes with OpenAI CLIP's byte-level BPE. Its vocabulary is not a separate
download: it is derived from the merges list (assets/clip_bpe_simple_vocab_16e6.txt.gz, MIT, from
OpenAI's CLIP) the way CLIP itself builds it, so single-file imports need no ``--tokenizer`` and
no Hub. The families differ only in the padding token (see ``OPENAI_PAD``/``OPEN_CLIP_PAD``).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path
from typing import Any

MERGES_FILE = Path(__file__).parent / "assets" / "clip_bpe_simple_vocab_16e6.txt.gz"
# CLIP keeps the first 49152 - 256 - 2 merges, for a vocabulary of 49,408 tokens.
MERGE_COUNT = 49152 - 256 - 2
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MAX_LENGTH = 77
# OpenAI CLIP (SD1.x, SDXL's first encoder) pads with the end token; OpenCLIP (SD2.x, SDXL's
# second encoder) pads with id 0, which is "!".
OPENAI_PAD = EOS
OPEN_CLIP_PAD = "!"


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte-level alphabet: printable bytes map to themselves, the rest above U+0100.

    Written here because transformers 5 no longer exports it.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


@lru_cache(maxsize=1)
def vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """CLIP's token → id table and its merges, in CLIP's order (the ids depend on it)."""
    with gzip.open(MERGES_FILE, "rt", encoding="utf-8") as file:
        lines = file.read().split("\n")[1 : MERGE_COUNT + 1]  # line 0 is a version header
    merges = tuple((left, right) for left, right in (line.split() for line in lines))
    alphabet = list(bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet] + [left + right for left, right in merges] + [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def clip_tokenizer(pad_token: str = OPENAI_PAD) -> Any:
    """A transformers ``CLIPTokenizer`` identical to the hub's SD tokenizers (77 tokens)."""
    from transformers import CLIPTokenizer

    vocab, merges = vocab_and_merges()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), pad_token=pad_token, model_max_length=MAX_LENGTH)
