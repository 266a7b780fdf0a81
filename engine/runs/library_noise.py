"""Library log lines that tell a dbtui user nothing they can act on, held back."""

from __future__ import annotations

import logging

# bitsandbytes warns at import, on a CPU with AVX-512 BF16 and without the optional `kernels`
# package, that it could not fetch a faster 4-bit CPU kernel from the Hub; it then uses its own.
# peft and diffusers import bitsandbytes whenever it is installed, so every run would print it.
BITSANDBYTES_CPU_KERNEL = ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward")


class _DropMessage(logging.Filter):
    """Drops the records whose message starts with ``prefix``; the logger's others pass."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def hold_back_library_noise() -> None:
    """Install the filters (once; imports no library, so call it before the libraries load)."""
    name, prefix = BITSANDBYTES_CPU_KERNEL
    logger = logging.getLogger(name)
    if not any(isinstance(f, _DropMessage) and f.prefix == prefix for f in logger.filters):
        logger.addFilter(_DropMessage(prefix))
