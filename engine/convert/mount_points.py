"""Whether a folder is a mount point, which a folder cannot be renamed onto (EBUSY).

``os.path.ismount`` compares the folder's device with its parent's, so it misses a bind mount of a folder on
the same file system (``mount --bind``, a container's volume). Linux lists every mount point, bind mounts
included, in /proc/self/mountinfo.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
MOUNT_POINT_FIELD = 4  # the fifth: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"
_ESCAPE = re.compile(rb"\\([0-7]{3})")  # the kernel writes a space, tab, newline or backslash as \040, \011, \012, \134


def read_mountinfo() -> bytes | None:
    """/proc/self/mountinfo, or None where there is none (macOS, Windows) or it cannot be read."""
    try:
        return MOUNTINFO.read_bytes()
    except OSError:
        return None


def listed_mount_points(mountinfo: bytes) -> set[str]:
    """The mount points ``mountinfo`` lists, as paths."""
    points = set()
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        if len(fields) > MOUNT_POINT_FIELD:
            raw = _ESCAPE.sub(lambda match: bytes([int(match.group(1), 8)]), fields[MOUNT_POINT_FIELD])
            points.add(os.fsdecode(raw))
    return points


def is_mount_point(folder: Path) -> bool:
    """Whether ``folder`` is a mount point by its device, or by the mount table where there is one."""
    if os.path.ismount(folder):
        return True
    mountinfo = read_mountinfo()
    return mountinfo is not None and os.path.realpath(folder) in listed_mount_points(mountinfo)
