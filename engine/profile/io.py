"""Read, validate, override and write profiles (TOML)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import re
import secrets
import shlex
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from engine.profile.decode import decode_profile, strip_text
from engine.profile.fields import PATHS_READ, is_path_field, written_path
from engine.profile.locate import key_lines, line_of, override_of, written_value
from engine.profile.migrations import migrate
from engine.profile.overrides import apply_overrides, override_sources
from engine.profile.problem_words import problems_from
from engine.profile.problems import Problem, ProfileError
from engine.profile.rules import cross_field_problems
from engine.profile.schema import Profile
from engine.profile.stored_paths import control_texts, stored_context
from engine.profile.syntax_hints import syntax_hint, unclosed_text_line
from engine.support.dangling_link import dangling_link


def _drop(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(node, dict) and loc and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def _set_aside(data: dict[str, Any], loc: tuple[Any, ...]) -> str | None:
    """Remove a bad key so the rest can be validated: the dotted key whose value is now a stand-in (a default), or
    None when that is not possible."""
    if loc[:1] == ("model",):
        # Its one required key may be the bad one: the whole section is a stand-in.
        data["model"] = {"pretrained": "builtin:tiny-sd1"}
        return "model"
    return ".".join(str(part) for part in loc) if _drop(data, loc) else None


def _meant(data: dict[str, Any], problems: list[Problem], error: ValidationError) -> list[str]:
    """The keys that misspelt (or misplaced) ones seem to mean, where the profile leaves them out: each holds a
    default, not the value the user wrote (training.metod = "full" leaves training.method "lora")."""
    suggested = {problem.key: problem.suggestion for problem in problems if problem.suggestion}
    keys = (".".join(str(part) for part in e["loc"]) for e in error.errors() if e["type"] == "extra_forbidden")
    return [suggested[key] for key in keys if key in suggested and not _is_set(data, suggested[key])]


def _is_set(data: dict[str, Any], key: str) -> bool:
    node: Any = data
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def validate_data(
    data: dict[str, Any],
    *,
    lines: dict[str, int] | None = None,
    file: Path | None = None,
    overrides: dict[str, str] | None = None,
    dumped: bool = False,
    recorded: Mapping[str, str] | None = None,
    text: str = "",
) -> Profile:
    """Validate a profile dict; raises ProfileError holding every field and cross-field problem.

    ``lines`` (dotted key → line) and ``overrides`` (dotted key → ``--set`` text, see
    ``override_sources``) say where each problem's value came from. ``dumped``: ``data`` is a Profile's
    ``model_dump``, whose paths are not read again (``PATHS_READ``). ``recorded``: ``data`` is a run's stored profile,
    and these (``stored_paths.control_texts``) the paths holding a control character that the run recorded: one
    still so is the run's, read as it is (``stored_context``). ``text``: the file's TOML, whose values are quoted in
    advice as they were typed.
    """
    lines = lines or {}
    overrides = overrides or {}
    try:
        data = migrate(copy.deepcopy(data))
    except ProfileError as error:
        raise ProfileError(_located(error.problems, lines, file, overrides)) from None
    context = PATHS_READ if dumped else None if recorded is None else stored_context(data, recorded)
    try:
        profile = Profile.model_validate(data, context=context)
    except ValidationError as error:
        found = problems_from(error, lambda key: written_value(key, text, lines, overrides))
        problems = _located(found, lines, file, overrides)
        # Drop the bad keys and validate again so that cross-field rules can be reported too, but for those that
        # read a dropped key: they would judge its default, not the user's value.
        trimmed = copy.deepcopy(data)
        aside = [_set_aside(trimmed, tuple(e["loc"])) for e in error.errors()]
        if None not in aside:
            try:
                partial = Profile.model_validate(trimmed, context=context)
            except ValidationError:
                partial = None
            if partial is not None:
                unknown = [key for key in aside if key is not None] + _meant(data, found, error)
                problems += _located(cross_field_problems(partial, unknown), lines, file, overrides)
        raise ProfileError(problems) from None
    problems = _located(cross_field_problems(profile), lines, file, overrides)
    if problems:
        raise ProfileError(problems)
    return profile


def _located(problems: list[Problem], lines: dict[str, int], file: Path | None, overrides: dict[str, str]) -> list[Problem]:
    return [
        Problem(p.key, p.message, line_of(lines, p.key), p.suggestion, file, override_of(p.key, overrides, lines))
        for p in problems
    ]


def parse_text(text: str, file: Path | None = None) -> dict[str, Any]:
    """TOML text (already through ``strip_text``) → dict; a syntax error becomes a ProfileError with its line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else unclosed_text_line(text)
        source = text.split("\n")[line - 1] if line and line <= text.count("\n") + 1 else ""
        hint = syntax_hint(str(error), source)
        raise ProfileError([Problem("", f"TOML syntax error: {error}" + (f"; {hint}" if hint else ""), line, None, file)]) from None
    except RecursionError:
        # tomllib reads nested arrays and inline tables recursively.
        raise ProfileError([Problem("", "arrays or tables are nested too deeply to read; this is not a profile", None, None, file)]) from None


def loads_profile(text: str, overrides: list[str] = (), file: Path | None = None, *,
                  recorded: Callable[[], Mapping[str, str]] | None = None) -> Profile:
    """Validate a profile from TOML text plus ``key=value`` overrides. ``recorded``: the text is a run's stored
    profile, and this reads what the run recorded (see ``validate_data``), only where a text holds a control character."""
    text = strip_text(text, file)
    data = apply_overrides(parse_text(text, file), list(overrides))
    kept = None if recorded is None else recorded() if control_texts(data) else {}
    return validate_data(data, lines=key_lines(text), file=file, overrides=override_sources(list(overrides)),
                         recorded=kept, text=text)


def load_profile(path: str | Path, overrides: list[str] = (), *, or_else: str = "or make one with the wizard, `dbtui`"
                 ) -> Profile:
    """Read and validate a profile file; raises ProfileError naming the file. ``or_else``: the other way to make a
    profile that a refusal of an empty file offers after the examples (the wizard says its own, being there)."""
    text = _read_text(Path(path))
    try:
        return loads_profile(text, overrides, Path(path))
    except ProfileError as error:
        stripped = strip_text(text, Path(path))
        if parse_text(stripped, Path(path)):
            raise
        # Its missing keys alone read as a profile to be mended key by key, where one is to be started from an example.
        empty = Problem("", f"holds no settings ({'only comments' if stripped.strip() else 'it is empty'}): start from "
                            f"an example, e.g. `cp profiles/sd15-person.toml {shlex.quote(str(path))}` (the README lists them under "
                            f"'Examples to copy from profiles/'), {or_else}", None, None, Path(path))
        raise ProfileError([empty, *error.problems]) from None


def profile_source_data(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """The data ``load_profile(path, overrides)`` validates, unvalidated: what a refusal's advice reads the model from."""
    path = Path(path)
    return apply_overrides(parse_text(strip_text(_read_text(path), path), path), list(overrides))


def load_run_profile(path: str | Path, recorded: Callable[[], Mapping[str, str]]) -> Profile:
    """A run's stored profile (RUN/profile.toml, another machine's profile-machine-N.toml, RUN/outputs/profile.toml).
    A path holding a control character that the run recorded (``recorded``: see ``validate_data``) is read as it is: a
    run made before the rule (its saving.output_dir "C:\\new\\tmp" in double quotes, read as a line break and a tab)
    still exports and resumes, where advice to write the path otherwise would point the run elsewhere. Any other, a hand
    edit of the file, is refused as a typed one is (engine.runs.stored_profile reads the run's record)."""
    return loads_profile(_read_text(Path(path)), (), Path(path), recorded=recorded)


def read_profile_text(path: str | Path) -> str:
    """A profile file's text, checked to be TOML but not validated as a profile (to be recorded as it is); a
    ProfileError naming the file says why it cannot be read (missing, not UTF-8, binary, a syntax error)."""
    path = Path(path)
    text = strip_text(_read_text(path), path)
    try:
        parse_text(text, path)
    except ProfileError as error:
        if path.suffix.lower() == ".toml":
            raise
        # Any file may be given (a README, notes): a syntax error there says that it is no profile, with where.
        raise ProfileError([dataclasses.replace(problem, message=f"not a profile (a TOML file): {problem.message}")
                            for problem in error.problems]) from None
    return text


# A profile is a few KB of TOML: a bigger file (a model given by mistake, `dbtui run sdxl.safetensors`) is refused
# before it is read whole, which took twice its size in memory.
MAX_PROFILE_BYTES = 1024 * 1024


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_PROFILE_BYTES + 1)
    except FileNotFoundError:
        meant = path.with_name(path.name + ".toml")
        hint = f"did you mean {meant}?" if meant.is_file() else "create one with `dbtui` or copy one from profiles/"
        if path.is_symlink():  # `ls` shows the link itself, so "file not found" read as a mistake of dbtui's
            hint = f"it is {dangling_link(path)}: point it at the profile"
        raise ProfileError([Problem("", f"file not found; {hint}", None, None, path)]) from None
    except IsADirectoryError:
        found = sorted(str(item) for item in path.glob("*.toml"))[:3]
        inside = f", e.g. {' or '.join(found)}" if found else ""
        raise ProfileError([Problem("", f"is a folder: give a profile's .toml file{inside}", None, None, path)]) from None
    except OSError as error:
        reason = error.strerror
        if error.errno == errno.ELOOP:  # the file a link round a loop, else a folder on its path
            reason = (f"it is {dangling_link(path)}: point it at the profile" if path.is_symlink()
                      else f"{reason}: a folder on its path is a link that leads round in a loop")
        raise ProfileError([Problem("", f"cannot read the file: {reason}", None, None, path)]) from None
    except ValueError:  # a NUL character in the path itself
        raise ProfileError([Problem("", "the path contains a NUL character (\\0); retype it", None, None, path)]) from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError([Problem("", f"is over {MAX_PROFILE_BYTES // 1024**2} MiB, far more than a profile holds (a few "
                                        "KB of TOML): give the profile's .toml file (a model's file goes in its "
                                        "model.pretrained)", None, None, path)])
    return decode_profile(raw, path)


def located(problems: list[Problem], path: str | Path, overrides: list[str] = ()) -> list[Problem]:
    """Problems found after ``load_profile(path, overrides)`` (its model's family's) with the file's line and the
    ``--set`` that gave each value, as validation's own problems have them."""
    path = Path(path)
    text = strip_text(decode_profile(path.read_bytes(), path), path)
    return _located(problems, key_lines(text), path, override_sources(list(overrides)))


def profile_data(profile: Profile) -> dict[str, Any]:
    """The profile as TOML data, as it is written and as the wizard edits it. TOML has no null: an empty setting is
    left out where that means the same, and written "" (which the schema reads back as empty) where its default is a
    value: saving.every_n_steps left out would save a checkpoint every 500 steps where empty saves none."""
    return _toml_data(profile, profile.model_dump(mode="json"))


def _toml_data(section: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            if type(section).model_fields[key].get_default(call_default_factory=True) is not None:
                kept[key] = ""
        elif isinstance(value, str) and is_path_field(type(section).model_fields[key]):
            kept[key] = written_path(value)  # read back as the same path, a "$" in it not taken for a variable
        else:
            kept[key] = _toml_value(getattr(section, key), value)
    return kept


def _toml_value(part: Any, value: Any) -> Any:
    if isinstance(part, BaseModel):
        return _toml_data(part, value)
    if isinstance(part, (list, tuple)):
        return [_toml_value(p, v) for p, v in zip(part, value, strict=True)]
    return value


def dumps_profile(profile: Profile) -> str:
    """The profile as TOML (``profile_data``)."""
    return tomli_w.dumps(profile_data(profile))


def save_profile(profile: Profile, path: str | Path) -> Path:
    """Write the profile atomically (a temporary file renamed into place); ``~`` is the home folder, as in a shell."""
    path = Path(path).expanduser()
    if "\0" in str(path):  # as an OSError, like every other path no file system takes
        raise OSError(errno.EINVAL, "a path cannot hold a NUL character (\\0); retype it", str(path).replace("\0", "\\0"))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder: give a file name such as my-run.toml", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short name of its own, not the file's with more added: a legal 255-byte file name would leave no room.
    tmp = path.with_name(f".dbtui-{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_text(dumps_profile(profile), encoding="utf-8")
        tmp.replace(path)
    finally:
        # After a failed write or rename nothing half-written stays; on a disk gone read-only this fails too, and
        # must not hide the write's own error.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path
