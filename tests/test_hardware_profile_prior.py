"""`dbtui hardware --profile` judges the profile's own preset row as the profile trains, with or without prior preservation.

profiles/flux-lora-24gb.toml trains without prior preservation, and its comment and `dbtui fit --estimate-only` say a 16
GB card holds it (12.4 GB); `dbtui hardware --profile` of it read "flux-lora-24gb 17.2 GB … 16 GB ✗", the preset's
figure with prior preservation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.memory.estimate import GIB
from engine.memory.preset_table import load_preset_estimates
from engine.profile import load_profile, save_profile

PROFILE = Path(__file__).parents[1] / "profiles" / "flux-lora-24gb.toml"


@pytest.mark.parametrize("prior", [False, True])
def test_the_profiles_own_row_is_judged_by_its_prior_setting(tmp_path: Path, prior: bool, capsys) -> None:
    path = PROFILE
    if prior:
        profile = load_profile(PROFILE)
        dogs = {"class_prompt": "photo of a dog", "class_dir": "data/dogs"}
        concepts = [concept.model_copy(update=dogs) for concept in profile.concepts]
        with_prior = profile.model_copy(update={"prior": profile.prior.model_copy(update={"enabled": True}),
                                                "concepts": concepts})
        path = save_profile(with_prior, tmp_path / "prior.toml")
    assert main(["hardware", "--profile", str(path), "--card", "16", "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    table = load_preset_estimates()
    assert data["profile_preset"] == "flux-lora-24gb"
    own, other = data["presets"]["flux-lora-24gb"], data["presets"]["flux-lora-16gb"]
    assert own["prior"] is prior and own["fits"]["16"] is (not prior)  # 12.4 GB without, 17.2 GB with
    assert own["run_card_gb"] == round(table["flux-lora-24gb"].need(prior=prior).run_need / GIB, 2)
    assert other["prior"] is prior  # a preset leaves prior preservation as the profile has it
    assert other["run_card_gb"] == round(table["flux-lora-16gb"].need(prior=prior).run_need / GIB, 2)


def test_the_table_marks_the_profiles_row(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    need = load_preset_estimates()["flux-lora-24gb"].need(prior=False)
    assert main(["hardware", "--profile", str(PROFILE), "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("flux-lora-24gb"))
    assert "*" in row and f"{need.run_need / GIB:.1f} GB" in row and "16 GB ✓" in row, out
    assert "without prior preservation, as the profile trains" in out and "* this profile's own settings" in out


def test_a_profile_of_other_settings_has_no_own_row(tmp_path: Path, capsys) -> None:
    profile = load_profile(PROFILE)
    changed = profile.model_copy(update={"training": profile.training.model_copy(update={"train_batch_size": 2})})
    path = save_profile(changed, tmp_path / "batch2.toml")
    assert main(["hardware", "--profile", str(path), "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile_preset"] is None and not any(row["prior"] for row in data["presets"].values())


def test_without_bf16_the_own_row_is_not_said_without_prior(tmp_path: Path, monkeypatch, capsys) -> None:
    """On a GPU without bf16 only the fp16 figure with prior preservation was measured: the row showed it (17.2 GB) and
    the line said 'judged as it trains: without prior preservation (17.2 GB with it)', --json "prior": false."""
    import engine.hardware.machine
    from engine.hardware.machine import Gpu, Hardware

    machine = Hardware(gpus=[Gpu(0, "Tesla V100", 16 * 1024, 16 * 1024, "7.0", False)])
    monkeypatch.setattr(engine.hardware.machine, "probe", lambda path: machine)
    monkeypatch.setenv("COLUMNS", "200")
    need = load_preset_estimates()["flux-lora-24gb"].need(bf16=False)
    assert main(["hardware", "--profile", str(PROFILE), "--json", "--output-dir", str(tmp_path)]) == 0
    own = json.loads(capsys.readouterr().out)["presets"]["flux-lora-24gb"]
    assert own["prior"] is True and own["run_card_gb"] == round(need.run_need / GIB, 2)
    assert main(["hardware", "--profile", str(PROFILE), "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "without prior preservation, as" not in out, out
    assert "with prior preservation, the only figures measured in fp16 (the profile trains without it)" in out, out


def _machine(monkeypatch, gb: int) -> None:
    import engine.hardware.machine
    from engine.hardware.machine import Gpu, Hardware

    machine = Hardware(gpus=[Gpu(0, "GPU", gb * 1024, gb * 1024, "8.6", True)], bitsandbytes=True)
    monkeypatch.setattr(engine.hardware.machine, "probe", lambda path: machine)


def _with_prior(tmp_path: Path) -> Path:
    profile = load_profile(PROFILE)
    dogs = {"class_prompt": "photo of a dog", "class_dir": "data/dogs"}
    concepts = [concept.model_copy(update=dogs) for concept in profile.concepts]
    return save_profile(profile.model_copy(update={"prior": profile.prior.model_copy(update={"enabled": True}),
                                                   "concepts": concepts}), tmp_path / "prior.toml")


def test_the_recommendation_is_judged_as_the_profile_trains(tmp_path: Path, monkeypatch, capsys) -> None:
    """On a 16 GB card flux-lora-24gb.toml (prior off, 12.4 GB) was told to pick flux-lora-16gb, the advice judging
    flux-lora-24gb with prior preservation (17.2 GB), under a table whose own row said 16 GB ✓."""
    _machine(monkeypatch, 16)
    for path, preset in ((PROFILE, "flux-lora-24gb"), (_with_prior(tmp_path), "flux-lora-16gb")):
        assert main(["hardware", "--profile", str(path), "--card", "16", "--json", "--output-dir", str(tmp_path)]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["preset"] == preset and data["card_verdicts"]["16"]["preset"] == preset, (path, data["preset"])


def test_a_profile_that_differs_from_its_preset_in_no_memory_setting_has_its_row(tmp_path: Path, capsys) -> None:
    """A learning rate of its own (which changes no memory) left flux-lora-24gb.toml without a marked row."""
    profile = load_profile(PROFILE)
    changed = profile.model_copy(update={"optimizer": profile.optimizer.model_copy(update={"learning_rate": 3e-4})})
    path = save_profile(changed, tmp_path / "lr.toml")
    assert main(["hardware", "--profile", str(path), "--json", "--output-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["profile_preset"] == "flux-lora-24gb"


def test_a_card_without_bf16_says_its_figure_is_with_prior_preservation(tmp_path: Path, monkeypatch, capsys) -> None:
    """`--card T4` on a bf16 machine: the row said "prior": false, its T4 verdict judged by the fp16 figure, which is
    with prior preservation (17.2 GB, where the profile needs 12.4 GB in bf16)."""
    _machine(monkeypatch, 24)
    assert main(["hardware", "--profile", str(PROFILE), "--card", "T4", "--card", "24", "--json",
                 "--output-dir", str(tmp_path)]) == 0
    own = json.loads(capsys.readouterr().out)["presets"]["flux-lora-24gb"]
    assert own["prior"] is False and own["judged_with_prior"] == {"15 no bf16": True, "24": False}, own
    assert own["fits_with_prior"] == own["judged_with_prior"]  # its old name, which read as "fits, with prior", kept
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--profile", str(PROFILE), "--card", "T4", "--output-dir", str(tmp_path)]) == 0
    assert "T4 (no bf16): judged with prior preservation" in capsys.readouterr().out


def test_a_card_without_bf16_names_the_rows_judged_with_prior_preservation(tmp_path: Path, monkeypatch, capsys) -> None:
    """An SD profile without prior preservation, `--card T4`: "T4 (no bf16): judged with prior preservation" stood for
    every T4 mark, where lora's (an fp16 figure without it) is judged as the profile trains, as --json's
    "judged_with_prior" says."""
    _machine(monkeypatch, 24)
    profile = Path(__file__).parents[1] / "profiles" / "sd15-style-native.toml"
    assert not load_profile(profile).prior.enabled
    args = ["hardware", "--profile", str(profile), "--card", "T4", "--output-dir", str(tmp_path)]
    assert main([*args, "--json"]) == 0
    judged = {name: row["judged_with_prior"]["15 no bf16"] for name, row in json.loads(capsys.readouterr().out)["presets"].items()}
    assert True in judged.values() and False in judged.values()  # some rows with it, some without
    monkeypatch.setenv("COLUMNS", "300")
    assert main(args) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("T4 (no bf16): judged")]
    said = re.fullmatch(r"T4 \(no bf16\): judged without prior preservation, as the profile trains, but (.+) with it, the "
                        r"only figure measured in fp16 \(more than this profile needs\)", line)
    assert said is not None, line
    assert said.group(1).split(", ") == [name for name, with_prior in judged.items() if with_prior]


def test_the_json_gives_the_figure_each_card_is_judged_by(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui hardware --profile sd15-person.toml --card 12 --card T4` printed "full-8bit 5.2 GB … T4 (no bf16): 9.9 GB
    ✓"; its --json had the row's 5.24 and the T4's verdict, but not the 9.9 GB the T4 is judged by."""
    _machine(monkeypatch, 24)
    profile = Path(__file__).parents[1] / "profiles" / "sd15-person.toml"
    assert main(["hardware", "--profile", str(profile), "--card", "12", "--card", "T4", "--json",
                 "--output-dir", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)["presets"]
    table = load_preset_estimates(family="sd")
    for name, row in rows.items():
        assert row["run_card_gb_by_card"] == {"12": row["run_card_gb"],
                                              "15 no bf16": round(table[name].need(False, True).run_need / GIB, 2)}, name
    assert rows["full-8bit"]["run_card_gb_by_card"]["15 no bf16"] > rows["full-8bit"]["run_card_gb"] + 4
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--profile", str(profile), "--card", "T4", "--output-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert f"T4 (no bf16): {rows['full-8bit']['run_card_gb_by_card']['15 no bf16']:.1f} GB ✓" in shown


def test_set_changes_the_profile_the_advice_is_for(tmp_path: Path, capsys) -> None:
    """`dbtui hardware --profile P --set …` was "unrecognized arguments": a renter asking which preset at 768 px, or with
    prior preservation, had to edit a copy of the profile. Its --set values are read as `dbtui fit` reads them."""
    sets = ["--set", "prior.enabled=true", "--set", "concepts.0.class_prompt='photo of a dog'",
            "--set", "concepts.0.class_dir='data/dogs'", "--set", "dataset.resolution=768"]
    assert main(["hardware", "--profile", str(PROFILE), *sets, "--json", "--output-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trains_at_px"] == 768 and load_profile(PROFILE).dataset.resolution != 768
    assert all(row["prior"] is True for row in data["presets"].values()), data["presets"]
    # Above every size the SD presets were measured at, the `dbtui fit` it names estimates the same profile.
    sd = PROFILE.with_name("sd15-lora-8gb.toml")
    assert main(["hardware", "--profile", str(sd), "--set", "dataset.resolution=2048", "--json",
                 "--output-dir", str(tmp_path)]) == 0
    assert "--estimate-only --set dataset.resolution=2048`" in json.loads(capsys.readouterr().out)["family_note"]


def test_set_without_a_profile_is_refused(tmp_path: Path, capsys) -> None:
    """--set beside --family (or alone) has no profile value to change: refused, not left unused."""
    for which in (["--family", "sdxl"], []):
        assert main(["hardware", *which, "--set", "dataset.resolution=768", "--output-dir", str(tmp_path)]) != 0
        assert "give --profile with it" in capsys.readouterr().err
