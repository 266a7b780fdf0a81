"""Whether a machine's trainer has met the run's other machines, as its own log says.

A machine other than 0 writes no events (machine 0 keeps the run's), and its ``accelerate launch`` waits, silently
and for a quarter of an hour at a time, until it reaches machine 0. Once the processes have met, the trainer says so
in its log, where ``dbtui run`` on that machine reads it; a pid file beside the log names the launcher, for a
``dbtui stop`` there to say what ends it, and for a second launcher of the same machine to be refused. So does a lock
its first trainer holds: a launcher killed hard leaves its trainers running (each in a session of its own).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
from pathlib import Path

import psutil

from engine.errors import DbtuiError
from engine.runs.folder import RunFolderError, unusable_folder
from engine.runs.held_file import held, holder_pid, remember, sign
from engine.support.os_lock import lock_exclusive

MET = "dbtui trainer: the processes of the run have met"
START_SLACK_S = 0.01


def say_met(num_processes: int) -> None:
    """Into this process's log (its standard output): called once the process group is up."""
    print(f"{MET} ({num_processes} processes)", flush=True)


STOPPED = "dbtui trainer: the run stopped at step "
EXPORT_FAILED = "dbtui trainer: the run's final export failed on machine 0 after step "


def say_ended(status: str, step: int) -> None:
    """Into the log of a machine other than 0 (its first process's standard output): the run ``stopped`` (asked on
    machine 0) or its final export failed there (``export failed``), which machine 0 alone sees in the events; this
    machine's trainer exits 0 as a finished run's."""
    print(f"{EXPORT_FAILED if status == 'export failed' else STOPPED}{step}", flush=True)


def ended_at(lines: list[str]) -> tuple[str, int] | None:
    """What ``say_ended`` wrote in ``lines`` (a log's): ("stopped" or "export failed", the step), or None."""
    said = [(status, line[len(prefix):]) for line in lines
            for status, prefix in (("stopped", STOPPED), ("export failed", EXPORT_FAILED)) if line.startswith(prefix)]
    return (said[-1][0], int(said[-1][1])) if said and said[-1][1].isdigit() else None


class MeetingInLog:
    """Reads a trainer log from ``start`` (where this start's lines begin) for the line ``say_met`` writes."""

    def __init__(self, log: Path, start: int) -> None:
        self.log, self.position, self.met = log, start, False
        self._kept = b""  # the end of what was read last: the line may be cut between two reads

    def check(self) -> bool:
        if not self.met:
            try:
                with self.log.open("rb") as log:
                    log.seek(self.position)
                    read = log.read()
            except OSError:
                return False
            self.position += len(read)
            seen = self._kept + read
            self.met = MET.encode() in seen
            self._kept = seen[-len(MET):]
        return self.met


def pid_file(log: Path) -> Path:
    """Where the launcher of the trainer writing ``log`` is named (a machine other than 0)."""
    return log.with_suffix(".pid")


def write_pid(log: Path, pid: int) -> None:
    """Name the launcher with its start time, which tells it from a later process given the same number (after a
    reboot, or once the numbers wrap): a bare pid sent users to `kill` whatever process had it then."""
    with contextlib.suppress(OSError, psutil.Error):  # only a refusal's advice and the next launcher's check read it
        pid_file(log).write_text(f"{pid} {psutil.Process(pid).create_time()!r}\n", encoding="utf-8")


def running_pid(log: Path) -> int | None:
    """The launcher the file beside ``log`` names, where that very process still runs on this machine; else None."""
    try:
        pid, started = pid_file(log).read_text(encoding="utf-8").split()
        # The same boot time and clock ticks give the same figure in every process; a slack for a float's last digits.
        if abs(psutil.Process(int(pid)).create_time() - float(started)) > START_SLACK_S:
            return None
    except (OSError, ValueError, psutil.Error):  # no file, an older dbtui's bare pid, no such process (or not ours)
        return None
    return int(pid)


def forget_pid(log: Path, pid: int) -> None:
    """Remove the file beside ``log`` once the launcher it names (``pid``) has ended."""
    with contextlib.suppress(OSError, ValueError):
        if int(pid_file(log).read_text(encoding="utf-8").split()[0]) == pid:
            pid_file(log).unlink()


class MachineTrainedError(DbtuiError):
    """Another trainer of this machine's part of the run holds its lock: it would train as a machine too many."""


def machine_lock(logs: Path, profile: Path) -> Path:
    """The file that the first trainer of the machine training ``profile`` (RUN/profile-machine-N.toml) holds locked
    for its whole life, in the run's ``logs`` folder."""
    return logs / f"{profile.stem}.lock"


def hold_machine_lock(path: Path, *, resumed: bool = False) -> None:
    """Lock ``path`` until this process ends, however it ends (held_file), and write this process's pid in it. Where
    the disk has no locks it goes on unlocked, as the launch lock does. ``resumed``: the trainer resumes the run, so
    a refusal says what a resume can do (it trains the run where it is)."""
    try:
        # Never through a link: its target, no lock of this run's, would be written over, and the readers (held,
        # holder_pid) skip a link, so no second launch of this machine would be refused.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        raise _unusable_lock(path, error, resumed) from None
    try:
        locked = lock_exclusive(fd)
        if locked:
            sign(fd)
    except OSError as error:
        os.close(fd)
        raise _unusable_lock(path, error, resumed) from None
    except BaseException:
        os.close(fd)
        raise
    if locked is False:
        os.close(fd)
        pid = machine_trainer(path)
        # 0: locked, its pid not yet written (or unreadable); "pid 0" would send users to `kill 0`, their own group.
        trainer = f"another trainer (pid {pid})" if pid else "another trainer (its pid not yet written)"
        raise MachineTrainedError(f"{trainer} trains this machine's part of the run already: end it before starting "
                                  "this machine again")
    if locked is None:
        os.close(fd)
        return
    remember(fd)  # left open: the lock goes with the process


def _unusable_lock(path: Path, error: OSError, resumed: bool) -> RunFolderError:
    if error.errno in (errno.ELOOP, errno.EISDIR):
        return RunFolderError(f"cannot take the lock {path}: something other than a file (a link, a folder) is in its "
                              "place; delete it and start this machine again")
    if error.errno in (errno.EACCES, errno.EPERM) and os.path.lexists(path):
        # It is there: the file itself refuses this user (another user's, or made read-only), not its folder.
        return RunFolderError(f"cannot take the lock {path}: this user may not write the lock file itself (`ls -l "
                              f"{shlex.quote(str(path))}`: another user's trainer may have made it); start this machine "
                              "as the user who owns it, or, once no trainer of this machine's part runs, delete it and "
                              "start this machine again")
    return unusable_folder(path.parent, error, resumed=resumed, main_machine=False)  # only another machine's lock


def machine_trainer(path: Path) -> int | None:
    """The pid of the trainer that holds ``path`` locked (0 where it has not written it yet); None where none does or
    it cannot be told."""
    return holder_pid(path) if held(path) is True else None
