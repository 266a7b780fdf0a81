"""When the VRAM line estimates failed settings again: a child the OOM killer ended, started again at every pause in
typing, filled the memory again each time; a model the meter cannot read cost half a minute of CPU at every edit."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from dbtui.app import make_app
from dbtui.session import Session
from dbtui.widgets.vram_line import VramLine
from engine.memory.inputs import meter_key
from engine.memory.process import MeterProcessError
from tests.test_meter_ui import SIZE, parameters, text_of
from wizard_fakes import FakeEngine, fake_estimate
from wizard_steps import fit_result, vram_estimated


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


async def _edit(pilot, field: str, value: str) -> None:
    async with vram_estimated(pilot):
        pilot.app.screen.query_one(field, Input).value = value


class FailingEngine(FakeEngine):
    """The meter fails with ``error`` where ``fails(profile, times asked)`` says so, and estimates otherwise."""

    def __init__(self, error: MeterProcessError, fails) -> None:
        super().__init__()
        self.error, self.fails = error, fails

    def estimate_memory(self, profile, stop=None):
        self.estimated.append(profile)
        if self.fails(profile, len(self.estimated)):
            raise self.error
        return fake_estimate(profile)


async def test_a_killed_estimate_is_made_again_at_an_edit_only_after_its_back_off(monkeypatch) -> None:
    now = [0.0]  # the back-off's clock, moved by hand: a loaded machine's pauses ran past a real one's
    monkeypatch.setattr(VramLine, "clock", staticmethod(lambda: now[0]))
    engine = FailingEngine(MeterProcessError("the memory meter was ended by signal 9 (SIGKILL) (out of memory?)"),
                           lambda profile, asked: asked == 1)
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        line = screen.query_one(VramLine)
        line.delay, line.retry_s = 0.1, 1.0
        await pilot.pause(0.3)
        assert "ended by signal 9" in text_of(screen, "#par-vram") and len(engine.estimated) == 1  # not tried on its own
        await _edit(pilot, "#f-training--max_train_steps", "7")  # a change the meter's key leaves out, at once
        assert "ended by signal 9" in text_of(screen, "#par-vram") and len(engine.estimated) == 1
        now[0] = 1.0
        await _edit(pilot, "#f-training--max_train_steps", "8")  # after the back-off
        assert len(engine.estimated) == 2 and meter_key(engine.estimated[1]) == meter_key(engine.estimated[0])
        assert fake_estimate(engine.estimated[1]).fit_line() in text_of(screen, "#par-vram")


async def test_the_childs_own_word_is_asked_again_only_as_the_settings_change_or_the_fit_test_asks() -> None:
    engine = FailingEngine(MeterProcessError("no model_index.json", recurs=True),
                           lambda profile, asked: profile.training.train_batch_size == 1)
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        line = screen.query_one(VramLine)
        line.delay, line.retry_s = 0.1, 0.0
        assert text_of(screen, "#par-vram") == "VRAM: not estimated: no model_index.json"
        await _edit(pilot, "#f-training--max_train_steps", "7")
        assert len(engine.estimated) == 1 and "no model_index.json" in text_of(screen, "#par-vram")
        await _edit(pilot, "#f-training--train_batch_size", "2")
        await _edit(pilot, "#f-training--train_batch_size", "1")  # back to the failed settings from others
        assert [p.training.train_batch_size for p in engine.estimated] == [1, 2, 1]
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [p.training.train_batch_size for p in engine.estimated] == [1, 2, 1, 1]


async def test_a_long_failure_is_shown_whole_at_80_columns() -> None:
    """At 80×24 the line held two rows, so a failure's advice (the command to run, what to give) was cut off."""
    from textual.app import App, ComposeResult

    from dbtui.widgets.vram_line import failure_line

    reason = ("the configs of 'someone/weird-model' are neither in the Hugging Face cache nor downloadable here; "
              "download the model (`hf download someone/weird-model --local-dir FOLDER`) and give FOLDER instead")

    class One(App):
        def compose(self) -> ComposeResult:
            yield VramLine(lambda *args, **kwargs: None, id="v")

    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.query_one(VramLine)
        line.update(failure_line(reason))
        await pilot.pause()
        shown = "".join(strip.text for strip in line.render_lines(line.region.reset_offset)).replace(" ", "")
    assert "giveFOLDERinstead" in shown


async def test_a_failure_longer_than_the_line_says_it_is_cut_and_where_it_is_whole() -> None:
    """At 80×24 the line's four rows cut a longer failure off with no sign (its advice, at its end, unseen)."""
    from dbtui.widgets.vram_line import CUT

    # A folder named with brackets, as downloads often are: the tooltip read "[beta]" as a style and left it out.
    reason = ("the memory meter could not read the configs: " + "/models/SDXL [beta]/segment " * 20
              + "; run `dbtui fit --estimate-only PROFILE` after downloading the model and give FOLDER instead")

    app = make_app(FailingEngine(MeterProcessError(reason, recurs=True), lambda profile, times: True), Session(),
                   image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await parameters(pilot)
        line = screen.query_one(VramLine)
        rows = [strip.text.replace(" ", "") for strip in line.render_lines(line.region.reset_offset)]
        assert len(rows) == 4 and "".join(rows).endswith(CUT.replace(" ", ""))  # in view, at the line's end
        assert str(Static(line.tooltip).render()) == reason  # as the tooltip shows it
        await pilot.press("ctrl+f")  # as the cut line says: the fit test's breakdown holds it whole
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert f"Memory meter: not available: {reason}" in fit_result(screen).replace("\n", "")


def test_a_long_path_in_a_cut_failure_is_shown_as_far_as_the_line_goes() -> None:
    """Cut at a word, a failure naming a long path (no spaces in it) showed none of the path: "VRAM: not estimated:
    could not read… (cut: …)", three of its four rows empty."""
    from dbtui.widgets.vram_line import CUT, ROWS, failure_line

    path = "/workspace/models/" + "very-long-folder-name/" * 12 + "config.json"
    for reason in (path, f"could not read '{path}': no such file"):
        shown = failure_line(reason, 78)
        assert shown.plain.endswith(CUT) and len(shown.wrap(78)) == ROWS
        assert path[:150] in shown.plain
    words = failure_line("the meter could not read " + "the configs " * 30, 78).plain.removesuffix(CUT)
    assert words.split(" ")[-1] in ("the", "configs")  # words are cut at a word
