"""Errors the dataset doctor raises; each message says what to do."""

from __future__ import annotations

from engine.errors import DbtuiError


class DatasetError(DbtuiError):
    """A dataset folder that cannot be used as asked (missing, or the same as the output)."""


class FolderAccessError(DatasetError):
    """A folder this user may not list or enter: besides the message, ``what`` is wrong with it (its name left out) and
    ``fix``, the chmod that opens it, for a report that names the folder in a column of its own."""

    def __init__(self, message: str, what: str, fix: str) -> None:
        super().__init__(message)
        self.what, self.fix = what, fix


class WorkersError(DatasetError, ValueError):
    """A number of worker processes below 1 (None: as many as the CPUs and the decode budget allow)."""


class CaptionError(DbtuiError):
    """A caption operation that cannot be done (nothing to undo, unreadable file)."""


class TokenizerError(DbtuiError):
    """No CLIP tokenizer could be loaded from the given model."""


class CaptionerUnavailableError(DbtuiError):
    """An auto-caption backend whose optional package or model files are missing."""
