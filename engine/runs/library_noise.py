"""Library log lines that tell a dbtui user nothing they can act on, held back."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def library_noise_into(log: Path) -> Iterator[None]:
    """Send what the libraries write to stderr (warnings, log records, progress bars) to ``log`` instead, for work done
    inside a process whose stderr is a terminal drawn on by something else: the wizard's screen (Textual draws on
    stderr), which they garbled. Python's writes only: the file descriptor is the screen's, left as it is."""
    streams = (sys.stderr, sys.__stderr__)
    loggers = [logging.getLogger()] + [x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", errors="replace") as file:
        swapped = [h for x in loggers for h in x.handlers
                   if type(h) is logging.StreamHandler and h.stream in streams]  # noqa: E721 - a FileHandler is one too
        before = [h.setStream(file) for h in swapped]
        sys.stderr = file
        try:
            yield
        finally:
            # Put back only what is still ours: the app may have put back its own meanwhile (a quit during the work
            # ends Textual's capture, whose restoring would otherwise be undone with the dead app's capture).
            if sys.stderr is file:
                sys.stderr = streams[0]
            for handler, stream in zip(swapped, before):
                if handler.stream is file:
                    handler.setStream(stream)
