"""Keys typed in a burst right after a screen change (issue 13): SSH hands the app several keys
in one read, so the keys after Ctrl+N, Enter on Next, or a key that opens or closes a dialog
arrive before that screen change has happened. Each must land where it would have landed if
typed slowly: in the new screen's focused field, in order, none lost, none in the old screen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual import events
from textual.worker import WorkerCancelled
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.screens.captions import CaptionScreen
from dbtui.screens.parameters import ParametersScreen
from dbtui.session import Session
from dbtui.widgets.ordered_keys import OrderedKeysApp
from wizard_fakes import FakeEngine

SIZE = (80, 24)
CHARACTERS = {"tab": "\t", "enter": "\r", "escape": "\x1b"}
KEY_NAMES = {":": "colon", "-": "minus", "/": "slash"}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def burst(app: App, *keys: str) -> None:
    """Keys as one terminal read hands them over: all queued before the app handles any.

    ``pilot.press`` waits for the app to go idle after every key, so it never shows this.
    A one-character string is that character; a longer one is a key name.
    """
    for key in keys:
        if len(key) == 1:
            app.post_message(events.Key(KEY_NAMES.get(key, key), key))
        else:
            app.post_message(events.Key(key, CHARACTERS.get(key)))


async def settle(pilot, timeout: float = 20.0) -> None:
    """Until every key of the burst has been handled (a loaded 2-core machine is slow)."""
    app = pilot.app
    waited = 0.0
    while app.keys_pending and waited < timeout:
        await pilot.pause(0.05)
        waited += 0.05
    assert not app.keys_pending, "keys still held back"
    while True:  # a step's check replaces (cancels) its group's running worker, and waiting on that one raises
        try:
            await app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            continue
    await pilot.pause(0.1)


def value(app: App, selector: str) -> str:
    return app.screen.query_one(selector, Input).value


async def test_typing_right_after_new_and_next_lands_in_the_model_field() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, "n", "ctrl+n", *"builtin:tiny-sd1")
        await settle(pilot)
        assert type(app.screen).__name__ == "ModelScreen"
        assert value(app, "#model-source") == "builtin:tiny-sd1"
        assert app.focused is app.screen.query_one("#model-source")
        assert not app.session.demo  # the "d" of "sd1" did not reach the hardware step's Demo key


async def test_typing_right_after_ctrl_n_lands_in_the_next_steps_first_field() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        await pilot.pause()
        app.goto(2)
        await settle(pilot)
        burst(app, "ctrl+n", *"my-run")
        await settle(pilot)
        assert isinstance(app.screen, ParametersScreen)
        assert value(app, "#f-name") == "my-run" and app.session.get("name") == "my-run"
        assert app.session.get("concepts.0.instance_dir") == "builtin:demo-instance"  # not typed on the dataset step


async def test_typing_right_after_enter_on_next_lands_in_the_next_step() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        await pilot.pause()
        app.goto(1)
        await settle(pilot)
        app.screen.query_one("#nav-next").focus()
        await pilot.pause()
        burst(app, "enter", *"photos/zwx")
        await settle(pilot)
        assert type(app.screen).__name__ == "DatasetScreen"
        assert value(app, "#ds-instance_dir") == "photos/zwx"
        assert app.session.get("model.pretrained") == "builtin:tiny-sd1"  # not typed on the model step


async def test_a_dialog_answers_the_key_typed_with_the_one_that_opened_it(tmp_path: Path) -> None:
    shipped = tmp_path / "profiles" / "tiny-demo.toml"
    shipped.parent.mkdir()
    shipped.write_text("# my notes\nname = \"tiny-demo\"\n", encoding="utf-8")
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.session.profiles_dir, app.session.step = Path("profiles"), 3
        screen = ParametersScreen(app.session, engine)
        app.push_screen(screen)
        await settle(pilot)
        burst(app, "ctrl+s", "n", "end", "2")  # save, "n": a new name, then back in the name field
        await settle(pilot)
        assert app.screen is screen
        assert shipped.read_text(encoding="utf-8").startswith("# my notes")
        assert Path("profiles/tiny-demo-2.toml").exists() and app.session.path == Path("profiles/tiny-demo-2.toml")
        assert value(app, "#f-name") == "tiny-demo2"  # the keys after the dialog reached the field under it


async def test_the_caption_question_and_the_next_step_take_the_keys_typed_after_esc(tmp_path: Path,
                                                                                   demo_data: Path) -> None:
    images = tmp_path / "images"
    shutil.copytree(demo_data / "instance", images)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        await pilot.pause()
        app.session.set("concepts.0.instance_dir", str(images))
        app.goto(2)
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert isinstance(app.screen, CaptionScreen)
        app.screen.query_one("#cap-text").text = "zwx disc, seen from above"
        await pilot.press("ctrl+s")
        await settle(pilot)
        # Esc leaves the captions and asks; f: train with the caption files; then the next step
        burst(app, "escape", "f", "ctrl+n", *"my-run")
        await settle(pilot)
        assert app.session.get("concepts.0.caption_mode") == "caption_file"
        assert isinstance(app.screen, ParametersScreen)
        assert value(app, "#f-name") == "my-run"


async def test_keys_after_the_resume_question_is_answered_reach_the_screen_under_it() -> None:
    engine = FakeEngine(has_checkpoints=True)
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        await pilot.pause()
        app.goto(4)
        await settle(pilot)
        assert type(app.screen).__name__ == "ResumeScreen"
        burst(app, "escape", "escape")  # do not resume; then back to the parameters
        await settle(pilot)
        assert isinstance(app.screen, ParametersScreen)
        assert engine.calls.count(("start_run", "tiny-demo")) == 1
        assert not any(len(call) == 3 and call[0] == "start_run" for call in engine.calls)


async def test_keys_typed_after_quit_are_dropped_without_an_error() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, "ctrl+q", "n", "x")
        await pilot.pause(0.5)
        assert not app.keys_pending  # dropped, not routed to a screen that is going away
    assert app.return_code == 0  # and no error on the way out


class Asker(Screen):
    """Its field to type in is not the first: on_mount focuses it, as dbtui's steps do."""

    def compose(self) -> ComposeResult:
        yield Input(id="other")
        yield Input(id="answer")

    def on_mount(self) -> None:
        self.query_one("#answer").focus()


class AskOnCtrlO(App):
    """The minimal app of docs/upstream/textual-focus-burst.md, part 3."""

    BINDINGS = [Binding("ctrl+o", "ask", "Ask")]

    def compose(self) -> ComposeResult:
        yield Input(id="first")

    def action_ask(self) -> None:
        self.push_screen(Asker())


class AskOnPriorityCtrlO(AskOnCtrlO):
    BINDINGS = [Binding("ctrl+o", "ask", "Ask", priority=True)]


def typed(app: App) -> dict[str, str]:
    return {str(field.id): field.value for screen in app.screen_stack for field in screen.query(Input)}


@pytest.mark.parametrize(("app_class", "landed"), [
    (AskOnCtrlO, {"first": "abc", "other": "", "answer": ""}),  # the binding runs after the keys were routed
    (AskOnPriorityCtrlO, {"first": "", "other": "abc", "answer": ""}),  # before on_mount's focus() took effect
])
async def test_plain_textual_still_misroutes_keys_typed_right_after_a_screen_change(app_class, landed) -> None:
    """A canary: when this fails, Textual routes keys after a screen change itself, and
    OrderedKeysApp can go."""
    app = app_class()
    async with app.run_test() as pilot:
        await pilot.pause()
        burst(app, "ctrl+o", "a", "b", "c")
        await pilot.pause(0.5)
        assert isinstance(app.screen, Asker) and typed(app) == landed


@pytest.mark.parametrize("app_class", [AskOnCtrlO, AskOnPriorityCtrlO])
async def test_ordered_keys_app_routes_them_to_the_new_screens_focus(app_class) -> None:
    app = type(f"Ordered{app_class.__name__}", (OrderedKeysApp, app_class), {})()
    async with app.run_test() as pilot:
        await pilot.pause()
        burst(app, "ctrl+o", "a", "b", "c")
        await settle(pilot)
        assert isinstance(app.screen, Asker) and typed(app) == {"first": "", "other": "", "answer": "abc"}
