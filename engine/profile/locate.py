"""Map dotted keys of a TOML text to their line numbers.

tomllib gives values but no positions, so this small scanner (hand-written: no TOML library
we use reports key lines) follows table headers, arrays of tables and key lines.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _parts(dotted: str) -> list[str]:
    return [p.strip().strip("\"'") for p in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", dotted)]


def key_lines(text: str) -> dict[str, int]:
    """Dotted key (array items as indexes, e.g. ``concepts.0.instance_dir``) → 1-based line."""
    lines: dict[str, int] = {}
    prefix: list[str] = []
    array_counts: dict[str, int] = {}
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        # Skip the insides of multi-line strings and arrays: only their key line matters.
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1 or line.strip().startswith("]"):
                in_multiline = False
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            parts = _parts(header.group(2))
            _enclosing(lines, [], parts, number)
            if header.group(1) == "[[":
                base = ".".join(parts)
                index = array_counts.get(base, -1) + 1
                array_counts[base] = index
                prefix = [*parts, str(index)]
                lines.setdefault(base, number)  # the list's own line: where a [[section]] of one table is said
            else:
                prefix = parts
            lines.setdefault(".".join(prefix), number)
            continue
        key = _KEY.match(line)
        if key:
            _enclosing(lines, prefix, _parts(key.group(1)), number)
            full = ".".join([*prefix, *_parts(key.group(1))])
            lines.setdefault(full, number)
            rest = line[key.end():].strip()
            if rest.startswith(("[", '"""', "'''")) and not _closes(rest):
                in_multiline = True
    return lines


def _enclosing(lines: dict[str, int], prefix: list[str], parts: list[str], number: int) -> None:
    """Give the tables a dotted name makes ([concepts.0], model.pretrained = …) the line where they first appear,
    so that a problem with one of them (concepts is no list) is told with a line too."""
    for end in range(1, len(parts)):
        lines.setdefault(".".join([*prefix, *parts[:end]]), number)


def _closes(rest: str) -> bool:
    if rest.startswith(('"""', "'''")):
        return rest.count(rest[:3]) >= 2
    return rest.count("[") <= rest.count("]")


def line_of(lines: dict[str, int], key: str) -> int | None:
    """The line of ``key`` or, failing that, of its nearest enclosing key."""
    parts = key.split(".")
    while parts:
        found = lines.get(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None


def override_of(key: str, overrides: dict[str, str], lines: dict[str, int]) -> str | None:
    """The ``--set`` text whose value ``key`` holds, if any (the last one wins, as when applied).

    A key under an override's key counts (``--set training.lora={rank=0}``), and so does a new
    section an override created, which has no line in the file (``--set nosuch.key=1``).
    """
    for override_key, text in reversed(overrides.items()):
        if key == override_key or key.startswith(override_key + "."):
            return text
        if override_key.startswith(key + ".") and key not in lines:
            return text
    return None


# A text in quotes, or any other character but the one named: what splits a value at a comment or a list's commas.
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"


def written_value(key: str, text: str, lines: dict[str, int], overrides: dict[str, str]) -> str | None:
    """The value of ``key`` as the user typed it (``1e5``, where TOML reads 100000.0): from its ``--set``, else from
    its line in ``text``; an item of a list only where the list is on one line. None where that cannot be told."""
    parts = key.split(".")
    item = int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else None
    whole = ".".join(parts[:-1]) if item is not None else key
    if whole in overrides:
        name, _, raw = overrides[whole].partition("=")
        if name.strip() != whole:  # set inside a table given whole (--set 'training.lora={rank=8}')
            return None
    elif whole in lines and lines[whole] <= len(text.splitlines()):
        line = text.splitlines()[lines[whole] - 1]
        found = _KEY.match(line)
        if found is None:
            return None
        raw = re.match(rf"(?:{_QUOTED}|[^#\"'])*", line[found.end():])[0]  # without its comment
    else:
        return None
    raw = raw.strip()
    if item is None:
        return raw
    if not (raw.startswith("[") and raw.endswith("]")) or re.search(r"[\[\]{}]", raw[1:-1]):
        return None  # not one flat list on this line
    items = [each.strip() for each in re.findall(rf"(?:{_QUOTED}|[^,\"'])+", raw[1:-1]) if each.strip()]
    return items[item] if item < len(items) else None
