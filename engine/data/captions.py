"""The caption each training image is trained with, by the concept's caption mode."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from engine.data.caption_text import caption_words, read_caption
from engine.data.images import DataError
from engine.profile.text_characters import blank, control_character, printable

CAPTION_FILE_MODES = frozenset({"caption_file", "caption_file_then_prompt", "prompt_then_caption_file"})  # read .txt


def captions_alone(mode: str, instance_prompt: str | None) -> bool:
    """Whether each image's caption file is all of its prompt: in ``caption_file`` mode, and in the combined modes
    with an empty instance prompt (a style's), where an image without a caption would train with no prompt at all."""
    return mode == "caption_file" or (mode in CAPTION_FILE_MODES and blank(instance_prompt or ""))


def caption_file(image: Path, extension: str) -> Path:
    return image.with_suffix(extension)


def readable_name(name: str) -> str:
    """``name`` as text: Python keeps each byte of a file name that is not UTF-8 as a lone surrogate, which no
    tokenizer takes. Such names come from Windows' Western code page (cp1252: b"caf\\xe9" is "café"), so those bytes
    are read that way; the UTF-8 rest of the name stays as it is, and a byte cp1252 leaves undefined becomes "�"."""
    return re.sub("[\udc80-\udcff]", lambda m: bytes([ord(m[0]) - 0xDC00]).decode("cp1252", "replace"), name)


def gives_words(name: str) -> bool:
    """Whether a file name's caption says anything: a letter, a digit, or a symbol such as an emoji, which tokenizers
    read as a word. Punctuation alone ("!!!", "?!") says no more than a counter does."""
    return any(character.isalnum() or unicodedata.category(character) == "So" for character in name)


def caption_for(image: Path, mode: str, instance_prompt: str, extension: str = ".txt") -> str:
    """Caption for ``image``:

    - ``instance_prompt``: the concept's prompt for every image;
    - ``caption_file``: the image's own caption file;
    - ``caption_file_then_prompt`` / ``prompt_then_caption_file``: both, joined by ", "
      (the prompt alone for an image without a caption file);
    - ``file_name``: the file name, underscores as spaces, a trailing counter removed (not digits inside a word);
      the prompt for a name that gives no words (``gives_words``).
    """
    if mode == "instance_prompt":
        return instance_prompt
    if mode == "file_name":
        # A counter goes ("_003", " (2)", "dog7", a name of digits alone); digits that belong to a word stay ("r2d2",
        # "x100": after fewer than two letters, or with digits before them).
        stem = re.sub(r"(?:^|[\s_-]+)\d+$|\s*\(\d+\)$", "", readable_name(image.stem))
        stem = re.sub(r"(?:^|(?<=[\s_-]))([^\W\d_]{2,})\d+$", r"\1", stem)
        named = re.sub(r"[_-]+", " ", stem).strip()
        character = control_character(named)
        if character:
            # Refused as a caption file holding one is: stripping it would train on a caption no one wrote or saw.
            raise DataError(f"image '{printable(str(image))}' has {character} in its name, which caption mode "
                            "'file_name' would train on and which would drive the terminal that prints it: rename the file")
        return named if gives_words(named) else instance_prompt
    text_path = caption_file(image, extension)
    text = read_caption(text_path, image.parent)  # a CaptionFileError names the file before any step runs
    if text is None:
        if mode != "caption_file":
            return instance_prompt  # combined modes: an image without a caption uses the prompt alone
        raise DataError(
            f"caption file '{text_path}' is missing (caption mode '{mode}'); write it, "
            "run `dbtui dataset caption`, or use caption_mode = \"instance_prompt\""
        )
    text = caption_words(text)
    if mode == "caption_file":
        return text
    if mode == "caption_file_then_prompt":
        return f"{text}, {instance_prompt}" if text else instance_prompt
    if mode == "prompt_then_caption_file":
        return f"{instance_prompt}, {text}" if text else instance_prompt
    raise DataError(f"unknown caption mode '{mode}'")


def training_caption(image: Path, caption_mode: str, instance_prompt: str | None, extension: str = ".txt") -> str | None:
    """The text an image is trained with under ``caption_mode``; None when its caption file is needed but missing."""
    try:
        return caption_for(image, caption_mode, instance_prompt or "", extension) or None
    except DataError:
        return None
