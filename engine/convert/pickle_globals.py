"""The code a pickle names, read from its opcodes without running any (pickletools), for files torch's weights-only
loader cannot parse: it stops at opcodes of newer pickle protocols (FRAME, STACK_GLOBAL) before it sees what the
file would call, and only says "Unsupported operand"."""

from __future__ import annotations

import pickletools
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from pathlib import Path
from typing import IO, Any

# Ops that push a value without touching the rest of the stack; their value matters only when it is a string,
# which STACK_GLOBAL takes as module and name.
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_NO_PUSH = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME", "PROTO"}
# A legacy (non-zip) torch file is several pickles in a row (magic number, protocol, system info, the data, the
# storage keys) before the raw tensor bytes.
_LEGACY_PICKLES = 5


def _python3_name(module: str, name: str) -> str:
    """``module.name`` as torch's loader reads it: protocol 2 (torch.save's default) writes Python 2's names, as
    ``__builtin__ set``, which it maps to Python 3's (``builtins.set``), an allowed global."""
    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _one_pickle(file: IO[bytes], names: list[str]) -> None:
    """Add to ``names`` each global the next pickle in ``file`` names, as they come: a truncated or damaged pickle
    raises, and what it named before stands."""
    pushed: list[Any] = []  # what each op put on the stack, most recent last (None: not a string)
    memo: dict[int, Any] = {}
    for opcode, arg, _ in pickletools.genops(file):
        op = opcode.name
        if op in ("GLOBAL", "INST"):
            names.append(_python3_name(*str(arg).split(" ", 1)))
        elif op == "STACK_GLOBAL":
            module, name = (pushed[-2:] if len(pushed) >= 2 else [None, None])
            names.append(f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else "an unnamed global")
        if op == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif op not in _NO_PUSH:
            pushed.append(arg if op in _STRINGS else memo.get(int(arg)) if op in _GETS else None)


def _globals_in(file: IO[bytes], pickles: int) -> list[str]:
    names: list[str] = []
    for _ in range(pickles):
        try:
            _one_pickle(file, names)
        except Exception:  # noqa: BLE001 - past the last pickle (raw tensor bytes) or a damaged one: nothing more to name
            break
    return names


def _data_pickles(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The pickle torch reads from a zip checkpoint: data.pkl in the folder of the archive's first entry (caffe2's
    inline_container.cc), every entry of that name (which of two torch takes is not ours to guess); a data.pkl
    elsewhere is never read by torch, and may be a decoy."""
    entries = archive.infolist()
    if not entries or "/" not in entries[0].filename:
        return []
    name = entries[0].filename.split("/", 1)[0] + "/data.pkl"
    return [entry for entry in entries if entry.filename == name]


def pickle_globals(path: Path, zipped: bool) -> list[str]:
    """Every ``module.name`` the checkpoint's pickle would look up (and so could call), in order. Raises what
    reading the file raises (zipfile has many errors for a crafted or damaged archive)."""
    if zipped:
        names: list[str] = []
        with zipfile.ZipFile(path) as archive:
            for entry in _data_pickles(archive):
                with archive.open(entry) as file:
                    names += _globals_in(file, 1)
        return names
    with open(path, "rb") as file:
        return _globals_in(file, _LEGACY_PICKLES)


# What a tensors-only checkpoint names, where torch's own list (a private function) cannot be had.
_TENSOR_GLOBALS = {
    "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch.storage.UntypedStorage",
    *(f"torch.{kind}Storage" for kind in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte",
                                          "Bool")),
}


def _allowed_globals() -> set[str]:
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return set(_get_allowed_globals())
    except Exception:  # noqa: BLE001 - private to torch: gone, renamed or changed in any release
        return set(_TENSOR_GLOBALS)


def unsafe_globals(path: Path, zipped: bool) -> list[str]:
    """The globals of the checkpoint beyond those torch's weights-only loader allows (tensors, storages, plain
    containers): any of them could run code. Raises what reading the file raises."""
    allowed = _allowed_globals()
    return [name for name in pickle_globals(path, zipped) if name not in allowed]
