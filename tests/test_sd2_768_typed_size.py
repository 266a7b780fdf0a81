"""The SD2.x presets' advice reads the draft's training size (f1dbbe0: SD2.1-v's figures at 768 px above 512), and the
wizard's draft holds a size as typed: text the profile check marks ("768px") was compared with 512 and the wizard
ended on a TypeError at the next relabel (prior preservation switched, the Hardware step again)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Select, Switch

from dbtui.app import make_app
from dbtui.session import Session
from tests.test_sd2_768_preset_pick import L4Engine, _sd2_v_person
from wizard_steps import at_step, settle


async def test_a_size_typed_as_text_leaves_the_sd2_advice_standing(tmp_path: Path) -> None:
    engine = L4Engine()
    session = Session.from_file(_sd2_v_person(tmp_path))
    session.hardware = engine.probe_hardware(".")
    session.adopt_model(engine.inspect_model(session.get("model.pretrained")))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        app._started(session)
        await settle(pilot)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#f-dataset--resolution", Input).value = "768px"
        await settle(pilot)
        assert app.session.get("dataset.resolution") == "768px"  # kept as typed, for the check to mark
        screen.query_one("#f-prior--enabled", Switch).value = False  # relabels the presets
        await settle(pilot)
        assert app.is_running and app.screen is screen
        assert screen.query_one("#par-preset", Select).value is not Select.NULL
