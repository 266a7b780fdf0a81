"""A path as pasted or dragged into a field, read as the path it names.

File managers and terminals hand over paths in several wrappings: quoted ('/x/my pics'), shell-escaped
(/x/my\\ pics) or as a file:// URL. Read literally, each names a folder that does not exist.
"""

from __future__ import annotations

import os
import shlex
from urllib.parse import unquote, urlsplit


def pasted_path(text: str) -> str:
    """``text`` stripped and unwrapped; text that is not one such wrapped path is returned as typed (stripped)."""
    text = text.strip()
    if text.lower().startswith("file://"):
        url = urlsplit(text)
        if url.netloc in ("", "localhost"):  # a file on another host cannot be read here: left as typed
            return unquote(url.path)
        return text
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    # A backslash escapes only where it is not the separator (on Windows "C:\pics" is a plain path).
    escaped = os.sep == "/" and "\\" in text
    if not (quoted or escaped):
        return text
    try:
        words = shlex.split(text)
    except ValueError:  # an unmatched quote: a name with an apostrophe ("bob's pics"), not a wrapping
        return text
    return words[0] if len(words) == 1 else text
