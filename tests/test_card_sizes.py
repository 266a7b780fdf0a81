"""`--card GB` on `dbtui fit --estimate-only` and `dbtui hardware`: the cards judged are those asked about (a 40 or 80 GB
rental, a 10, 11 or 20 GB card), not only 8, 12, 16 and 24 GB."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.memory.estimate import GIB, MemoryEstimate
from engine.memory.preset_table import load_preset_estimates
from tests.training_helpers import tiny_profile


def _fit_estimate_only(tmp_path: Path, monkeypatch, capsys, *cards: str) -> str:
    """What `dbtui fit --estimate-only --card …` prints when the meter says 30 GB of weights."""
    import engine.memory
    from engine.profile import save_profile

    estimate = MemoryEstimate(weights=30 * GIB, gradients=0, optimizer_state=0, activations=0, caches=0,
                              autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8,
                              seconds=0.0)
    monkeypatch.setattr(engine.memory, "estimate_peak", lambda profile, **how: estimate)
    path = save_profile(tiny_profile(tmp_path), tmp_path / "p.toml")
    # Each call below asks about a card under the 30 GB need: dbtui fit says so in its exit status.
    asked = [arg for card in cards for arg in ("--card", card)]
    assert main(["fit", str(path), "--estimate-only", *asked]) == (1 if cards else 0)
    return capsys.readouterr().out


def _bf16_profile_of_12_gb_or_20_in_fp16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        asked: list[str | None] | None = None) -> Path:
    """A bf16 profile, saved, for which the meter says 12 GB of weights, or 20 GB in fp16 (as a card without bf16
    trains it); the precision of each estimate asked for goes into `asked`."""
    import engine.memory
    from engine.profile import save_profile

    def estimate_peak(profile, *, precision=None, **how) -> MemoryEstimate:
        if asked is not None:
            asked.append(precision)
        return MemoryEstimate(weights=(20 if precision == "fp16" else 12) * GIB, gradients=0, optimizer_state=0,
                              activations=0, caches=0, autocast_weight_copies=0, peak_phase="backward", model="m",
                              batch=1, height=8, width=8, seconds=0.0)

    monkeypatch.setattr(engine.memory, "estimate_peak", estimate_peak)
    return save_profile(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}), tmp_path / "p.toml")


def test_fit_judges_the_cards_asked_about_smallest_first(tmp_path: Path, monkeypatch, capsys) -> None:
    """A 30 GB need heard only "none of these cards holds it … more than a 24 GB card"."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, "80", "20", "40GB")
    assert "memory estimate:   fits 20 GB ✗ · 40 GB ✓ · 80 GB ✓" in out
    assert "for a card below 40 GB, the steps need more than a 20 GB card (33.8 GB)" in out
    assert "24 GB" not in out


def test_fit_without_card_keeps_the_default_sizes(tmp_path: Path, monkeypatch, capsys) -> None:
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys)
    assert "fits 8 GB ✗ · 12 GB ✗ · 16 GB ✗ · 24 GB ✗" in out and "none of these cards holds it" in out


@pytest.mark.parametrize("command", ["fit", "hardware"])
@pytest.mark.parametrize(("card", "said"), [("0", "above 0"), ("-8", "above 0"), ("nan", "above 0"), ("inf", "above 0"),
                                            ("big", "'big' is not a card size")])
def test_a_card_size_that_is_no_positive_number_is_refused(command: str, card: str, said: str, tmp_path: Path,
                                                             capsys) -> None:
    arguments = ["fit", str(tmp_path / "p.toml")] if command == "fit" else ["hardware"]
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--card", card])
    assert exited.value.code == 2
    assert "argument --card: " in (err := capsys.readouterr().err) and said in err and "give its memory in GB" in err


def test_hardware_judges_its_presets_against_the_cards_asked_about(tmp_path: Path, capsys) -> None:
    need = load_preset_estimates()["sdxl-full"].need()
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--card", "11", "--card", "48",
                 "--json"]) == 0
    fits = json.loads(capsys.readouterr().out)["presets"]["sdxl-full"]["fits"]
    assert fits == {"11": need.fits(11), "48": True}
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--card", "11", "--card", "48"]) == 0
    out = capsys.readouterr().out
    assert "11 GB ✗ · 48 GB ✓" in out and "24 GB" not in out.split("whole run")[1]


@pytest.mark.parametrize("command", ["fit", "hardware"])
@pytest.mark.parametrize("card", ["1e20", "1025", "1650", "5000GB", "960", "750 GB"])
def test_a_card_size_above_any_card_is_refused(command: str, card: str, tmp_path: Path, capsys) -> None:
    """1e20 was judged and printed as "1e+20 GB", and "960" (a GTX 960) as a 960 GB card."""
    from engine.profile import save_profile

    path = save_profile(tiny_profile(tmp_path), tmp_path / "p.toml")
    arguments = ["fit", str(path), "--estimate-only"] if command == "fit" else ["hardware", "--output-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--card", card])
    assert exited.value.code == 2 and "at most 320" in capsys.readouterr().err


def test_sizes_in_g_and_sizes_that_print_alike_are_one_card(tmp_path: Path, monkeypatch, capsys) -> None:
    """"24G" and "80Gb" were refused; 10.0000001 and 10.0000002 printed as two "10 GB" and shared one JSON key."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, "24G", "80Gb", "10.0000001", "10.0000002", "80 gib")
    assert "memory estimate:   fits 10 GB ✗ · 24 GB ✗ · 80 GB ✓" in out
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--json", "--card", "10.0000001",
                 "--card", "10.0000002", "--card", "12.04"]) == 0
    assert list(json.loads(capsys.readouterr().out)["presets"]["sdxl-full"]["fits"]) == ["10", "12"]


@pytest.mark.parametrize(("card", "gb"), [("H100", "80"), ("RTX 4090", "24"), ("nvidia a10g", "22"), ("4090", "24"),
                                          ("A100-40GB", "40"), ("NVIDIA H100 80GB HBM3", "80"), ("l40s", "45")])
def test_a_card_named_is_judged_as_its_memory(card: str, gb: str, tmp_path: Path, capsys) -> None:
    """One renting picks a card by its name; `--card H100` was refused ("not a card size"), and `--card 4090` read
    as a card of 4090 GB."""
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--json", "--card", card]) == 0
    assert list(json.loads(capsys.readouterr().out)["card_verdicts"]) == [gb]


@pytest.mark.parametrize(("card", "said"), [("A100", "'A100' is sold with 40 or 80 GB"), ("3080", "with 10 or 12 GB"),
                                            ("Z9000", "not a card size or a card known here")])
def test_a_card_named_without_its_size_where_it_has_several_or_unknown_is_refused(card: str, said: str, tmp_path: Path,
                                                                                  capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["hardware", "--output-dir", str(tmp_path), "--card", card])
    assert exited.value.code == 2 and said in capsys.readouterr().err


@pytest.mark.parametrize(("card", "gb"), [("2080", 8), ("1080", 8), ("GTX 1080 Ti", 11), ("RTX 2070 Super", 8),
                                          ("5070", 12)])
def test_an_older_card_s_model_number_is_the_card_not_as_many_gb(card: str, gb: float) -> None:
    """`--card 2080` was judged as a card of 2080 GB, which everything fits."""
    from dbtui.cli.cards import card_size

    assert card_size(card) == gb


def test_a_model_number_sold_in_several_sizes_asks_for_the_size() -> None:
    import argparse

    from dbtui.cli.cards import card_size

    with pytest.raises(argparse.ArgumentTypeError, match="'2060' is sold with 6 or 12 GB"):
        card_size("2060")


@pytest.mark.parametrize(("card", "gb"), [("H100 SXM", 80), ("H100 PCIe", 80), ("Tesla T4", 15), ("H200-SXM5", 141)])
def test_a_card_named_with_its_form_factor_is_that_card(card: str, gb: float) -> None:
    """`--card 'H100 SXM'`, as rental sites list it, was refused as 'not a card known here', the H100 among them."""
    from dbtui.cli.cards import card_size

    assert card_size(card) == gb


@pytest.mark.parametrize(("card", "gpu_name", "reported_mb", "bf16"), [("T4", "Tesla T4", 15_095, False),
                                                                    ("A10G", "NVIDIA A10G", 22_587, True)])
@pytest.mark.parametrize("family", ["sd", "sdxl", "flux"])
def test_a_card_named_is_advised_as_the_card_itself_is(card: str, gpu_name: str, reported_mb: float, bf16: bool,
                                                       family: str) -> None:
    """`--card T4` was judged as 16 GB and recommended SD's `full` (15.1 GB in fp16), where `dbtui hardware` on a T4,
    which CUDA reports as 14.7 GiB (ECC takes a sixteenth), recommended full-8bit: `full` does not fit a T4."""
    from dbtui.cli.cards import card_size
    from engine.hardware.machine import Gpu, Hardware, card_verdict, verdict

    asked = card_size(card)
    on_the_card = Hardware(gpus=[Gpu(0, gpu_name, reported_mb, None, "7.5" if not bf16 else "8.6", bf16)])
    assert asked.bf16 is bf16
    assert card_verdict(asked, family, asked.bf16)[1] == verdict(on_the_card, family)[1]
    assert asked == round(reported_mb / 1024)


def test_a_card_between_whole_sizes_is_advised_as_the_table_beside_it_judges_it(tmp_path: Path, capsys) -> None:
    """`--card 7.6` was advised as an 8 GB card: "A card with 8 GB ... a LoRA fits" and sdxl-lora recommended, under a
    table that said "sdxl-lora 7.6 GB fits 7.6 GB ✗" (the preset needs a little more than 7.6 GB)."""
    need = load_preset_estimates()["sdxl-lora"].need()
    card = math.floor(need.run_need / GIB * 10) / 10  # just under what the LoRA needs, rounding up to 8
    assert not need.fits(card) and round(card) >= need.run_need / GIB
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--json", "--card", str(card)]) == 0
    report = json.loads(capsys.readouterr().out)
    verdict = report["card_verdicts"][f"{card:g}"]
    assert verdict["fits"] is False and report["presets"]["sdxl-lora"]["fits"][f"{card:g}"] is False
    assert f"A card with {card:g} GB" in verdict["verdict"] and "too little even for a LoRA" in verdict["verdict"]


@pytest.mark.parametrize(("card", "preset"), [("T4", "sdxl-lora"), ("V100 16GB", "sdxl-lora"), ("16", "sdxl-full"),
                                              ("RTX 4080", "sdxl-full")])
def test_a_card_named_without_bf16_is_advised_as_it_trains(card: str, preset: str, tmp_path: Path, capsys) -> None:
    """`--card T4` recommended sdxl-full, 14.5 GB with bf16, for a 16 GB card with no bf16, where it trains in fp16
    without the fused step and needs 23.4 GB."""
    assert load_preset_estimates()["sdxl-full"].need(bf16=False).run_need > 16 * GIB
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--json", "--card", card]) == 0
    [verdict] = json.loads(capsys.readouterr().out)["card_verdicts"].values()
    assert verdict["preset"] == preset and verdict["fits"] is True
    assert ("no bf16" in verdict["verdict"]) is (preset == "sdxl-lora")


def test_a_card_without_bf16_and_one_of_its_size_with_it_are_each_advised(tmp_path: Path, monkeypatch, capsys) -> None:
    """`--card 'V100 16GB' --card 16` read as one 16 GB card: one line, the V100's no-bf16 advice under the label
    "--card 16"."""
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--card", "V100 16GB", "--card", "16",
                 "--card", "Tesla V100 16GB"]) == 0
    out = capsys.readouterr().out
    sixteen, t4 = out.index("--card 16:"), out.index("--card V100 16GB, Tesla V100 16GB:")
    assert sixteen < t4 and "(sdxl-full)" in out[sixteen:t4] and "no bf16" not in out[sixteen:t4], out
    assert "(sdxl-lora)" in out[t4:] and "no bf16" in out[t4:].split("Recommended")[0], out
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--json", "--card", "V100 16GB",
                 "--card", "16"]) == 0
    by_card = json.loads(capsys.readouterr().out)["card_verdicts"]
    assert {key: verdict["preset"] for key, verdict in by_card.items()} == {"16": "sdxl-full", "16 no bf16": "sdxl-lora"}


def test_fit_judges_a_card_without_bf16_by_the_estimate_it_trains_at(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui fit --estimate-only --card T4` judged the bf16 estimate: SDXL full "fits 16 GB ✓" at 14.5 GB, where the
    T4 trains it in fp16 without the fused step and needs 23.4 GB. A second estimate is made only for such a card."""
    asked: list[str | None] = []
    path = _bf16_profile_of_12_gb_or_20_in_fp16(tmp_path, monkeypatch, asked)
    assert main(["fit", str(path), "--estimate-only", "--card", "16", "--card", "24"]) == 0
    assert "memory estimate:   fits 16 GB ✓ · 24 GB ✓" in capsys.readouterr().out and asked == [None]
    assert main(["fit", str(path), "--estimate-only", "--card", "T4", "--card", "16", "--card", "24"]) == 1  # the T4 misses
    out = capsys.readouterr().out
    assert "memory estimate:   fits T4 (no bf16): 22.8 GB ✗ · 16 GB ✓ · 24 GB ✓" in out and asked[1:] == [None, "fp16"]


def test_hardware_s_table_judges_a_card_without_bf16_as_it_trains(tmp_path: Path, monkeypatch, capsys) -> None:
    """Under the advice of a LoRA for `--card T4`, the table read "sdxl-full 14.5 GB fits 16 GB ✓" (bf16)."""
    row = load_preset_estimates()["sdxl-full"]
    fp16 = row.need(bf16=False).run_need / GIB
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--card", "T4", "--card", "16"]) == 0
    full = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("sdxl-full"))
    assert f"T4 (no bf16): {fp16:.1f} GB ✗ · 16 GB ✓" in full, full
    assert main(["hardware", "--family", "sdxl", "--output-dir", str(tmp_path), "--json", "--card", "T4"]) == 0
    assert json.loads(capsys.readouterr().out)["presets"]["sdxl-full"]["fits"] == {"15 no bf16": False}


@pytest.mark.parametrize("name, gb", [("Titan RTX", 24), ("TITAN RTX 24GB", 24), ("Tesla P40 24GB", 24),
                                      ("Tesla K80 12GB", 12), ("Titan V 12GB", 12)])
def test_cards_made_before_ampere_by_name_have_no_bf16(name: str, gb: float) -> None:
    """The Titan RTX folded to "titan" ("rtx" dropped): unknown without its size, and with it judged as a card with
    bf16; a P40, a rented 24 GB Pascal card, was judged so too."""
    from dbtui.cli.cards import card_size

    card = card_size(name)
    assert (float(card), card.bf16) == (gb, False)
    assert card_size("RTX 4090").bf16 and card_size("RTX A6000 48GB").bf16


def test_fit_advises_a_card_without_bf16_that_its_estimate_misses(tmp_path: Path, monkeypatch, capsys) -> None:
    """`fit --estimate-only --card T4` said "fits T4 (no bf16): 22.8 GB ✗" and nothing of what would fit it: the advice
    was given only for the cards judged by this machine's estimate (bf16), none here."""
    path = _bf16_profile_of_12_gb_or_20_in_fp16(tmp_path, monkeypatch)
    assert main(["fit", str(path), "--estimate-only", "--card", "T4"]) == 1  # the T4 misses it
    out = capsys.readouterr().out
    assert "fits T4 (no bf16): 22.8 GB ✗" in out and "none of the cards trained in fp16 (T4) holds it" in out, out
    assert "more than the T4's 15 GB (22.8 GB)" in out, out
    assert main(["fit", str(path), "--estimate-only", "--card", "T4", "--card", "16"]) == 1  # the T4 misses it
    out = capsys.readouterr().out
    # Beside "16 GB ✓", "more than a 16 GB card" read as that card's verdict contradicted.
    assert "16 GB ✓" in out and "none of these" not in out and "more than the T4's 15 GB (22.8 GB)" in out, out
    assert "a 16 GB card" not in out, out


def test_fit_advice_for_a_card_without_bf16_offers_no_bf16_only_setting(tmp_path: Path, monkeypatch, capsys) -> None:
    """`fit --estimate-only --card T4` on a full bf16 profile advised the T4 to "keep the weights in bf16 … on Ampere
    and newer" (and counted what that saves towards fitting it): a T4 trains in fp16, where neither bf16 weights nor
    the fused step can run."""
    import engine.memory
    from engine.profile import save_profile

    def estimate_peak(profile, *, precision=None, **how) -> MemoryEstimate:
        return MemoryEstimate(weights=(20 if precision == "fp16" else 12) * GIB, gradients=2 * GIB, optimizer_state=0,
                              activations=0, caches=0, autocast_weight_copies=0, peak_phase="backward", model="m",
                              batch=1, height=8, width=8, seconds=0.0)

    monkeypatch.setattr(engine.memory, "estimate_peak", estimate_peak)
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}, optimizer={"name": "adafactor"})
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["fit", str(path), "--estimate-only", "--card", "T4"]) == 1  # the T4 misses it
    out = capsys.readouterr().out
    assert "none of the cards trained in fp16 (T4) holds it" in out, out
    assert "bf16_weights" not in out and "fused_backward" not in out, out
    assert main(["fit", str(path), "--estimate-only", "--card", "12"]) == 1  # a card with bf16 still hears of them
    assert "bf16_weights = true" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["Quadro RTX 8000 48GB", "Quadro RTX 6000 24GB", "Quadro RTX 5000 16GB",
                                  "Quadro P6000 24GB", "Quadro P5000 16GB", "Quadro P4000 8GB", "Quadro GV100 32GB"])
def test_quadro_cards_made_before_ampere_have_no_bf16(name: str) -> None:
    """`--card 'Quadro RTX 8000 48GB'` (Turing) or 'Quadro P5000 16GB' (Pascal), as cloud rentals name them, was judged
    by the bf16 estimate, though such a card trains the bf16 presets in fp16 and needs more."""
    from dbtui.cli.cards import card_size

    assert not card_size(name).bf16
    assert card_size("RTX A6000 48GB").bf16 and card_size("RTX 6000 Ada 48GB").bf16


def test_fit_advice_for_a_card_without_bf16_on_an_fp16_profile_offers_no_bf16_only_setting(tmp_path: Path, monkeypatch,
                                                                                            capsys) -> None:
    """A full fp16 profile's `fit --estimate-only --card T4` still advised the T4 to switch to bf16 and keep the weights
    in it, "on Ampere and newer", and to fuse the optimizer step (which needs bf16 too): a T4 has no bf16."""
    import engine.memory
    from engine.profile import save_profile

    def estimate_peak(profile, *, precision=None, **how) -> MemoryEstimate:
        return MemoryEstimate(weights=20 * GIB, gradients=2 * GIB, optimizer_state=0, activations=0, caches=0,
                              autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8,
                              seconds=0.0)

    monkeypatch.setattr(engine.memory, "estimate_peak", estimate_peak)
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "fp16"}, optimizer={"name": "adafactor"})
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["fit", str(path), "--estimate-only", "--card", "T4"]) == 1  # the T4 misses it
    out = capsys.readouterr().out
    assert "bf16_weights" not in out and "fused_backward" not in out, out
    assert main(["fit", str(path), "--estimate-only", "--card", "12"]) == 1  # a card that may have bf16 hears of them
    assert "bf16_weights = true" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["P5000 16GB", "P4000 8GB", "P6000 24GB", "RTX5000 16GB", "RTX4000 8GB",
                                  "Quadro M4000 8GB", "M4000 8GB", "Quadro M6000 24GB"])
def test_workstation_cards_by_their_rental_names_have_no_bf16(name: str) -> None:
    """Paperspace rents the Quadros as "P5000", "RTX5000" or "M4000", without "Quadro", and the Maxwell Quadro M4000
    is its free one: each was judged by the bf16 estimate, as a card with bf16."""
    from dbtui.cli.cards import card_size

    assert not card_size(name).bf16
    assert card_size("RTX 4000 Ada 20GB").bf16 and card_size("RTX A4000 16GB").bf16 and card_size("A4000").bf16


def test_fit_advice_for_an_fp32_caching_pass_on_a_card_without_bf16_offers_no_bf16_only_setting(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """An fp32 full profile whose caching pass alone misses a T4 was advised to keep the weights in bf16 and fuse the
    optimizer step ('on Ampere and newer'), which a T4 cannot run."""
    import engine.memory
    from engine.profile import save_profile

    def estimate_peak(profile, *, precision=None, **how) -> MemoryEstimate:
        return MemoryEstimate(weights=2 * GIB, gradients=2 * GIB, optimizer_state=0, activations=0, caches=0,
                              autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8,
                              seconds=0.0, caching=20 * GIB)

    monkeypatch.setattr(engine.memory, "estimate_peak", estimate_peak)
    profile = tiny_profile(tmp_path, precision={"mixed_precision": "no"}, optimizer={"name": "adafactor"})
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["fit", str(path), "--estimate-only", "--card", "T4"]) == 1  # the T4 misses it
    out = capsys.readouterr().out
    assert "caching pass" in out and "bf16_weights" not in out, out


def test_a_card_without_bf16_is_still_offered_the_fused_step_in_fp32(tmp_path: Path) -> None:
    """The fused optimizer step is refused under fp16 only: an fp32 full run on a T4 may use it, and was not told of it
    (nor was it counted towards fitting the card)."""
    from engine.memory.savers import savers

    tips = [saver.tip for saver in savers(tiny_profile(tmp_path, precision={"mixed_precision": "no"}), bf16=False)]
    assert any("optimizer.fused_backward = true" in tip for tip in tips) and not any("bf16_weights" in tip for tip in tips)
    fp16 = [saver.tip for saver in savers(tiny_profile(tmp_path, precision={"mixed_precision": "fp16"}), bf16=False)]
    assert not any("fused_backward" in tip for tip in fp16)


@pytest.mark.parametrize(("name", "bf16"), [("RTX 4000 8GB", False), ("RTX 4000 20GB", True), ("RTX 5000 32GB", True),
                                            ("RTX 6000 48GB", True), ("RTX 6000 24GB", False), ("RTX 8000", False),
                                            ("Quadro RTX 4000", False), ("RTX 5000 Ada", True)])
def test_rtx_4000_to_6000_without_quadro_or_ada_are_told_apart_by_their_size(name: str, bf16: bool) -> None:
    """"RTX 6000 48GB" or "RTX 5000 32GB" (the Ada cards) were judged as the Turing Quadros, without bf16."""
    from dbtui.cli.cards import card_size

    assert card_size(name).bf16 is bf16


@pytest.mark.parametrize("name", ["RTX 4000 16GB", "RTX 4000", "RTX 6000", "4000"])
def test_rtx_4000_to_6000_without_quadro_ada_or_a_size_of_either_asks_for_the_full_name(name: str) -> None:
    """`--card 'RTX 4000 16GB'` is neither the Quadro (8 GB) nor the Ada card (20 GB), yet was judged as one."""
    from dbtui.cli.cards import card_size

    with pytest.raises(argparse.ArgumentTypeError, match="names two cards.*give the full name"):
        card_size(name)


@pytest.mark.parametrize("name, turing", [("Quadro 6000", "Quadro RTX 6000"), ("quadro-5000", "Quadro RTX 5000")])
def test_a_fermi_quadro_s_name_is_not_read_as_the_quadro_rtx(name: str, turing: str) -> None:
    """`--card 'Quadro 6000'`, a Fermi card of 2010 with 6 GB, was judged as the Quadro RTX 6000's 24 GB."""
    import argparse

    from dbtui.cli.cards import card_size

    with pytest.raises(argparse.ArgumentTypeError, match=f"Fermi card of 2010.*give '{turing}' for that one"):
        card_size(name)
    assert float(card_size(turing)) in (16, 24) and not card_size(turing).bf16
    card = card_size(f"{name} 6GB")  # sized, as the error does not stop: that size
    assert (float(card), card.bf16) == (6, False)


def test_a_card_asked_by_name_keeps_its_name_where_it_trains_at_the_estimate_s_precision(tmp_path: Path, monkeypatch,
                                                                                          capsys) -> None:
    """An fp16 profile (sd15-person.toml) with `--card T4 --card 'RTX 4090'` read "fits 15 GB ✗ · 24 GB ✗": the names
    were kept only for a card that trains at another precision than the estimate's."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, "RTX 4090", "T4", "80")
    assert "memory estimate:   fits T4 (15 GB) ✗ · RTX 4090 (24 GB) ✗ · 80 GB ✓" in out, out
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--family", "sd", "--output-dir", str(tmp_path), "--card", "RTX 4090"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("lora "))
    assert "RTX 4090 (24 GB) ✓" in row, row


def test_fit_estimate_only_says_in_json_and_its_exit_status_whether_the_cards_asked_hold_it(tmp_path: Path, monkeypatch,
                                                                                             capsys) -> None:
    """`fit --estimate-only --card 24` exited 0 whether the profile fitted the card or not, and had no --json: a script
    choosing a card to rent had to read the fit line."""
    path = _bf16_profile_of_12_gb_or_20_in_fp16(tmp_path, monkeypatch)
    assert main(["fit", str(path), "--estimate-only", "--card", "24"]) == 0
    assert main(["fit", str(path), "--estimate-only", "--card", "8"]) == 1
    assert main(["fit", str(path), "--estimate-only"]) == 0  # the default sizes, 8 GB among them, are no question
    capsys.readouterr()
    assert main(["fit", str(path), "--json", "--card", "T4", "--card", "24"]) == 1
    report = json.loads(capsys.readouterr().out)  # the standard output holds the JSON alone
    assert report["run_card_gb"] == round((12 * 1.1 + 0.75), 2) and report["parts_gb"]["weights"] == 12
    assert report["fits"] == {"15 no bf16": False, "24": True} and report["cards_asked_fit"] is False
    assert report["card_verdicts"]["15 no bf16"] == {"verdict": "T4 (no bf16): 22.8 GB ✗", "fits": False,
                                                     "precision": "fp16", "run_card_gb": 22.75}
    assert main(["fit", str(path), "--json", "--card", "24"]) == 0
    assert json.loads(capsys.readouterr().out)["card_verdicts"]["24"]["fits"] is True


def test_fit_estimate_only_says_no_estimate_for_a_card_whose_precision_has_none(tmp_path: Path, monkeypatch,
                                                                               capsys) -> None:
    """A T4's fp16 estimate that could not be made (the meter's process killed, say) counted as the T4 missing the
    run: exit 1 and "fits": false, where the help says 2 without an estimate."""
    import engine.memory
    from engine.errors import DbtuiError
    from engine.profile import save_profile

    def estimate_peak(profile, *, precision=None, **how) -> MemoryEstimate:
        if precision == "fp16":
            raise DbtuiError("the memory meter ended: killed")
        return MemoryEstimate(weights=12 * GIB, gradients=0, optimizer_state=0, activations=0, caches=0,
                              autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8,
                              seconds=0.0)

    monkeypatch.setattr(engine.memory, "estimate_peak", estimate_peak)
    path = save_profile(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}), tmp_path / "p.toml")
    assert main(["fit", str(path), "--estimate-only", "--card", "T4", "--card", "24"]) == 2
    capsys.readouterr()
    assert main(["fit", str(path), "--json", "--card", "T4", "--card", "24"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["fits"] == {"15 no bf16": None, "24": True} and report["cards_asked_fit"] is None
    assert report["card_verdicts"]["15 no bf16"]["verdict"] == "no estimate in fp16"
    assert main(["fit", str(path), "--json", "--card", "T4", "--card", "8"]) == 1  # the 8 GB card misses it: said so
    assert json.loads(capsys.readouterr().out)["cards_asked_fit"] is False


def test_fit_says_when_it_starts_the_second_estimate_a_card_without_bf16_needs(tmp_path: Path, monkeypatch,
                                                                               capsys) -> None:
    """`dbtui fit flux-lora-16gb.toml --estimate-only --card T4 --card 16` printed "memory estimate (no GPU needed) …"
    and then nothing for 1 m 48 s on 2 busy cores: the T4's fp16 estimate, as long as the first, was made unsaid."""
    path = _bf16_profile_of_12_gb_or_20_in_fp16(tmp_path, monkeypatch)
    assert main(["fit", str(path), "--estimate-only", "--card", "T4", "--card", "V100 16GB", "--card", "16"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["memory estimate (no GPU needed) …", "memory estimate in fp16, for T4, V100 16GB …"]
    assert main(["fit", str(path), "--json", "--card", "T4"]) == 1
    assert "memory estimate in fp16, for T4 …" in capsys.readouterr().err
