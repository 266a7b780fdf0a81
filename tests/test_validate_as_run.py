"""`dbtui validate` exits as `dbtui run` would start: a CI step "validate, then run" passed validate (exit 0, a warning)
for a missing instance folder, and failed at run (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"


def test_a_missing_instance_folder_fails_validate_as_it_refuses_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtui.cli import main

    monkeypatch.chdir(tmp_path)
    given = [str(DEMO), "--set", 'concepts.0.instance_dir="photos"', "--set", 'saving.output_dir="runs"']
    said = "folder 'photos' does not exist"
    assert main(["validate", *given]) == 2
    validated = capsys.readouterr()
    assert said in validated.err and "valid (" not in validated.out
    assert main(["run", *given]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # A profile meant for another machine: what this one lacks is a warning there.
    assert main(["validate", *given, "--elsewhere"]) == 0
    assert f"  warning: --set concepts.0.instance_dir=\"photos\": {said}" in capsys.readouterr().out


def test_what_the_run_goes_on_with_stays_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scorer folder missing here: the run goes on unscored, so validate passes with a warning."""
    from dbtui.cli import main

    scorer = tmp_path / "no-clip"
    assert main(["validate", str(DEMO), "--set", f'evaluation.clip_model="{scorer}"']) == 0
    out = capsys.readouterr().out
    assert "valid (" in out and "warning: --set evaluation.clip_model" in out
