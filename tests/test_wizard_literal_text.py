"""Engine and user text in the wizard is shown as written: Textual's markup read a message ending in a backslash as
escaping the closing tag after it ('C:\\path\\' showed 'C:\\path\\[/]'), and '[$x]' as a variable (it vanished);
Rich's and Textual's escape() let both through."""

from __future__ import annotations

from pathlib import Path

from dbtui.app import make_app
from dbtui.session import Session
from dbtui.widgets.findings import FindingsView
from test_wizard_80x24 import screen_lines
from wizard_fakes import FakeEngine, Finding, Report, Summary
from wizard_steps import at_step, settle

BACKSLASH, DOLLAR = "C:\\path\\", "bad [$x] value"


class FailingCheck(FakeEngine):
    def check_dataset(self, profile, concept: int, emit=None) -> Report:
        raise RuntimeError(BACKSLASH)


def shown(app) -> str:
    return "\n".join(screen_lines(app))


async def test_a_dataset_check_failure_ending_in_a_backslash_is_shown_as_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FailingCheck(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.press("ctrl+r")
        await settle(pilot)
        summary = screen.query_one("#findings-summary").render()
        assert str(summary) == f"check failed: {BACKSLASH}"


async def test_a_finding_holding_a_dollar_in_brackets_is_shown_as_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        folder = str(tmp_path)
        finding = Finding(f"{folder}/a.jpg", "blurry", "warning", DOLLAR, BACKSLASH)
        screen.query_one(FindingsView).show(Report(folder, (finding,), Summary(1, 1, {"warning": 1})))
        await settle(pilot)
        detail = str(screen.query_one("#findings-detail").render())
        assert detail == f"a.jpg {DOLLAR}\nWhat to do: {BACKSLASH}"
        assert DOLLAR in shown(app)


def test_the_model_steps_lines_hold_the_engines_words_as_written() -> None:
    from dbtui.screens.model_words import failure_text, warning_text

    assert failure_text("Model check", BACKSLASH, "x", "").plain == f"✗ {BACKSLASH}"
    assert warning_text(DOLLAR, "", "x", "")[1].plain == f"⚠ {DOLLAR}"


def test_the_identifier_line_holds_the_users_words_as_written() -> None:
    from dbtui.screens.dataset_advice import tokens_said

    assert tokens_said(BACKSLASH, ["a"]).plain == f"Identifier '{BACKSLASH}': one token ✓"
    assert tokens_said("zwx", DOLLAR).plain == f"Identifier 'zwx': token check unavailable ({DOLLAR})"


def test_the_caption_editors_lines_hold_names_and_errors_as_written(tmp_path: Path) -> None:
    from dbtui.screens.caption_rows import row_status, shared_note
    from dbtui.screens.caption_said import not_saved_said

    assert row_status(BACKSLASH).plain.endswith(BACKSLASH)
    assert not_saved_said(DOLLAR)[0].plain.endswith(DOLLAR)
    assert shared_note([tmp_path / "a [$x].png"]).plain.startswith("Shared with a [$x].png:")


async def test_a_file_name_is_shown_as_written_over_its_preview_and_in_the_overwrite_question(tmp_path: Path) -> None:
    from textual.app import App
    from textual.widgets import Static

    from dbtui.screens.overwrite import OverwriteScreen
    from dbtui.widgets.preview import ImagePreview

    class Holder(App):
        image_renderer = "none"

        def compose(self):
            yield ImagePreview(id="p")

    name = "bad [$x] \\"
    app = Holder()
    async with app.run_test() as pilot:
        preview = app.query_one(ImagePreview)
        preview.show(tmp_path / name)  # no longer there: its name is the title all the same
        await pilot.pause()
        assert preview._border_title.plain == name
        app.push_screen(OverwriteScreen(tmp_path / name))
        await pilot.pause()
        assert str(app.screen.query(Static).first().render()) == f"{tmp_path / name} already exists."


class OddHardware(FakeEngine):
    """A card whose name holds "[$x]", measured on a disk whose path ends in a backslash."""

    def probe_hardware(self, path: str):
        from engine.hardware.machine import Gpu

        report = super().probe_hardware(path)
        gpu = Gpu(0, f"GPU {DOLLAR}", 24576, 20000, "8.6", True)
        report.hardware.gpus.append(gpu)
        object.__setattr__(report.hardware, "disk_path", BACKSLASH)
        return report


async def test_the_hardware_step_shows_the_cards_name_and_the_disks_path_as_written(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    from dbtui.engine_facade import ModelInfo

    source = "/nowhere/sdxl [$x]"  # a hub id's like, not here: its family is guessed from its name
    session = Session()
    session.set("model.pretrained", source)
    session.model_info = ModelInfo(source, "hub", "not downloaded", source)
    app = make_app(OddHardware(), session, image_renderer="none")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await at_step(app, pilot, 0, "HardwareScreen")
        await settle(pilot, 0.3)
        verdict = str(screen.query_one("#hw-verdict").render())
        assert verdict.startswith(f"GPU {DOLLAR} with ")
        assert f"The model '{source}'" in verdict
        table = [line.rstrip() for line in screen_lines(app)]
        assert any(f"GPU {DOLLAR}  24.0 GB total" in line for line in table)
        assert any(line.endswith(f"free at {BACKSLASH}") for line in table)

async def test_the_class_count_says_a_typed_value_as_written(tmp_path: Path, monkeypatch) -> None:
    from textual.widgets import Input, Static

    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.set("prior.enabled", True)
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-num_class_images", Input).value = DOLLAR
        await settle(pilot)
        assert DOLLAR in str(screen.query_one("#ds-class-count", Static).render())

async def test_the_command_dialog_shows_a_save_as_path_holding_a_dollar_in_brackets_as_typed(tmp_path: Path,
                                                                                            monkeypatch) -> None:
    from textual.widgets import Input, Static

    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-path", Input).value = "bad [$x] value.toml"
        await pilot.press("ctrl+g")
        await settle(pilot)
        lines = str(app.screen.query_one("#cmd-lines", Static).render())
        assert "Ctrl+S writes 'bad [$x] value.toml' first." in lines
        assert "dbtui run 'bad [$x] value.toml'" in lines


async def test_the_live_run_question_names_run_folders_as_they_are_on_disk(tmp_path: Path) -> None:
    from textual.app import App
    from textual.widgets import Button

    from dbtui.screens.live_run import LiveRunScreen

    app = App()
    async with app.run_test() as pilot:
        app.push_screen(LiveRunScreen(tmp_path / "run [$x]", tmp_path / "new\\"))
        await pilot.pause()
        labels = [str(button.label) for button in app.screen.query(Button)]
        assert labels[:2] == ["Follow run [$x] (f)", "Start new\\ too (t)"]


def test_the_vram_lines_failure_holds_the_meters_words_as_written() -> None:
    from textual.visual import visualize
    from textual.widgets import Static

    from dbtui.widgets.vram_line import failure_line

    for reason in (BACKSLASH, DOLLAR):
        assert visualize(Static(), failure_line(reason)).plain == f"VRAM: not estimated: {reason}"


async def test_the_fit_tests_result_holds_the_meters_failure_as_written(tmp_path: Path, monkeypatch) -> None:
    from engine.memory.process import MeterProcessError
    from wizard_steps import fit_result

    class MeterFails(FakeEngine):
        def estimate_memory(self, profile, stop=None):
            raise MeterProcessError(BACKSLASH, recurs=True)

    monkeypatch.chdir(tmp_path)
    app = make_app(MeterFails(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert f"Memory meter: not available: {BACKSLASH}\n" in fit_result(screen) + "\n"
