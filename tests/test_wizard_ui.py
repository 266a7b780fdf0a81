"""The wizard driven by Pilot with the fake engine: every screen, keyboard first."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static, TextArea

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine, run_events
from wizard_steps import fit_result, settle

SIZE = (80, 24)


@pytest.fixture
def workdir(tmp_path, monkeypatch, demo_data) -> Path:
    """A working folder with a copy of the demo images: one caption missing, one tiny image."""
    monkeypatch.chdir(tmp_path)
    images = tmp_path / "images"
    shutil.copytree(demo_data / "instance", images)
    (images / "zwx_05.txt").unlink()
    shutil.copy(images / "zwx_00.png", images / "small.png")
    (images / "small.txt").write_text("zwx disc, small", encoding="utf-8")
    return tmp_path


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_the_whole_flow_by_keyboard(workdir: Path) -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # start screen: the demo
        await settle(pilot)
        assert type(app.screen).__name__ == "HardwareScreen"
        assert "No NVIDIA GPU" in text_of(app.screen, "#hw-verdict")
        assert "CPU demo" in text_of(app.screen, "#hw-verdict")

        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ModelScreen"
        assert "tiny Stable Diffusion" in text_of(app.screen, "#model-family")

        await pilot.press("ctrl+n")
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "DatasetScreen"
        screen.query_one("#ds-instance_dir", Input).value = str(workdir / "images")
        await pilot.press("ctrl+r")  # check
        await settle(pilot)
        assert "1 err" in text_of(screen, "#findings-summary")
        screen.query_one("#findings-filter", Select).value = "error"
        await pilot.pause()
        assert screen.query_one("#findings-table", DataTable).row_count == 1
        # The identifier's token check follows the typing.
        screen.query_one("#ds-instance_prompt", Input).value = "photo of zwxqqq disc"
        await settle(pilot)
        assert "splits into 2 tokens" in text_of(screen, "#ds-tokens")
        screen.query_one("#ds-instance_prompt", Input).value = "photo of zwx disc"
        await settle(pilot)
        assert "one token" in text_of(screen, "#ds-tokens")

        await pilot.press("ctrl+o")  # caption review
        await settle(pilot)
        captions = app.screen
        assert type(captions).__name__ == "CaptionScreen"
        assert captions.image is not None and captions.image.name == "small.png"
        captions.query_one(TextArea).text = "zwx disc,   seen from above"
        await pilot.press("ctrl+s")
        assert (workdir / "images" / "small.txt").read_text(encoding="utf-8") == "zwx disc, seen from above"
        captions.query_one("#cap-tag", Input).value = "sks"
        await pilot.click("#cap-add")
        await settle(pilot)  # bulk edits run in a worker
        assert (workdir / "images" / "zwx_05.txt").read_text(encoding="utf-8") == "sks"
        await pilot.press("ctrl+r")  # undo the bulk edit
        await settle(pilot)
        assert not (workdir / "images" / "zwx_05.txt").exists()
        await pilot.press("escape")  # captions were edited: which caption mode should training use?
        await pilot.pause()
        assert type(app.screen).__name__ == "CaptionModeScreen"
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is screen
        assert app.session.get("concepts.0.caption_mode") == "caption_file_then_prompt"

        await pilot.press("ctrl+n")  # the check found an error before the changes: made again first
        await settle(pilot)
        assert app.screen is screen and "1 err" in text_of(screen, "#findings-summary")
        await pilot.press("ctrl+n")  # the error is said once
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("ctrl+n")
        await settle(pilot)
        params = app.screen
        assert type(params).__name__ == "ParametersScreen"
        params.query_one("#f-training--max_train_steps", Input).value = "lots"
        await pilot.pause()
        assert "training.max_train_steps" in text_of(params, "#par-problems")
        assert params.query_one("#row-f-training--max_train_steps").has_class("-invalid")
        await pilot.press("ctrl+n")  # refused while the profile is invalid
        await pilot.pause()
        assert app.screen is params
        params.query_one("#f-training--max_train_steps", Input).value = "4"
        await pilot.pause()
        assert "valid" in text_of(params, "#par-problems")

        params.query_one("#par-price", Input).value = "2"
        await pilot.press("ctrl+f")  # fit test
        await settle(pilot)
        assert engine.calls[-1] == ("fit_test", 10, 2.0)
        assert "0.50 s/step" in fit_result(params) and "0.11" in fit_result(params)

        await pilot.press("ctrl+s")
        saved = workdir / "profiles" / "tiny-demo.toml"
        assert saved.is_file()
        assert Session.from_file(saved).profile() == app.session.profile()
        assert app.session.profile().training.max_train_steps == 4

        await pilot.press("ctrl+g")  # the equivalent command
        await pilot.pause()
        assert "dbtui run profiles/tiny-demo.toml" in text_of(app.screen, "#cmd-lines")
        await pilot.press("escape")

        await pilot.press("ctrl+n")  # train: the fake run plays its events
        await settle(pilot, 0.6)
        dashboard = app.screen
        assert type(dashboard).__name__ == "TrainingScreen"
        assert ("start_run", "tiny-demo") in engine.calls
        assert dashboard.finished and len(dashboard.history) == 6
        assert dashboard.query_one("#tr-plot").redraws >= 1
        assert dashboard.query_one("#tr-stats").status == "finished"


async def test_attach_and_control_a_live_run(workdir: Path) -> None:
    live = [e for e in run_events() if e.kind not in ("run_finished",)]
    engine = FakeEngine(events=live)
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await settle(pilot)  # the runs are read in a worker; the list takes the keys once shown
        await pilot.press("down", "enter")  # the second run: person-v2, running
        await settle(pilot, 0.3)
        dashboard = app.screen
        assert type(dashboard).__name__ == "TrainingScreen"
        assert app.session.run_folder == Path("runs/person-v2")
        await pilot.press("c", "p", "s")
        assert [c for c in engine.calls if c[0] == "control"] == [("control", "save"), ("control", "sample"), ("control", "stop")]
        await pilot.press("d")  # detach: the app ends, the run goes on
        await pilot.pause()
    assert app.return_code == 0


async def test_open_a_profile(workdir: Path) -> None:
    (workdir / "profiles").mkdir()
    good = workdir / "profiles" / "mine.toml"
    Session.for_demo().save(good)
    bad = workdir / "bad.toml"
    bad.write_text('name = "x"\nconcepts = []\n[trainig]\n', encoding="utf-8")
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#open-path", Input).value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        # Refused, with the problems shown; the screen stays, with the path, to fix the file and press Enter again.
        assert type(app.screen).__name__ == "OpenProfileScreen"
        assert app.screen.query_one("#open-path", Input).value == str(bad)
        assert [n.title for n in app._notifications] == [f"Cannot open {bad}"]
        await pilot.press("tab", "enter")  # the profiles folder's only file
        await settle(pilot)
        assert type(app.screen).__name__ == "HardwareScreen"
        assert app.session.path == Path("profiles/mine.toml")
        assert app.session.profile() == Session.for_demo().profile()


async def test_new_profile_on_a_cpu_machine_offers_the_demo(workdir: Path) -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await settle(pilot)
        assert app.screen.query_one("#hw-demo").display and not app.session.demo
        await pilot.press("enter")  # the demo button has the focus
        await pilot.pause()
        assert app.session.demo and app.session.get("model.pretrained") == "builtin:tiny-sd1"


async def test_the_free_disk_is_measured_in_the_output_folder_the_profile_means(workdir: Path, monkeypatch) -> None:
    """"~/runs" measured the free disk of the working folder (a folder named "~" in it)."""
    monkeypatch.setenv("HOME", str(workdir / "home"))
    monkeypatch.delenv("NOSUCHVAR", raising=False)
    probed: list[str] = []

    class Recording(FakeEngine):
        def probe_hardware(self, path: str):
            probed.append(path)
            return super().probe_hardware(path)

    app = make_app(Recording(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await settle(pilot)
        for output_dir in ("~/runs", "$NOSUCHVAR/runs"):
            app.session.set("saving.output_dir", output_dir)
            await pilot.press("r")
            await settle(pilot)
    assert probed[1:] == [str(workdir / "home" / "runs"), "."]


async def test_palette_help_and_themes(workdir: Path) -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        await settle(pilot)
        app.goto(3)
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Save profile", "Fit test", "Command", "Next", "Help", "Go to training"} <= titles
        await pilot.press("f1")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark


def test_session_drafts() -> None:
    session = Session.for_demo()
    session.set("optimizer.learning_rate", "fast")
    profile, problems = session.validate()
    assert profile is None and [p.key for p in problems] == ["optimizer.learning_rate"]
    session.set("optimizer.learning_rate", None)  # back to the default
    session.merge({"training": {"method": "lora", "lora": {"rank": 4}}, "saving": {"export": ["lora_diffusers"]}})
    profile = session.profile()
    assert profile.lora.rank == 4 and profile.learning_rate == 1e-4
    assert session.get("concepts.0.instance_prompt") == "photo of zwx disc"


def test_loss_curve_downsampling() -> None:
    from dbtui.widgets.loss_plot import LossHistory, downsample

    history = LossHistory()
    for step in range(1, 1001):
        history.append(step, 1.0 / step, 1.0 / step)
    history.append(5, 9.9, 9.9)  # a replayed event is ignored
    steps, loss, _ = history.snapshot()
    x, y = downsample(steps, loss, 100)
    assert len(steps) == 1000 and len(x) == 100
    assert x[0] == pytest.approx(5.5) and y[-1] < y[0]


def test_first_screen_is_quick_and_imports_nothing_heavy() -> None:
    """The start screen comes up without torch, diffusers, transformers or pydantic."""
    import subprocess
    import sys

    code = (
        "import time, sys, asyncio\nt0 = time.process_time()\n"
        "import textual_image.widget\nfrom dbtui.app import make_app\nfrom dbtui.screens.start import StartScreen\n"
        "async def main():\n"
        "    app = make_app()\n"
        "    async with app.run_test(size=(80, 24)) as pilot:\n"
        "        while not isinstance(app.screen, StartScreen):\n"
        "            await asyncio.sleep(0.01)\n"
        "        heavy = [m for m in ('torch', 'diffusers', 'transformers', 'pydantic') if m in sys.modules]\n"
        "        print(f'{time.process_time() - t0:.2f}', heavy)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    seconds, heavy = result.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    # Its own CPU time, which a busy CI box does not stretch as it does the time that passes (under 1 s idle).
    assert float(seconds) < 3.0


async def test_a_run_with_checkpoints_asks_to_resume(workdir: Path) -> None:
    from dbtui.screens.resume import ResumeScreen
    from dbtui.screens.training import TrainingScreen

    # The resumed trainer's events, written after the wizard started it: those from before are the earlier attempt's.
    later = time.time() + 60
    engine = FakeEngine(has_checkpoints=True, events=[dataclasses.replace(e, time=later + e.time) for e in run_events()])
    session = Session.from_file(Path(__file__).parents[1] / "profiles" / "tiny-demo.toml")
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TrainingScreen(session, engine))
        await settle(pilot, 0.5)
        assert isinstance(app.screen, ResumeScreen)
        assert "already has checkpoints" in text_of(app.screen, "#resume-detail")
        await pilot.press("r")
        await settle(pilot, 0.6)
        assert ("start_run", "tiny-demo", "latest") in engine.calls
        assert app.screen.finished


async def test_the_dataset_step_says_its_errors_once_and_keeps_no_stale_findings(workdir: Path) -> None:
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(2)
        await settle(pilot)
        screen = app.screen
        assert type(screen).__name__ == "DatasetScreen"
        screen.query_one("#ds-instance_dir", Input).value = str(workdir / "images")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "1 err" in text_of(screen, "#findings-summary")
        await pilot.press("ctrl+n")  # the errors are said, and the step stays
        await settle(pilot)
        assert app.screen is screen
        assert any("1 error(s) in this concept" in n.message for n in app._notifications)

        screen.query_one("#ds-instance_dir", Input).value = str(workdir)  # another folder: the findings are not its
        await settle(pilot)
        assert text_of(screen, "#findings-summary") == "not checked since the change (ctrl+r checks)"
        assert screen.query_one("#findings-table", DataTable).row_count == 0

        def broken(profile, concept, emit=None):
            raise OSError("the disk went away")

        engine.check_dataset = broken
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "check failed: the disk went away" in text_of(screen, "#findings-summary")

        screen.query_one("#ds-instance_dir", Input).value = str(workdir / "images")
        engine.check_dataset = FakeEngine.check_dataset.__get__(engine)
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press("ctrl+n")  # told once; Next again goes on
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"


async def test_the_hardware_steps_back_button_leads_to_a_start_screen_that_answers(tmp_path: Path, monkeypatch) -> None:
    """Back (the button, not Esc) on the first step, then a choice on the start screen: the screen went blank, the
    start screen's answer sent to the hardware step that had pushed it and was gone."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await settle(pilot)
        assert type(app.screen).__name__ == "HardwareScreen"
        app.screen.query_one("#nav-back").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "StartScreen"
        await pilot.press("d")
        await settle(pilot)
        assert type(app.screen).__name__ == "HardwareScreen" and app.session.demo
