"""Temporaries of writes in progress (``.NAME.HOST.PID-NS.HEX.partial``): naming them after their writer, and telling
from that name when one is garbage a killed writer left (gigabytes each, hidden, never removed otherwise)."""

from __future__ import annotations

import enum
import glob
import os
import shutil
import socket
import time
import uuid
from contextlib import suppress
from pathlib import Path

THIS_HOST = socket.gethostname().replace(".", "-") or "host"  # dots out: names holding it are split on dots

# A temporary whose writer is not seen, in a pid namespace other than ours (or unknown: a name of before namespaces
# were written), is removed once untouched this long: the pid may be another container's that shares this host name
# (its processes are not seen here), writing now; a write touches its temporary far more often. Any temporary
# untouched for a day is removed (another machine's, or a name without the writer's), unless its writer is seen
# running here: no write takes a day, but a suspended laptop or a stopped process resumes its write.
DEAD_WRITER_IDLE_S = 15 * 60
STALE_PARTIAL_S = 24 * 3600


def _pid_namespace() -> str | None:
    """This process's pid namespace (its inode), where Linux tells it: pids are seen, and mean the same, only in it."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


THIS_NAMESPACE = _pid_namespace()


def writer_tag() -> str:
    """``HOST.PID-NS`` of this process (``HOST.PID`` where the namespace is unknown), for temporary names:
    ``writer_state`` tells from it whether the writer still runs."""
    pid = f"{os.getpid()}-{THIS_NAMESPACE}" if THIS_NAMESPACE else str(os.getpid())
    return f"{THIS_HOST}.{pid}"


class Writer(enum.Enum):
    RUNNING = "running"  # this machine's and namespace's, its process seen: its write goes on
    DEAD = "dead"  # this machine's and namespace's, its process gone
    NOT_SEEN = "not seen"  # this machine's, another or unknown namespace, no such pid here: probably gone
    UNKNOWN = "unknown"  # another machine's, or a name without its writer


def writer_state(host: str, pid: str, since: float | None = None) -> Writer:
    """What is known of the writer a temporary name's ``HOST.PID-NS`` (or ``HOST.PID``) names. ``since``: when its
    temporary was last touched; a process started after that is another that took the pid, not the writer."""
    import psutil

    number, _, namespace = pid.partition("-")
    if host != THIS_HOST or not number.isdigit():
        return Writer.UNKNOWN
    ours = namespace != "" and namespace == THIS_NAMESPACE
    try:
        started = psutil.Process(int(number)).create_time()
    except psutil.Error:
        return Writer.DEAD if ours else Writer.NOT_SEEN
    if not ours:
        return Writer.UNKNOWN
    return Writer.DEAD if since is not None and started > since else Writer.RUNNING


def writer_gone(host: str, pid: str) -> bool:
    """Whether the writer of a temporary name's ``HOST.PID-NS`` is gone: this machine's, and this pid namespace's
    (a name of before namespaces were written is taken for this one's, as it was then), and no longer running."""
    number, _, namespace = pid.partition("-")
    state = writer_state(host, pid)
    return state is Writer.DEAD or (state is Writer.NOT_SEEN and not namespace)


def partial_path(target: Path) -> Path:
    """A temporary name beside ``target``, its own to each write (``.NAME.HOST.PID-NS.HEX.partial``), so that two
    writes of one output never share it."""
    # Not tempfile.mkstemp/mkdtemp: they create owner-only outputs too.
    return target.with_name(f".{target.name}.{writer_tag()}.{uuid.uuid4().hex[:8]}.partial")


def last_touched(path: Path) -> float:
    """When ``path`` last changed: for a folder, the newest of it and everything inside (a folder's own time changes
    only when an entry comes or goes, not while a file in it is written)."""
    times = [path.lstat().st_mtime]
    if path.is_dir() and not path.is_symlink():
        times += [inside.lstat().st_mtime for inside in path.rglob("*")]
    return max(times)


def abandoned_partial(path: Path, target_name: str) -> bool:
    """Whether ``path``, a temporary of a write of ``target_name`` (see partial_path; earlier versions' names lack
    the writer or its namespace), is garbage: its writer dead, or not seen and it idle for DEAD_WRITER_IDLE_S, or
    its writer unknown and it idle for STALE_PARTIAL_S. A writer seen running keeps it, however long idle."""
    writer = path.name[len(target_name) + 2:].split(".")  # HOST, PID-NS, HEX, "partial"
    touched = last_touched(path)
    state = writer_state(writer[0], writer[1], touched) if len(writer) == 4 else Writer.UNKNOWN
    idle = time.time() - touched
    if state is Writer.UNKNOWN:
        return idle > STALE_PARTIAL_S
    return state is Writer.DEAD or (state is Writer.NOT_SEEN and idle > DEAD_WRITER_IDLE_S)


def partials_of(target: Path) -> list[Path]:
    """The temporaries of writes of ``target`` beside it, whoever's (``.NAME.partial`` too, earlier versions')."""
    name = glob.escape(target.name)
    return sorted([*target.parent.glob(f".{name}.partial"), *target.parent.glob(f".{name}.*.partial")])


def remove_dead_partials(target: Path) -> None:
    """Temporary files and folders of earlier writes of ``target`` whose writer was killed (an error or a Ctrl-C
    removes its own). A live writer's (another conversion to the same name, now) is left to it."""
    for path in partials_of(target):
        with suppress(OSError):  # gone meanwhile, or not ours to remove
            if not abandoned_partial(path, target.name):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def size_of(path: Path) -> int:
    """Bytes a file, or every file under a folder, holds (0 for what is gone meanwhile)."""
    with suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            return sum(inside.lstat().st_size for inside in path.rglob("*") if inside.is_file())
        return path.lstat().st_size
    return 0
