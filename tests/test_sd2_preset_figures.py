"""SD2.x models are advised by the SD presets' figures on SD2.1-base, not SD1.5's.

`dbtui hardware --profile` of stabilityai/stable-diffusion-2-1-base at 512 px showed SD1.5's figures without a word:
full-text-encoder at 17.4 GB, marked ✓ on a 20 GB card, where the meter says 20.7 GB for SD2 (its OpenCLIP text
encoder is three times SD1.5's), and recommended that preset for the card.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbtui.cli import main
from dbtui.presets import PRESETS
from engine.hardware.machine import FAMILY_PRESETS, card_hardware
from engine.memory.preset_table import SD2_BASE, load_preset_estimates
from engine.profile import save_profile
from tests.training_helpers import tiny_profile

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def test_each_sd_preset_is_measured_on_sd2_as_it_is_now() -> None:
    sd1, sd2 = load_preset_estimates(), load_preset_estimates(family="sd2")
    for name in FAMILY_PRESETS["sd"]:
        row = sd2[name]
        assert row.pretrained == SD2_BASE, name
        assert row.settings == PRESETS[name], f"{name} changed since it was measured: run python bench/memory.py --presets"
        assert row.need().weights > sd1[name].need().weights, name  # SD2's larger text encoder
    assert sd2["sdxl-full"] == sd1["sdxl-full"]  # the other families' rows are the same


@pytest.mark.parametrize(("pretrained", "family", "fits", "preset"), [
    (SD2_BASE, "sd2", False, "full"),
    (SD15, "sd", True, "full-text-encoder"),
])
def test_hardware_profile_judges_an_sd2_model_by_sd2s_figures(
        tmp_path: Path, pretrained: str, family: str, fits: bool, preset: str, capsys) -> None:
    from engine.memory.estimate import GIB

    profile = tiny_profile(tmp_path, model={"pretrained": pretrained}, dataset={"resolution": 512})
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--card", "20", "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == family
    row = data["presets"]["full-text-encoder"]
    assert row["fits"]["20"] is fits, row
    assert data["card_verdicts"]["20"]["preset"] == preset, data["card_verdicts"]
    table = load_preset_estimates(family=family)
    assert row["run_card_gb"] == round(table["full-text-encoder"].need(prior=False).run_need / GIB, 2)  # as it trains
    assert (SD2_BASE if family == "sd2" else "builtin:sd15-random") in row["model"]


def test_hardware_family_sd2_prints_sd2s_figures(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    need = load_preset_estimates(family="sd2")["full-text-encoder"].need()
    assert main(["hardware", "--family", "sd2", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert SD2_BASE in out
    assert any("full-text-encoder" in line and f"{need.run_need / 2**30:.1f} GB" in line for line in out.splitlines()), out


def test_the_model_tells_sd2_by_its_text_encoder_or_name(tiny_sd1: Path, tiny_sd2v: Path) -> None:
    from engine.model_info import advice_family

    assert advice_family(str(tiny_sd2v)) == "sd2" and advice_family(str(tiny_sd1)) == "sd"
    assert advice_family("builtin:tiny-sd2v") == "sd2" and advice_family("builtin:sd15-random") == "sd"
    assert advice_family("/workspace/models/sd21-person.safetensors") == "sd2"
    assert advice_family("/workspace/models/my-finetune.safetensors") == "sd"


def test_the_wizard_recommends_by_sd2s_figures_for_an_sd2_model() -> None:
    from dbtui.presets import recommended_preset

    card = card_hardware(20)
    # Without prior preservation (a new draft's): SD1.5's full-text-encoder fits 20 GB, SD2's larger figures do not.
    assert recommended_preset(card, "sd", pretrained=SD2_BASE, prior=False) == "full"
    assert recommended_preset(card, "sd", pretrained=SD15, prior=False) == "full-text-encoder"
    # With it (the class images double each step's): SD1.5's full-text-encoder still fits, at 17.4 GB.
    assert recommended_preset(card, "sd", pretrained=SD2_BASE, prior=True) == "full"
    assert recommended_preset(card, "sd", pretrained=SD15, prior=True) == "full-text-encoder"


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "no-bf16"])
def test_the_sd2_preset_recommended_fits_the_card_by_sd2s_figures(bf16: bool) -> None:
    from engine.hardware.machine import verdict

    table = load_preset_estimates(family="sd2")
    for card in (6, 8, 10, 12, 16, 20, 24, 40):
        _, preset = verdict(card_hardware(card, bf16), "sd2")
        assert table[preset].need(bf16).fits(card), (card, preset)


def test_hardware_family_sd2_labels_the_recommended_preset_by_sd2s_cards(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui hardware --family sd2 --card 20` said "Recommended preset for it: Full fine-tune (13–17 GB; …)", SD1.5's
    cards, for the 20 GB card it recommended it on."""
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--family", "sd2", "--card", "20", "--output-dir", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Recommended preset for it: Full fine-tune (13–20 GB; 16–20 GB without bf16) (full)" in out, out


def test_an_sd2_single_file_is_advised_by_sd2s_figures_from_its_keys(tmp_path: Path, tiny_sd1: Path, tiny_sd2v: Path,
                                                                      capsys) -> None:
    """`dbtui hardware --profile` of an SD2.x-v .safetensors named model.safetensors printed "SD1.5 architecture
    (builtin:sd15-random), 512 px": only a name could say SD2. Its header names OpenCLIP's weights
    (cond_stage_model.model.), SD1's CLIP's cond_stage_model.transformer."""
    from safetensors.numpy import load_file, save_file

    from dbtui.presets import recommended_preset
    from engine.convert import export_single_file
    from engine.model_info import advice_family

    sd2, sd1 = (export_single_file(folder, tmp_path / name / "model.safetensors")
                for name, folder in (("sd2", tiny_sd2v), ("sd1", tiny_sd1)))
    assert (advice_family(str(sd2)), advice_family(str(sd1))) == ("sd2", "sd")
    # A file without a text encoder (a bare UNet) says neither: its name still decides.
    unet = {key: value for key, value in load_file(sd2).items() if key.startswith("model.diffusion_model.")}
    save_file(unet, tmp_path / "sd21-unet.safetensors")
    save_file(unet, tmp_path / "unet.safetensors")
    named = [advice_family(str(tmp_path / name)) for name in ("sd21-unet.safetensors", "unet.safetensors")]
    assert named == ["sd2", "sd"]
    profile = save_profile(tiny_profile(tmp_path, model={"pretrained": str(sd2)}, dataset={"resolution": 512}),
                           tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(profile), "--card", "20", "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["family"], data["family_note"]) == ("sd2", None)  # from its files, not guessed
    assert SD2_BASE in data["presets"]["full-text-encoder"]["model"]
    # The wizard's Hardware step advises by the same figures: SD1.5's full-text-encoder fits 20 GB, SD2's does not.
    assert recommended_preset(card_hardware(20), "sd", pretrained=str(sd2), prior=False) == "full"
    assert recommended_preset(card_hardware(20), "sd", pretrained=str(sd1), prior=False) == "full-text-encoder"
