"""Tell what a would-be checkpoint file is from its bytes, and say precisely what is wrong with it.

Files get renamed, downloads stop early and web pages get saved under model names, so the
extension proves nothing. A safetensors file is checked against its own header before any
tensor is read: the header states how long the file must be.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Literal

from engine.convert.errors import CheckpointReadError

Kind = Literal["safetensors", "torch-zip", "pickle"]

# safetensors refuses headers above 100 MB; a length field beyond that is damage, not a model.
MAX_HEADER = 100_000_000
SNIFF_BYTES = 1024
REDOWNLOAD = "download it again and compare its size with the one the model page gives"


def _fail(path: Path, what: str, advice: str = REDOWNLOAD) -> CheckpointReadError:
    return CheckpointReadError(f"{path} {what}; {advice}")


def _read_head(path: Path, size: int) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(size)
    except PermissionError:
        raise CheckpointReadError(f"{path} cannot be read: permission denied; check the file's permissions") from None
    except OSError as error:
        raise CheckpointReadError(f"{path} cannot be read ({error.strerror or type(error).__name__})") from None


def _data_ends(header: object) -> list[int] | None:
    """Where each tensor's bytes end, from a parsed header; None if it is not a tensor table."""
    if not isinstance(header, dict):
        return None
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return None
        ends.append(offsets[1])
    return ends


def _check_safetensors(path: Path, size: int, header_length: int) -> None:
    """Raise unless the header is JSON describing tensors that exactly fill the rest of the file."""
    available = size - 8
    if header_length > MAX_HEADER:
        raise _fail(path, f"is damaged: its safetensors header length field says {header_length:,} bytes, "
                          f"more than any real header, and the file has {available:,} bytes after it")
    if header_length > available:
        raise _fail(path, f"is truncated: its safetensors header says it is {header_length:,} bytes long, "
                          f"but the file has only {available:,} bytes after the length field")
    raw = _read_head(path, 8 + header_length)[8:]
    try:
        header = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _fail(path, "is damaged: its safetensors header is not text (not valid UTF-8)") from None
    except json.JSONDecodeError as error:
        raise _fail(path, f"is damaged: its safetensors header is not valid JSON (broken at byte {error.pos:,} of "
                          f"{header_length:,})") from None
    ends = _data_ends(header)
    if ends is None:
        raise _fail(path, "is damaged: its safetensors header is JSON but does not describe tensors")
    data = max(ends, default=0)
    present = available - header_length
    if present < data:
        raise _fail(path, f"is truncated: its header describes {data:,} bytes of tensor data, but the file has "
                          f"{present:,} ({8 + header_length + data:,} bytes expected in all, {size:,} found)")
    if present > data:
        raise _fail(path, f"is damaged: it has {present - data:,} bytes after the tensor data its header describes")


def _zip_kind(path: Path) -> Kind:
    if not zipfile.is_zipfile(path):
        raise _fail(path, "is a ZIP archive (as PyTorch checkpoints are) but truncated or damaged: its index at the "
                          "end is missing")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _fail(path, "is a damaged ZIP archive") from None
    if any(name.endswith("data.pkl") for name in names):
        return "torch-zip"
    holds_model = any(n.lower().endswith((".safetensors", ".ckpt", ".pt", ".pth", ".bin")) for n in names)
    advice = "unpack it and convert the model file inside" if holds_model else "give the model file itself (.safetensors or .ckpt)"
    raise _fail(path, "is a ZIP archive, not a PyTorch checkpoint (it has no data.pkl)", advice)


def _describe_other(path: Path, head: bytes) -> CheckpointReadError:
    """The error for bytes that match no model format: name what they look like instead."""
    if head.startswith(b"version https://git-lfs"):
        return _fail(path, "is a Git LFS pointer, not the model itself",
                     "run `git lfs pull` in its repository, or download the file from the model page")
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in lowered:
        return _fail(path, "is a web page (HTML), not a model: the download saved a page (often a login, error "
                           "or redirect page) instead of the file", "download the file itself from the model page")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return _fail(path, "is a text file, not a model", "give the .safetensors or .ckpt file of the model")
    return _fail(path, "is neither a safetensors file nor a PyTorch checkpoint (its first bytes match no model format)",
                 "check that it is a model file and that the download finished")


def checkpoint_kind(path: Path) -> Kind:
    """The checkpoint format of ``path``; a specific :class:`CheckpointReadError` if it is none."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise CheckpointReadError(f"{path} cannot be read ({error.strerror or type(error).__name__})") from None
    if size == 0:
        raise _fail(path, "is empty (0 bytes): the download or copy did not finish")
    head = _read_head(path, SNIFF_BYTES)
    # safetensors: an 8-byte little-endian header length, then the JSON header, which opens with "{".
    if len(head) > 8 and head[8:9] == b"{":
        _check_safetensors(path, size, int.from_bytes(head[:8], "little"))
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(b"\x80"):
        return "pickle"
    raise _describe_other(path, head)
