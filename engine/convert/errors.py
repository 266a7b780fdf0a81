"""Errors a conversion can hit; each message says what to do next."""

from __future__ import annotations

import errno as _errno
from pathlib import Path

from engine.errors import DbtuiError


class ConvertError(DbtuiError):
    """Base of conversion errors."""


class UnsafeCheckpointError(ConvertError):
    """A pickle checkpoint that would run code (or build objects beyond tensors) to load."""


class CheckpointReadError(ConvertError):
    """A file that is truncated, corrupt, or not a checkpoint format we read."""


class UnsupportedModelError(ConvertError):
    """A checkpoint of a family we do not convert (SDXL, not Stable Diffusion, ...)."""


class IntegerWeightsError(UnsupportedModelError):
    """A checkpoint whose weights are integers (a quantized model): converted, it would be noise."""


class ModelMismatchError(ConvertError):
    """The weights do not fit the architecture they were loaded into."""


class TokenizerNotFoundError(ConvertError):
    """The CLIP tokenizer files are not on this machine."""


class NotEnoughDiskError(ConvertError):
    """Too little free space for the output."""


class OutputExistsError(ConvertError):
    """The output path is already taken."""


class OutputNotWritableError(ConvertError):
    """The output's folder (``place``) cannot be written: this user may not (``errno`` EACCES), or its file system is
    read-only (EROFS), where a chmod would not help."""

    def __init__(self, message: str, place: Path, errno: int = _errno.EACCES):
        super().__init__(message)
        self.place = place
        self.errno = errno


class IncompleteCheckpointError(UnsupportedModelError):
    """A single file without a whole part (its VAE, a text encoder): a "pruned, no VAE" or UNet-only download."""
