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


async def test_the_presets_follow_a_size_changed_in_parameters(tmp_path: Path) -> None:
    """The pick and labels followed prior preservation and the model, not the size: an SD2.1-v draft at 512 px on an
    L4 kept full-text-encoder pre-selected, labelled by the 512 px figures, once its size was typed 768."""
    from engine.memory.preset_table import SD2_V, load_preset_estimates, preset_profile
    from engine.profile import save_profile

    engine = L4Engine()
    session = Session.from_file(save_profile(preset_profile({}, SD2_V, prior=True), tmp_path / "sd21v-512.toml"))
    session.hardware = engine.probe_hardware(".")
    session.adopt_model(engine.inspect_model(session.get("model.pretrained")))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        app._started(session)
        await settle(pilot)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        choice = screen.query_one("#par-preset", Select)
        assert (app.session.get("dataset.resolution"), choice.value) == (512, "full-text-encoder")
        screen.query_one("#f-dataset--resolution", Input).value = "768"
        await settle(pilot)
        assert choice.value == "full"
        assert any("over 512 px, the preset for this GPU is Full fine-tune" in note.message
                   for note in app._notifications), list(app._notifications)
        labels = {value: str(label) for label, value in choice._options if value is not Select.NULL}
        need = load_preset_estimates(family="sd2-768")["full-text-encoder"].need()
        assert f"({int(need.run_need / 2**30) + 1} GB and up" in labels["full-text-encoder"], labels
