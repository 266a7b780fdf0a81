"""Debian's Chromium for the browser checks (the report page, `dbtui serve`), installed on first use where the tests
run as root with apt, as CI does. The report's check looked for it when its file was imported, so on a fresh machine,
where the serve test installed it later, it was skipped."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def installed_chromium() -> str:
    """Chromium's command; installed first where it is missing and can be. Workers asking at once install it once."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and cannot be installed here (needs root and apt-get)")
    with open(Path(tempfile.gettempdir()) / "dbtui-tests-chromium.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # apt's own lock would fail the second worker's install
        if not shutil.which("chromium"):
            for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
                subprocess.run(command, check=True, capture_output=True, timeout=600)
    return shutil.which("chromium") or "chromium"
