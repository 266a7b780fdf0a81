"""A need beside a card it misses never reads as equal to it: `dbtui hardware --card 12.3` showed
"full 12.3 GB fits 12.3 GB ✗", the need (12.32 GB) rounded to 0.1 like the card."""

from __future__ import annotations

import math
import re
from pathlib import Path

from dbtui.cli import main
from dbtui.cli.cards import card_mark, card_size
from engine.memory.estimate import GIB
from engine.memory.preset_table import load_preset_estimates

ROW = re.compile(r"^(?P<name>[\w-]+)\s+(?P<need>[\d.]+) GB\s+(?P<marks>.*)$")


def test_each_rows_figure_reads_more_than_the_cards_it_misses(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    table = load_preset_estimates()
    # Each preset's need rounded down to 0.1: a card it just misses, which read as its equal.
    cards = sorted({math.floor(table[name].need().run_need / GIB * 10) / 10 for name in ("lora", "full", "full-8bit")})
    assert main(["hardware", "--family", "sd", "--output-dir", str(tmp_path),
                 *(arg for card in cards for arg in ("--card", f"{card:g}"))]) == 0
    rows = [found for line in capsys.readouterr().out.splitlines() if (found := ROW.match(line))]
    assert {row["name"] for row in rows} >= {"lora", "full", "full-8bit"}, rows
    for row in rows:
        for size, mark in re.findall(r"([\d.]+) GB ([✓✗])", row["marks"]):
            assert (float(row["need"]) > float(size)) is (mark == "✗"), row.group(0)


def test_a_card_without_bf16_reads_its_own_need_apart_from_its_size() -> None:
    need = load_preset_estimates()["sdxl-full"].need(bf16=False)
    card = card_size(f"{math.floor(need.run_need / GIB * 10) / 10:g}")
    mark = card_mark(card, need, own_bf16=False)
    figure = float(re.search(r": ([\d.]+) GB ✗$", mark).group(1))
    assert figure > card, mark
