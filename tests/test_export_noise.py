"""The dashboard's export runs in the wizard's process, whose stderr is the screen (Textual draws on it): the libraries'
notices and bars go to the run's log, never to file descriptor 2."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest

from dbtui.engine_facade import RealEngine
from engine.runs.folder import RunFolder


def test_the_dashboards_export_writes_nothing_on_the_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    import engine.runs.export as export
    from tqdm import tqdm

    library = logging.getLogger("transformers.noisy_for_test")
    handler = logging.StreamHandler(sys.__stderr__)  # as transformers' own, made before the screen took sys.stderr
    library.addHandler(handler)
    monkeypatch.setattr(library, "propagate", False)

    def noisy_export(folder: Path, step: int, emit=None) -> dict[str, str]:
        library.warning("a transformers notice")
        print("a bitsandbytes warning", file=sys.stderr)
        for _ in tqdm(range(3), desc="Loading weights"):
            pass
        return {"diffusers": str(folder / "exports")}

    monkeypatch.setattr(export, "export_checkpoint", noisy_export)
    folder = RunFolder(tmp_path / "run").create()
    try:
        assert RealEngine().export_checkpoint(folder.path, 2) == {"diffusers": str(folder.path / "exports")}
    finally:
        library.removeHandler(handler)
    assert capfd.readouterr().err == ""
    log = folder.log.read_text()
    assert "a transformers notice" in log and "a bitsandbytes warning" in log and "Loading weights" in log
    assert handler.stream is sys.__stderr__  # the library's handler as it was


def test_stderr_put_back_by_the_app_during_the_export_stays_put_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+Q during the dashboard's export: Textual put the terminal's stderr back as it quit, and the export's end
    then put the dead app's capture in its place, where whatever the process wrote to stderr after the wizard vanished."""
    from engine.runs.library_noise import library_noise_into

    capture, terminal = object(), object()
    monkeypatch.setattr(sys, "stderr", capture)  # the app's, while it runs
    with library_noise_into(tmp_path / "logs" / "trainer.log"):
        assert sys.stderr not in (capture, terminal)
        sys.stderr = terminal  # the app quit meanwhile
    assert sys.stderr is terminal
    with library_noise_into(tmp_path / "logs" / "trainer.log"):
        pass
    assert sys.stderr is terminal


def test_two_exports_that_end_out_of_order_leave_stderr_and_handlers_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two exports at once (two dashboards), the first to start ending first: the second put back the first's log,
    closed by then, as sys.stderr and its handlers' stream, and every later warning or log record raised ValueError."""
    import threading

    from engine.runs.library_noise import library_noise_into

    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    library = logging.getLogger("diffusers.noisy_for_test")
    handler = logging.StreamHandler(screen)
    library.addHandler(handler)
    monkeypatch.setattr(library, "propagate", False)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with library_noise_into(tmp_path / "a" / "trainer.log"):
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with library_noise_into(tmp_path / "b" / "trainer.log"):
            second_in.set()
            first_out.wait(5)
            library.warning("while the second alone runs")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        print("after both", file=sys.stderr)  # as warnings.warn writes, which pytest records instead
        library.warning("after both")
    finally:
        library.removeHandler(handler)
    assert sys.stderr is screen and handler.stream is screen
    assert screen.getvalue().count("after both") == 2
    # In the log of the export still running, not on the screen.
    assert "while the second alone runs" in (tmp_path / "b" / "trainer.log").read_text()
    assert "while the second alone runs" not in screen.getvalue()
