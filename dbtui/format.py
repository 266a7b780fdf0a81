"""Small text formatting, and reading of typed amounts, shared by screens and the CLI."""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import DbtuiError

if TYPE_CHECKING:
    from engine.runs.folder import RunFolder


class PriceError(DbtuiError, ValueError):
    """A price per hour that is not a finite amount of zero or more."""


def read_price(text: str) -> float:
    """A price per hour as typed: a finite amount of money, zero or more (float() also reads "nan" and "inf")."""
    try:
        value = float(text)
    except ValueError:
        raise PriceError(f"'{text}' is not a number, e.g. 2.49") from None
    if not math.isfinite(value) or value < 0:
        raise PriceError(f"{text} is not a price: give 0 or more, e.g. 2.49")
    return value


def duration(seconds: float | None) -> str:
    """``1h 05m``, ``3m 20s``, ``12s``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def profile_gone(folder: RunFolder) -> str | None:
    """"missing", "not a file (…)" or "empty" where the run's profile.toml cannot be what resume and export read; None
    otherwise (a profile with problems is told them when it loads). An empty one, from a copy or write cut short, was
    told as a profile lacking model.pretrained and concepts, to be filled in by hand."""
    if not folder.profile.is_file():
        # A folder of that name takes the profile put back into it (`cp P RUN/profile.toml`), and resume refuses it.
        return "not a file (move it out of the run folder first)" if folder.profile.exists() else "missing"
    try:
        return None if folder.profile.read_bytes().strip() else "empty"
    except OSError:
        return None


def resume_hint(folder: RunFolder) -> str:
    """How to go on with a run that stopped: from its latest checkpoint, or from the start when it saved none."""
    from engine.runs.checkpoints import NO_WHOLE_CHECKPOINT, complete_checkpoints, damage_if_still_there, newest_whole
    from engine.runs.resume_point import last_saved_step

    gone = profile_gone(folder)
    if gone:  # resume trains the profile kept there, and refuses a run without it
        return (f"Its {folder.profile.name} is {gone}, which `dbtui resume` trains: resume it with the profile it was "
                "started from, `dbtui run PROFILE --resume` (same name and output_dir).")
    command = f"dbtui resume {shlex.quote(str(folder.path))}"
    done = complete_checkpoints(folder)
    if done and (damage := damage_if_still_there(done[-1][1])):
        # `dbtui resume` refuses a damaged latest checkpoint (a copy cut short, a disk error): the hint said to resume it.
        earlier = newest_whole(done[:-1])
        return (f"Its latest checkpoint (step {done[-1][0]}) is damaged: {damage}; "
                + (f"resume from the newest whole one with: {command} --from {earlier[0]}" if earlier else NO_WHOLE_CHECKPOINT))
    if done:
        resume = f"Resume from its latest checkpoint (step {done[-1][0]}) with: {command}"
        if _machines(folder) > 1:  # it resumes machine 0's part alone, whose trainer then waits for the others
            return (f"{resume} on machine 0, and on every other machine N (with the --set values it was started with; "
                    f"on a disk of its own, with machine 0's checkpoints/step-{done[-1][0]:08d} copied into its "
                    "checkpoints/ first): `dbtui run PROFILE --resume --set launch.machine_rank=N`")
        return resume
    saved = last_saved_step(folder)
    if saved is not None:  # deleted or moved by hand: the resume refuses to train it again from step 0
        return (f"Its checkpoints (up to step {saved}) are gone from {folder.checkpoints}: put them back, then "
                f"`{command}`.")
    if _machines(folder) > 1:  # each machine's resume needs the checkpoint: the run starts again as it was started
        return ("No checkpoint was saved yet; `dbtui run PROFILE` on every machine, as the run was started (without "
                "--resume), trains it from the start.")
    return f"No checkpoint was saved yet; `{command}` trains it from the start."


def _machines(folder: RunFolder) -> int:
    """How many machines the run in ``folder`` trains on, by its profile.toml; 1 where that cannot be read (a resume
    then says why)."""
    from engine.profile import ProfileError
    from engine.runs.stored_profile import run_profile

    try:
        return run_profile(folder).launch.num_machines
    except (ProfileError, OSError):
        return 1


def goes_on(folder: Path) -> str:
    """Where a run the app leaves goes on, and the commands that follow and stop it: absolute, for a shell opened
    anywhere (after an SSH drop it starts in ~)."""
    where = shlex.quote(str(folder.absolute()))
    return f"the run goes on in {folder.absolute()}: `dbtui attach {where}` follows it, `dbtui stop {where}` stops it."


def launch_wait_words(folder: Path) -> str:
    """Said where another launch into ``folder`` holds it: that wait may take minutes (its images checked), and was
    silent, read as a hang."""
    from engine.runs.launch_lock import LAUNCH_WAIT_S

    return (f"waiting for another launch into {folder} to check its images and start its trainer (at most "
            f"{LAUNCH_WAIT_S / 60:.0f} min)…")
