"""Who holds a conversion's lock (engine/models/conversion_lock.py). Its holder writes itself into the lock file as
temporaries name their writer (``HOST.PID-NS``, engine/convert/partials.py: a pid means something only on its own
machine and in its own pid namespace), so that a conversion waiting for it says which process it waits on, and gives
up on one that is stopped (Ctrl-Z in its terminal), which else held it, and the wizard's Convert, for ever.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from engine.convert.partials import Writer, writer_state, writer_tag
from engine.errors import DbtuiError
from engine.support.run_marks import profile_machine


class ConversionHeldError(DbtuiError):
    """The conversion waited for is held by a stopped process: no wait ends."""


@dataclass(frozen=True)
class Holder:
    pid: int
    stopped: bool  # suspended (Ctrl-Z, kill -STOP): it converts nothing until continued
    command: tuple[str, ...] = ()  # its command line, where /proc lets this user read it

    @property
    def run(self) -> str | None:
        """The run folder of a run's trainer (``python -m engine.runs.worker RUN_DIR``, engine/runs/command.py),
        which converts the run's base model before its first step; else None."""
        if "engine.runs.worker" not in self.command:
            return None
        after = self.command[self.command.index("engine.runs.worker") + 1:]
        return after[0] if after else None

    @property
    def machine(self) -> str | None:
        """The number of the machine other than 0 whose trainer this is (engine/runs/launcher.py names its
        ``--profile RUN/profile-machine-N.toml``); None for machine 0's, or one run's only machine."""
        if self.run is None or "--profile" not in self.command[:-1]:
            return None
        return profile_machine(Path(self.command[self.command.index("--profile") + 1]).name)

    @property
    def stop(self) -> str:
        """The command that ends its run: `dbtui stop` stops a run of several machines on machine 0 alone (on machine
        N it only explains, cli/cmd_runs.py), and the run's folder may lie elsewhere there."""
        command = f"`dbtui stop {shlex.quote(str(self.run))}`"
        return command if self.machine is None else f"{command} on machine 0 (naming the run's folder there)"

    @property
    def what(self) -> str:
        """``process PID`` and what it runs, where that can be read."""
        if self.machine is not None:
            return f"process {self.pid}, machine {self.machine}'s trainer of the run of several machines in {self.run}"
        if self.run is not None:
            return f"process {self.pid}, the trainer of the run in {self.run}"
        return f"process {self.pid}, `{_shown(self.command)}`" if self.command else f"process {self.pid}"

    @property
    def ending(self) -> str:
        """How to end its conversion instead of waiting. A run's trainer takes a `kill` as `dbtui stop`: it ends
        its run, once its conversion is done (set-up checks for a stop only between its stages), and hurries this one
        not at all, which `kill PID` advised unsaid; any other command as the user ends it. Machine N's trainer has met
        the others before it converts (engine/runs/worker.py): a `kill` ends its part alone, failing the run (README)."""
        if self.machine is not None:
            return ("a `kill` of that trainer ends this machine's part of the run once its conversion is done, without "
                    "hurrying this one, and the run then fails on every machine: wait for it, or, to end the run too, "
                    f"{self.stop}")
        if self.run is not None:
            return (f"that process is the run's trainer, and a `kill` of it ends the run, once the conversion is done, "
                    f"without hurrying this one: wait for it, or, to end the run too, {self.stop}")
        if self.command:
            return (f"to end it instead, end that command (Ctrl-C in its terminal, or `kill {self.pid}`) and this one "
                    "converts")
        return f"to end it instead, stop that process (`kill {self.pid}`) and this one converts"


def _shown(command: tuple[str, ...]) -> str:
    """The command line as typed: ``dbtui …`` for dbtui's script or ``python -m dbtui``, else as it is."""
    if len(command) > 1 and os.path.basename(command[1]) == "dbtui":
        # A script's shebang makes its interpreter the process: /proc reads `…/python3 …/bin/dbtui ARGS`.
        command = ("dbtui", *command[2:])
    elif command[1:3] == ("-m", "dbtui"):
        command = ("dbtui", *command[3:])
    return shlex.join(command)


def sign(fd: int) -> None:
    """Write this process into the lock file open as ``fd``, over whatever an earlier holder wrote."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, writer_tag().encode(), 0)


def holder_of(lock: Path) -> Holder | None:
    """The process the lock file names, where it runs on this machine and is seen from here; else None."""
    import psutil

    try:
        host, _, pid = lock.read_text(encoding="ascii").strip().partition(".")
    except (OSError, ValueError):
        return None
    if writer_state(host, pid) is not Writer.RUNNING:
        return None
    number = int(pid.partition("-")[0])
    try:
        process = psutil.Process(number)
        stopped = process.status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return None
    try:
        command = tuple(process.cmdline())
    except psutil.Error:  # another user's process, where /proc hides it: named by its pid alone
        command = ()
    return Holder(number, stopped, command)


def held_by_stopped(folder: Path, holder: Holder) -> ConversionHeldError:
    return ConversionHeldError(
        f"another conversion into {folder} is held by {holder.what}, which is stopped (Ctrl-Z in its terminal, "
        f"or kill -STOP): it converts nothing until continued, so this one does not wait for it. Continue it (`fg` in "
        f"its terminal, or `kill -CONT {holder.pid}`) and try again once it ends, " + (
            # A trainer stopped in its set-up ends its run only once its conversion is done: no sooner for a kill.
            f"when this one uses its conversion; to end that run too, {holder.stop} as well"
            if holder.run is not None else
            f"or end it (`kill {holder.pid}`, then `kill -CONT {holder.pid}`) and try again at once"))
