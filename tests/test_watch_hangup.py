"""`dbtui run p.toml > run.log 2>&1 &`, then logging out: the shell passes its SIGHUP on to the job. The trainer ignores
it and trains on; `dbtui run`, which wrote the log, ended there, and the log stopped mid-run, saying nothing."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

# A foreground `dbtui run`'s watcher, with a trainer that ends the run once the watcher has shown its first step; the
# watcher is sent SIGHUP as it shows that step, as a closed session sends it to every job of its shell.
WATCHER = """
import os, signal, sys
from pathlib import Path
from dbtui.cli.watch import watch
from dbtui.console import PlainPrinter
from engine.events import RunFinished, RunStarted, StepEnded
from engine.runs.folder import RunFolder

folder = RunFolder(Path(sys.argv[1])).create()

def write(*events):
    with folder.events.open("a", encoding="utf-8") as file:
        for event in events:
            file.write(event.to_json() + "\\n")

def step(n):
    return StepEnded(step=n, total_steps=2, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=1.0)

class Trainer:
    def send_signal(self, signum):
        raise AssertionError(f"the trainer was sent signal {signum}")
    def poll(self):
        return 0 if "run_finished" in folder.events.read_text(encoding="utf-8") else None
    def wait(self):
        return 0

class HangsUp(PlainPrinter):
    def __call__(self, event):
        super().__call__(event)
        if event.kind == "step_ended" and event.step == 1:
            os.kill(os.getpid(), signal.SIGHUP)
            write(step(2), RunFinished(step=2, outputs={}, seconds=1.0))

write(RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=2, resumed_from_step=0), step(1))
watched = watch(folder, HangsUp(every=1), Trainer())
print(f"watched to the {watched.last.kind}, interrupted: {watched.interrupted}", flush=True)
"""


def _watch(tmp_path: Path, stdout: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.run([sys.executable, "-c", WATCHER, str(tmp_path / "run")], stdout=stdout, stderr=stdout,
                           stdin=subprocess.DEVNULL, env=env, timeout=120, restore_signals=True)
    return child.returncode


def test_a_run_whose_output_goes_to_files_logs_on_to_its_end_after_a_hangup(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with log.open("wb") as file:
        returncode = _watch(tmp_path, file.fileno())
    text = log.read_text(encoding="utf-8")
    assert returncode == 0, text
    assert "step 2/2" in text and "watched to the run_finished, interrupted: False" in text


def test_on_a_terminal_a_hangup_still_ends_the_watcher_alone(tmp_path: Path) -> None:
    """The terminal is gone: nothing is left to show the run to (the trainer, which ignores SIGHUP, trains on)."""
    main, terminal = pty.openpty()
    try:
        returncode = _watch(tmp_path, terminal)
    finally:
        os.close(terminal)
        os.close(main)
    assert returncode == -signal.SIGHUP

