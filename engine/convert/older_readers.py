"""The diffusers folders dbtui writes, readable by the oldest transformers pyproject allows (4.x) as by 5.x.

transformers 5 saves what only it reads: CLIPTextModel's weights without ``text_model.`` (see clip_text_names),
tokenizers as ``tokenizer.json`` alone, and ``extra_special_tokens`` as a list. transformers 4's CLIPTokenizer
(the class model_index.json names) opens ``vocab.json`` and ``merges.txt`` and failed with a TypeError on None;
its T5Tokenizer needs SentencePiece's ``spiece.model`` (not derivable from tokenizer.json), and every 4.x tokenizer
failed on the list. Every writer of a diffusers folder (or of a text encoder's folder) calls
``write_for_older_readers`` after saving; transformers 5 reads the result back identically.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from engine.convert.clip_text_names import publish_clip_text_names

CLIP_FILES = ("vocab.json", "merges.txt")
# A slow class whose vocabulary file transformers 5 does not write -> the fast class 4.x builds from tokenizer.json.
FAST_CLASSES = {"T5Tokenizer": ("T5TokenizerFast", "spiece.model")}


def write_for_older_readers(folder: Path) -> None:
    """Complete ``folder`` (a pipeline's or one model's) for transformers 4. Files are replaced, never written
    into: a part may be hard-linked from another folder."""
    folder = Path(folder)
    publish_clip_text_names(folder)
    for tokenizer_json in [folder / "tokenizer.json", *sorted(folder.glob("*/tokenizer.json"))]:
        if tokenizer_json.is_file():
            _complete_tokenizer(tokenizer_json.parent)
    if (folder / "model_index.json").is_file():
        _fast_tokenizer_classes(folder)


def _complete_tokenizer(tokenizer_dir: Path) -> None:
    config_path = tokenizer_dir / "tokenizer_config.json"
    config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    extra = config.get("extra_special_tokens")
    if isinstance(extra, list):
        # 4.x reads this key as a {name: token} dict; its list of extra special tokens is this one.
        kept = list(config.get("additional_special_tokens") or [])
        config["additional_special_tokens"] = kept + [token for token in extra if token not in kept]
        del config["extra_special_tokens"]
        _replace(config_path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    if str(config.get("tokenizer_class", "")).startswith("CLIPTokenizer") and not all(
        (tokenizer_dir / name).is_file() for name in CLIP_FILES
    ):
        _write_bpe_files(tokenizer_dir)


def _write_bpe_files(tokenizer_dir: Path) -> None:
    """vocab.json and merges.txt (with its ``#version`` line, which CLIPTokenizer skips) of a BPE tokenizer.json."""
    from tokenizers import Tokenizer
    from tokenizers.models import BPE

    model = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).model
    if not isinstance(model, BPE):
        return
    with tempfile.TemporaryDirectory(dir=tokenizer_dir, prefix=".bpe-") as tmp:
        for written in model.save(tmp):
            os.replace(written, tokenizer_dir / Path(written).name)


def _fast_tokenizer_classes(folder: Path) -> None:
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    changed = False
    for part, entry in index.items():
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == "transformers" and entry[1] in FAST_CLASSES:
            fast, needed = FAST_CLASSES[entry[1]]
            if (folder / part / "tokenizer.json").is_file() and not (folder / part / needed).is_file():
                index[part] = ["transformers", fast]
                changed = True
    if changed:
        _replace(index_path, json.dumps(index, indent=2, sort_keys=True) + "\n")


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".rewriting")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
