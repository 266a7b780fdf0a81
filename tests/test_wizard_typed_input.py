"""What a user types into the wizard is read as they mean it: a half-typed value is a problem on its row, never a
crash; ~ and $VAR paths are the folders they name; a Save as path or a price is kept or refused as typed; Next
waits for the model check."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from textual.widgets import Input, Static

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)


async def test_a_half_typed_list_in_a_value_field_is_a_problem_on_its_row_not_a_crash(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        field = screen.query_one("#f-training--max_train_steps", Input)
        field.focus()
        field.value = ""
        for keys in (["["], ['"', "a", '"']):  # "[" then '["a"'
            await pilot.press(*keys)
            await settle(pilot)
            assert app.is_running
            assert screen.query_one("#row-f-training--max_train_steps").has_class("-invalid")
            assert "training.max_train_steps" in str(screen.query_one("#par-problems", Static).render())
        assert field.value == '["a"'


def _checks_held(engine: FakeEngine, release: dict[str, threading.Event], failing: str | None = None) -> None:
    """The engine's model check of each source waits for its ``release`` event; ``failing``'s then fails."""
    inspect = engine.inspect_model

    def held(source: str):
        release[source].wait(10)
        if source == failing:
            raise OSError(f"{source} is not a model")
        return inspect(source)

    engine.inspect_model = held


async def test_next_while_the_model_is_being_checked_waits_for_the_check(tmp_path: Path, monkeypatch) -> None:
    """Next during a slow check went on and threw the check away: the new model's family rules never applied."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    release = {"models/flux": threading.Event()}
    _checks_held(engine, release)
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(1)
        await pilot.pause(0.1)
        screen = app.screen
        screen.query_one("#model-source", Input).value = "models/flux"
        await pilot.press("enter", "ctrl+n")
        await pilot.pause(0.1)
        assert app.screen is screen
        assert any(n.message.startswith("Still checking models/flux") for n in app._notifications)
        release["models/flux"].set()
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "DatasetScreen" and app.session.family_id == "flux"


async def test_a_failed_check_of_a_model_since_replaced_says_nothing_of_the_one_named_now(tmp_path: Path, monkeypatch) -> None:
    """Its failure, come late, cleared the wait for the new model's check and was shown as that model's."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    release = {"models/old": threading.Event(), "models/flux": threading.Event()}
    _checks_held(engine, release, failing="models/old")
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.goto(1)
        await pilot.pause(0.1)
        screen = app.screen
        for source in release:
            screen.query_one("#model-source", Input).value = source
            await pilot.press("enter")
            await pilot.pause(0.1)
        release["models/old"].set()
        await pilot.pause(0.3)
        await pilot.press("ctrl+n")
        await pilot.pause(0.1)
        assert app.screen is screen and screen.checking == "models/flux" and screen.failed_check is None
        assert "not a model" not in str(screen.query_one("#model-family", Static).render())
        release["models/flux"].set()
        await settle(pilot)
        assert app.session.family_id == "flux"


async def test_a_caption_edit_in_a_home_relative_folder_asks_the_concept_s_caption_mode(
        tmp_path: Path, demo_data: Path, monkeypatch) -> None:
    """The caption screen looked for its concept by the expanded folder, which "~/pics" never equals."""
    from textual.widgets import TextArea

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(demo_data / "instance", tmp_path / "pics")
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-instance_dir", Input).value = "~/pics"
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        app.screen.query_one(TextArea).text = "zwx disc, edited"
        await pilot.press("ctrl+s", "escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "CaptionModeScreen"


async def test_a_model_folder_written_with_a_variable_is_a_folder_not_a_hub_id(tiny_sd1: Path, tmp_path: Path,
                                                                             monkeypatch) -> None:
    """The profile reads "$MODELS/x" as a shell does; the model step called it a hub id and applied no family."""
    from dbtui.engine_facade import RealEngine

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELS", str(tiny_sd1.parent))
    app = make_app(RealEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        screen.query_one("#model-source", Input).value = f"$MODELS/{tiny_sd1.name}"
        await pilot.press("enter")
        await settle(pilot)
        assert str(screen.query_one("#model-family", Static).render()).startswith("✓ diffusers folder: Stable Diffusion 1.x")
        assert app.session.family_id == "sd"


async def test_a_save_as_path_typed_by_the_user_stays_when_the_run_is_renamed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        name, path = screen.query_one("#f-name", Input), screen.query_one("#par-path", Input)
        name.value = "renamed"
        await settle(pilot)
        assert path.value == str(Path("profiles") / "renamed.toml")  # the default follows the name
        path.value = "my-folder/custom.toml"
        name.value = "renamed-again"
        await settle(pilot)
        assert path.value == "my-folder/custom.toml"


async def test_the_save_button_saves_to_the_typed_path(tmp_path: Path, monkeypatch) -> None:
    """The Save button's handler was the one that keeps a typed path, which read the press as a typed value: a click
    crashed the wizard."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-path", Input).value = str(tmp_path / "mine.toml")
        await settle(pilot)
        await pilot.click("#par-save")
        await settle(pilot)
        assert app.is_running and (tmp_path / "mine.toml").is_file()


async def test_the_fit_test_refuses_a_price_that_is_not_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        # One app for every price: a refusal starts nothing, and each is told in words that name its own price.
        for typed in ("-2", "nan", "inf", "abc"):
            screen.query_one("#par-price", Input).value = typed
            await pilot.press("ctrl+f")
            await settle(pilot)
            assert not any(call[0] == "fit_test" for call in engine.calls), typed
            assert any(n.message.startswith(f"Price per hour: {typed}") or n.message.startswith(f"Price per hour: '{typed}'")
                       for n in app._notifications), typed


async def test_the_concept_selector_names_the_images_folder_as_it_is_typed(tmp_path: Path, monkeypatch) -> None:
    from textual.widgets import Select

    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.click("#ds-add")
        await settle(pilot)
        selector = screen.query_one("#ds-concept", Select)
        assert "Concept 2 (no folder yet)" in str(selector.query_one("SelectCurrent #label", Static).render())
        screen.query_one("#ds-instance_dir", Input).value = "pics/cat"
        await settle(pilot)
        assert "Concept 2: cat" in str(selector.query_one("SelectCurrent #label", Static).render())
        assert screen.concept == 1 and selector.value == 1


async def test_a_prompt_list_with_an_emoji_is_shown_as_written_and_stays_a_list_when_edited(tmp_path: Path,
                                                                                             monkeypatch) -> None:
    """The list was shown as JSON's ASCII escapes, an emoji as two surrogates ("\\ud83d\\udc36") that TOML refuses:
    adding a prompt to it turned the whole field into text, a problem on the row."""
    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.set("sampling.prompts", ["zwx dog 🐶 in a café"])
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#sec-sampling").collapsed = False  # advanced fields are built when opened
        await settle(pilot)
        field = screen.query_one("#f-sampling--prompts", Input)
        assert field.value == '["zwx dog 🐶 in a café"]'
        field.focus()
        await pilot.press("end", "left", *', "zwx cat"')
        await settle(pilot)
        assert session.get("sampling.prompts") == ["zwx dog 🐶 in a café", "zwx cat"]
        assert not screen.query_one("#row-f-sampling--prompts").has_class("-invalid")
