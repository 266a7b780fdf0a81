"""Another machine's profile, RUN/profile-machine-N.toml, is named in one place (engine/support/run_marks.py): the
launcher that writes it, the run folder that knows it as dbtui's (not the user's file), the conversion holder that
names the machine whose trainer holds a conversion, and `dbtui runs` that lists that machine's part, each spelled the
name out for itself, so a change to one left the others looking for a file no longer written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli.runs_listing import _other_machines_parts
from engine.models.conversion_holder import Holder
from engine.runs.folder import RunFolder, foreign_entries
from engine.runs.launcher import machine_profile
from engine.support.run_marks import machine_profile_name, profile_machine


@pytest.mark.parametrize("rank", [1, 3, 12])
def test_the_name_the_launcher_writes_is_the_one_each_reader_knows(rank: int, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "dog"
    run.mkdir(parents=True)
    written = machine_profile(RunFolder(run), rank)
    assert written == run / machine_profile_name(rank) and profile_machine(written.name) == str(rank)
    written.write_text("", encoding="utf-8")
    assert foreign_entries(RunFolder(run)) == []  # dbtui's, not the user's file a run would write over
    assert _other_machines_parts(tmp_path / "runs") == [(run, str(rank))]
    holder = Holder(1, False, ("python", "-m", "engine.runs.worker", str(run), "--profile", str(written)))
    assert holder.machine == str(rank)


def test_other_names_are_no_machines_profile() -> None:
    assert [profile_machine(name) for name in ("profile.toml", "profile-machine-2.lock", "my-profile-machine-2.toml")] \
        == [None, None, None]
