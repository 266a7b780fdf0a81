"""Two processes asking for one built-in at once (the wizard and a run, or the test suite's workers) build it once:
the second waits for the first's build and reads it."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

import engine.builtin as builtin


def test_a_build_holds_the_lock_that_a_second_asker_waits_on(tmp_path: Path) -> None:
    seen: list[bool] = []

    def build(folder: Path) -> None:
        probe = os.open(tmp_path / ".model.lock", os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append(False)
        except BlockingIOError:
            seen.append(True)
        finally:
            os.close(probe)
        (folder / "weights").write_text("built")

    assert builtin._build_once(tmp_path / "model", build) == tmp_path / "model"
    assert seen == [True] and (tmp_path / "model" / "weights").read_text() == "built"


def test_a_built_in_another_finished_while_this_one_waited_is_not_built_again(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    waiting = threading.Event()
    real_wait = builtin.lock_waiting

    def announce_then_wait(fd: int) -> bool:
        waiting.set()
        return real_wait(fd)

    monkeypatch.setattr(builtin, "lock_waiting", announce_then_wait)
    builds: list[Path] = []
    other = os.open(tmp_path / ".model.lock", os.O_RDWR | os.O_CREAT)  # another process, building
    fcntl.flock(other, fcntl.LOCK_EX)
    asker = threading.Thread(target=builtin._build_once, args=(tmp_path / "model", builds.append))
    asker.start()
    try:
        assert waiting.wait(60), "the second asker never waited for the lock"
        (tmp_path / "model").mkdir()  # the other's build, renamed into place
    finally:
        os.close(other)  # its lock goes with it
        asker.join(60)
    assert not asker.is_alive() and builds == []
