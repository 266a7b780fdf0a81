"""What to write instead, for the TOML syntax mistakes people make by hand (tomllib says only where it stopped)."""

from __future__ import annotations

import re
import tomllib
import types
import typing

from pydantic import BaseModel

from engine.profile.schema import Profile


def unclosed_text_line(text: str) -> int | None:
    """The line where a \"\"\" or \'\'\' text opens and never closes: tomllib says only "at end of document"."""
    for quotes in ('"""', "'''"):
        if text.count(quotes) % 2:
            return text[: text.rfind(quotes)].count("\n") + 1
    # A 'text' not closed, with no ' after it in the whole file: tomllib looked for one up to the end. Whole texts
    # (a "zwx's" among them) and comments are set aside first.
    for number, line in enumerate(text.split("\n"), start=1):
        if "'" in re.sub(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'", "", line).partition("#")[0]:
            return number
    return None


def syntax_hint(error: str, line: str) -> str:
    """What to write instead, for the TOML mistakes people make by hand; "" when there is no plain advice."""
    if "Cannot overwrite a value" in error or "Cannot declare" in error:
        return "a key or table is written twice: keep one"
    if "Illegal character '\\n'" in error and line.count('"') % 2 == 1 or "Unterminated string" in error:
        return "a text's closing quote is missing: end it with \" on the same line (\"\"\" for text over several lines)"
    if 'Expected "\'"' in error:
        return "a text's closing quote is missing: end it with ' on the same line"
    ended = _quote_ended_early(error, line)
    if ended:
        return ended
    if "Expected '=' after a key" in error:  # model: "x" as YAML writes it, or a section's [ left out
        colon = re.match(r"\s*([\w.\-]+)\s*:", line)
        if colon:
            return f"TOML writes {colon.group(1)} = value, with = rather than :"
        if line.strip().endswith("]"):
            return f"a section's name is written in brackets: [{line.strip().strip('[]').strip()}]"
        return "each line holds key = value, a [section] or a # comment"
    if "Unclosed array" in error:  # tomllib names where it stopped: the line after a list whose ] is missing
        return "a list's items are separated by commas, and it ends with ]" + (
            # A line that opens no list (an item, or the [section] after a list whose ] is missing) is not the mistake.
            "" if re.search(r"=\s*\[", line) else ": the list begun on a line above misses a comma or its ] before this point")
    if "\\" in line and ("escape" in error.lower() or "hex value" in error.lower() or "Unescaped" in error):
        return "a backslash in \"double quotes\" starts an escape: write the path with / or in 'single quotes'"
    if "\r" in line or "'\\r'" in error:
        return "the file has old Mac line endings (CR alone): save it with LF line endings"
    if re.search(r"=\s*(True|False|TRUE|FALSE|Yes|No|yes|no|on|off)\s*(#.*)?$", line):
        return "TOML writes true and false in lower case, unquoted"
    # The key's own =: a comment ending in = ("photo  # was =") holds no value left out.
    if "Invalid value" in error and re.fullmatch(r"[^=#]*=\s*(#.*)?", line):
        return "nothing is written after =: write a value, or remove the line to take the default"
    dotted = re.search(r"=\s*([+-]?)(\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?)", line)
    if "Invalid value" in error and dotted:
        return f"a number needs a digit before its dot: {dotted.group(1)}0{dotted.group(2)}, not {dotted.group(0)[1:].strip()}"
    # \s in the class: else "= .5" matched as "=" then the space, and every value was told to be quoted
    if "Invalid value" in error and re.search(r"=\s*[^\s\"'\[{0-9+\-.tfin]", line):
        return "a text value needs quotes: name = 'value' (single quotes take a backslash as it is)" if "\\" in line \
            else 'a text value needs quotes: name = "value"'
    # 10.0.0.1, 2024-05-01-run, 8gb or 3 photos of zwx: read as a number or date up to where it stops being one.
    unquoted = re.fullmatch(r"\s*([\w.\-]+)\s*=\s*([0-9][^#\"'=\]}]*?)\s*(#.*)?", line)
    if "Expected newline or end of document" in error and unquoted:
        key, value = unquoted.group(1), unquoted.group(2)
        if key.rpartition(".")[2] in _number_keys():  # resolution = 512px: quoted, it was refused as no number
            return _number_hint(key, value)
        return f'a text value needs quotes: {key} = {_quoted(value)}'
    return ""


def _quote_ended_early(error: str, line: str) -> str:
    """Advice where TOML stopped just after a quote that ended a text too early: 'zwx's dog' or "a "zwx" dog"."""
    column = re.search(r"column (\d+)\)", error)
    at = int(column.group(1)) - 1 if column else 0
    if not 1 <= at < len(line) or line[at - 1] not in "\"'" or line[at] in " \t\r#,]}":
        return ""
    if line[at - 1] == "'":
        return "a ' inside a 'single-quoted' text ends it: put the text in \"double quotes\""
    return "a \" inside a \"double-quoted\" text ends it: write it \\\" or put the text in 'single quotes'"


def _number_hint(key: str, value: str) -> str:
    """What to write for a number setting that TOML read as a number up to where it stopped being one. Cut there,
    1,000 or 1 000 (grouped digits), 2,5e-6 (a decimal comma), 5e, 2k or 50% would be another value, given as the
    one to write; and 1.e-4 or 0300 are no TOML numbers at all."""
    number = re.match(r"[0-9_.]+(?:[eE][-+]?[0-9]+)?", value)[0]
    rest = value[len(number):].strip()
    if _is_toml_number(number) and not re.match(r"[,\s]*[0-9]|[._eE]|[kKmMbB%](?![a-zA-Z])", rest):
        return f"{key} takes a number, written without letters or units: {key} = {number}"
    return (f"{key} takes one number, written as TOML writes numbers: no commas, spaces, letters or % in it (1000, or "
            "1_000 to group digits), a dot for decimals with a digit on each side (0.5, 2.5e-6), no leading zero (300, not 0300)")


def _is_toml_number(text: str) -> bool:
    try:
        return isinstance(tomllib.loads(f"n = {text}")["n"], (int, float))
    except tomllib.TOMLDecodeError:
        return False


def _quoted(value: str) -> str:
    """``value`` as a TOML text. A backslash in "double quotes" starts an escape (2024\\shoot would be refused
    again), so a text with one goes in 'single quotes', which take it as is (the value read holds no quote)."""
    return f"'{value}'" if "\\" in value else f'"{value}"'


def _number_keys(model: type[BaseModel] = Profile) -> set[str]:
    """The names of the settings that are a number in every section that has one of that name."""
    numbers: set[str] = set()
    others: set[str] = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        union = typing.get_origin(kind) in (typing.Union, types.UnionType)
        kinds = [each for each in typing.get_args(kind) if each is not type(None)] if union else [kind]
        # [training.lora] (optional) and [[concepts]] (a list) are sections too: their numbers are rank, num_class_images…
        sections = [each for one in kinds for each in (typing.get_args(one) if typing.get_origin(one) is list else [one])
                    if isinstance(each, type) and issubclass(each, BaseModel)]
        for section in sections:
            numbers |= _number_keys(section)
        if not sections:
            (numbers if all(each in (int, float) for each in kinds) else others).add(name)
    return numbers - others
