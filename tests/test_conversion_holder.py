"""A conversion waiting for another says which process it waits on, and gives up on one stopped with Ctrl-Z: that
wait, and the wizard's "under way" notice, lasted for ever, and nothing said what held it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.events import Warning as WarningEvent
from engine.model_import import import_model
from engine.models.conversion_holder import ConversionHeldError

HOLD = """import sys, time
from pathlib import Path
from engine.models.conversion_lock import converting_into
with converting_into(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def other_conversion(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """Another process converting into models/m-diffusers (another terminal's Convert), for as long as the test."""
    folder = tmp_path / "models" / "m-diffusers"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        yield folder, holder
    finally:
        holder.kill()
        holder.wait()


def _converting(folder: Path, tmp_path: Path) -> tuple[threading.Thread, list, list]:
    """import_model of m.safetensors into ``folder`` in a thread: what it was told, and what it raised."""
    source = tmp_path / "m.safetensors"
    source.write_bytes(b"weights")
    said: list = []
    raised: list = []

    def convert() -> None:
        try:
            import_model(str(source), folder, emit=said.append)
        except Exception as error:  # noqa: BLE001 - the test says which
            raised.append(error)

    thread = threading.Thread(target=convert, daemon=True)  # unfixed, it waits for ever
    thread.start()
    return thread, said, raised


def test_a_wait_for_a_stopped_conversion_ends_and_says_how_to_go_on(other_conversion, tmp_path: Path) -> None:
    folder, holder = other_conversion
    os.kill(holder.pid, signal.SIGSTOP)
    thread, _, raised = _converting(folder, tmp_path)
    thread.join(30)
    assert not thread.is_alive()
    assert [type(error) for error in raised] == [ConversionHeldError]
    message = str(raised[0])
    assert f"process {holder.pid}, `" in message and ", which is stopped" in message  # and what it runs, between
    assert f"kill -CONT {holder.pid}" in message


def test_a_wait_for_a_running_conversion_names_its_process(other_conversion, tmp_path: Path) -> None:
    folder, holder = other_conversion
    thread, said, raised = _converting(folder, tmp_path)
    for _ in range(3000):
        if said or not thread.is_alive():
            break
        thread.join(0.01)
    assert thread.is_alive() and not raised  # a conversion that runs is waited for, however long
    assert [type(event) for event in said] == [WarningEvent]
    assert f"by process {holder.pid}" in said[0].message and f"kill {holder.pid}" in said[0].advice
