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


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here")
@pytest.mark.parametrize("folder", ["/proc", "/sys"])
def test_an_output_in_a_system_folder_is_not_said_as_a_full_disk(folder: str) -> None:
    """`dbtui convert … /proc/x.safetensors` (or the wizard's conversion into such a folder) said "not enough disk
    space in /proc: … 0 bytes is free. Free some space", where no space can be freed."""
    from engine.convert._files import check_free_space

    with pytest.raises(ConvertError) as refused:
        check_free_space(Path(folder) / "x.safetensors", 1000)
    assert not isinstance(refused.value, NotEnoughDiskError)
    assert str(refused.value) == (f"cannot write x.safetensors in {folder}: its file system has no disk behind it (0 bytes "
                                  "in all, as /proc and /sys), it holds no files; choose an output folder on a disk")
