"""`dbtui hardware`'s preset table at 80 columns: with a long card's mark beside it, "flux-lora-24gb (1024 px) *" kept
its "◂" (the preset to pick) on a line of its own."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dbtui.cli.cards import card_size
from dbtui.cli.cmd_hardware import _estimates_table, _family_estimates
from engine.memory.estimate import CARD_SIZES_GB


def _rows(family: str, cards: tuple[float, ...]) -> tuple[list[str], dict, str]:
    """The table's lines at 80 columns from its header on, its presets, and the longest-named one, marked both as the
    profile's own (*) and as the one to pick (◂)."""
    estimates = _family_estimates(family, True)
    longest = max(estimates, key=lambda name: len(f"{name} ({estimates[name].need().width} px)"))
    console = Console(width=80, file=io.StringIO(), record=True)
    console.print(_estimates_table(estimates, longest, True, 80, cards, longest, False))
    lines = console.export_text().splitlines()
    return lines[next(index for index, line in enumerate(lines) if line.startswith("preset")) + 1:], estimates, longest


@pytest.mark.parametrize("family", ["sd", "sd2", "sdxl", "flux"])
def test_at_80_columns_each_preset_with_the_default_cards_is_one_line(family: str) -> None:
    lines, estimates, longest = _rows(family, CARD_SIZES_GB)
    rows = lines[:len(estimates)]
    assert [row.split(" ")[0] for row in rows] == list(estimates), lines
    assert not lines[len(estimates)].startswith(" "), lines  # no row went on to a second line
    own = next(row for row in rows if row.startswith(longest))
    assert "* ◂" in own and own.rstrip().endswith("24 GB ✓"), lines


@pytest.mark.parametrize("family", ["sd", "flux"])
def test_at_80_columns_a_long_cards_mark_leaves_the_name_and_its_marks_whole(family: str) -> None:
    lines, estimates, longest = _rows(family, (card_size("Tesla V100 16GB"), 24.0))
    starts = [line for line in lines if line.split(" ")[0] in estimates]
    assert len(starts) == len(estimates), lines
    assert any(line.startswith(longest) and "* ◂" in line for line in starts), lines
    assert all(line.strip() not in ("◂", "*", "* ◂") for line in lines), lines
