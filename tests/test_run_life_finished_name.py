"""The wizard's words for a run that cannot start name its folder as the launch does."""

from __future__ import annotations

from pathlib import Path

from dbtui.screens.run_life import start_outcome
from dbtui.session import Session
from engine.runs.start_refusals import RunFinishedError


class _FinishedEngine:
    def start_run(self, profile, resume: str | None = None, waiting=None) -> Path:
        raise RunFinishedError("holds a finished run")


def test_a_finished_run_is_named_without_the_output_folder_s_detour(tmp_path: Path, monkeypatch) -> None:
    """saving.output_dir = "runs/../runs": the launch names the run runs/tiny-demo (run_dir_for), but the wizard said
    'runs/../runs/tiny-demo holds a finished run'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "tiny-demo").mkdir(parents=True)
    session = Session.for_demo()
    session.set("saving.output_dir", "runs/../runs")
    outcome, folder = start_outcome(_FinishedEngine(), session.profile(), None)
    assert folder is None
    assert outcome.reason.startswith(f"{Path('runs') / 'tiny-demo'} holds a finished run")
