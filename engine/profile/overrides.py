"""``--set section.key=value`` overrides: read as TOML (else as plain text), written over a profile's data (list
items by index, tables merged key by key), and which override set each key, for a problem to name it."""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import tomli_w

from engine.profile.problems import Problem, ProfileError
from engine.profile.set_text import escape_refused, quotes_pair_up, unknown_escape, unpaired_quotes


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``section.key=value``; the value is read as TOML, else taken as a plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    # Any word characters: a misspelt key ("évaluation") is then told as unknown, with the key it may mean.
    if not sep or not key or not re.fullmatch(r"\w+(\.\w+)*", key):
        dotted = re.sub(r"\[(-?\d+)\]", r".\1", key)
        if sep and re.search(r"(^|\.)-\d+(\.|$)", dotted):  # concepts.-1 was told to be written concepts._1
            hint = " (list items are numbered from 0, with dots: concepts.0 is the first; -1 for the last is not read)"
        else:
            dotted = dotted.replace("-", "_")
            hint = f" (here: {dotted}=…; list items are numbered with dots, words joined by _)" if sep and dotted != key else ""
        raise ProfileError([Problem(key or text, f"an override must look like section.key=value{hint}", override=text)])
    if not raw.strip():
        raise ProfileError([Problem(key, f"has no value after '=': give one, --set {key}=VALUE (from a script, a shell "
                                         f"variable that is not set gives nothing there; an empty text, which leaves an "
                                         f"optional setting empty, is --set '{key}=\"\"')", override=text)])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError as error:
        if raw.strip().startswith("["):  # a list written as the shell drops quotes, or without them: [a, b]
            raise ProfileError([Problem(key, f"{raw.strip()} is not a TOML list: put each text in double quotes, and the "
                                             f"whole in single quotes for the shell: --set '{key}=[\"first\", \"second\"]'; "
                                             f"a text that begins with [ goes in double quotes too: --set '{key}=\"{raw.strip()}\"'",
                                        override=text)]) from None
        if not quotes_pair_up(raw.strip()):
            raise ProfileError([Problem(key, unpaired_quotes(key, raw.strip()), override=text)]) from None
        if escape_refused(raw.strip(), str(error)):
            raise ProfileError([Problem(key, unknown_escape(key, raw.strip()), override=text)]) from None
        value = raw.strip()
    return key, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key=value`` override set (list items by index)."""
    result = copy.deepcopy(data)
    for text in overrides:
        key, value = parse_override(text)
        node: Any = result
        parts = key.split(".")
        for index, part in enumerate(parts[:-1]):
            following = parts[index + 1]
            if isinstance(node, dict) and following.isdigit() and part not in node:
                # An item of a list this profile does not set: there is nothing to index into.
                listed = ".".join(parts[:index + 1])
                raise ProfileError([Problem(key, f"no item {following}: {listed} is not set in this profile; set the "
                                            f"whole list, e.g. --set '{listed}=[...]'", override=text)])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ProfileError([Problem(key, f"no item {part} in this list (it has {len(node)})", override=text)])
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ProfileError([Problem(key, f"'{part}' is a value, not a section", override=text)])
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ProfileError([Problem(key, f"no item {last} in this list (it has {len(node)})", override=text)])
            item = node[int(last)]
            node[int(last)] = merged_tables(item, value) if isinstance(value, dict) and isinstance(item, dict) else value
        elif isinstance(value, dict) and isinstance(node.get(last), dict):
            # A table (--set 'optimizer={learning_rate=2e-6}') changes the keys it names; the section's others stay.
            node[last] = merged_tables(node[last], value)
        else:
            node[last] = value
    return result


def merged_tables(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` written over it, tables within tables merged the same way."""
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merged_tables(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def override_sources(overrides: list[str]) -> dict[str, str]:
    """Dotted key → the ``key=value`` text that set it, so problems can name their override. A table names each
    key it sets (it changes only those: ``apply_overrides``); the section's other keys keep their file lines."""
    return {key: text for text in overrides for key in _keys_set(*parse_override(text))}


def _keys_set(key: str, value: Any) -> dict[str, Any]:
    """Each dotted key one override sets, with its value: a table's own keys (``apply_overrides`` merges it)."""
    if isinstance(value, dict) and value:
        return {dotted: inner for name, item in value.items() for dotted, inner in _keys_set(f"{key}.{name}", item).items()}
    return {key: value}


def repeated_overrides(overrides: list[str]) -> list[str]:
    """A sentence for each key that more than one ``--set`` gives, with its values and the one used (the last, as
    ``apply_overrides`` writes them in order): a script's --set appended to a command that had one was taken without a
    word. A whole list or value given after a key within it (concepts.0.instance_prompt=…, then concepts=[…]) replaces
    that key as silently: it is told too. An override that cannot be read is left to the profile's reading to refuse."""
    given: dict[str, list[tuple[str, Any]]] = {}
    said = []
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ProfileError:
            continue
        for dotted, inner in _keys_set(key, value).items():
            if not isinstance(inner, dict):  # an empty table merges into the one there: nothing within it is lost
                for within in [earlier for earlier in given if earlier.startswith(f"{dotted}.")]:
                    lost, lost_value = given.pop(within)[-1]
                    if _item(inner, within[len(dotted) + 1:].split(".")) != lost_value:
                        said.append(f"--set gives {within}, {lost}, then the whole of {dotted}: the last is used, so "
                                    f"{within} is not {lost}")
            shown = text.partition("=")[2].strip() if dotted == key else tomli_w.dumps({"v": inner}).partition("=")[2].strip()
            given.setdefault(dotted, []).append((shown, inner))
    for key, values in given.items():
        if any(inner != values[0][1] for _, inner in values):  # the same value again changes nothing
            times = "twice" if len(values) == 2 else f"{len(values)} times"
            shown = [text for text, _ in values]
            said.append(f"--set gives {key} {times}, {', '.join(shown[:-1])} then {shown[-1]}: the last, {shown[-1]}, is used")
    return said


def _item(value: Any, parts: list[str]) -> Any:
    """What ``value`` holds at ``parts`` (keys of tables, indices of lists); None where it holds nothing there."""
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
