"""A resolution off 8 is told with the model family's own step where it is stricter: a Flux profile at 70 was told
"a multiple of 8", and the 72 written next was then refused as not a multiple of 16."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main
from engine.profile import ProfileError
from test_flux_wizard import flux_draft
from wizard_fakes import FakeEngine

PROFILES = Path(__file__).resolve().parent.parent / "profiles"


def _said(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", [["validate"], ["run"], ["dataset", "check", "--profile"]])
def test_a_flux_profile_off_8_is_told_the_multiple_of_16_at_once(command: list[str], tmp_path: Path, monkeypatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    said = _said([*command, str(PROFILES / "flux-lora-16gb.toml"), "--set", "dataset.resolution=70"], capsys)
    assert "--set dataset.resolution=70: must be a multiple of 16, not 70, for a Flux.1 model: e.g. 64 or 80" in said


def test_a_flux_profile_file_off_8_is_told_on_its_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    text = (PROFILES / "flux-lora-16gb.toml").read_text(encoding="utf-8").replace("resolution = 512", "resolution = 100")
    (tmp_path / "flux.toml").write_text(text, encoding="utf-8")
    said = _said(["validate", str(tmp_path / "flux.toml")], capsys)
    assert "dataset.resolution: must be a multiple of 16, not 100, for a Flux.1 model: e.g. 96 or 112" in said


@pytest.mark.parametrize("profile", ["sdxl-lora-12gb.toml", "sd15-lora-8gb.toml"])
def test_a_unet_model_off_8_is_told_the_multiple_of_8_with_the_nearest(profile: str, tmp_path: Path, monkeypatch,
                                                                       capsys) -> None:
    monkeypatch.chdir(tmp_path)
    said = _said(["validate", str(PROFILES / profile), "--set", "dataset.resolution=70"], capsys)
    assert "--set dataset.resolution=70: must be a multiple of 8, not 70: e.g. 64 or 72" in said


def test_the_tiny_flux_whose_own_step_is_4_keeps_the_rule_of_8(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    said = _said(["validate", str(PROFILES / "flux-lora-16gb.toml"), "--set", 'model.pretrained="builtin:tiny-flux"',
                  "--set", "dataset.resolution=68"], capsys)
    assert "must be a multiple of 8, not 68: e.g. 64 or 72" in said


def test_the_wizard_draft_of_a_flux_model_is_told_the_multiple_of_16() -> None:
    session = flux_draft(FakeEngine())
    session.set("dataset.resolution", 70)
    _, problems = session.validate()
    assert [p.message for p in problems] == ["must be a multiple of 16, not 70, for a Flux.1 model: e.g. 64 or 80"]
    with pytest.raises(ProfileError, match="multiple of 16"):
        session.profile()


def test_the_wizard_s_open_screen_tells_a_flux_profile_file_the_multiple_of_16(tmp_path: Path) -> None:
    """Opening a Flux profile at 70 px in the wizard said "e.g. 64 or 72", and the 72 written next was then refused."""
    from dbtui.session import Session

    text = (PROFILES / "flux-lora-16gb.toml").read_text(encoding="utf-8").replace("resolution = 512", "resolution = 70")
    (tmp_path / "flux.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=r"must be a multiple of 16, not 70, for a Flux\.1 model: e\.g\. 64 or 80"):
        Session.from_file(tmp_path / "flux.toml")


@pytest.mark.parametrize("command", [["validate"], ["run"]])
def test_a_flux_bucket_off_8_is_told_the_multiple_of_16_at_once(command: list[str], tmp_path: Path, monkeypatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A Flux bucket of 70 was told "a multiple of 8", and the 72 written next was then refused as not one of 16."""
    monkeypatch.chdir(tmp_path)
    said = _said([*command, str(PROFILES / "flux-lora-16gb.toml"), "--set", "dataset.bucketing=true",
                  "--set", "dataset.buckets=[[70, 64], [512, 100]]"], capsys)
    assert "multiple of 8" not in said, said
    assert ("dataset.buckets.0: bucket 70x64 must be at least 32 and a multiple of 16 on both sides, for a Flux.1 model: "
            "e.g. 64/80x64") in said, said
    assert "dataset.buckets.1: bucket 512x100 must be at least 32 and a multiple of 16 on both sides" in said, said


def test_a_unet_bucket_off_8_is_told_the_multiple_of_8(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    said = _said(["validate", str(PROFILES / "sd15-lora-8gb.toml"), "--set", "dataset.bucketing=true",
                  "--set", "dataset.buckets=[[70, 64]]"], capsys)
    assert "dataset.buckets.0: bucket 70x64 must be at least 32 and a multiple of 8 on both sides" in said, said


def test_the_wizard_draft_of_a_flux_model_is_told_a_bucket_s_multiple_of_16() -> None:
    session = flux_draft(FakeEngine())
    session.set("dataset.bucketing", True)
    session.set("dataset.buckets", [[70, 64]])
    with pytest.raises(ProfileError, match=r"bucket 70x64 must be at least 32 and a multiple of 16 on both sides"):
        session.profile()


def test_a_flux_bucket_s_side_under_32_is_told_a_size_it_takes(tmp_path: Path, monkeypatch, capsys) -> None:
    """A Flux bucket of 70x16 was told "e.g. 64/80x16" and 20x64 "e.g. 16/32x64": 16 is under the bucket's 32, so
    the size written next was refused again."""
    monkeypatch.chdir(tmp_path)
    said = _said(["validate", str(PROFILES / "flux-lora-16gb.toml"), "--set", "dataset.bucketing=true",
                  "--set", "dataset.buckets=[[70, 16], [20, 64]]"], capsys)
    assert "bucket 70x16 must be at least 32 and a multiple of 16 on both sides, for a Flux.1 model: e.g. 64/80x32" \
        in said, said
    assert "bucket 20x64 must be at least 32 and a multiple of 16 on both sides, for a Flux.1 model: e.g. 32x64" \
        in said, said
