"""Library log lines that tell a dbtui user nothing they can act on, held back."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

# (logger, a part of the message): each names why it says nothing to act on.
HELD_BACK = [
    # bitsandbytes warns at import, on a CPU with AVX-512 BF16 and without the optional `kernels`
    # package, that it could not fetch a faster 4-bit CPU kernel from the Hub; it then uses its own.
    # peft and diffusers import bitsandbytes whenever it is installed, so every run would print it.
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward"),
    # transformers asks for torchvision for its image processors and falls back to the PIL ones, which
    # dbtui uses; torchvision must not be installed beside a CPU torch (it breaks `import peft`).
    ("transformers.utils.import_utils", "requires torchvision (not installed)"),
    # diffusers warns on every cast of a model with no module to keep in fp32 (an empty list): nothing happens.
    ("diffusers.models.modeling_utils", "should be kept in float32: []."),
    # diffusers' load_lora_weights (an export of a run's final LoRA) on a text encoder the LoRA did not train.
    ("diffusers.loaders.lora_base", "No LoRA keys associated to"),
    # diffusers' single-file converter, on a file with EMA weights, tells its own script's `--extract_ema` flag, which
    # dbtui has not: dbtui's warning names its --ema.
    ("diffusers.loaders.single_file_utils", "the `--extract_ema` flag"),
]


class _DropMessage(logging.Filter):
    """Drops the records whose message contains ``part``; the logger's others pass."""

    def __init__(self, part: str):
        super().__init__()
        self.part = part

    def filter(self, record: logging.LogRecord) -> bool:
        return self.part not in str(record.msg)


def hold_back_library_noise() -> None:
    """Install the filters (once; imports no library, so call it before the libraries load)."""
    for name, part in HELD_BACK:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.part == part for f in logger.filters):
            logger.addFilter(_DropMessage(part))


def hide_library_progress_bars() -> None:
    """Turn off diffusers' and transformers' tqdm bars ("Loading pipeline components", "Loading weights", "Writing
    model shards"): they broke into the lines of dbtui's own phases, which say what is loading. The Hub's download
    bars stay: a download of gigabytes has no progress of dbtui's to show. Imports both libraries."""
    import huggingface_hub.utils as hub
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    downloads_shown = not hub.are_progress_bars_disabled()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()  # which turns the Hub's bars off too
    if downloads_shown:
        hub.enable_progress_bars()


class _OpenLogs(io.TextIOBase):
    """sys.stderr and the swapped handlers' stream while exports run, one swap shared by all: exports overlap (two
    dashboards) and end in any order, and each swapping in its own log put back, ending, another's closed log. The
    noise goes to the log of the earliest export still running (whichever export made it: they share the process's
    stderr), and is dropped once none runs (a thread that still held the stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[TextIO] = []  # the running exports' logs, oldest first
        self.lock = threading.RLock()  # a file is never removed (then closed) during a write
        # What the swap replaced (stderr, each handler's stream), put back by the last export to end.
        self.put_back: tuple[Any, list[tuple[logging.StreamHandler, Any]]] = (None, [])

    def write(self, text: str) -> int:
        with self.lock:
            if self.files:
                self.files[0].write(text)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            if self.files:
                self.files[0].flush()


_SHARED = _OpenLogs()
_SWAP = threading.Lock()  # who swaps in or out; never held by a write, which may hold a handler's lock


def _swap_in() -> None:
    streams = (sys.stderr, sys.__stderr__)
    loggers = [logging.getLogger()] + [x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)]
    swapped = [h for x in loggers for h in x.handlers
               if type(h) is logging.StreamHandler and h.stream in streams]  # noqa: E721 - a FileHandler is one too
    _SHARED.put_back = (streams[0], [(h, h.setStream(_SHARED)) for h in swapped])
    sys.stderr = _SHARED


def _swap_out() -> None:
    # Put back only what is still ours: the app may have put back its own meanwhile (a quit during the work ends
    # Textual's capture, whose restoring would otherwise be undone with the dead app's capture).
    stderr, handlers = _SHARED.put_back
    if sys.stderr is _SHARED:
        sys.stderr = stderr
    for handler, stream in handlers:
        if handler.stream is _SHARED:
            handler.setStream(stream)
    _SHARED.put_back = (None, [])


@contextmanager
def library_noise_into(log: Path) -> Iterator[None]:
    """Send what the libraries write to stderr (warnings, log records, progress bars) to ``log`` instead, for work done
    inside a process whose stderr is a terminal drawn on by something else: the wizard's screen (Textual draws on
    stderr), which they garbled. Python's writes only: the file descriptor is the screen's, left as it is. Overlapping
    calls (other threads) share one swap, into the earliest running call's log (see _OpenLogs)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", errors="replace") as file:
        with _SWAP:
            if not _SHARED.files:
                _swap_in()
            with _SHARED.lock:
                _SHARED.files.append(file)
        try:
            yield
        finally:
            with _SWAP:
                with _SHARED.lock:
                    _SHARED.files.remove(file)
                if not _SHARED.files:
                    _swap_out()
