"""The hardware probe reports bitsandbytes without importing it, library notices stay quiet, and its advice judges
the presets as its table does."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from engine.runs.library_noise import HELD_BACK, hold_back_library_noise

ROOT = Path(__file__).parents[1]
NOTICE = "gemm_4bit_forward"


def test_dbtui_hardware_says_whether_bitsandbytes_is_installed_without_importing_it(tmp_path: Path) -> None:
    # Importing bitsandbytes costs seconds and, without CUDA, prints a notice about a CPU kernel. The CLI defers it
    # (engine/support/deferred_import.py): a placeholder in sys.modules whose code has not run is no import.
    code = ("import json, sys; from dbtui.cli import main; status = main(['hardware', '--json', '--output-dir', sys.argv[1]]); "
            "print(json.dumps({'status': status, 'imported': type(sys.modules.get('bitsandbytes')).__name__ == 'module'}))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert NOTICE not in done.stdout + done.stderr
    *report, last = done.stdout.strip().splitlines()
    assert json.loads(last) == {"status": 0, "imported": False}
    try:
        installed = metadata.version("bitsandbytes") is not None
    except metadata.PackageNotFoundError:
        installed = False
    probed = json.loads("\n".join(report))
    assert probed["bitsandbytes"] is installed
    assert probed["disk_path"] == str(tmp_path.resolve())


def test_a_bitsandbytes_found_but_unloadable_is_not_called_installed(tmp_path: Path) -> None:
    """`dbtui hardware` said "bitsandbytes installed" of a package that is present but whose import fails (a build for
    another CUDA): it finds the package without importing it, so it says found, and that a run loads and checks it."""
    broken = tmp_path / "site"
    (broken / "bitsandbytes").mkdir(parents=True)
    (broken / "bitsandbytes" / "__init__.py").write_text('raise OSError("libbitsandbytes_cuda124.so: cannot open")\n')
    (broken / "bitsandbytes-0.45.0.dist-info").mkdir()
    (broken / "bitsandbytes-0.45.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: bitsandbytes\n"
                                                                        "Version: 0.45.0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken), str(ROOT)]), "COLUMNS": "120"}
    done = subprocess.run([sys.executable, "-m", "dbtui", "hardware", "--output-dir", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("bitsandbytes")]
    assert line.split(None, 1)[1].strip() == "found (loaded and checked when a run needs it)"
    assert "cannot open" not in done.stdout + done.stderr  # still not imported


def test_the_disk_is_named_where_it_was_measured_a_folder_yet_to_be_made_by_its_parent(tmp_path: Path) -> None:
    from rich.console import Console

    from dbtui.widgets.hardware_table import hardware_table
    from engine.hardware.machine import probe

    hardware = probe(tmp_path / "runs" / "not-yet")
    assert hardware.disk_path == str(tmp_path.resolve())
    console = Console(width=200, record=True)
    console.print(hardware_table(hardware))
    assert f"free at {tmp_path.resolve()}" in console.export_text()


@pytest.mark.parametrize("name, part", HELD_BACK)
def test_each_held_back_library_notice_is_dropped_and_its_loggers_other_warnings_are_not(name: str, part: str) -> None:
    from engine.runs.library_noise import _DropMessage

    class Kept(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    hold_back_library_noise()
    hold_back_library_noise()  # a second call adds no second filter
    logger = logging.getLogger(name)
    assert sum(isinstance(f, _DropMessage) for f in logger.filters) == 1
    # On the logger itself: transformers' loggers do not propagate to the root, where caplog listens.
    kept = Kept()
    logger.addHandler(kept)
    try:
        logger.warning("before " + part + " after: %s.", "detail")
        logger.warning("some other warning")
    finally:
        logger.removeHandler(kept)
    assert kept.messages == ["some other warning"]


def test_the_advice_recommends_a_preset_only_where_its_whole_run_fits_as_the_table_judges(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SD advice judged the steps alone: a preset whose previews miss the card was recommended beside a ✗."""
    from dataclasses import replace

    from engine.hardware import machine
    from engine.hardware.machine import Gpu, Hardware, verdict
    from engine.memory.estimate import GIB
    from engine.memory.preset_table import load_preset_estimates

    previews_miss = replace(load_preset_estimates()["full"].need(True), sampling=17 * GIB)
    assert previews_miss.card_need < 16 * GIB and not previews_miss.fits(16)  # the steps fit; the whole run does not
    stored = machine._meter_need
    monkeypatch.setattr(machine, "_meter_need",
                        lambda preset, hw, *, family="sd", prior=True: previews_miss if preset == "full"
                        else stored(preset, hw, family=family, prior=prior))
    assert verdict(Hardware(gpus=[Gpu(0, "GPU", 16 * 1024 - 10, None, "8.6", True)]), "sd")[1] == "full-8bit"
