"""Waiting on a child process that the caller may stop wanting: the memory meter's and the fit test's."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable

POLL_S = 0.1  # how soon a stop request ends the child
TRACEBACK = "Traceback (most recent call last):"


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


def tagged(line: str, keys: tuple[str, ...]) -> dict | None:
    """The JSON object in ``line`` that starts with one of ``keys`` (as json.dumps writes it), wherever it starts: a
    library's print without its newline may come before it on the same line."""
    decoder = json.JSONDecoder()
    for key in keys:
        start = line.find(f'{{"{key}":')
        if start < 0:
            continue
        try:
            data, _ = decoder.raw_decode(line, start)
        except ValueError:
            continue  # a library's own print that names the key
        return data
    return None


def how_it_ended(who: str, returncode: int, stderr: str) -> str:
    """Why a child that gave no reason of its own stopped: killed (the OOM killer's SIGKILL, a segfault), or its
    traceback's last word. Never stderr's last line as such: libraries write warnings there (bitsandbytes' CPU
    kernels, diffusers' fp32 modules), even at exit."""
    if returncode < 0:
        try:
            name = f" ({signal.Signals(-returncode).name})"
        except ValueError:
            name = ""
        return f"{who} was ended by signal {-returncode}{name} (out of memory?)"
    if TRACEBACK in stderr:
        frames = stderr[stderr.rindex(TRACEBACK):].splitlines()[1:]
        # The exception's own line is the first after the frames, which are indented.
        last_word = next((line for line in frames if line.strip() and not line[0].isspace()), "")
        if last_word:
            return last_word
    return f"{who} stopped with exit status {returncode}"
