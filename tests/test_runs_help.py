"""`dbtui runs --help` says what its best-step column shows: only the README did, so a user of the CLI alone met a
column of steps (or '-') with nothing to say which scorer chose them or why a run had none."""

from __future__ import annotations

import pytest

from dbtui.cli import main


def test_runs_help_explains_the_best_step_column(monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # one line per paragraph, so the phrases are not broken by the wrapping
    with pytest.raises(SystemExit) as exit_:
        main(["runs", "--help"])
    assert exit_.value.code == 0
    description = capsys.readouterr().out.split("positional arguments:")[0]
    assert "best step:" in description and "[evaluation]" in description  # which scorer picks it
    assert "prompt_fidelity_tolerance" in description and "subject fidelity" in description  # by what rule
    assert "'-' means none" in description and "no step has been scored yet" in description  # what an empty cell means


def test_runs_help_names_every_reason_for_no_best_step(monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The '-' was said to mean no [evaluation], nothing scored yet or every step overfit; a run whose evaluation prompts
    name no identifier, or one resumed under other [evaluation] settings, showed '-' for none of these."""
    monkeypatch.setenv("COLUMNS", "2000")
    with pytest.raises(SystemExit):
        main(["runs", "--help"])
    description = capsys.readouterr().out.split("positional arguments:")[0]
    assert "no evaluation prompt names a concept's identifier" in description
    assert "a resume changed the [evaluation] settings and no step has been scored under them since" in description
    assert "`dbtui attach RUN` says which" in description
