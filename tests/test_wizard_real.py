"""The wizard on the real engine and the tiny built-in model: real probe, real doctor, a real
detached trainer process followed by the dashboard, stop-and-save, the fit test and the CLI."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import DataTable, Input, Static, TextArea

from dbtui.app import make_app
from dbtui.cli import main
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.runs.folder import RunFolder
from wizard_steps import settle

pytestmark = pytest.mark.slow
SIZE = (80, 24)


@pytest.fixture
def workdir(tmp_path, monkeypatch, demo_data, tiny_sd1) -> Path:
    """A copy of the demo images plus one too wide to train square (a doctor warning)."""
    monkeypatch.chdir(tmp_path)
    images = tmp_path / "images"
    shutil.copytree(demo_data / "instance", images)
    Image.new("RGB", (192, 64), (120, 60, 30)).save(images / "wide.png")
    (images / "wide.txt").write_text("zwx disc, wide", encoding="utf-8")
    return tmp_path


async def until(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    await pilot.pause()


async def test_whole_flow_on_the_tiny_model(workdir: Path) -> None:
    app = make_app(RealEngine(), Session(), image_renderer="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # the demo
        await until(pilot, lambda: app.session.hardware is not None, 120, "the hardware probe")
        verdict = str(app.screen.query_one("#hw-verdict", Static).render())
        assert "No NVIDIA GPU" in verdict  # this machine has no GPU

        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.session.model_info is not None, 60, "the model check")
        assert app.session.model_info.folder and Path(app.session.model_info.folder, "model_index.json").exists()

        await pilot.press("ctrl+n")
        screen = app.screen
        screen.query_one("#ds-instance_dir", Input).value = str(workdir / "images")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: 0 in app.session.reports, 120, "the dataset check")
        report = app.session.reports[0]
        assert "aspect_crop" in report.codes(str(workdir / "images" / "wide.png"))
        assert screen.query_one("#findings-table", DataTable).row_count >= 1

        await pilot.press("ctrl+o")
        await settle(pilot)  # the captions are read in a worker
        captions = app.screen
        captions.query_one(TextArea).text = "zwx disc on a red table"
        await pilot.press("ctrl+s")
        first = captions.image
        assert first.with_suffix(".txt").read_text(encoding="utf-8").strip() == "zwx disc on a red table"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")  # the caption-mode question: decide later, keep the instance prompt
        await pilot.pause()

        await pilot.press("ctrl+n")
        params = app.screen
        params.query_one("#f-training--max_train_steps", Input).value = "-3"
        await pilot.pause()
        assert "training.max_train_steps" in str(params.query_one("#par-problems", Static).render())
        params.query_one("#f-training--max_train_steps", Input).value = "3"
        params.query_one("#sec-sampling").collapsed = False  # advanced fields are built when opened
        await pilot.pause()
        params.query_one("#f-sampling--every_n_steps", Input).value = ""
        params.query_one("#f-sampling--steps", Input).value = "2"
        await pilot.pause()
        await pilot.press("ctrl+s")
        saved = workdir / "profiles" / "tiny-demo.toml"
        assert Session.from_file(saved).profile() == app.session.profile()

        await pilot.press("ctrl+n")  # a detached trainer process; the dashboard follows its events
        dashboard = app.screen
        await until(pilot, lambda: dashboard.finished, 300, "the run to finish")
        assert len(dashboard.history) == 3
        assert dashboard.query_one("#tr-stats").status == "finished"
        assert dashboard.query_one("#tr-samples").path is not None  # the last sample is shown
        folder = RunFolder(app.session.run_folder)
        assert (folder.outputs / "diffusers" / "model_index.json").exists()


async def test_stop_and_save_from_the_dashboard(workdir: Path) -> None:
    session = Session.for_demo()
    session.merge({"training": {"max_train_steps": 400}, "prior": {"enabled": False},
                   "sampling": {"num_images": 0}, "saving": {"every_n_steps": 1000}})
    app = make_app(RealEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app._started(session)
        app.goto(4)
        await pilot.pause()
        dashboard = app.screen
        await until(pilot, lambda: len(dashboard.history) >= 2, 300, "training steps")
        await pilot.press("s")
        await until(pilot, lambda: dashboard.finished, 120, "the run to stop")
        assert dashboard.query_one("#tr-stats").status == "stopped"
        folder = RunFolder(session.run_folder)
        assert [p.name for p in folder.checkpoints.glob("step-*")], "stop-and-save left no checkpoint"


def test_cli_hardware_fit_and_serve(workdir: Path, capsys) -> None:
    assert main(["hardware"]) == 0
    out = capsys.readouterr().out
    assert "No NVIDIA GPU" in out and "Recommended preset" in out

    profile = Session.for_demo()
    # No previews nor scores: the fit test trains without them, and the meter's sampling pass (a quarter of its estimate
    # here) is no part of what is checked below.
    profile.merge({"training": {"max_train_steps": 40}, "prior": {"enabled": False}, "sampling": {"num_images": 0},
                   "evaluation": {"enabled": False}})
    path = profile.save("fit.toml")
    # Two steps, the fewest with a gap between them (engine/runs/fit.py MIN_STEPS): the figures checked are those of any count.
    assert main(["fit", str(path), "--steps", "2", "--price-per-hour", "1.5"]) == 0
    out = capsys.readouterr().out
    assert "s/step" in out and "whole run:         40 steps" in out and "cost:" in out
    assert "not measured (no CUDA)" in out

    from dbtui.cli.cmd_serve import build_server
    from dbtui.cli.serve_access import ServeAccess

    server = build_server(8123, ServeAccess())
    assert server.host == "127.0.0.1" and server.port == 8123
