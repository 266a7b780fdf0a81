"""The wizard in an 80×24 terminal over SSH, keyboard only (issue 13): nothing cut, the focus
plain to see in both themes, F1 about the screen at hand, and key bursts after Tab."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.color import Color
from textual.screen import Screen
from textual.widgets import Input, Label, Markdown, Switch
from textual.widgets._footer import FooterKey

import dbtui.screens
from dbtui.app import make_app
from dbtui.screens.help import HelpScreen
from dbtui.screens.caption_mode import CaptionModeScreen
from dbtui.screens.overwrite import OverwriteScreen
from dbtui.screens.resume import ResumeScreen
from dbtui.session import Session
from dbtui.widgets.profile_form import ProfileForm, Section
from wizard_fakes import FakeEngine
from wizard_steps import until

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def settle(pilot, seconds: float = 0.2) -> None:
    while pilot.app.keys_pending:  # a burst is handled key by key (dbtui/widgets/ordered_keys.py)
        await pilot.pause(0.05)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(seconds)


def screen_lines(app: App) -> list[str]:
    """What the terminal shows, as text (export_screenshot() draws from the same compositor)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def at_step(pilot, step: int) -> None:
    await pilot.press("d")  # the demo
    await pilot.pause()
    pilot.app.goto(step)
    await settle(pilot, 0.3)


@dataclass(frozen=True)
class Reach:
    """How a test reaches a screen: ``base`` (None: the start screen as the app opens), then ``last`` on it (None:
    nothing more). A test that comes back to where ``last`` started from takes it again, not the whole way."""

    base: Callable[[object], Awaitable[None]] | None = None
    last: Callable[[object], Awaitable[None]] | None = None

    async def __call__(self, pilot) -> None:
        for part in (self.base, self.last):
            if part is not None:
                await part(pilot)


def _pressing(*keys: str) -> Callable[[object], Awaitable[None]]:
    async def press(pilot) -> None:
        await pilot.press(*keys)
        await settle(pilot)
    return press


def keys_then(*keys: str) -> Reach:
    return Reach(last=_pressing(*keys))


def step_then(step: int, *keys: str) -> Reach:
    return Reach(base=partial(at_step, step=step), last=_pressing(*keys) if keys else None)


def pushed(make: Callable[[], Screen]) -> Reach:
    async def push(pilot) -> None:
        pilot.app.push_screen(make())
        await settle(pilot)
    return Reach(base=partial(at_step, step=3), last=push)


SCREENS = {
    "StartScreen": keys_then(),
    "HardwareScreen": keys_then("n"),
    "ModelScreen": step_then(1),
    "DatasetScreen": step_then(2),
    "CaptionScreen": step_then(2, "ctrl+o"),
    "ParametersScreen": step_then(3),
    "CommandScreen": step_then(3, "ctrl+g"),
    "TrainingScreen": step_then(4),
    "HelpScreen": keys_then("f1"),
    "AttachScreen": keys_then("a"),
    "OpenProfileScreen": keys_then("o"),
    "ResumeScreen": pushed(lambda: ResumeScreen("runs/tiny-demo holds checkpoint-30")),
    "OverwriteScreen": pushed(lambda: OverwriteScreen(Path("profiles/tiny-demo.toml"))),
    "CaptionModeScreen": pushed(lambda: CaptionModeScreen()),
}


# One app visits the screens in turn, in this order, each reached as SCREENS reaches it and left back to where its
# reach started from: a fresh app per screen walked the demo's steps again each time (most of these tests' CPU).
_TOUR = ("StartScreen", "HelpScreen", "AttachScreen", "OpenProfileScreen", "HardwareScreen", "ModelScreen",
         "DatasetScreen", "CaptionScreen", "ParametersScreen", "CommandScreen", "ResumeScreen", "OverwriteScreen",
         "CaptionModeScreen", "TrainingScreen")
_STEP_OF = {"ModelScreen": 1, "DatasetScreen": 2, "CaptionScreen": 2, "ParametersScreen": 3, "CommandScreen": 3,
            "ResumeScreen": 3, "OverwriteScreen": 3, "CaptionModeScreen": 3, "TrainingScreen": 4}
_STEP_SCREENS = {1: "ModelScreen", 2: "DatasetScreen", 3: "ParametersScreen", 4: "TrainingScreen"}


async def _to_step(pilot, step: int) -> None:
    """The demo's wizard ``step`` from the start screen, as at_step() reaches it; nothing to do where it is shown."""
    if type(pilot.app.screen).__name__ == "StartScreen":
        await pilot.press("d")
        await pilot.pause()
    if type(pilot.app.screen).__name__ != _STEP_SCREENS[step]:
        pilot.app.goto(step)
        await settle(pilot, 0.3)


async def tour(pilot, names: tuple[str, ...] | dict) -> AsyncIterator[str]:
    """Each of ``names`` (in _TOUR's order) reached in the one app of ``pilot``, as the app's screen when yielded."""
    assert set(names) <= set(_TOUR), f"not on the tour: {set(names) - set(_TOUR)}"
    for name in (name for name in _TOUR if name in names):
        reach = SCREENS[name]
        if name in _STEP_OF:
            await _to_step(pilot, _STEP_OF[name])
            if reach.last is not None:
                await reach.last(pilot)
        else:
            await reach(pilot)
        assert type(pilot.app.screen).__name__ == name
        yield name
        if name == "HardwareScreen":
            pilot.app.goto(-1)  # back to the start screen, which offers the demo (shown from the app's own loop)
            await until(pilot, lambda: type(pilot.app.screen).__name__ == "StartScreen")
            await settle(pilot)
        elif name not in _STEP_SCREENS.values() and name != "StartScreen":
            pilot.app.pop_screen()  # a dialog or a screen pushed over the one its reach started from
            await settle(pilot)


async def assert_footer_whole(pilot, where: str) -> None:
    app = pilot.app
    # The footer rebuilds itself after a focus change, key by key: wait until the last drawn line holds every
    # key's label (a loaded machine draws it over several frames), then judge that line.
    for _ in range(100):
        keys = list(app.screen.query(FooterKey))
        line = screen_lines(app)[-1]
        if keys and all(key.region.width for key in keys) and all(
                f"{key.key_display} {key.description}".strip() in line for key in keys):
            break
        await pilot.pause(0.05)
    assert keys, f"{where}: no footer"
    line = screen_lines(app)[-1]
    palette = [key for key in keys if key.has_class("-command-palette")]
    right = palette[0].region.x if palette else app.size.width
    for key in keys:
        label = f"{key.key_display} {key.description}".strip()
        assert label in line, f"{where}: footer shows {line.strip()!r}, cutting {label!r}"
        if key not in palette:
            assert key.region.right <= right, f"{where}: {label!r} runs under the palette key"


async def test_every_footer_label_is_whole_at_80_columns() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        async for name in tour(pilot, _TOUR):
            screen = app.screen
            await assert_footer_whole(pilot, name)
            # The focused widget adds its own keys to the footer: try one of each kind in the Tab order.
            kinds = {type(widget): widget for widget in reversed(screen.focus_chain)}
            for widget in kinds.values():
                screen.set_focus(widget)
                await pilot.pause(0.05)
                await assert_footer_whole(pilot, f"{name} with {widget!r} focused")


async def test_each_start_choices_help_keeps_its_indent_when_wrapped_at_80_columns() -> None:
    """The Demo's help wrapped at 80 columns as "  the tiny built-in model and images: no GPU, no" over "downloads" at
    the list's left edge, under the labels' column: only its first line was indented."""
    from dbtui.screens.start import CHOICES

    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lines = screen_lines(app)
        labels = [label for _, label, _ in CHOICES]
        first = next(row for row, line in enumerate(lines) if labels[0] in line)
        end = next(row for row, line in enumerate(lines) if row > first and "▁▁▁" in line)  # the list's bottom edge
        left = lines[first].index(labels[0])
        helps = [line[left:].rstrip(" │▎") for line in lines[first:end] if not any(label in line for label in labels)]
        assert len(helps) > len(CHOICES), helps  # the Demo's help wraps onto a second line
        assert all(line.startswith("  ") and line[2] != " " for line in helps), helps


async def test_every_parameter_label_fits_at_80_columns() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # the demo
        await pilot.pause()
        # Only fields that apply are shown: switch every optional part on, so that all but one apply. Set before the
        # step is first shown: a form built for the demo's draft and then again for this one built some 300 rows twice.
        app.session.merge({"training": {"method": "lora", "train_text_encoder": True}, "dataset": {"bucketing": True},
                           "optimizer": {"lr_scheduler": "cosine_with_restarts"}})
        app.goto(3)
        await settle(pilot, 0.3)
        form = app.screen.query_one(ProfileForm)
        shown = [spec for spec in form.specs.values() if form.shows(spec)]
        flux_only = [key for key in form.specs if key.startswith("training.flow.")]  # an SD model refuses them
        assert len(shown) == len(form.specs) - 1 - len(flux_only)  # and lr_power, the polynomial scheduler's
        for section in form.query(Section):
            section.collapsed = False  # every advanced field, built when opened
        for _ in range(50):  # some 300 widgets are built and laid out: wait for the last
            await settle(pilot, 0.1)
            labels = [label for label in form.query(".row Label").results(Label) if label.parent.display]
            if len(labels) == len(shown) and all(label.size.width for label in labels):
                break
        assert len(labels) == len(shown)
        for label in labels:
            text, width = str(label.render()), label.content_size.width
            assert width >= len(text), f"label {text!r} is cut to {width} columns"
            field = label.parent.children[1]
            if not isinstance(field, Switch):
                assert field.size.width >= 40, f"{text!r} leaves its field {field.size.width} columns"
        # The ids that tests and users' muscle memory rely on did not move.
        assert app.screen.query_one("#row-f-training--max_train_steps").query_one("#f-training--max_train_steps")


async def test_every_dataset_placeholder_is_whole_at_80_columns() -> None:
    """The class prompt's placeholder ended 'e.g. photo of a dog (with prior preservation, set in Par'."""
    from dbtui.screens.dataset import FIELDS

    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_step(pilot, 2)
        for key, _, placeholder in FIELDS:
            field = app.screen.query_one(f"#ds-{key}", Input)
            assert field.content_size.width >= len(placeholder), f"{placeholder!r} cut to {field.content_size.width}"


def contrast(a: Color, b: Color) -> float:
    """WCAG contrast ratio of two colours (1: the same; 3 is the bar for a UI component)."""
    def luminance(color: Color) -> float:
        def channel(value: int) -> float:
            c = value / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def test_the_focused_field_stands_out_in_both_themes() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_step(pilot, 3)
        screen = app.screen
        # One app for both themes: each field is unfocused, and its colours read, before it is focused and judged.
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await pilot.pause()
            # A compact input, a compact select (drawn by its SelectCurrent) and a switch.
            for field_id, drawn_by in [("f-training--max_train_steps", ""), ("f-training--method", "SelectCurrent"),
                                       ("f-prior--enabled", "")]:
                where = f"{field_id} in {theme}"
                field = screen.query_one(f"#{field_id}")
                surface = field.query_one(drawn_by) if drawn_by else field
                label = screen.query_one(f"#row-{field_id} Label", Label)
                screen.set_focus(None)
                await pilot.pause()
                label_before, field_before = label.rich_style.bgcolor, surface.rich_style.bgcolor
                field.focus()
                await pilot.pause()
                label_after, field_after = label.rich_style.bgcolor, surface.rich_style.bgcolor
                assert contrast(Color.from_rich_color(label_before), Color.from_rich_color(label_after)) >= 3, where
                assert label.rich_style.bold, where
                before, after = Color.from_rich_color(field_before), Color.from_rich_color(field_after)
                # Textual's own hint is a 5 % tint (about 11 levels): too faint to see over SSH.
                assert max(abs(before.r - after.r), abs(before.g - after.g), abs(before.b - after.b)) >= 30, where


HELP_CASES = {  # the screen: its help's heading, and keys the help names
    "StartScreen": ("Demo** trains a tiny", ["New", "Attach"]),
    "HardwareScreen": ("Step 1 of 5: Hardware", ["Re-check"]),
    "ModelScreen": ("Step 2 of 5: Base model", []),
    "DatasetScreen": ("Step 3 of 5: Dataset", ["Check", "Captions"]),
    "CaptionScreen": ("## Captions", ["Save caption", "Undo bulk edit"]),
    "ParametersScreen": ("Step 4 of 5: Parameters", ["Save profile", "Command", "Fit test"]),
    # The fake's run has ended: its keys are an ended run's (a live one's controls are in the prose above them).
    "TrainingScreen": ("Step 5 of 5: Training", ["Export best", "Report", "Detach"]),
    "OverwriteScreen": ("## Overwrite?", ["Overwrite", "New name", "Cancel"]),
}


async def test_f1_explains_the_screen_it_was_pressed_on() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        async for name in tour(pilot, HELP_CASES):
            heading, keys = HELP_CASES[name]
            under = app.screen
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen), name
            text = app.screen.query_one(Markdown).source
            assert heading in text, name
            others = [case[0] for other, case in HELP_CASES.items() if other != name]
            assert not [other for other in others if other in text], f"{name}: another screen's help"
            for description in keys:
                assert f"** {description}\n" in text + "\n", f"{name}: key {description!r} missing from the help"
            await pilot.press("f1")  # F1 again closes it
            await pilot.pause()
            assert app.screen is under, name


def test_every_screen_says_what_it_is_for() -> None:
    for module_info in pkgutil.iter_modules(dbtui.screens.__path__):
        module = importlib.import_module(f"dbtui.screens.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__ == module.__name__ and cls is not HelpScreen:
                if cls.__name__ in ("WizardScreen", "RunNoticesScreen"):
                    continue  # the shared bases of the steps
                assert cls.HELP and cls.HELP.startswith("## "), f"{cls.__name__} has no HELP"


def burst(app: App, *keys: str) -> None:
    """Keys as a terminal read hands them over (SSH, tmux send-keys): all queued at once.

    ``pilot.press`` cannot show the problem: it waits for the app to go idle after each key.
    """
    for key in keys:
        app.post_message(events.Key(key, "\t" if key == "tab" else key if len(key) == 1 else None))


async def test_keys_typed_right_after_tab_land_in_the_next_field() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_step(pilot, 3)
        screen = app.screen
        steps = screen.query_one("#f-training--max_train_steps", Input)
        batch = screen.query_one("#f-training--train_batch_size", Input)
        steps.focus()
        await pilot.pause()
        before = steps.value
        burst(app, "end", "0", "tab", "4")
        await settle(pilot)
        assert (steps.value, batch.value) == (before + "0", "4")
        assert app.session.get("training.train_batch_size") == 4
        burst(app, "shift+tab", "5")  # back: the whole value is selected, so 5 replaces it
        await settle(pilot)
        assert (steps.value, batch.value) == ("5", "4") and screen.focused is steps


async def test_editing_keys_in_a_burst_keep_their_place() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_step(pilot, 3)
        name = app.screen.query_one("#f-name", Input)
        name.focus()
        await pilot.pause()
        burst(app, "end", "x", "backspace", "2", "left", "-")
        await settle(pilot)
        assert name.value == "tiny-demo-2"
        assert app.session.get("name") == "tiny-demo-2"


class TwoInputs(App):
    """The minimal app of docs/upstream/textual-focus-burst.md."""

    def compose(self) -> ComposeResult:
        yield Input(id="first")
        yield Input(id="second")


async def test_plain_textual_still_misroutes_a_burst() -> None:
    """A canary: when this fails, Textual routes keys after Tab itself, and the priority Tab
    bindings in dbtui/app.py (and this test) can go."""
    app = TwoInputs()
    async with app.run_test() as pilot:
        burst(app, "tab", "a", "b", "c")
        await pilot.pause(0.2)
        assert app.query_one("#first", Input).value == "abc"
        assert app.focused is app.query_one("#second", Input)


DIALOGS = ("StartScreen", "HelpScreen", "AttachScreen", "OpenProfileScreen", "CommandScreen", "ResumeScreen",
           "OverwriteScreen", "CaptionModeScreen")


async def test_a_dialog_narrows_with_a_terminal_below_80_columns_rather_than_running_off_it() -> None:
    """At 60 columns the fixed-width boxes (64 to 78) were cut on the right: help mid-word, a button half gone."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=(60, 20)) as pilot:
        async for name in tour(pilot, DIALOGS):
            boxes = [widget for widget in app.screen.query("Vertical, VerticalScroll") if widget.id and widget.parent is app.screen]
            assert boxes and all(box.region.right <= 60 for box in boxes), (name, [(box.id, box.region) for box in boxes])
            assert all(button.region.right <= 60 for button in app.screen.query("Button") if button.region.width), name


async def test_the_overwrite_dialogs_buttons_stay_on_a_40_column_screen() -> None:
    """Three 16-column buttons in a row ran to column 52: Cancel was cut off below about 55 columns."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=(40, 12)) as pilot:
        await SCREENS["OverwriteScreen"](pilot)
        buttons = list(app.screen.query("Button"))
        assert len(buttons) == 3
        assert all(b.region.width and b.region.right <= 40 and b.region.bottom <= 11 for b in buttons), \
            [b.region for b in buttons]
