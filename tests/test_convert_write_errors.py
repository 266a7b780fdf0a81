"""What a converter says when the disk refuses its output: in words, with what to do, never as an internal error."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from engine.convert import ConvertError, NotEnoughDiskError, OutputExistsError
from engine.convert._files import atomic_file


@pytest.mark.parametrize("code", [errno.EACCES, errno.EINVAL, errno.EIO, errno.EPERM])
def test_a_file_system_without_hard_links_still_takes_a_new_file(code: int, tmp_path: Path, monkeypatch) -> None:
    """FUSE and SMB mounts answer link() with EACCES, EINVAL or EIO: after a whole conversion, "permission denied"
    or a raw OSError."""
    def no_link(source: str, target: str, *_: object, **__: object) -> None:
        raise OSError(code, os.strerror(code), source, None, target)

    monkeypatch.setattr(os, "link", no_link)
    target = tmp_path / "m.safetensors"
    with atomic_file(target, overwrite=False) as tmp:
        tmp.write_text("ours")
    assert target.read_text() == "ours" and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    with pytest.raises(OutputExistsError, match="appeared while converting"):
        with atomic_file(tmp_path / "n.safetensors", overwrite=False) as tmp:
            tmp.write_text("ours")
            (tmp_path / "n.safetensors").write_text("theirs")
    assert (tmp_path / "n.safetensors").read_text() == "theirs"


@pytest.mark.parametrize(("code", "kind", "said"), [
    (errno.EFBIG, ConvertError, r"too large for this file system \(FAT32 takes at most 4 GB a file\); write to another"),
    (errno.EDQUOT, NotEnoughDiskError, "your disk quota is used up in .*: free some of your files"),
])
def test_a_file_too_large_or_a_quota_is_said_as_such(code: int, kind: type, said: str, tmp_path: Path) -> None:
    target = tmp_path / "m.safetensors"
    with pytest.raises(kind, match=said):
        with atomic_file(target) as tmp:
            raise OSError(code, os.strerror(code), str(tmp))
    assert list(tmp_path.iterdir()) == []
