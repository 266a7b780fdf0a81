"""The dashboard's export runs in the wizard's process, whose stderr is the screen (Textual draws on it): the libraries'
notices and bars go to the run's log, never to file descriptor 2."""

from __future__ import annotations

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
