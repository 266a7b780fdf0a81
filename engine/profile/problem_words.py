"""pydantic's validation errors as profile problems a user can act on: the key they may have meant, and what to
write instead of the value given (in the file, and with --set)."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import tomllib
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from engine.profile.fields import PathControlCharacterError
from engine.profile.other_names import ALSO_NAMED, PLACED_NAMES, other_tools_key
from engine.profile.problems import Problem
from engine.profile.schema import Profile


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at ``loc`` (for key suggestions)."""
    model: Any = Profile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        annotation = field.annotation
        model = _first_model(annotation)
        if model is None:
            return None
    return model


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the profile as a dotted path, top level first (list items as N: concepts.N.instance_dir)."""
    paths, nested = [], []
    for name, field in model.model_fields.items():
        paths.append(prefix + name)
        inner = _first_model(field.annotation)
        if inner is not None:
            is_list = getattr(field.annotation, "__origin__", None) is list
            nested.append((inner, f"{prefix}{name}.{'N.' if is_list else ''}"))
    for inner, below in nested:
        paths += field_paths(inner, below)
    return paths


def _tables(value: Any) -> bool:
    """A non-empty list of tables: what TOML reads from ``[[name]]`` headers."""
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _list_of_text(loc: tuple[Any, ...]) -> bool:
    """The field at ``loc`` is a list of texts (prompts, targets, export formats), optional or not."""
    owner = _model_at(loc)
    field = owner.model_fields.get(str(loc[-1])) if owner else None
    if field is None:
        return False
    kinds = [field.annotation, *get_args(field.annotation)]
    return any(get_origin(kind) is list and _is_text(get_args(kind)[0]) for kind in kinds)


def _list_of_choices(loc: tuple[Any, ...]) -> bool:
    """The field at ``loc`` is a list of choices of texts (saving.export), optional or not."""
    owner = _model_at(loc)
    field = owner.model_fields.get(str(loc[-1])) if owner else None
    kinds = [field.annotation, *get_args(field.annotation)] if field else []
    return any(get_origin(kind) is list and get_origin(get_args(kind)[0]) is Literal for kind in kinds)


def _is_text(annotation: Any) -> bool:
    """str, a str with checks (Annotated), or a choice of texts (Literal)."""
    if get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in get_args(annotation))
    if get_origin(annotation) is Annotated:
        return _is_text(get_args(annotation)[0])
    return annotation is str


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _as_written(value: Any, typed: str | None) -> str:
    """``value`` in the user's own characters (1e5, 0x1F, 1_000) where ``typed`` is what TOML read it from, else as
    Python writes it (100000.0, 31, 1000): quoting the latter would change their text."""
    try:
        read = tomllib.loads(f"v = {typed}")["v"] if typed is not None else None
    except tomllib.TOMLDecodeError:
        read = None
    if typed is not None and type(read) is type(value) and read == value:
        return typed
    return str(value).lower() if isinstance(value, bool) else str(value)


def problems_from(error: ValidationError, written: Callable[[str], str | None] = lambda key: None) -> list[Problem]:
    """Each of pydantic's errors as a Problem whose message says what to write (its own words where none is better);
    ``written`` gives a dotted key's value as the user typed it, where known."""
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc)
        suggestion = None
        message = item["msg"]
        in_bucket = loc[:2] == ("dataset", "buckets") and len(loc) > 2  # a bucket, or a side of one
        if item["type"] == "extra_forbidden":
            owner = _model_at(loc)
            valid = list(owner.model_fields) if owner else []
            message = "unknown key"
            # A right key in the wrong place (under another [section], or a top-level key written below one) before a
            # near spelling here: training.gradient_checkpointing is precision's, not training.gradient_accumulation_steps.
            elsewhere = [path for path in field_paths(Profile) if path.rsplit(".", 1)[-1] == str(loc[-1])]
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            placed = PLACED_NAMES.get(".".join("N" if isinstance(part, int) else str(part) for part in loc))
            theirs = placed or other_tools_key(str(loc[-1]), item.get("input"))
            homes = _homes(str(loc[-1]), elsewhere)
            # A name another section holds, whose words a key here holds too: sampling.guidance is this section's
            # guidance_scale far likelier than Flux's training.flow.guidance; the other sections' keys follow it.
            here = None if theirs or not homes else _holding(str(loc[-1]), valid)
            if here:
                suggestion = ".".join([*(str(p) for p in loc[:-1]), here])
                message = f"unknown key; {_other_homes(str(loc[-1]), homes)}"
            elif theirs is None and len(homes) > 1:  # each its own setting: picking one would set another than meant
                message = ("unknown key; it is a key of several sections, each its own setting: "
                           + "; ".join(f"{path} ({words})" for path, words in homes.items()))
            else:
                suggestion = (theirs or (elsewhere[0] if elsewhere else None)
                              or (".".join([*(str(p) for p in loc[:-1]), close[0]]) if close else None))
                if suggestion is None and owner:  # nothing near to point to: what the section does take
                    message = f"unknown key; {_keys_here(owner, loc[:-1])}"
            if suggestion and loc[0] == "concepts" and len(loc) > 1 and isinstance(loc[1], int):
                suggestion = suggestion.replace("concepts.N.", f"concepts.{loc[1]}.")  # this concept's own key
            if elsewhere and suggestion == elsewhere[0] and "." not in suggestion:
                message = "unknown key here: top-level keys go above the first [section] of the file"
            if "." in str(loc[-1]):  # "model.pretrained" = …: TOML reads a quoted name as one key, dots and all
                # A whole key's path under a [section]: without quotes it is read inside that section
                # (training.model.pretrained), as unknown as before.
                whole = len(loc) > 1 and str(loc[-1]) in field_paths(Profile)
                where = " above the first [section] of the file (below one it is read inside it)" if whole else ""
                message = (f'unknown key: in quotes, a name with dots is one key, "{loc[-1]}"; write it without the '
                           f"quotes{where}, {loc[-1]} = …, for the key {str(loc[-1]).rsplit('.', 1)[-1]} of its section")
        elif item["type"] == "missing" and not in_bucket:
            owner = _model_at(loc)
            field = owner.model_fields.get(str(loc[-1])) if owner else None
            help_text = field.description if field else None
            message = f"required key is missing ({help_text.rstrip('.')})" if help_text else "required key is missing"
        elif item["type"] == "list_type" and isinstance(item.get("input"), dict):
            # `[concepts]` written for `[[concepts]]`: TOML reads one table, not a list of them.
            message = f"must be a list of tables: write [[{loc[-1]}]], with two brackets, above each one"
        elif item["type"] == "string_type" and isinstance(item.get("input"), (int, float, bool, dt.date, dt.time)):
            # TOML reads 2024, true or 2024-12-04 as a number, a boolean or a date; on the command line the quotes
            # need shell quotes too.
            value = item["input"]
            typed = _as_written(value, written(key))
            kind = "boolean" if isinstance(value, bool) else "date" if isinstance(value, (dt.date, dt.time)) else "number"
            if isinstance(loc[-1], int):  # an item of a list of texts
                listed = ".".join(str(p) for p in loc[:-1])
                message = (f"item {loc[-1]} takes text, and {typed} was read as a {kind}: put it in quotes in the list, "
                           f"\"{typed}\" (with --set, the whole list: --set '{listed}=[..., \"{typed}\"]')")
            else:
                message = (f"takes text, and {typed} was read as a {kind}: put it in quotes, {loc[-1]} = \"{typed}\" "
                           f"(with --set: --set '{key}=\"{typed}\"')")
        elif item["type"] == "list_type" and isinstance(item.get("input"), str) and _list_of_text(loc):
            # "diffusers, safetensors" for a list of choices: the items it names, each in quotes, not one item of the
            # whole text (a prompt's commas are its own).
            parts = item["input"].split(",") if _list_of_choices(loc) else [item["input"]]
            items = ", ".join(f'"{part.strip()}"' for part in parts if part.strip())
            message = (f"takes a list: write {loc[-1]} = [{items}], one text in quotes per item "
                       f"(with --set: --set '{key}=[{items}]')")
        elif item["type"] in ("list_type", "tuple_type") and loc[-1] == "buckets":
            message = "takes a list of [width, height] pairs, e.g. buckets = [[512, 512], [576, 448]]"
        elif item["type"] == "list_type" and loc == ("concepts",):
            message = "is a list of tables: write each concept under [[concepts]] in the file, or set one key, e.g. concepts.0.instance_dir"
        elif item["type"] in ("bool_parsing", "bool_type") and not isinstance(item.get("input"), (list, dict)):
            message = f"takes true or false, not {item.get('input')!r}"
        elif item["type"] == "float_parsing" and isinstance(item.get("input"), str):
            message = f"takes a number, not {item['input']!r}: write digits, with a dot for decimals (7.5)"
        elif item["type"] == "int_parsing" and isinstance(item.get("input"), str):
            message = f"takes a whole number, not {item['input']!r}"
        elif item["type"] in ("tuple_type", "too_short", "too_long", "missing") and in_bucket:
            # Each bucket is a pair: name the list once, not each of its items.
            key = "dataset.buckets"
            message = "takes a list of [width, height] pairs, e.g. buckets = [[512, 512], [576, 448]]"
        elif item["type"] == "model_type" and loc == ("model",):
            # model = "name" for the [model] section: the name goes in its pretrained key.
            message = "is a section, [model]: the model's name or path goes in its pretrained key"
            suggestion = "model.pretrained"
        elif item["type"] == "model_type" and loc[:1] == ("concepts",):
            # A whole concept given one value (--set concepts.0="x"): name its keys, not pydantic's class.
            message = "is a concept: a table of keys (instance_dir, instance_prompt, …); set one key, e.g. concepts.0.instance_prompt"
        elif item["type"] == "model_type" and len(loc) == 1 and _tables(item.get("input")):
            # `[[dataset]]` written for `[dataset]` (as [[concepts]] is written): TOML reads a list of tables.
            message = f"is one section: write [{key}], with one bracket (only [[concepts]] takes two)"
        elif item["type"] == "model_type":
            # A section given one value (--set training=5): name its keys, not pydantic's class.
            owner = _model_at((*loc, ""))
            names = list(owner.model_fields)[:2] if owner else []
            message = (f"is a section, [{key}]: a table of keys ({', '.join(names)}, …); set one key, e.g. {key}.{names[0]}"
                       if names else f"is a section, [{key}]: set its keys, not a value")
        elif item["type"] == "too_short" and loc == ("concepts",):
            message = "needs at least one concept: write one under [[concepts]], with its instance_dir and instance_prompt"
        elif item["type"] == "too_short" and loc == ("saving", "export"):
            message = 'names no format: list at least one, e.g. export = ["diffusers"]'
        elif item["type"] == "too_short" and loc[-1] in ("unet_targets", "text_encoder_targets"):
            message = "names no module: list at least one, or leave the key out for the usual ones"
        elif item["type"] == "literal_error" and loc == ("model", "quantize"):
            # The wizard's Base weights choice and README call the unquantized base "none": say how a profile writes it.
            message = (f"{_plain_words(item)}: to keep the base unquantized (the wizard's \"none\"), leave model.quantize "
                       "out or empty")
        elif item["type"] == "int_parsing_size" and isinstance(item.get("input"), (int, float)):
            # 1e20 for a count: pydantic said it "exceeded maximum size", in no word of the key's own bound.
            value = item["input"]
            typed = _as_written(value, written(key))
            name, words = ("le", "at most") if value > 0 else ("ge", "at least")
            bound = _bound(loc, name)
            message = (f"must be {words} {bound}, not {typed}" if bound is not None
                       else f"takes a whole number, and {typed} is too {'large' if value > 0 else 'small'} for one")
        elif item["type"] == "finite_number":
            message = "is not a finite number (nan and inf are not allowed); write an ordinary number"
        elif item["type"] == "value_error":
            # Our own checks (fields.py) word their messages for users; drop pydantic's prefix.
            error = item["ctx"]["error"]
            message = str(error)
            if isinstance(error, PathControlCharacterError) and (written(key) or "").startswith('"'):
                message = error.in_double_quotes()  # TOML's escapes made it: typed in the wizard, a path has no quotes
        else:
            message = _plain_words(item) or message
        problem = Problem(key, message, suggestion=suggestion)
        if problem not in problems:
            problems.append(problem)
    return problems


def _homes(name: str, elsewhere: list[str]) -> dict[str, str]:
    """The sections' keys named ``name`` (and other tools' ``ALSO_NAMED``), each with a few words on what it does; none
    where a top-level key has that name (name, written below a section, is the profile's own)."""
    if any("." not in path for path in elsewhere):
        return {}
    return {path: _what_it_does(path) for path in elsewhere} | ALSO_NAMED.get(name, {})


def _holding(name: str, keys: list[str]) -> str | None:
    """The key of ``keys`` whose words (split at _) hold ``name``'s in a row, the nearest spelling where several do
    (steps: max_train_steps before gradient_accumulation_steps); None where none does."""
    words = name.split("_")
    holding = [key for key in keys if any(key.split("_")[at:at + len(words)] == words for at in range(key.count("_") + 1))]
    nearest = difflib.get_close_matches(name, holding, n=1, cutoff=0)
    return nearest[0] if nearest else None


def _other_homes(name: str, homes: dict[str, str]) -> str:
    """The other sections' keys named ``name``, each with what it does."""
    told = "; ".join(f"{path} ({words})" for path, words in homes.items())
    return f"another section's {name}: {told}" if len(homes) == 1 else f"other sections' {name}, each its own setting: {told}"


def _what_it_does(path: str) -> str:
    """The start of the key's description, up to its first pause outside brackets ("Guidance for preview images"): a
    comma within them cut "Score every preview round (DreamBooth's DINO, CLIP-I and CLIP-T) and …" with its bracket open."""
    loc = tuple(0 if part == "N" else part for part in path.split("."))
    owner = _model_at(loc)
    field = owner.model_fields.get(str(loc[-1])) if owner else None
    text = (field.description or "") if field else ""
    words = re.match(r"(?:\([^()]*\)|[^(;:,.]|[;:,.](?!\s))*", text).group(0).rstrip(" .")
    # Lower a sentence's first letter, never a name's: "LoRA rank" was told "loRA rank".
    return words[:1].lower() + words[1:] if words.split(" ", 1)[0][1:].islower() else words


def _keys_here(owner: type[BaseModel], where: tuple[Any, ...]) -> str:
    """The keys ``owner`` takes, its sections apart ("the keys here: name; the sections: [model], [[concepts]], …");
    the file's schema_version is no setting to mean."""
    keys, sections = [], []
    for name, field in owner.model_fields.items():
        if name == "schema_version":
            continue
        if _first_model(field.annotation) is None:
            keys.append(name)
        else:
            dotted = ".".join([*(str(part) for part in where if not isinstance(part, int)), name])
            sections.append(f"[[{dotted}]]" if get_origin(field.annotation) is list else f"[{dotted}]")
    said = [f"the keys here: {', '.join(keys)}"] if keys else []
    said += [f"the sections: {', '.join(sections)}"] if sections else []
    return "; ".join(said)


_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than"), "multiple_of": ("multiple_of", "a multiple of")}
_TAKES = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false", "string_type": "text",
          "list_type": "a list"}


def _bound(loc: tuple[Any, ...], name: str) -> Any:
    """The field at ``loc``'s own bound ``name`` (le, ge), None where it has none."""
    owner = _model_at(loc)
    field = owner.model_fields.get(str(loc[-1])) if owner else None
    return next((getattr(item, name) for item in (field.metadata if field else []) if hasattr(item, name)), None)


def _plain_words(item: Any) -> str | None:
    """pydantic's generic errors (a bound, a kind of value, a length) in the words used above; None for others."""
    kind, value, ctx = item["type"], item.get("input"), item.get("ctx") or {}
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"must be {words} {_shown(ctx[name])}, not {_shown(value)}"
    if kind in _TAKES:
        return f"takes {_TAKES[kind]}, and {_read_as(value)}"
    if kind == "int_from_float":
        return f"takes a whole number, not {_shown(value)}"
    if kind == "literal_error":
        return f"takes {ctx['expected']}, not {_shown(value)}"
    if kind == "too_short":
        count = ctx["min_length"]
        return f"needs at least {count} item{'s' if count != 1 else ''}"
    if kind == "too_long":
        count = ctx["max_length"]
        return f"takes at most {count} item{'s' if count != 1 else ''}"
    return None


def _shown(value: Any) -> str:
    """A value as it is told above ('text', 1.0 as 1, true), cut when long."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        # 1.0 as 1, but 1e30 as written: its whole number would show digits no one typed.
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    text = json.dumps(value, default=str) if isinstance(value, list) else repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _read_as(value: Any) -> str:
    """What the value given was read as: "[512] was read as a list"."""
    if isinstance(value, dict):
        return "a table was given"
    kind = ("list" if isinstance(value, list) else "boolean" if isinstance(value, bool) else "number"
            if isinstance(value, (int, float)) else "text" if isinstance(value, str) else "date")
    return f"{_shown(value)} was read as {kind if kind == 'text' else 'a ' + kind}"
