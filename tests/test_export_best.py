"""`dbtui export RUN --step best`: the best-scored step `dbtui runs` names, exported where its checkpoint is kept, and
refused with the step that keeps it, or with why there is none, where it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli.cmd_export import checkpoint_step
from dbtui.cli import main
from engine.runs.keep import NoBestStepError, best_step_to_export
from tests.test_keep_best import overfit_run


def test_best_is_a_step_export_takes() -> None:
    assert checkpoint_step("best") == "best" and checkpoint_step(" Best ") == "best"


def test_the_best_step_is_exported_where_its_checkpoint_is_kept(tmp_path: Path) -> None:
    folder, _ = overfit_run(tmp_path, evaluation=True)  # step 100 is the best, kept beside 400 and 500
    assert best_step_to_export(folder) == 100


def test_an_unkept_best_step_is_refused_naming_the_best_kept_step_that_qualifies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = overfit_run(tmp_path, evaluation=True, damaged=(100,))  # the best's checkpoint lacks a file
    folder.profile.write_text("# the run's profile\n")
    assert main(["export", str(folder.path), "--step", "best"]) == 2
    err = capsys.readouterr().err
    assert "the best-scored is step 100: subject fidelity 0.700" in err
    assert (f"the best kept step that qualifies is step 200: `dbtui export {folder.path} --step 200`" in err)
    assert not (folder.path / "exports").exists()


def test_a_run_never_scored_is_refused_with_why(tmp_path: Path) -> None:
    folder, _ = overfit_run(tmp_path, evaluation=False, scored_rounds=False)
    with pytest.raises(NoBestStepError, match=r"has no best-scored step to export: no round of it was scored "
                                              r"\(\[evaluation\] enabled = true"):
        best_step_to_export(folder)
