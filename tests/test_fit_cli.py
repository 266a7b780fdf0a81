"""`dbtui fit` from the command line: how it stops, and what it says it measured."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dbtui.cli.boundary import EXIT_INTERRUPTED
from tests.runs_helpers import ROOT, env, profile_file, wait_for


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_fit_test_ended_by_sigterm_or_sighup_removes_its_temporary_folder(signum: int, tmp_path: Path, tiny_sd1: Path,
                                                                            demo_data: Path) -> None:
    """`timeout` or a closed SSH session ended the process at once: its run folder, caches included, stayed in TMPDIR."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "fit.out"
    profile = profile_file(tmp_path, training={"max_train_steps": 2000})
    command = [sys.executable, "-m", "dbtui", "fit", str(profile), "--steps", "500"]
    with out.open("w") as output:
        fit = subprocess.Popen(command, cwd=ROOT, env=dict(env(), TMPDIR=str(tmp)), stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "step 2:" in out.read_text() or fit.poll() is not None, timeout=240, poll=0.1)
            assert fit.poll() is None, out.read_text()
            assert any(tmp.glob("dbtui-fit-*/run/cache")), "the test trains in TMPDIR"
            fit.send_signal(signum)
            assert fit.wait(timeout=120) == EXIT_INTERRUPTED, out.read_text()
        finally:
            if fit.poll() is None:
                fit.kill()
    assert not list(tmp.glob("dbtui-fit-*")), out.read_text()
    assert "dbtui: interrupted" in out.read_text() and "Traceback" not in out.read_text()
