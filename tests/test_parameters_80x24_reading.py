"""The Parameters step read at 80×24 on a Flux draft: the focus moves between things one can see, what wraps keeps its
indent, and the problems panel shows its warnings whole or scrolls to them."""

from __future__ import annotations

import dataclasses

import pytest
from textual.geometry import Region

from dbtui.app import make_app
from dbtui.session import Session
from engine.memory.estimate import GIB
from test_flux_wizard import flux_draft, open_parameters
from test_wizard_80x24 import SIZE, screen_lines, settle
from wizard_fakes import FakeEngine


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


class CachingEngine(FakeEngine):
    """Its estimate has a caching pass, whose breakdown line is longer than 80 columns."""

    def estimate_memory(self, profile, stop=None):
        return dataclasses.replace(super().estimate_memory(profile, stop), caching=int(0.07 * GIB))


async def test_shift_tab_from_apply_goes_to_next_the_keys_scroll_the_form_and_the_fit_test_keeps_its_indent() -> None:
    """Shift+Tab from Apply landed on the form's scroll body, which shows no focus, before it reached Next.
    Then the fit test's memory breakdown: "GPU: 0.82 GB on the card" ran on from the left edge under "caching pass …",
    level with the headings; then from the label column, where it read as a line of its own: it hangs under the figures.
    (One app: the focus and the scroll change nothing the fit test's result widget draws; the caching line only
    lengthens the breakdown.)"""
    engine = CachingEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, flux_draft(engine))
        app.screen.query_one("#par-apply").focus()
        await pilot.press("shift+tab")
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "nav-next", app.focused
        app.screen.query_one("#f-name").focus()
        await pilot.press("pagedown")
        await settle(pilot)
        assert app.screen.query_one("#par-body").scroll_y > 0  # from the focused field

        await pilot.press("ctrl+f")
        await settle(pilot)
        result = app.screen.query_one("#par-fit-result")
        rows = [strip.text.rstrip() for strip in result.render_lines(Region(0, 0, result.size.width, result.size.height))]
        meter = next(row for row, text in enumerate(rows) if text.startswith("Memory meter"))
        caching = next(row for row, text in enumerate(rows) if "caching pass" in text)
        assert not rows[caching].endswith("on the card"), rows  # it wraps at 80 columns
        assert all(text.startswith("  ") for text in rows[meter + 1:] if text), rows
        value = rows[caching].index("0.07 GB")
        assert rows[caching + 1][:value].isspace() and rows[caching + 1][value] != " ", rows


def warned_flux_draft(engine: FakeEngine) -> Session:
    """A Flux LoRA in fp16 with a negative prompt: two warnings, the fp16 one three lines long at 80 columns. At 512 px,
    half Flux's size: validate now warns of a hub id's size guessed by its name, and the demo's 64 px would be a third."""
    session = flux_draft(engine)
    session.set("dataset.resolution", 512)
    session.set("training.method", "lora")
    session.set("precision.mixed_precision", "fp16")
    session.set("sampling.negative_prompt", "blurry")
    return session


async def test_a_flux_drafts_warnings_show_whole_and_problems_past_the_panels_lines_scroll_into_view() -> None:
    """The panel's four lines cut the fp16 warning before "… H100 or newer"; the rest was in a tooltip alone. Then, with
    more problems than its lines show, the panel is a stop that End scrolls to its last one. (One app: the first part
    reads the draft as Parameters first shows it, before the second adds problems.)"""
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, warned_flux_draft(engine))
        shown = " ".join(line.strip() for line in screen_lines(app))
        assert "Use \"bf16\" on an RTX 30xx/40xx, A100, H100 or newer" in shown, shown
        assert "this one is not used; leave it empty" in shown
        assert app.screen.query_one("#par-problems-box") not in app.screen.focus_chain  # all of it shows: no stop

        for key, value in (("training.max_train_steps", -5), ("dataset.resolution", 33), ("optimizer.learning_rate", "abc"),
                           ("training.train_batch_size", 0), ("training.seed", -1)):
            app.session.set(key, value)
        app.screen._validate()
        await settle(pilot)
        box = app.screen.query_one("#par-problems-box")
        end = str(app.screen.query_one("#par-problems").render()).split()[-1]  # the panel's last word
        assert end not in " ".join(screen_lines(app)[-8:])  # below the panel's lines
        assert box in app.screen.focus_chain  # Tab reaches it, then
        box.focus()
        await pilot.press("end")
        await pilot.wait_for_scheduled_animations()  # End's scroll is animated: settle's 0.2 s can end before it does
        await settle(pilot)
        assert end in " ".join(screen_lines(app)[-8:])


async def base_weights_row(pilot) -> str:
    pilot.app.screen.query_one("#par-body").scroll_home(animate=False)
    await settle(pilot)
    return next((line for line in screen_lines(pilot.app) if "Base weights" in line), "")


async def test_the_base_weights_none_choice_names_the_drafts_precision() -> None:
    """"none: the weight dtype (bf16)" whatever the draft: a new Flux draft trains in fp16, and its frozen weights with it."""
    from textual.widgets import Select

    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = Session()  # a new profile: no mixed_precision, so the schema's fp16
        session.set("model.pretrained", "models/flux")
        session.adopt_model(engine.inspect_model("models/flux"))
        session.set("training.method", "lora")
        await open_parameters(pilot, session)
        assert "none: fp16" in await base_weights_row(pilot)
        app.screen.query_one("#f-precision--mixed_precision", Select).value = "no"
        await settle(pilot)
        assert "none: fp32" in await base_weights_row(pilot) and session.get("model.quantize") is None
        app.screen.query_one("#par-quantize", Select).value = "nf4"
        app.screen.query_one("#f-precision--mixed_precision", Select).value = "bf16"
        await settle(pilot)
        assert "nf4: 4-bit" in await base_weights_row(pilot) and session.get("model.quantize") == "nf4"  # the choice stays
        app.screen.query_one("#par-quantize").expanded = True
        await settle(pilot)
        assert any("none: bf16" in line for line in screen_lines(app))
