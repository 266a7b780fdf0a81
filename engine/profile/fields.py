"""String field types of the profile that carry limits of their own: paths, prompts and the run name.

Each check raises ValueError with a message a user can act on; ``io.py`` reports it as is.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, get_args

from pydantic import AfterValidator, ValidationInfo
from pydantic.fields import FieldInfo

from engine.profile.text_characters import control_character, printable
from engine.support.home_folder import unknown_user

# Linux's PATH_MAX: the kernel refuses any longer path, so a longer value cannot be a real path.
MAX_PATH_CHARS = 4096
# CLIP, the text encoder of SD1.x/SD2, reads 77 tokens (about 300 characters of English) and
# cuts off the rest; 1000 leaves room for every real prompt and stops pasted junk.
MAX_PROMPT_CHARS = 1000

# Formats Pillow reads without plugins and that people actually train on; the trainer, the dataset doctor and
# the wizard's preview all go by this one list, and a caption extension may not be one of them. Here, in the
# light profile package, so that the profile can refuse such an extension without importing the data layer.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif",
                            ".heic", ".heif"})

MODEL_HINT = (
    "a diffusers folder, a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5, "
    "a .safetensors/.ckpt file, or builtin:tiny-sd1 for the demo"
)


# The validation context of data a Profile dumped (a manifest's, a run_started event's): a record of what a run trained
# with, its paths read once already: read again, "new$runs" (written new$$runs) would be taken for the variable $runs.
# A run's stored profile (RUN/profile.toml) has a context of its own: engine.profile.stored_paths.
PATHS_READ = {"paths_read": True}


def _path(value: str, info: ValidationInfo) -> str:
    context = info.context or {}
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\0), which no file system allows in a path; retype the path")
    character = control_character(value, allowed="")
    if character and not context.get("paths_read") and value not in context.get("recorded", ()):
        raise PathControlCharacterError(value, character)
    _utf8(value, "names a file or folder whose name is not UTF-8 text (made under another encoding): rename it")
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(f"is {len(value):,} characters long; paths are at most {MAX_PATH_CHARS:,} characters")
    return value if context.get("paths_read") else expanded_path(value)


class PathControlCharacterError(ValueError):
    """A path holding a line break, tab or other control character, which names no folder the user meant. Typed in the
    wizard (a pasted tab) it is retyped; ``in_double_quotes`` words it for a TOML file or --set, where "C:\\new\\tmp" in
    double quotes is read as C:, a line break, "ew", a tab and "mp"."""

    def __init__(self, value: str, character: str) -> None:
        self.value, self.character = value, character
        super().__init__(f"holds {character}, which no path is meant to hold: retype the path")

    def in_double_quotes(self) -> str:
        written = printable(self.value)  # the escapes as typed: "C:\\new\\tmp"
        return (f"holds {self.character}, which no path is meant to hold: in \"double quotes\" TOML reads \\n as a line "
                f"break and \\t as a tab; write the path in 'single quotes' ('{written}'), which keep each \\ as it is, "
                f"or with / ('{written.replace(chr(92), '/')}')")


# $NAME, ${NAME}, and $$: the escape of a $ that is part of a name ("money$$saver"), as in Make and docker compose.
_VARIABLE = re.compile(r"\$(?:\$|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")


def expanded_path(value: str) -> str:
    """``~`` and ``$VAR`` as a shell reads them: left as they are, "~/runs" would make a folder named "~"
    in the working directory, which looks like the home folder in every message. ``$$`` is one ``$``; an unset
    variable is refused (a typo would otherwise name a folder of its own) unless the path as written exists: a
    folder named "money$saver" is taken as it is."""
    unset: list[str] = []

    def variable(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name is None:
            return "$"
        if name not in os.environ:
            unset.append(name)
            return match[0]
        return os.environ[name]

    expanded = _VARIABLE.sub(variable, os.path.expanduser(value))
    if unset and not os.path.lexists(expanded):
        raise ValueError(f"names the environment variable ${unset[0]}, which is not set here; set it, or write the path "
                         f"out (a $ that is part of a name is written $$, e.g. money$$saver)")
    left = _VARIABLE.sub("", value)
    if "${" in left and not os.path.lexists(expanded):  # "${HOME/runs": a folder named so was made
        # "${HOME:-/tmp}" is closed: a shell's form, read as no variable, not a brace left open.
        what = "a ${…} that is no variable's name (shell forms such as ${NAME:-default} are not read)" if "}" in \
            left.partition("${")[2] else "${ with no closing }"
        raise ValueError(f"has {what}: write ${{NAME}} (or $NAME), or $$ for a $ that is part of a name")
    # A shell's $1 or Windows' %USERPROFILE%, not read here: a folder of that name would be made in the working folder.
    positional = re.search(r"\$[0-9@*]", left)
    if positional and not os.path.lexists(expanded):
        raise ValueError(f"has {positional[0]}, a shell script's parameter, which a profile does not read: write the "
                         f"path out, or $NAME for an environment variable ($$ for a $ that is part of a name)")
    windows = _windows_variable(value)
    if windows and not os.path.lexists(expanded):
        instead = f"${windows}" if windows in os.environ else "~ for the home folder, or the path out"
        raise ValueError(f"has %{windows}%, Windows' form of an environment variable, which is not read here: write "
                         f"{instead} (a folder so named is taken once it exists)")
    if no_user_here := unknown_user(expanded):
        raise ValueError(no_user_here)
    return expanded


# Windows' own variables, which a path copied from Windows holds; Windows reads names in any case.
_WINDOWS_NAMES = frozenset({"USERPROFILE", "APPDATA", "LOCALAPPDATA", "HOMEPATH", "HOMEDRIVE", "TEMP", "TMP",
                            "USERNAME", "ONEDRIVE", "PROGRAMDATA", "PROGRAMFILES", "ALLUSERSPROFILE", "PUBLIC",
                            "SYSTEMDRIVE", "SYSTEMROOT", "WINDIR", "COMPUTERNAME"})


def _windows_variable(value: str) -> str | None:
    """The first ``%NAME%`` in ``value`` that is clearly a Windows variable: one of Windows' own names, one set here,
    or a name in capitals (how Windows variables are written). A ``%`` is legitimate in a file name, so
    ``50%_off%`` passes, and so does a URL escape (``caf%C3%A9``: ``%C3%`` is two hex digits, not a name)."""
    for name in re.findall(r"(?=%([A-Za-z_][A-Za-z0-9_]*)%)", value):
        if re.fullmatch(r"[0-9A-Fa-f]{2}", name):
            continue
        if name.upper() in _WINDOWS_NAMES or name in os.environ or (name.isupper() and len(name) > 2):
            return name
    return None


def written_path(path: str) -> str:
    """``path`` as a profile writes it, to be read back as ``path`` by ``expanded_path``: each ``$`` doubled."""
    return path.replace("$", "$$")


def is_path_field(field: FieldInfo) -> bool:
    """Whether a profile setting holds a path (plain or optional), which ``expanded_path`` reads."""
    checks = [*field.metadata, *(m for a in get_args(field.annotation) for m in getattr(a, "__metadata__", ()))]
    return any(getattr(check, "func", None) in (_path, _folder, _model_source) for check in checks)


def caption_extension(value: str) -> str:
    """``value`` with its leading dot; refused where it is not one plain extension, or is an image's (captions would
    then be read from, and written over, the pictures)."""
    extension = value if value.startswith(".") else "." + value
    stem = extension[1:]
    if not stem or any(c in stem for c in "./\\\x00") or any(c.isspace() for c in stem):
        raise ValueError(f"'{value}' is not a file extension: use one like .txt or .caption")
    if extension.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"'{value}' is an image extension: captions would be read from (and written over) your "
                         "pictures; use one like .txt or .caption")
    return extension


def _folder(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise ValueError("is empty; give the folder, e.g. data/dog (a relative path is read from the folder dbtui runs in)")
    return _path(value, info)


def _model_source(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise ValueError(f"is empty; name the base model to train: {MODEL_HINT}")
    return _path(value, info)


MAX_RUN_NAME_CHARS = 150


def _run_name(value: str) -> str:
    # The name is a folder under saving.output_dir: "." or ".." would put the run's files (its
    # profile.toml among them) into output_dir itself or the folder above it.
    if not value or any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in value):
        raise ValueError(f"{value!r} is not a usable run name: use the letters a-z and A-Z, digits, '.', '_' and '-' "
                         "(no spaces or slashes), e.g. my-subject-v1; it names the run's folder")
    if set(value) == {"."}:
        raise ValueError(f"{value!r} names no folder of its own; give the run a name, e.g. my-subject-v1")
    if len(value) > MAX_RUN_NAME_CHARS:
        # It names files too (NAME-lora-kohya.safetensors, and the exports' temporary names): a file system takes
        # 255 bytes a name, so a longer one trained the whole run and then failed to write its outputs.
        raise ValueError(f"is {len(value)} characters long; use at most {MAX_RUN_NAME_CHARS}")
    return value


def _utf8(value: str, message: str) -> None:
    """Refuse text holding bytes of another encoding, which the command line passes on as surrogates: the profile is
    saved as UTF-8 and could not hold them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{message}, as the profile is saved as UTF-8") from None


def _prompt(value: str) -> str:
    _utf8(value, "holds bytes that are not UTF-8 text (is the terminal's encoding UTF-8? `locale` says): retype it")
    character = control_character(value)
    if character:
        raise ValueError(f"holds {character}, which is no text a model reads (pasted from a terminal or a binary "
                         "file?) and would drive the terminal that prints it: retype the prompt")
    if len(value) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"is {len(value):,} characters long; prompts are capped at {MAX_PROMPT_CHARS:,} because CLIP reads "
            "only its first 77 tokens (about 300 characters) anyway; shorten it"
        )
    return value


PathText = Annotated[str, AfterValidator(_path)]
"""A file or folder path (or hub id): no NUL character, at most MAX_PATH_CHARS characters."""
FolderPath = Annotated[str, AfterValidator(_folder)]
"""A folder that must be given: not blank, and a valid path."""
ModelSource = Annotated[str, AfterValidator(_model_source)]
"""Where the base model comes from: not blank, and a valid path."""
PromptText = Annotated[str, AfterValidator(_prompt)]
"""A prompt: at most MAX_PROMPT_CHARS characters, no control character (as captions)."""
RunName = Annotated[str, AfterValidator(_run_name)]


def run_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a run's name (None: it can), e.g. a run folder renamed by hand to "my run"."""
    try:
        _run_name(value)
    except ValueError as error:
        return str(error)
    return None
"""The run's folder name: the letters a-z and A-Z, digits, '.', '_' and '-'."""
CaptionExtension = Annotated[str, AfterValidator(caption_extension)]
"""The extension of per-image caption files, with its dot: one plain extension, not an image's."""
