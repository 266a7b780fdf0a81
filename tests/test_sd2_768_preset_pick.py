"""An SD2.x draft at 768 px (SD2.1-v's size, which the SD presets keep) is advised by the presets' figures at 768 px.

The advice judged it by SD2.1-base's figures at 512 px: a 22 GB card (an L4, A10 or A10G as it reports) was recommended
full-text-encoder (20.7 GB there) for an SD2.1-v person profile, where `dbtui fit` of it says 23.9 GB and "l4 (22 GB)
✗"; `full` (12.9 GB at 768 px) the same on a 12 GB card.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Select

from dbtui.app import make_app
from dbtui.cli import main
from dbtui.engine_facade import HardwareReport, ModelInfo
from dbtui.presets import PRESETS, recommended_preset
from dbtui.session import Session
from engine.hardware.card_names import REPORTED_GB
from engine.hardware.machine import FAMILY_PRESETS, Gpu, Hardware, card_hardware, verdict
from engine.memory.preset_table import ROW_SETS, SD2_V, load_preset_estimates, preset_profile
from engine.profile import save_profile
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
L4_GB = REPORTED_GB["l4"]
# An L4 as torch reads it: 23034 MiB.
L4 = Hardware(gpus=[Gpu(0, "NVIDIA L4", 23034, 23034, "8.9", True)], bitsandbytes=True)


def test_each_sd_preset_is_measured_on_sd2_v_at_768_px_as_it_is_now() -> None:
    rows, at_512 = load_preset_estimates(family="sd2-768"), load_preset_estimates(family="sd2")
    for name in FAMILY_PRESETS["sd"]:
        row = rows[name]
        assert (row.pretrained, row.need().width, row.need().height) == (SD2_V, 768, 768), name
        assert row.settings == PRESETS[name], f"{name} changed since it was measured: run python bench/memory.py --presets"
        assert row.need().card_need > at_512[name].need().card_need, name  # the steps: more pixels, more activations


@pytest.mark.parametrize("prior", [True, False], ids=["prior", "no-prior"])
@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "no-bf16"])
@pytest.mark.parametrize("pretrained", ["builtin:tiny-sd2v", SD2_V])
def test_an_sd2_draft_at_768_px_is_picked_a_preset_that_fits_at_768_px(pretrained: str, bf16: bool, prior: bool) -> None:
    rows = load_preset_estimates(family="sd2-768")
    for card in range(4, 41):
        preset = recommended_preset(card_hardware(card, bf16), "sd", pretrained=pretrained, prior=prior, resolution=768)
        if preset is not None:
            assert rows[preset].need(bf16, prior).fits(card), (card, preset)


def test_a_22_gb_card_is_not_picked_full_text_encoder_for_an_sd2_v_person_draft() -> None:
    rows = load_preset_estimates(family="sd2-768")
    assert not rows["full-text-encoder"].need().fits(L4_GB)  # what the 512 px figures (20.7 GB) hid
    assert load_preset_estimates(family="sd2")["full-text-encoder"].need().fits(L4_GB)
    assert recommended_preset(L4, "sd", pretrained=SD2_V, prior=True, resolution=768) == "full"
    # At 512 px (SD2.1-base's size) it still fits.
    assert recommended_preset(L4, "sd", pretrained=SD2_V, prior=True, resolution=512) == "full-text-encoder"


@pytest.mark.parametrize("resolution", [None, 512])
def test_an_sd15_pick_at_512_px_is_unchanged(resolution: int | None) -> None:
    """SD1.5's presets at 512 px are judged by SD1.5's figures there, as before (above it: tests/test_sd_size_preset_pick.py)."""
    for bf16 in (True, False):
        for card in range(4, 41):
            hardware = card_hardware(card, bf16)
            picked = recommended_preset(hardware, "sd", pretrained=SD15, prior=True, resolution=resolution)
            assert picked in (verdict(hardware, "sd")[1], None), (card, bf16)


def _sd2_v_person(folder: Path) -> Path:
    profile = preset_profile({"dataset": {"resolution": ROW_SETS["sd2-768"].resolution}}, SD2_V, prior=True)
    return save_profile(profile, folder / "sd21v-person.toml")


def test_hardware_profile_of_an_sd2_v_draft_judges_the_card_at_768_px(tmp_path: Path, capsys) -> None:
    path = _sd2_v_person(tmp_path)
    assert main(["hardware", "--profile", str(path), "--card", "l4", "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["family"], data["figures_at_px"]) == ("sd2", 768)
    advice = data["card_verdicts"][f"{L4_GB:g}"]
    assert advice["preset"] == "full" and "SD2.x at 768 px" in advice["verdict"], advice
    assert data["presets"]["full-text-encoder"]["resolution"] == [768, 768]
    assert data["presets"]["full-text-encoder"]["fits"][f"{L4_GB:g}"] is False


class L4Engine(FakeEngine):
    """An L4, probed as the real engine does; a hub id as one not downloaded (its family from its name)."""

    def probe_hardware(self, path: str) -> HardwareReport:
        return HardwareReport(L4, *verdict(L4))

    def inspect_model(self, source: str) -> ModelInfo:
        return ModelInfo(source, "hub", "Hugging Face hub id: downloaded when training starts", source)


async def test_the_wizard_preselects_for_an_sd2_v_draft_what_fits_at_768_px(tmp_path: Path) -> None:
    engine = L4Engine()
    session = Session.from_file(_sd2_v_person(tmp_path))
    session.hardware = engine.probe_hardware(".")
    session.adopt_model(engine.inspect_model(session.get("model.pretrained")))
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        app._started(session)
        await settle(pilot)
        choice = (await at_step(app, pilot, 3, "ParametersScreen")).query_one("#par-preset", Select)
        assert choice.value == "full"
        labels = {value: str(label) for label, value in choice._options if value is not Select.NULL}
        need = load_preset_estimates(family="sd2-768")["full-text-encoder"].need()
        assert f"({int(need.run_need / 2**30) + 1} GB and up" in labels["full-text-encoder"], labels
