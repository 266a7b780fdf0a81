"""The README's figures for the presets are those of the stored table that `dbtui hardware` prints."""

from __future__ import annotations

import re
from pathlib import Path

from engine.memory.estimate import GIB
from engine.memory.preset_table import load_preset_estimates

README = Path(__file__).resolve().parent.parent / "README.md"
FIGURE = re.compile(r"\b\d+\.\d GB")
# The table's rows of the SD presets' other figures, by the advice family whose rows they are (the others are SD1.5's at
# 512 px, or their own).
SD_ROWS = {"SD1.x at 768 px": "sd-768", "SD1.x at 1024 px": "sd-1024", "SD2.x": "sd2", "SD2.x at 768 px": "sd2-768",
           "SD2.x at 1024 px": "sd2-1024"}


def _gb(size: int) -> str:
    return f"{size / GIB:.1f} GB"  # as `dbtui hardware` prints a run's need


def _presets_section() -> tuple[str, str]:
    """(the paragraph on how the presets are measured, the table of each family's presets)."""
    text = README.read_text(encoding="utf-8")
    paragraph = text.split("The presets (the wizard's *Preset*", 1)[1].split("\n\n", 1)[0]
    table = text.split("| model family | presets |", 1)[1].split("\n\n", 1)[0]
    return paragraph, table


def test_the_tier_table_gives_each_presets_whole_run_need_with_bf16_and_without() -> None:
    """Each family's row by its own figures: the SD2.x presets' are SD2.1-base's (the row "SD1.x, SD2.x" gave SD1.5's
    17.4 GB for full-text-encoder, which needs 20.7 GB on SD2)."""
    _, table = _presets_section()
    lines = table.splitlines()
    assert all(any(line.startswith(f"| {row} |") for line in lines) for row in SD_ROWS)
    named = [(SD_ROWS.get(line.split("|")[1].strip(), "sd"), *found) for line in lines
             for found in re.findall(r"`([a-z0-9-]+)` \((\d+\.\d GB)(?:; (\d+\.\d GB))?", line)]
    assert len(named) >= 26
    for family, name, figure, without_bf16 in named:
        rows = load_preset_estimates(family=family)
        assert figure == _gb(rows[name].need().run_need), name
        if without_bf16:
            assert without_bf16 == _gb(rows[name].need(bf16=False).run_need), name


def test_the_paragraph_gives_only_figures_of_the_table() -> None:
    """It said `full-8bit` 5.2 GB and `full` 12.1 GB, the step alone, where the table under it says 5.3 and 12.3."""
    rows = [row for family in ("sd", *SD_ROWS.values()) for row in load_preset_estimates(family=family).values()]
    stored = {_gb(row.need(bf16).run_need) for row in rows for bf16 in (True, False)}
    paragraph, _ = _presets_section()
    figures = FIGURE.findall(" ".join(paragraph.split()))
    assert figures and set(figures) <= stored, sorted(set(figures) - stored)


def test_the_sampling_passes_the_readme_gives_are_the_tables() -> None:
    """It gave `flux-lora-16gb`'s previews 8.5 GB, their batched decode's, after they went one at a time (8.4 GB)."""
    text = README.read_text(encoding="utf-8")
    sentence = " ".join(text.split("The presets' sampling passes on the card:", 1)[1].split("A quantized", 1)[0].split())
    given = re.findall(r"`([a-z0-9-]+)` (\d+\.\d GB)", sentence)
    rows = load_preset_estimates()
    assert len(given) >= 7
    assert given == [(name, _gb(rows[name].need().sampling_card_need)) for name, _ in given]
