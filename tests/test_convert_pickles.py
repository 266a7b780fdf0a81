"""What a pickle checkpoint the safe loader cannot read would call, read from the pickle torch reads, however it ends."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from engine.convert import CheckpointReadError, UnsafeCheckpointError, read_checkpoint

TENSORS = {"state_dict": {"w": torch.zeros(2)}}
PROTOCOL_SAID = "pickle protocol that PyTorch's safe"


class _Payload:
    """Unpickling this runs a shell command (never run here)."""

    def __reduce__(self):
        return (os.system, ("true",))


def _saved(path: Path, payload: object) -> Path:
    torch.save(payload, path, pickle_protocol=4)  # protocol 4: torch's safe loader stops at its first opcode
    return path


def _with_decoy(real: Path, out: Path, decoy: bytes, *, method: int = zipfile.ZIP_STORED) -> Path:
    """``real``'s entries after a data.pkl torch never reads (``decoy``, stored with compression ``method``): torch
    reads the data.pkl of the first entry's folder, which the decoy's lies inside of."""
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(out, "w") as archive:
        entries = source.infolist()
        archive.writestr(f"{entries[0].filename.split('/')[0]}/decoy/data.pkl", decoy)
        for entry in entries:
            archive.writestr(entry, source.read(entry))
    if method != zipfile.ZIP_STORED:
        data = bytearray(out.read_bytes())
        name = b"/decoy/data.pkl"
        at = data.find(name)
        while at >= 0:  # the method in the entry's local header and in the central directory
            for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
                start = data.rfind(signature, 0, at)
                if data.find(name, start) == at and at - start < 64:
                    data[start + offset:start + offset + 2] = struct.pack("<H", method)
            at = data.find(name, at + 1)
        out.write_bytes(bytes(data))
    return out


def test_a_decoy_data_pkl_torch_never_reads_is_not_what_is_judged(tmp_path: Path) -> None:
    """The first entry ending in /data.pkl was read: a decoy in a compression zipfile lacks was an internal error
    (NotImplementedError), and a harmless decoy hid what the real pickle calls."""
    tensors = _saved(tmp_path / "tensors.ckpt", TENSORS)
    with pytest.raises(CheckpointReadError, match=PROTOCOL_SAID):
        read_checkpoint(_with_decoy(tensors, tmp_path / "odd.ckpt", b"\x80\x02N.", method=99))
    evil = _saved(tmp_path / "evil.ckpt", {"x": _Payload(), **TENSORS})
    with pytest.raises(UnsafeCheckpointError, match="calls posix.system"):
        read_checkpoint(_with_decoy(evil, tmp_path / "hidden.ckpt", b"\x80\x02N."))


def test_a_pickle_that_cannot_be_opened_is_refused_as_unreadable(tmp_path: Path, monkeypatch) -> None:
    tensors = _saved(tmp_path / "tensors.ckpt", TENSORS)

    def unsupported(*_: object, **__: object) -> None:
        raise NotImplementedError("That compression method is not supported")

    monkeypatch.setattr(zipfile.ZipFile, "open", unsupported)  # torch reads zips its own way
    with pytest.raises(CheckpointReadError, match="cannot be opened to see what it would call.*safetensors"):
        read_checkpoint(tensors)


def test_a_truncated_pickle_is_refused_for_what_it_calls_before_it_ends(tmp_path: Path) -> None:
    """Said to be of a protocol the safe loader cannot read: the names read before the end were dropped."""
    whole = pickle.dumps({"x": _Payload()}, protocol=4)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(whole[:whole.index(b"\x93") + 2])  # just past STACK_GLOBAL (posix.system)
    with pytest.raises(UnsafeCheckpointError, match="calls posix.system"):
        read_checkpoint(cut)


@pytest.mark.parametrize("torch_list", ["fails", "gone"])
def test_without_torchs_private_list_a_tensors_only_pickle_is_still_told_apart(torch_list: str, tmp_path: Path,
                                                                               monkeypatch) -> None:
    import torch._weights_only_unpickler as unpickler

    if torch_list == "gone":
        monkeypatch.delattr(unpickler, "_get_allowed_globals")
    else:
        monkeypatch.setattr(unpickler, "_get_allowed_globals", lambda: 1 / 0)
    tensors = _saved(tmp_path / "tensors.ckpt", {"state_dict": {"w": torch.zeros(2, dtype=torch.float16),
                                                                "p": torch.nn.Parameter(torch.zeros(1))}})
    with pytest.raises(CheckpointReadError, match=PROTOCOL_SAID):
        read_checkpoint(tensors)
    evil = _saved(tmp_path / "evil.ckpt", {"x": _Payload(), **TENSORS})
    with pytest.raises(UnsafeCheckpointError, match="calls posix.system"):
        read_checkpoint(evil)
