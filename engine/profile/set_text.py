"""Advice for a ``--set`` text in quotes that TOML refuses: taken as it is, its quotes would be in the value."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

# One text in double quotes, each \ with the character it escapes.
_DOUBLE_QUOTED = r'"(?:[^"\\]|\\.)*"'


def quotes_pair_up(raw: str) -> bool:
    """Whether a value TOML refused is one quoted text, or no quoted text at all (refused for what it holds then).
    A text that begins with a quoted word and goes on ("zwx" dog), each of its quotes paired, is a text with quotes."""
    word = re.match(_DOUBLE_QUOTED + r"\s" if raw[0] == '"' else r"'[^']*'\s", raw)
    if word and raw[-1] != raw[0] and len(re.findall(r"(?<!\\)" + raw[0], raw)) % 2 == 0:
        return True
    if raw[0] == "'":
        return len(raw) > 1 and raw[-1] == "'" and "'" not in raw[1:-1]
    return raw[0] != '"' or re.fullmatch(_DOUBLE_QUOTED, raw, re.DOTALL) is not None


def unpaired_quotes(key: str, raw: str) -> str:
    """Advice for a --set text begun with a quote that TOML cannot read ('photo of zwx's dog', "a "b" c", "mine):
    taken as it is, the quotes would have been in the prompt or path."""
    inner = raw[1:-1] if len(raw) > 1 and raw[-1] == raw[0] else raw[1:]
    return (f"{raw} is no TOML text: its quotes do not pair up (one is missing, or a {raw[0]} inside {raw[0]}…{raw[0]} "
            f"ends the text), and taken as it is the quotes would be part of it; give the text without quotes: "
            f"--set {_unquoted(key, inner)}")


def escape_refused(raw: str, error: str) -> bool:
    """Whether TOML refused one text in double quotes for a \\ in it that begins no escape it knows ("C:\\x\\y")."""
    return re.fullmatch(_DOUBLE_QUOTED, raw, re.DOTALL) is not None and ("Unescaped" in error or "hex value" in error)


def unknown_escape(key: str, raw: str) -> str:
    """Advice for "C:\\x\\y": read as TOML reads it, "C:\\new" would hold a line break, so no \\ is guessed at."""
    return (f"{raw} is no TOML text: in \"double quotes\" a \\ begins an escape (\\n, \\t, \\u…) and one here is none "
            f"TOML knows; taken as it is the quotes would be part of it; give the text without quotes: "
            f"--set {_unquoted(key, raw[1:-1])} (or in 'single quotes', which keep each \\ as it is)")


def _unquoted(key: str, inner: str) -> str:
    """``--set KEY=inner`` as the shell must be given it for the value to be the text ``inner``."""
    setting = f"{key}={_toml_text(inner)}"
    return f'"{setting}"' if not re.search(r'["$`\\!]', setting) else shlex.quote(setting)


def _toml_text(text: str) -> str:
    """``text`` as an override's value that reads back as that text."""
    try:
        tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        # A value that is no TOML is taken as the text it is, stripped; nothing after '=' is refused, so an empty text
        # is "". Bare, a text begun with [ is refused as no list: it then goes in quotes too.
        if text == text.strip() != "" and not text.startswith("["):
            return text
    return json.dumps(text, ensure_ascii=False)  # 123, true or "q" as TOML reads them would be no text, or another


def set_option(key: str, value: str | int | bool) -> str:
    """``--set KEY=VALUE`` as the shell and the override's TOML read it back: a text that TOML reads as something else
    (123, true, "q", [a], one with spaces around it) in double quotes."""
    if isinstance(value, bool):
        raw = "true" if value else "false"
    else:
        raw = str(value) if isinstance(value, int) else _toml_text(value)
    return f"--set {shlex.quote(f'{key}={raw}')}"
