"""Whether a run's recorded pid is still its trainer: after a crash and a reboot the pid can belong to any process."""

from __future__ import annotations

import os
from pathlib import Path


def trainer_alive(pid: int, run_dir: Path) -> bool:
    """True while ``pid`` is a live dbtui trainer of ``run_dir``. After a reboot or a container restart (a rented pod's),
    a crashed trainer's pid can belong to another process, another run's trainer included, and the run read as running
    for ever, never to be resumed: where /proc says what a process runs, one that is not engine.runs.worker given this
    folder is not its trainer."""
    if not pid_alive(pid) or _exited_or_kernel(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS), or not ours to read: alive as far as can be told
    # Empty for a kernel thread or a zombie (told above by their stat), and for a moment after Popen returns, before
    # the kernel has the new program's arguments (tens of ms on a loaded machine): a trainer just started, read then
    # as crashed, would let a second launch start another on its run. So empty is "cannot tell": alive.
    return not command or b"engine.runs.worker" in command and _names_folder(pid, command, run_dir)


_PF_KTHREAD = 0x00200000  # the kernel-thread bit of a process's flags (linux/sched.h)


def _exited_or_kernel(pid: int) -> bool:
    """Whether /proc says ``pid`` has exited and is not yet reaped (a zombie) or is a kernel thread: after a reboot a
    crashed run's pid can be kthreadd's (2) or a kworker's, and without this the run read as running for ever."""
    try:
        fields = stat_fields(pid)
    except OSError:
        return False  # no /proc: alive as far as can be told
    return fields[0] in ("Z", "X") or int(fields[6]) & _PF_KTHREAD != 0


def stopped_by_signal(pid: int) -> bool:
    """Whether /proc says ``pid`` is stopped (SIGSTOP, SIGTSTP: Ctrl-Z of its foreground job; or a debugger's stop): it
    is alive, and does nothing until continued. False where there is no /proc to tell (macOS) or no such process."""
    try:
        return stat_fields(pid)[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the process's name, from its state on (so flags is the 7th)."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    # The name, in brackets, may hold spaces, brackets and bytes that are not UTF-8: the fields start after the last.
    return stat[stat.rindex(b")") + 1:].decode("ascii", "replace").split()


def _names_folder(pid: int, command: bytes, run_dir: Path) -> bool:
    """Whether one of the command's arguments is ``run_dir``, symbolic links resolved: the launcher passes it absolute,
    a worker started by hand may have it relative to its own working folder."""
    wanted = os.path.realpath(run_dir)
    try:
        cwd: str | None = os.readlink(f"/proc/{pid}/cwd")
    except OSError:  # another user's process: its absolute arguments are still compared
        cwd = None
    for argument in filter(None, (os.fsdecode(arg) for arg in command.split(b"\0"))):
        if not os.path.isabs(argument) and cwd is None:
            continue
        if os.path.realpath(os.path.join(cwd or "", argument)) == wanted:
            return True
    return False


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # 0 and below name process groups (a damaged state file's), which os.kill finds alive
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # a pid beyond any the kernel gives
        return False
    except PermissionError:
        return True
    return True
