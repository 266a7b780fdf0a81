"""A run's stored profile is read back as dbtui wrote it (engine.runs.stored_profile.run_profile), not judged again by the
rules for a path the user types: a run made before paths were refused a control character, its saving.output_dir
"C:\\new\\tmp" in double quotes (read by TOML as C:, a line break, "ew", a tab and "mp"), could be neither exported nor
resumed, each stopping at "RUN/profile.toml: saving.output_dir: holds a line break", and the advice to write the path in
single quotes would have pointed the run at another folder. Only a path the run recorded (its run_started event) is so
read: the same text written by hand into RUN/profile.toml, as dbtui advises for a moved folder, is still refused."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from dbtui.cli import main
from dbtui.screens.run_life import draft_differs
from dbtui.session import Session
from engine.events import RunStarted
from engine.profile import Profile, ProfileError, dumps_profile, load_profile, validate_data
from engine.runs.folder import RunFolder, RunState
from engine.runs.sinks import JsonlSink
from engine.runs.stored_profile import run_profile
from tests.runs_helpers import trained_as_by_dbtui_run
from tests.training_helpers import merge, tiny_profile

AS_TOML_READ = "C:\new\tmp"  # "C:\new\tmp" in double quotes, as TOML reads it


def _made_before_the_rule(root: Path, name: str, started: bool = False, **sections) -> tuple[RunFolder, Profile]:
    """A run folder whose RUN/profile.toml is dbtui's own (dumps_profile) of a profile whose output_dir holds a line
    break and a tab, as versions before the rule took it, and that profile; ``started``: its trainer recorded its start
    (a run_started event), else the run is not started."""
    data = merge(tiny_profile(root, name=name).model_dump(mode="json"),
                 {**sections, "saving": {"output_dir": str(root / AS_TOML_READ), **sections.get("saving", {})}})
    profile = validate_data(data, dumped=True)  # as the run kept it: no rule for typed paths
    folder = RunFolder(Path(profile.saving.output_dir) / name).create()
    folder.profile.write_text(dumps_profile(profile), encoding="utf-8")
    if started:
        sink = JsonlSink(folder.events)
        sink(RunStarted(run_dir=str(folder.path), profile=profile.model_dump(mode="json"), hardware={}, versions={},
                        total_steps=profile.training.max_train_steps))
        sink.close()
    return folder, profile


def _cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_the_stored_profile_is_read_as_the_run_kept_it_and_a_typed_one_is_still_refused(tmp_path: Path) -> None:
    folder, _ = _made_before_the_rule(tmp_path, "old", started=True)
    assert run_profile(folder).saving.output_dir == str(tmp_path / AS_TOML_READ)
    with pytest.raises(ProfileError, match="saving.output_dir: holds a line break"):
        load_profile(folder.profile)  # the same file given as a profile to start a run from: the path was mistyped


def test_a_run_made_before_the_rule_exports_a_checkpoint(tmp_path: Path) -> None:
    folder, profile = _made_before_the_rule(tmp_path, "exported", training={"max_train_steps": 4},
                                            saving={"every_n_steps": 2})
    trained_as_by_dbtui_run(profile)  # a checkpoint at step 2, RUN/profile.toml written again as the trainer writes it
    code, out = _cli("export", str(folder.path), "--step", "2")
    assert code == 0, out
    assert (folder.path / "exports" / "step-2" / "diffusers" / "model_index.json").is_file()


def test_a_run_made_before_the_rule_resumes(tmp_path: Path) -> None:
    """Stopped before its first checkpoint: `dbtui resume` reads RUN/profile.toml in the command and in its trainer, which
the resume starts once the log holding the run's start is set aside (engine.runs.earlier_attempt)."""
    folder, _ = _made_before_the_rule(tmp_path, "resumed", started=True, training={"max_train_steps": 2})
    folder.write_state(RunState(pid=0, status="stopped"))
    code, out = _cli("resume", str(folder.path), "--plain")
    assert code == 0, out
    assert folder.read_state().status == "finished" and folder.read_state().step == 2


def _edited(folder: RunFolder, key: str, written: str) -> None:
    """RUN/profile.toml with ``key``'s line written by hand as ``key = written``."""
    lines = folder.profile.read_text(encoding="utf-8").splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith(f"{key} = "))
    folder.profile.write_text("\n".join([*lines[:at], f"{key} = {written}", *lines[at + 1:]]) + "\n", encoding="utf-8")


def test_a_hand_edit_of_the_stored_profile_is_refused_with_the_advice_on_quotes(tmp_path: Path) -> None:
    """A moved images folder's new place, written in RUN/profile.toml as dbtui advises, in double quotes: TOML reads a
    line break and a tab, which the run never recorded there (its output_dir's, recorded, still reads as it is). The
    resume said "folder 'C:<line break>ew<tab>mp' does not exist", printed raw, with advice to edit the file again."""
    folder, _ = _made_before_the_rule(tmp_path, "edited", started=True, training={"max_train_steps": 2})
    folder.write_state(RunState(pid=0, status="stopped"))
    _edited(folder, "instance_dir", '"C:\\new\\tmp"')
    code, out = _cli("resume", str(folder.path), "--plain")
    assert code == 2, out
    said = out.partition("concepts.0.instance_dir: ")[2].partition("\n")[0]  # the run's folder, in its file's place, is raw
    assert said.startswith("holds a line break") and "'single quotes' ('C:\\new\\tmp')" in said, out
    assert "saving.output_dir" not in out, out


def test_a_recorded_folder_that_is_gone_is_named_with_its_escapes(tmp_path: Path) -> None:
    """The run's own images folder, whose name holds a line break and a tab, moved away: named as it is written, not
    with the line break and tab printed raw."""
    images = str(tmp_path / AS_TOML_READ / "images")
    folder, _ = _made_before_the_rule(tmp_path, "moved", started=True,
                                      concepts=[{"instance_dir": images, "instance_prompt": "photo of zwx disc"}])
    folder.write_state(RunState(pid=0, status="stopped"))
    code, out = _cli("resume", str(folder.path), "--plain")
    assert code == 2, out
    said = out.partition("concepts.0.instance_dir: folder '")[2].partition("' does not exist")[0]
    assert said == str(tmp_path / "C:\\new\\tmp" / "images"), out


def test_the_wizard_reads_an_attached_runs_profile_as_the_run_keeps_it(tmp_path: Path) -> None:
    """Opened on the run (the start screen's attach), the draft passed as the run's: it was refused ("retype the path"),
    which stopped Train, and the check of a draft that differs from the run's said "same". A path edited in the draft
    is judged as typed."""
    folder, _ = _made_before_the_rule(tmp_path, "attached", started=True)
    session = Session.from_run(folder.path)
    assert session.review().problems == [] and not draft_differs(session, folder.path)
    session.set("training.max_train_steps", 9)
    assert session.review().profile is not None and draft_differs(session, folder.path)
    session.set("saving.output_dir", str(tmp_path / "C:\tother"))
    problems = [(problem.key, problem.message) for problem in session.review().problems]
    assert problems == [("saving.output_dir", "holds a tab (\\t), which no path is meant to hold: retype the path")]
