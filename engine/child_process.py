"""Waiting on a child process that the caller may stop wanting: the memory meter's and the fit test's."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

POLL_S = 0.1  # how soon a stop request ends the child


def wait_unless_stopped(process: subprocess.Popen, stop: Callable[[], bool] | None) -> bool:
    """Wait for the child; False (and the child ended) when ``stop()`` turns true first."""
    while True:
        try:
            process.wait(timeout=POLL_S)
            return True
        except subprocess.TimeoutExpired:
            if stop is not None and stop():
                process.kill()
                process.wait()
                return False
