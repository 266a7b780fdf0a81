"""`dbtui export` keeps one earlier copy of each output (NAME.previous): a third export of a step deleted the copy the
second kept, and said nothing of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main
from engine.runs.folder import RunState
from engine.training.outputs import atomic_folder, keep_previous
from tests.runs_helpers import run_with_checkpoints


def _exports_writing(monkeypatch: pytest.MonkeyPatch, written: list[int]) -> None:
    """The export itself (a model load) is not what is tested: its outputs are written as the real ones are."""
    def export(run_dir: Path, step: int | None = None, emit=None) -> dict[str, str]:
        written.append(len(written) + 1)
        out = run_dir / "exports" / "step-2"
        lora = atomic_folder(out / "lora", lambda tmp: (tmp.mkdir(), (tmp / "w.txt").write_text(str(written[-1]))))
        out.mkdir(parents=True, exist_ok=True)
        single = out / "t.safetensors"
        keep_previous(single)
        single.write_text(str(written[-1]))
        return {"lora": str(lora), "single_file": str(single)}

    monkeypatch.setattr("engine.runs.export.export_checkpoint", export)


def test_a_third_export_says_which_earlier_copies_it_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = run_with_checkpoints(tmp_path, [2])
    folder.write_state(RunState(pid=1, status="stopped", step=2, total_steps=4))
    _exports_writing(monkeypatch, written := [])
    said = []
    for _ in range(3):
        assert main(["export", str(folder.path)]) == 0
        said.append(capsys.readouterr().out)
    out = folder.path / "exports" / "step-2"
    assert (out / "lora.previous" / "w.txt").read_text() == "2" and (out / "t.previous.safetensors").read_text() == "2"
    assert "replaced" not in said[0] + said[1]  # the first kept nothing, the second replaced no kept copy
    assert (f"replaced the earlier copy kept by the export before last (one is kept of each output): "
            f"{out / 'lora.previous'}, {out / 't.previous.safetensors'} now hold the export this one wrote over") in said[2]
