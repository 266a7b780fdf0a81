"""The report's advice and score table, and the end-of-run export offer: a damaged checkpoint is never suggested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.runs.folder import RunFolder
from engine.runs.report import write_report
from test_dashboard_scores import ScoredEngine, dashboard, log_text, scored_run, shown_buttons
from test_report import Page, scored_fake_run
from test_wizard_sdxl import SIZE
from dbtui.app import make_app
from dbtui.session import Session


def checkpoint(folder: RunFolder, step: int, *, damaged: bool = False) -> None:
    """A checkpoint of one weights file; a damaged one is cut short (its manifest says 100 bytes were written)."""
    path = folder.checkpoints / f"step-{step:08d}"
    weights = path / "unet" / "diffusion_pytorch_model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x" * 10)
    files = {"unet/diffusion_pytorch_model.safetensors": 100} if damaged else {}
    (path / "manifest.json").write_text(json.dumps({"step": step, "files": files}))


def test_the_report_never_suggests_a_damaged_checkpoint(tmp_path: Path) -> None:
    """It said "keep it with `dbtui export … --step 10`", which the export then refused."""
    folder = scored_fake_run(tmp_path, [(0, 0.4, 0.30), (10, 0.7, 0.295), (15, 0.65, 0.295), (20, 0.6, 0.29)])
    checkpoint(folder, 10, damaged=True)
    checkpoint(folder, 15)
    text = write_report(folder.path).read_text(encoding="utf-8")
    said = Page(text).text
    assert "Step 10's checkpoint is damaged (`dbtui export` refuses it)" in said and "--step 10" not in said
    assert "the best kept step that qualifies is step 15" in said and "--step 15" in said
    table = text[text.index('<table class="scores">'):]
    assert "<td>10</td>" in table and "<td>damaged</td>" in table and "<td>kept</td>" in table


async def test_the_end_of_run_offer_never_suggests_a_damaged_checkpoint(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = ScoredEngine(events=scored_run(), kept=[2], damaged=[4])  # step 4 is the best
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(engine, pilot)
        assert "Best step 4: step 4's checkpoint is damaged" in log_text(screen)
        assert shown_buttons(screen)[0] == "Export step 2 (best kept that qualifies) (e)"
