"""Typed errors users can hit. Each message says what to do; only the CLI picks exit codes."""

from __future__ import annotations


class DbtuiError(Exception):
    """Base of every error dbtui reports to the user as a message, not a traceback."""


def os_error_in(error: BaseException) -> OSError | None:
    """The machine's OSError behind ``error``: the error itself, or the one safetensors' writer reports only in
    its text ("… No space left on device (os error 28) at path …"), rebuilt with its errno and path; else None."""
    import os
    import re

    if isinstance(error, OSError):
        return error
    if type(error).__name__ == "SafetensorError":
        found = re.search(r"\(os error (\d+)\)(?: at path \"(.*)\")?", str(error))
        if found:
            code = int(found.group(1))
            return OSError(code, os.strerror(code), found.group(2))
    return None
