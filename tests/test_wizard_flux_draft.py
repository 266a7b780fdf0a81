"""A new draft for a Flux model, at 80x24: it starts at what Flux trains with, where its problems panel then warned of
the schema's default."""

from __future__ import annotations

import pytest

from dbtui.app import make_app
from dbtui.session import Session
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, check_model
from wizard_fakes import FakeEngine


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def warned_keys(session: Session) -> set[str]:
    session.set("concepts.0.instance_dir", "data/dog")  # a valid draft: warnings are made of a valid profile alone
    return {problem.key for problem in session.review().warnings}


async def test_a_new_flux_draft_starts_in_bf16_and_a_precision_set_by_hand_stays() -> None:
    """A new draft started at fp16 (the schema's default) for Flux, and Parameters then warned that Flux overflows in
    fp16: the user had to fix what the wizard had chosen."""
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, "builtin:tiny-sd1")
        assert app.session.get("precision.mixed_precision") is None  # SD's default works: nothing is set
        await check_model(pilot, "models/flux")
        assert app.session.get("precision.mixed_precision") == "bf16"
        assert "precision.mixed_precision" not in warned_keys(app.session)

        app.session.edit("precision.mixed_precision", "no")  # the user's own choice
        await check_model(pilot, "builtin:tiny-sd1")
        await check_model(pilot, "models/flux")
        assert app.session.get("precision.mixed_precision") == "no"

