"""What `dbtui dataset prepare|caption` print of many problems: the first few, then how many more, and the
`dataset check` that names each caption that cannot be read."""

from __future__ import annotations

import shlex

from dbtui.cli.printable import markup_safe

NAMED = 10  # problems printed one by one; 200 unreadable captions took 600 lines, hiding what came before


def print_first(lines: list[str], console, more: str, hint: str) -> None:
    """The first ``NAMED`` of ``lines``, then how many more there are (``more`` says of what) and ``hint``."""
    for line in lines[:NAMED]:
        console.print(line)
    if len(lines) > NAMED:
        console.print(f"[red]… and {len(lines) - NAMED} more {more}[/]" + (f" {hint}" if hint else ""))


def check_hint(folder: str, extension: str, recursive: bool) -> str:
    """The `dataset check` that names each caption of ``folder`` that cannot be read, as the command read them."""
    words = ["dbtui", "dataset", "check", folder, "--caption-mode", "caption_file"]
    words += ["--caption-extension", extension] if extension != ".txt" else []
    words += ["-r"] if recursive else []
    return markup_safe(f"(`{shlex.join(words)}` names each caption that cannot be read)")
