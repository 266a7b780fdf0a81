"""What ``dbtui --version`` prints: dbtui's version, its commit where it runs from a git checkout, and
the versions of the libraries a run's numbers depend on, so that the machines of one run can be
compared line by line (the README asks for the same dbtui on each)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "diffusers", "transformers", "accelerate", "peft", "bitsandbytes")
_SOURCE = Path(__file__).resolve().parents[2]  # the checkout, where dbtui runs from one


def version_text() -> str:
    lines = [f"dbtui {_checkout_version() or _installed('dbtui')}{_commit()}"]
    lines += [f"  {name} {_installed(name)}" for name in LIBRARIES]
    return "\n".join(lines)


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _checkout_version() -> str | None:
    """The version in pyproject.toml where dbtui runs from a checkout: the code that runs is that checkout's,
    whatever the package metadata (of another install, or none: "not installed") says."""
    try:
        project = tomllib.loads((_SOURCE / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    version = project.get("version")
    return version if project.get("name") == "dbtui" and isinstance(version, str) else None


def _commit() -> str:
    if not (_SOURCE / ".git").exists():
        return ""
    try:
        described = subprocess.run(
            ["git", "-C", str(_SOURCE), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (commit {described})" if described else ""


class PrintVersion(argparse.Action):
    """``--version``, worked out only when asked: git and the package metadata cost every other
    command nothing."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS,
            help="print dbtui's version (and commit) and the versions of torch, diffusers and the "
            "other libraries training uses, then exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from dbtui.cli.boundary import run_guarded

        # Through the CLI's boundary: `dbtui --version | head -1` closed the pipe on a BrokenPipeError traceback.
        parser.exit(run_guarded(lambda: print(version_text()) or 0, sys.argv[1:]))
