"""A conversion waiting for another said to end it with `kill PID`, whatever that process was: a run's trainer
converting its base model takes that as a stop of its whole run, and ends only once its conversion is done, which
hurried the waiter not at all. It now says what the process is, and for a run's trainer, to wait or `dbtui stop RUN`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.events import Warning as WarningEvent
from engine.models.conversion_holder import ConversionHeldError
from engine.models.conversion_lock import converting_into, waiting_said

HOLD = """import sys, time
from pathlib import Path
from engine.models.conversion_lock import converting_into
with converting_into(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(300)
"""


@contextmanager
def _held(folder: Path, *arguments: str) -> Iterator[subprocess.Popen]:
    """Another process holding the conversion into ``folder``, its command line ending in ``arguments``."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), *arguments], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def _said_while_waiting(folder: Path, holder: subprocess.Popen) -> WarningEvent:
    said: list = []
    told = threading.Event()

    def emit(event: object) -> None:
        said.append(event)
        told.set()

    def wait() -> None:
        with converting_into(folder, waiting_said(emit, Path("m.safetensors"), folder)):
            pass

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    try:
        assert told.wait(30)
    finally:
        holder.kill()
        waiter.join(30)
    assert not waiter.is_alive() and [type(event) for event in said] == [WarningEvent]
    return said[0]


def test_a_runs_trainer_holding_the_conversion_is_named_and_stopped_with_its_run(tmp_path: Path) -> None:
    folder, run = tmp_path / "models" / "m-diffusers", tmp_path / "runs" / "person-1"
    with _held(folder, "engine.runs.worker", str(run)) as holder:
        said = _said_while_waiting(folder, holder)
    assert f"by process {holder.pid}, the trainer of the run in {run}," in said.message
    assert f"`dbtui stop {run}`" in said.advice and "wait for it" in said.advice
    assert f"`kill {holder.pid}`" not in said.advice


def test_any_other_holder_is_shown_by_its_command_line(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "m-diffusers"
    with _held(folder, "convert", "m.safetensors") as holder:
        said = _said_while_waiting(folder, holder)
    assert f"by process {holder.pid}, `{sys.executable} -c" in said.message and "m.safetensors`" in said.message
    assert f"`kill {holder.pid}`" in said.advice


def test_a_stopped_runs_trainer_is_not_advised_a_kill(tmp_path: Path) -> None:
    folder, run = tmp_path / "models" / "m-diffusers", tmp_path / "runs" / "person-1"
    with _held(folder, "engine.runs.worker", str(run)) as holder:
        os.kill(holder.pid, signal.SIGSTOP)
        with pytest.raises(ConversionHeldError) as raised:
            with converting_into(folder):
                pass
    message = str(raised.value)
    assert f"the trainer of the run in {run}, which is stopped" in message and f"`dbtui stop {run}`" in message
    assert f"`kill {holder.pid}`" not in message


def test_a_dbtui_command_is_shown_as_typed(tmp_path: Path) -> None:
    """A console script runs under its interpreter (its shebang), so /proc reads `…/python3 …/bin/dbtui ARGS`: that
    was shown whole, where `dbtui ARGS` is what the user typed in the other terminal."""
    folder, script = tmp_path / "models" / "m-diffusers", tmp_path / "bin" / "dbtui"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{HOLD}", encoding="utf-8")
    script.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    holder = subprocess.Popen([str(script), str(folder)], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        said = _said_while_waiting(folder, holder)
    finally:
        holder.kill()
        holder.wait()
    assert f"by process {holder.pid}, `dbtui {folder}`," in said.message, said.message


def test_machine_n_trainer_of_a_run_of_several_machines_is_stopped_from_machine_0(tmp_path: Path) -> None:
    """Machine 1's trainer was advised `dbtui stop RUN` as any run's: on machine 1 that command only explains (the
    run's controls are machine 0's), and a `kill` of it fails the run on every machine rather than stopping it."""
    folder, run = tmp_path / "models" / "m-diffusers", tmp_path / "runs" / "person-1"
    with _held(folder, "engine.runs.worker", str(run), "--profile", str(run / "profile-machine-1.toml")) as holder:
        said = _said_while_waiting(folder, holder)
    assert f"by process {holder.pid}, machine 1's trainer of the run of several machines in {run}," in said.message
    assert f"`dbtui stop {run}` on machine 0" in said.advice and "fails on every machine" in said.advice
    assert f"`kill {holder.pid}`" not in said.advice


def test_a_stopped_machine_n_trainer_is_stopped_from_machine_0(tmp_path: Path) -> None:
    folder, run = tmp_path / "models" / "m-diffusers", tmp_path / "runs" / "person-1"
    with _held(folder, "engine.runs.worker", str(run), "--profile", str(run / "profile-machine-2.toml")) as holder:
        os.kill(holder.pid, signal.SIGSTOP)
        with pytest.raises(ConversionHeldError) as raised:
            with converting_into(folder):
                pass
    assert f"`dbtui stop {run}` on machine 0" in str(raised.value) and "machine 2's trainer" in str(raised.value)
