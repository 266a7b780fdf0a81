"""The model's tokenizers: caption length against each one's window (CLIP's 75 tokens, Flux's T5's
511), and identifier quality.

A DreamBooth identifier works best as one rare token: a word split into pieces, or a common
word, carries meaning the model already has (the guide's advice; ``sks`` is its example, and
also a rifle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.dataset.errors import TokenizerError
from engine.models.family import CLIP_READER, CaptionReader

CLIP_CONTEXT = 77  # positions in SD's text encoder, including the start and end tokens
# Ids below this in CLIP's BPE vocabulary are the 256 bytes, the same with </w>: merges follow,
# most frequent first, so a whole-word token's id is its frequency rank.
_FIRST_MERGE_ID = 512
# A whole word among CLIP's most frequent 20,000 merges is one the model knows well (dog 1929,
# guitar 5084, toyota 8908, lamborghini 19462); rare ones used as identifiers sit above 40,000.
COMMON_RANK = 20_000
DISCOURAGED_IDENTIFIERS = {"sks": "it is the guide's example, used by countless models, and also a rifle"}
_PREFERRED_SUGGESTIONS = ("ohwx",)  # the widely used rare token, when the vocabulary has it whole


def load_tokenizer(model: str | Path) -> Any:
    """The CLIP tokenizer of a model: a diffusers folder (``tokenizer/``), a tokenizer folder, a hub id, or a single
    model file (the tokenizer its conversion takes).

    An SDXL folder has two, ``tokenizer/`` (CLIP-L) and ``tokenizer_2/`` (OpenCLIP bigG). Both are
    CLIP's byte-level BPE over the same 49,408-token vocabulary with the same 77-token window; only
    their padding token differs, which no check here sees. So one of them answers every length and
    identifier question for both encoders, and the first is the one read.
    """
    from transformers import CLIPTokenizer

    from engine.builtin import resolve_model
    from engine.profile.model_source import model_kind

    source = Path(resolve_model(str(model)))
    if not source.exists() and model_kind(str(model)) != "hub":  # written as a path: a hub's id rules would confuse
        raise TokenizerError(f"'{model}' does not exist on this machine: give a diffusers model folder (with tokenizer/), "
                             "a tokenizer folder (vocab.json + merges.txt) or a hub id")
    try:
        if not source.exists():
            return _hub_tokenizer(str(model))
        if source.is_file():
            # A single model file holds no tokenizer: its conversion (and so its run) takes the CLIP tokenizer
            # shipped with dbtui, the same vocabulary as the hub's SD, SDXL and Flux CLIP tokenizers.
            from engine.builtin.clip_tokenizer import clip_tokenizer

            return clip_tokenizer()
        # transformers builds an empty tokenizer from a folder without files: look before loading.
        for folder in (source / "tokenizer", source):
            if (folder / "vocab.json").exists() or (folder / "tokenizer.json").exists():
                return CLIPTokenizer.from_pretrained(str(folder))
        raise OSError(f"no vocab.json or tokenizer.json in {source} or {source / 'tokenizer'}")
    except (OSError, ValueError) as error:
        raise TokenizerError(
            f"no CLIP tokenizer found for '{model}': give a diffusers model folder (with tokenizer/), "
            f"a tokenizer folder (vocab.json + merges.txt) or a hub id ({error})"
        ) from error


def _hub_tokenizer(repo: str) -> Any:
    """The hub model's tokenizer: from the cache, else downloaded where the hub answers within HF_HUB_ETAG_TIMEOUT.
    Left to transformers, a hub that does not answer was tried 5 times a file with back-off (minutes), each retry
    written to stderr, over the wizard's screen."""
    from huggingface_hub import try_to_load_from_cache
    from transformers import CLIPTokenizer

    from engine.models.parts import CLIP_TOKENIZER_FILES
    from engine.support.hub_snapshot import NOT_ON_HUB, hub_answer, hub_offline, not_on_hub_advice

    # Cached, it is read without asking the hub (whose silence also held a cached one up): transformers builds an
    # empty tokenizer where no file is there, so the cache is looked in first.
    # In tokenizer/ or, a tokenizer's own repo, at the top: the run's load reads either (parts.load_clip_tokenizer).
    for where in ("tokenizer/", ""):
        if any(isinstance(try_to_load_from_cache(repo, where + name), str) for name in CLIP_TOKENIZER_FILES):
            return CLIPTokenizer.from_pretrained(repo, subfolder=where.rstrip("/"), local_files_only=True)
    if hub_offline():  # transformers gave an empty tokenizer: the wizard said the model spells words letter by letter
        raise TokenizerError(f"'{repo}' is not in the Hugging Face cache and HF_HUB_OFFLINE forbids downloading it: its "
                             "tokenizer is read once the model is downloaded")
    silence = hub_answer(repo, None)
    if silence in NOT_ON_HUB:
        raise TokenizerError(not_on_hub_advice(repo, "the model", silence))
    if silence:
        from huggingface_hub import constants

        raise TokenizerError(f"'{repo}' is not in the Hugging Face cache and the hub ({constants.ENDPOINT}) did not "
                             f"answer ({silence}): its tokenizer is read once the model is downloaded or the hub answers")
    return CLIPTokenizer.from_pretrained(repo, subfolder="tokenizer")


def window(tokenizer: Any, context: int = CLIP_CONTEXT) -> int:
    """Tokens a caption may use: the ``context`` the family encodes (or the tokenizer's own limit, when
    lower) minus the tokenizer's special tokens (CLIP's start and end: 75 for SD; T5's end: 511 for Flux)."""
    length = min(getattr(tokenizer, "model_max_length", context), context)
    specials = tokenizer.num_special_tokens_to_add() if hasattr(tokenizer, "num_special_tokens_to_add") else 2
    return length - specials


def count_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


@dataclass(frozen=True)
class Overflow:
    tokens: int  # the whole caption's length
    limit: int
    cut: str  # the words that fall outside the window (partly or wholly)


def caption_overflow(tokenizer: Any, caption: str, context: int = CLIP_CONTEXT) -> Overflow | None:
    """The part of ``caption`` the text encoder never sees, or None when it fits.

    CLIP and T5 pre-tokenise on whitespace (CLIP on punctuation too), so counting word by word
    gives the whole caption's count and tells where the window ends.
    """
    limit = window(tokenizer, context)
    words = caption.split()
    used = 0
    for index, word in enumerate(words):
        used += count_tokens(tokenizer, word)
        if used > limit:
            total = used + sum(count_tokens(tokenizer, w) for w in words[index + 1:])
            return Overflow(total, limit, " ".join(words[index:]))
    return None


@dataclass(frozen=True)
class TextReader:
    """A loaded tokenizer, with what the model's family says about how far it reads (engine/models/family.py)."""

    tokenizer: Any
    reader: CaptionReader = CLIP_READER

    def overflow(self, caption: str) -> Overflow | None:
        return caption_overflow(self.tokenizer, caption, self.reader.context)


def load_readers(model: str | Path, tokenizer: str | Path | None = None) -> list[TextReader]:
    """The tokenizers a model's family reads captions with (CLIP-L and T5 for Flux; one CLIP for SD and
    SDXL), the identifier's first. ``tokenizer`` (model.tokenizer) replaces the first one's folder. A
    hub id or a bare tokenizer folder, whose family is not known here, is read as CLIP. The others are read by the
    family's own loaders: transformers' AutoTokenizer imports torch (4-6 s of CPU) for a check that needs none."""
    from engine.builtin import resolve_model
    from engine.models.parts import ModelNotFoundError
    from engine.models.registry import UnsupportedFamilyError, family_of

    folder = Path(resolve_model(str(model)))
    try:
        family = family_of(folder) if folder.is_dir() else None
    except UnsupportedFamilyError:
        family = None
    if family is None:
        return [TextReader(load_tokenizer(tokenizer or model))]
    readers = [TextReader(load_tokenizer(tokenizer or model), family.caption_readers[0])]
    for reader in family.caption_readers[1:]:
        try:
            readers.append(TextReader(reader.load(folder, reader.subfolder), reader))
        except ModelNotFoundError as error:  # its files are not there: it says which, and what to copy
            raise TokenizerError(str(error)) from error
        except (OSError, ValueError) as error:
            raise TokenizerError(f"no {reader.name} tokenizer in {folder / reader.subfolder} ({error}): the model "
                                 "folder is incomplete; give the whole diffusers folder") from error
    return readers


def judges_words(tokenizer: Any) -> bool:
    """False for a vocabulary of single characters without merges (the built-in demo model's):
    it spells every word letter by letter, so an identifier's token count says nothing there."""
    return any(token.endswith("</w>") and len(token) > len("x</w>") for token in tokenizer.get_vocab())


def identifier_pieces(tokenizer: Any, identifier: str) -> list[str]:
    """The tokens the identifier becomes, without the ``</w>`` end-of-word marks."""
    ids = tokenizer(identifier, add_special_tokens=False).input_ids
    return [t.replace("</w>", "") for t in tokenizer.convert_ids_to_tokens(ids)]


def common_rank(tokenizer: Any, identifier: str) -> int | None:
    """The frequency rank of the identifier as a whole-word token, when it is a common one."""
    vocab = tokenizer.get_vocab()
    token_id = vocab.get(identifier.lower() + "</w>")
    if token_id is None or token_id < _FIRST_MERGE_ID:
        return None
    rank = token_id - _FIRST_MERGE_ID + 1
    return rank if rank <= COMMON_RANK else None


def suggest_identifiers(tokenizer: Any, count: int = 3, exclude: str = "") -> list[str]:
    """Short rare words that are one token in this vocabulary (few vowels: unlikely to be words)."""
    vocab = tokenizer.get_vocab()
    rare = sorted(
        ((i, t[:-4]) for t, i in vocab.items() if re.fullmatch(r"[a-z]{3,4}</w>", t)), reverse=True
    )
    choices = [w for w in _PREFERRED_SUGGESTIONS if w + "</w>" in vocab]
    choices += [w for i, w in rare if i - _FIRST_MERGE_ID > COMMON_RANK and len(re.findall("[aeiouy]", w)) <= 1]
    return [w for w in dict.fromkeys(choices) if w != exclude.lower()][:count]
