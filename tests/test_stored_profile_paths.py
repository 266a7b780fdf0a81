"""A run's stored profile is read back as dbtui wrote it (engine.profile.load_run_profile), not judged again by the rules
for a path the user types: a run made before paths were refused a control character, its saving.output_dir "C:\\new\\tmp"
in double quotes (read by TOML as C:, a line break, "ew", a tab and "mp"), could be neither exported nor resumed, each
stopping at "RUN/profile.toml: saving.output_dir: holds a line break", and the advice to write the path in single
quotes would have pointed the run at another folder."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.profile import Profile, ProfileError, dumps_profile, load_profile, load_run_profile, validate_data
from engine.runs.folder import RunFolder, RunState
from tests.runs_helpers import trained_as_by_dbtui_run
from tests.training_helpers import merge, tiny_profile

AS_TOML_READ = "C:\new\tmp"  # "C:\new\tmp" in double quotes, as TOML reads it


def _made_before_the_rule(root: Path, name: str, **sections) -> tuple[RunFolder, Profile]:
    """A run folder whose RUN/profile.toml is dbtui's own (dumps_profile) of a profile whose output_dir holds a line
    break and a tab, as versions before the rule took it, and that profile; the run is not started."""
    data = merge(tiny_profile(root, name=name).model_dump(mode="json"),
                 {**sections, "saving": {"output_dir": str(root / AS_TOML_READ), **sections.get("saving", {})}})
    profile = validate_data(data, stored=True)  # as the run kept it: no rule for typed paths
    folder = RunFolder(Path(profile.saving.output_dir) / name).create()
    folder.profile.write_text(dumps_profile(profile), encoding="utf-8")
    return folder, profile


def _cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_the_stored_profile_is_read_as_the_run_kept_it_and_a_typed_one_is_still_refused(tmp_path: Path) -> None:
    folder, _ = _made_before_the_rule(tmp_path, "old")
    assert load_run_profile(folder.profile).saving.output_dir == str(tmp_path / AS_TOML_READ)
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
    """Stopped in set-up (no checkpoint): `dbtui resume` reads RUN/profile.toml in the command and in its trainer."""
    folder, _ = _made_before_the_rule(tmp_path, "resumed", training={"max_train_steps": 2})
    folder.write_state(RunState(pid=0, status="stopped"))
    code, out = _cli("resume", str(folder.path), "--plain")
    assert code == 0, out
    assert folder.read_state().status == "finished" and folder.read_state().step == 2
