"""The fit test in a process of its own, as every trainer runs: what the wizard starts.

Training in the wizard's own process would leave it holding the GPU (a CUDA context and the
allocator's cached blocks) while the real run starts beside it, and a crash there would take the
wizard down. The child, ``python -m engine.runs.fit_process PROFILE --steps N``, prints each event
and then the result as JSON lines on stdout; it stops training when its parent goes away. A caller
that no longer wants the result (the user left the screen or quit) says so through ``stop``, and
the child is ended at once rather than left training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from engine.errors import DbtuiError
from engine.events import Event, event_from_dict
from engine.profile import Profile, load_profile, save_profile
from engine.runs.fit import FitResult, fit_test
from engine.support.child_process import how_it_ended, tagged, wait_unless_stopped
from engine.support.process_exit import exit_with

RESULT_KEY = "fit_result"
ERROR_KEY = "fit_error"  # the child's own word on why it has no result


class FitProcessError(DbtuiError):
    """The fit test's process failed; the message is its own last word."""


def run_fit_process(
    profile: Profile, steps: int = 10, emit: Callable[[Event], None] | None = None, *, price_per_hour: float | None = None,
    stop: Callable[[], bool] | None = None,
) -> FitResult | None:
    """``engine.runs.fit.fit_test`` in a child process; events reach ``emit`` as they happen. None when
    ``stop()`` turned true first."""
    with tempfile.TemporaryDirectory(prefix="dbtui-fit-") as tmp:
        path = save_profile(profile, Path(tmp) / "profile.toml")
        # The child trains in a folder of ours: when it is stopped it is killed, before it could remove its own.
        command = [sys.executable, "-m", "engine.runs.fit_process", str(path), "--steps", str(steps), "--work-dir", tmp]
        if price_per_hour is not None:
            command += ["--price-per-hour", repr(price_per_hour)]
        # stderr to a file: libraries write plenty there, and an unread pipe would block the child.
        with (Path(tmp) / "stderr.log").open("w+", encoding="utf-8") as errors:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
            # Read in a thread of its own, so that this one can watch ``stop`` while the child trains.
            results: list[FitResult | str | None] = []
            reader = threading.Thread(target=lambda: results.append(_read_output(process.stdout, emit)),
                                      name="dbtui-fit-output", daemon=True)
            reader.start()
            finished = wait_unless_stopped(process, stop)
            reader.join()  # the pipe ends with the child (it starts none that hold it)
            process.stdout.close()
            if not finished:
                return None
            answer = results[0] if results else None
            errors.seek(0)
            stderr = errors.read()
    if isinstance(answer, FitResult):
        return answer
    raise FitProcessError(answer if isinstance(answer, str) else how_it_ended("the fit test", process.returncode, stderr))


def _read_output(lines, emit: Callable[[Event], None] | None) -> FitResult | str | None:
    """The events, passed to ``emit`` as they come; then the result, or the child's own word on why it has none."""
    answer: FitResult | str | None = None
    for line in lines:
        ended = tagged(line, (RESULT_KEY, ERROR_KEY))
        if ended is not None:
            answer = FitResult(**ended[RESULT_KEY]) if RESULT_KEY in ended else str(ended[ERROR_KEY])
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a library's own print
        if not isinstance(data, dict):
            continue
        if emit:
            try:
                event = event_from_dict(data)
            except (ValueError, TypeError, KeyError):
                continue
            emit(event)
    return answer


def _stop_when_orphaned(cancel: threading.Event) -> None:
    parent = os.getppid()

    def watch() -> None:
        while not cancel.wait(1.0):
            if os.getppid() != parent:
                cancel.set()

    threading.Thread(target=watch, name="dbtui-fit-parent", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.runs.fit_process", description="The fit test, for another process to read.")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--price-per-hour", type=float)
    parser.add_argument("--work-dir", type=Path, help="where the test's run folder goes (the system's temp folder by default)")
    args = parser.parse_args(argv)

    cancel = threading.Event()
    _stop_when_orphaned(cancel)
    try:
        result = fit_test(load_profile(args.profile), args.steps, lambda event: print(event.to_json(), flush=True),
                          price_per_hour=args.price_per_hour, cancel=cancel, work_dir=args.work_dir)
    except DbtuiError as error:
        # On a line of its own (a library's print may lack its newline); stderr holds libraries' warnings.
        advice = getattr(error, "advice", "")  # the wizard shows this line alone: what to do with it
        print("\n" + json.dumps({ERROR_KEY: f"{error}" + (f"; {advice}" if advice else "")}), flush=True)
        return 1
    print("\n" + json.dumps({RESULT_KEY: dataclasses.asdict(result)}), flush=True)
    return 0


if __name__ == "__main__":
    exit_with(main)
