"""`dbtui export RUN` of a finished run writes its latest kept checkpoint, which can be earlier than the step the run
finished at: it printed only the step's paths (exports/step-2/…), and a user loading that file in ComfyUI took it for
the run's result, while the final model was in RUN/outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main
from engine.runs.folder import RunState
from tests.runs_helpers import run_with_checkpoints


def _exported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The export itself (a model load) is not what is tested: what the command says around it is."""
    monkeypatch.setattr("engine.runs.export.export_checkpoint",
                        lambda run_dir, step=None, emit=None: {"lora_kohya": str(run_dir / "exports" / "step-2" / "k.safetensors")})


def test_the_latest_checkpoint_exported_of_a_run_that_finished_later_names_the_final_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [2])
    folder.write_state(RunState(pid=1, status="finished", step=4, total_steps=4))
    (folder.outputs / "diffusers").mkdir(parents=True)
    (folder.outputs / "diffusers" / "model_index.json").write_text("{}")  # what `--step 4` builds from
    _exported(monkeypatch)
    assert main(["export", str(folder.path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "exported step 2, the latest kept checkpoint; the run finished at step 4" in out, out
    assert f"`dbtui export {folder.path} --step 4` writes it in these formats" in out, out


def test_the_latest_checkpoint_of_a_stopped_run_is_exported_without_a_note(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [2])
    folder.write_state(RunState(pid=1, status="stopped", step=2, total_steps=4))
    _exported(monkeypatch)
    assert main(["export", str(folder.path)]) == 0
    assert "the run finished" not in capsys.readouterr().out
