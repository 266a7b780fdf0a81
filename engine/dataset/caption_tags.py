"""Captions as comma-separated tags: splitting, joining, and finding one tag the way bulk edits do."""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.dataset.errors import CaptionError


def split_tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",")]


def join_tags(tags: Iterable[str]) -> str:
    return ", ".join(tags)


def said_pattern(tag: str) -> re.Pattern[str]:
    """``tag`` said as a whole word, in any letter case: how both add_tag and remove_tag find it. Its words may be
    parted by any white space, a line break too (a CRLF file's "a photo\r\nof zwx"), as the tokenizer reads them."""
    words = r"\s+".join(re.escape(word) for word in tag.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


def tag_key(tag: str) -> str:
    """What tells two tags apart as training reads them: letter case and runs of white space (a line break) aside."""
    return " ".join(tag.split()).casefold()


def unique_tags(tags: list[str]) -> list[str]:
    """``tags`` with each one's first spelling only: tags equal by ``tag_key`` repeat one tag."""
    kept: dict[str, str] = {}
    for tag in tags:
        kept.setdefault(tag_key(tag), tag)
    return list(kept.values())


def one_tag(tag: str) -> str:
    """``tag`` stripped, refused when empty or holding the comma that separates tags."""
    tag = tag.strip()
    if not tag:
        raise CaptionError("the tag is empty: give the tag's text, e.g. ohwx")
    if "," in tag:
        raise CaptionError(f"'{tag}' holds a comma, which separates tags: give one tag at a time")
    return tag
