"""Typed errors users can hit. Each message says what to do; only the CLI picks exit codes."""

from __future__ import annotations


class DbtuiError(Exception):
    """Base of every error dbtui reports to the user as a message, not a traceback."""
