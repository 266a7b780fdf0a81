"""The code a pickle names, read from its opcodes without running any (pickletools), for files torch's weights-only
loader cannot parse: it stops at opcodes of newer pickle protocols (FRAME, STACK_GLOBAL) before it sees what the
file would call, and only says "Unsupported operand"."""

from __future__ import annotations

import pickletools
import zipfile
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


def _one_pickle(file: IO[bytes]) -> list[str]:
    names: list[str] = []
    pushed: list[Any] = []  # what each op put on the stack, most recent last (None: not a string)
    memo: dict[int, Any] = {}
    for opcode, arg, _ in pickletools.genops(file):
        op = opcode.name
        if op in ("GLOBAL", "INST"):
            names.append(str(arg).replace(" ", "."))
        elif op == "STACK_GLOBAL":
            module, name = (pushed[-2:] if len(pushed) >= 2 else [None, None])
            names.append(f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else "an unnamed global")
        if op == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif op not in _NO_PUSH:
            pushed.append(arg if op in _STRINGS else memo.get(int(arg)) if op in _GETS else None)
    return names


def _globals_in(file: IO[bytes], pickles: int) -> list[str]:
    names: list[str] = []
    for _ in range(pickles):
        try:
            names += _one_pickle(file)
        except Exception:  # noqa: BLE001 - past the last pickle (raw tensor bytes) or a damaged one: nothing more to name
            break
    return names


def pickle_globals(path: Path, zipped: bool) -> list[str]:
    """Every ``module.name`` the checkpoint's pickle would look up (and so could call), in order."""
    if zipped:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name == "data.pkl" or name.endswith("/data.pkl")]
            if not members:
                return []
            with archive.open(members[0]) as file:
                return _globals_in(file, 1)
    with open(path, "rb") as file:
        return _globals_in(file, _LEGACY_PICKLES)


def unsafe_globals(path: Path, zipped: bool) -> list[str]:
    """The globals of the checkpoint beyond those torch's weights-only loader allows (tensors, storages, plain
    containers): any of them could run code."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = set(_get_allowed_globals())
    except (ImportError, AttributeError):  # a torch without that list: every global is suspect
        allowed = set()
    try:
        found = pickle_globals(path, zipped)
    except (OSError, zipfile.BadZipFile):
        return []
    return [name for name in found if name not in allowed]
