"""The dataset doctor's worker pool: Ctrl-C is the parent's to answer, and the work not reached is not waited for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.dataset import pool


def _interrupt(item: int) -> int:
    return item


def test_workers_leave_ctrl_c_to_the_parent_which_stops_without_waiting(monkeypatch) -> None:
    before = signal.getsignal(signal.SIGINT)
    try:
        pool._leave_interrupts_to_the_parent()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)

    seen = []

    def interrupted(event) -> None:
        if event.kind == "phase_progress":
            seen.append(event.done)
            raise KeyboardInterrupt

    monkeypatch.setattr(pool, "MIN_FILES_FOR_POOL", 1)
    with pytest.raises(KeyboardInterrupt):
        pool.run_phase("check", _interrupt, list(range(2000)), emit=interrupted, workers=2)
    assert seen and seen[0] < 2000


# In a fresh process, as a Textual app leaves it: sys.stderr replaced by a capture whose fileno() is -1.
# (A pytest-xdist worker already runs a resource tracker, which would hide the failure.)
_CHECK_WITH_CAPTURED_STDERR = """
import sys
from PIL import Image
from engine.dataset import check_dataset
from engine.dataset.pool import MIN_FILES_FOR_POOL

class Capture:  # what it is given goes to stdout, so a failure shows in the test's message
    def write(self, text): return sys.stdout.write(text)
    def flush(self): sys.stdout.flush()
    def fileno(self): return -1

folder = sys.argv[1]
for i in range(MIN_FILES_FOR_POOL):
    Image.new("RGB", (64, 64), (i * 5, 0, 0)).save(f"{folder}/{i}.png")
sys.stderr = Capture()
report = check_dataset(folder, resolution=64, workers=2)
print(report.summary.images)
"""


def test_the_pool_starts_when_stderr_has_no_file_descriptor(tmp_path) -> None:
    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", _CHECK_WITH_CAPTURED_STDERR, str(tmp_path)], cwd=root,
                          env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split()[-1] == str(pool.MIN_FILES_FOR_POOL)


# Each pool swapped the global sys.stderr from its (worker) thread to start the tracker: other threads' output went to
# the terminal meanwhile, and a quit in that window restored a dead capture. Fresh process: no tracker runs yet.
_TWO_POOLS_WITH_CAPTURED_STDERR = """
import contextlib
import sys
from engine.dataset import pool

class Capture:
    def write(self, text): return sys.stdout.write(text)
    def flush(self): sys.stdout.flush()
    def fileno(self): return -1

swaps, redirect = [], contextlib.redirect_stderr
contextlib.redirect_stderr = lambda target: swaps.append(target) or redirect(target)
sys.stderr = Capture()
for _ in range(2):
    assert pool.run_phase("check", abs, list(range(-pool.MIN_FILES_FOR_POOL, 0)), workers=2)[0] == pool.MIN_FILES_FOR_POOL
print("swaps", len(swaps))
"""


def test_the_tracker_is_started_once_and_stderr_swapped_only_then(tmp_path) -> None:
    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", _TWO_POOLS_WITH_CAPTURED_STDERR], cwd=root,
                          env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "swaps 1" in done.stdout, done.stdout + done.stderr


def test_the_wizard_starts_the_tracker_before_textual_takes_stderr(monkeypatch) -> None:
    """`dbtui serve` runs the wizard as `python -m dbtui`, through the same run_wizard."""
    import argparse

    import dbtui.app
    from dbtui.cli import cmd_wizard

    said: list[str] = []

    class App:
        return_code = 0

        def run(self) -> None:
            said.append("app ran")

    monkeypatch.setattr(cmd_wizard, "check_terminal_size", lambda: None)
    monkeypatch.setattr(cmd_wizard, "check_terminal_attached", lambda: None)
    monkeypatch.setattr(dbtui.app, "make_app", App)
    monkeypatch.setattr(pool, "start_resource_tracker", lambda: said.append("tracker started"))
    assert cmd_wizard.run_wizard(argparse.Namespace()) == 0
    assert said == ["tracker started", "app ran"]


def test_the_pool_starts_no_more_processes_than_cpus_or_files(monkeypatch) -> None:
    """`dataset check --workers 400` on 120 images started a process per chunk: a minute instead of a second."""
    started = []

    class Recorded:
        def __init__(self, *, max_workers: int, **_: object) -> None:
            started.append(max_workers)

        def map(self, function, items, chunksize: int):
            return map(function, items)

        def shutdown(self, **_: object) -> None:
            pass

    monkeypatch.setattr(pool, "ProcessPoolExecutor", Recorded)
    monkeypatch.setattr(pool, "start_resource_tracker", lambda: None)
    monkeypatch.setattr(pool, "default_workers", lambda: 8)
    assert pool.run_phase("check", _interrupt, list(range(120)), workers=400) == list(range(120))
    monkeypatch.setattr(pool, "MIN_FILES_FOR_POOL", 1)
    pool.run_phase("check", _interrupt, list(range(3)), workers=400)
    assert started == [8, 3]


@pytest.mark.parametrize("workers", ["-3", "0"])
def test_workers_below_one_are_refused(workers: str, tmp_path: Path, capsys) -> None:
    from dbtui.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["dataset", "check", str(tmp_path), "--workers", workers])
    assert exit_.value.code == 2 and f"--workers: {workers} is too small: give 1 or more" in capsys.readouterr().err
