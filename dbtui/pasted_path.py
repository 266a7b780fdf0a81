"""A path as pasted or dragged into a field, read as the path it names.

File managers and terminals hand over paths in several wrappings: quoted ('/x/my pics'), shell-escaped
(/x/my\\ pics) or as a file:// URL. Read literally, each names a folder that does not exist. A path that exists as
typed is never unwrapped: its backslashes and quotes are its own (/x/a\\b, a Windows path, a folder named 'x').
"""

from __future__ import annotations

import os
import shlex
from urllib.parse import unquote


def pasted_path(text: str) -> str:
    """``text`` stripped and unwrapped; text that is not one such wrapped path is returned as typed (stripped)."""
    text = text.strip()
    if _exists(text):
        return text
    if text.lower().startswith("file://"):
        return _file_url_path(text)
    unwrapped = _unquoted(text)
    return unwrapped if unwrapped is not None and _exists(unwrapped) else text


def _exists(path: str) -> bool:
    return bool(path) and os.path.lexists(os.path.expanduser(path))


def _file_url_path(url: str) -> str:
    """The path of a file:// URL, percent-decoded. '#' and '?' are read as part of the name, as file managers write
    them unescaped; a file on another host cannot be read here: its URL is left as typed."""
    host, slash, path = url[len("file://"):].partition("/")
    if host.lower() not in ("", "localhost"):
        return url
    return unquote(slash + path)


def _unquoted(text: str) -> str | None:
    """The one word that shell quoting or escaping wraps in ``text``, or None where it is no such wrapping."""
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    # A backslash escapes only where it is not the separator (on Windows "C:\pics" is a plain path).
    escaped = os.sep == "/" and "\\" in text
    if not (quoted or escaped):
        return None
    try:
        words = shlex.split(text)
    except ValueError:  # an unmatched quote: a name with an apostrophe ("bob's pics"), not a wrapping
        return None
    return words[0] if len(words) == 1 else None
