"""An SD draft is picked presets by the rows measured at the smallest size at or above the one it trains at.

The SD presets keep a draft's size, yet an SD1.5 draft at 1024 px was picked by SD1.5's figures at 512 px (and an SD2
one above 768 px by those at 768), with only a note pointing to `dbtui fit`: a 24 GB card was offered full-text-encoder,
17.4 GB at 512 px, which needs 25.1 GB at 1024. Above every size measured, none is picked, and the
advice says so. `dbtui hardware --json` said "family": "sd2-768", no family a model has: the family and the size the
figures were measured at are now apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static

from dbtui.app import make_app
from dbtui.cli import main
from dbtui.engine_facade import ModelInfo
from dbtui.presets import PRESETS, no_preset_note, recommended_preset
from dbtui.session import Session
from engine.hardware.machine import FAMILY_PRESETS, card_hardware
from engine.memory.preset_table import ROW_SETS, SD2_V, TABLE, PresetEstimate, load_preset_estimates, preset_profile
from engine.profile import save_profile
from tests.test_wizard_presets import GpuEngine
from wizard_steps import at_step, settle

SD15_HUB = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD15 = "builtin:sd15-random"  # the model the stored SD1.5 rows were measured on
# The rows each size's draft is judged by, read from the stored table itself, not through the code that picks them.
STORED = {"sd-768": "sd_768", "sd-1024": "sd_1024", "sd2-1024": "sd2_1024"}


# What the three places that pick no preset for an SD1.5 draft at 1280 px say of it, in one text: they said it in
# their own words ("no preset's memory was measured at 1280 px (the largest measured: 1024 px)" in Parameters).
UNMEASURED = "no preset was measured above 1024 px, and this trains at 1280 px"

def _stored(family: str) -> dict[str, PresetEstimate]:
    data = json.loads(TABLE.read_text(encoding="utf-8"))[STORED[family]]
    return {name: PresetEstimate.from_dict(row) for name, row in data.items()}


@pytest.mark.parametrize("family", [family for family in ROW_SETS if family != "sd2"])
def test_each_sd_preset_is_measured_at_each_size_as_it_is_now(family: str) -> None:
    rows, model = load_preset_estimates(family=family), ROW_SETS[family]
    for name in FAMILY_PRESETS["sd"]:
        row = rows[name]
        assert (row.pretrained, row.need().width, row.need().height) == (model.pretrained, model.resolution,
                                                                         model.resolution), name
        assert row.settings == PRESETS[name], f"{name} changed since it was measured: run python bench/memory.py --presets"


@pytest.mark.parametrize(("pretrained", "resolution", "rows"), [
    (SD15_HUB, 640, "sd-768"), (SD15_HUB, 768, "sd-768"), (SD15_HUB, 1024, "sd-1024"),
    (SD2_V, 896, "sd2-1024"), (SD2_V, 1024, "sd2-1024")])
def test_a_draft_is_picked_a_preset_that_fits_at_its_size(pretrained: str, resolution: int, rows: str) -> None:
    """Each card from 4 to 40 GB, with bf16 and without, with prior preservation and without: the preset picked fits
    the card by the rows measured at or above the draft's size."""
    measured = _stored(rows)
    for bf16 in (True, False):
        for prior in (True, False):
            for card in range(4, 41):
                preset = recommended_preset(card_hardware(card, bf16), "sd", pretrained=pretrained, prior=prior,
                                            resolution=resolution)
                if preset is not None:
                    assert measured[preset].need(bf16, prior).fits(card), (card, bf16, prior, preset)


@pytest.mark.parametrize("card", [12, 16, 20, 24])
def test_a_card_is_not_given_a_preset_that_misses_it_at_1024_px(card: int) -> None:
    """By the 512 px figures a 20 or 24 GB card was picked full-text-encoder (17.4 GB there, 25.1 GB at 1024 px)."""
    rows = _stored("sd-1024")
    for bf16 in (True, False):
        preset = recommended_preset(card_hardware(card, bf16), "sd", pretrained=SD15_HUB, prior=True, resolution=1024)
        assert preset is None or rows[preset].need(bf16, True).fits(card), (bf16, preset)


def test_above_every_size_measured_no_preset_is_picked_and_the_note_says_why() -> None:
    card = card_hardware(80)
    assert recommended_preset(card, "sd", pretrained=SD15_HUB, resolution=1280) is None
    note = no_preset_note(card, "sd", pretrained=SD15_HUB, resolution=1280)
    assert note is not None and "1280 px" in note and "1024 px" in note and "dbtui fit" in note
    assert note.startswith(UNMEASURED.capitalize()), note  # as `dbtui hardware` and the Hardware step say it
    assert recommended_preset(card, "sd", pretrained=SD15_HUB, resolution=1024) == "full-text-encoder"


def _profile(folder: Path, pretrained: str, resolution: int) -> Path:
    profile = preset_profile({"dataset": {"resolution": resolution}}, pretrained, prior=True)
    return save_profile(profile, folder / f"draft-{resolution}.toml")


@pytest.mark.parametrize(("pretrained", "resolution", "family", "figures_at"), [
    (SD15, 1024, "sd", 1024), (SD15, 512, "sd", 512), (SD2_V, 768, "sd2", 768)])
def test_hardware_json_names_the_family_and_the_size_apart(tmp_path: Path, capsys, pretrained: str, resolution: int,
                                                          family: str, figures_at: int) -> None:
    path = _profile(tmp_path, pretrained, resolution)
    assert main(["hardware", "--profile", str(path), "--card", "12", "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["family"], data["figures_at_px"], data["trains_at_px"]) == (family, figures_at, resolution)
    assert {tuple(row["resolution"]) for row in data["presets"].values()} == {(figures_at, figures_at)}
    best = data["card_verdicts"]["12"]["preset"]
    assert data["presets"][best]["fits"]["12"] is True, best  # by the rows printed, at the figures' size


def test_hardware_profile_above_every_size_recommends_none(tmp_path: Path, capsys) -> None:
    path = _profile(tmp_path, SD15, 1280)
    assert main(["hardware", "--profile", str(path), "--card", "24", "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["card_verdicts"]["24"]["preset"] is None and data["card_verdicts"]["24"]["fits"] is False
    assert "1280 px" in data["family_note"] and "dbtui fit" in data["family_note"]
    # Above the card's line, in the same output: it said "no preset was measured at the profile's size, 1280 px".
    assert data["family_note"].startswith(f"{UNMEASURED.capitalize()}, which the SD presets keep"), data["family_note"]
    assert main(["hardware", "--profile", str(path), "--card", "24", "--output-dir", str(tmp_path)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"Recommended preset for it: none: {UNMEASURED} (see `dbtui fit` above)" in said, said


class Card24Engine(GpuEngine):
    """A 24 GB card with bf16; a hub id as one not downloaded (its family from its name)."""

    def __init__(self) -> None:
        super().__init__(24)

    def inspect_model(self, source: str) -> ModelInfo:
        return ModelInfo(source, "hub", "Hugging Face hub id: downloaded when training starts", source)


async def test_the_wizard_repicks_as_the_typed_size_passes_a_measured_one(tmp_path: Path) -> None:
    """On a 24 GB card an SD1.5 draft typed to 1024 px kept full-text-encoder, picked by its 17.4 GB at 512 px."""
    engine = Card24Engine()
    session = Session.from_file(save_profile(preset_profile({}, SD15_HUB, prior=True), tmp_path / "sd15-512.toml"))
    session.hardware = engine.probe_hardware(".")
    session.adopt_model(engine.inspect_model(session.get("model.pretrained")))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        app._started(session)
        await settle(pilot)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        choice, size = screen.query_one("#par-preset", Select), screen.query_one("#f-dataset--resolution", Input)
        assert (app.session.get("dataset.resolution"), choice.value) == (512, "full-text-encoder")
        size.value = "1024"
        await settle(pilot)
        assert choice.value == "full"
        assert not screen.query_one("#par-no-preset", Static).display
        size.value = "1280"
        await settle(pilot)
        note = screen.query_one("#par-no-preset", Static)
        assert note.display and "1280 px" in str(note.render()) and "dbtui fit" in str(note.render())


async def test_the_hardware_step_recommends_none_above_every_size_measured(tmp_path: Path) -> None:
    """A draft at 1280 px heard "Recommended preset: Full fine-tune" on the Hardware step, by the figures at 1024 px,
    where Parameters pre-selects none and `dbtui hardware --profile` recommends none."""
    engine = Card24Engine()
    draft = preset_profile({"dataset": {"resolution": 1280}}, SD15_HUB, prior=True)
    session = Session.from_file(save_profile(draft, tmp_path / "sd15-1280.toml"))
    session.hardware = engine.probe_hardware(".")
    session.adopt_model(engine.inspect_model(session.get("model.pretrained")))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=(100, 40)) as pilot:
        app._started(session)
        await settle(pilot)
        screen = await at_step(app, pilot, 0, "HardwareScreen")
        said = " ".join(str(screen.query_one("#hw-verdict", Static).render()).split())
        assert f"Recommended preset: none: {UNMEASURED} (Parameters" in said, said
