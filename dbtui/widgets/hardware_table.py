"""The hardware probe as a Rich table: shared by the wizard and `dbtui hardware`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def _gb(mb: float | None) -> str:
    return "?" if mb is None else f"{mb / 1024:.1f} GB"


def _yes(flag: bool) -> str:
    return "[green]usable[/]" if flag else "[dim]no[/]"


def hardware_table(hw: Any, disk_problem: str | None = None) -> Table:
    """``hw`` as rows; ``disk_problem``: why the disk measured is not where runs can go, said in place of its room."""
    table = Table(show_header=False, box=None, pad_edge=False, expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    if hw.gpus:
        for gpu in hw.gpus:
            table.add_row(f"GPU {gpu.index}", Text(f"{gpu.name}  {_gb(gpu.total_mb)} total, {_gb(gpu.free_mb)} free, "
                                                   f"compute {gpu.compute_capability}, bf16 {'yes' if gpu.bf16 else 'no'}"))
    else:
        table.add_row("GPU", "[yellow]none found[/] (no CUDA device visible to torch)")
    table.add_row("Driver", hw.driver or "[dim]no NVIDIA driver[/]")
    table.add_row("CUDA / torch", f"{hw.cuda or 'CPU build'} / {hw.torch}")
    # Found, not imported (seconds of start-up, and a CPU-kernel notice): found is not known to load, so it is not
    # called installed; a run that needs it loads it first and says so if it cannot.
    table.add_row("bitsandbytes", "[green]found[/] (loaded and checked when a run needs it)" if hw.bitsandbytes
                  else "[dim]no[/]")
    table.add_row("xformers", _yes(hw.xformers))
    table.add_row("RAM", f"{_gb(hw.ram_available_mb)} free of {_gb(hw.ram_total_mb)}")
    # Names and paths as Text, not markup: Rich's escape() doubled the backslash that ends a path (C:\out\).
    # Folded, not cut with an ellipsis: a long path is the one word here that says where.
    table.add_row("Disk", Text(disk_problem, style="red", overflow="fold") if disk_problem else
                  Text(f"{_gb(hw.disk_free_mb)} free at {hw.disk_path or 'the output folder'}", overflow="fold"))
    table.add_row("Python", hw.python)
    return table
