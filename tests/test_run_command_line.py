"""The `running: dbtui run …` line a run's log begins with is a command the shell reads back as the one given."""

from __future__ import annotations

import shlex

from dbtui.cli import build_parser
from dbtui.cli.cmd_run import equivalent_command


def test_the_command_line_of_a_profile_whose_path_has_a_space_reads_back_as_given() -> None:
    """It said `running: dbtui run my profile.toml …`: pasted back, that ran `my` with `profile.toml` left over."""
    given = ["run", "runs of mine/my profile.toml", "--set", "saving.output_dir=out dir", "--resume", "step 8"]
    args = build_parser().parse_args(given)
    assert shlex.split(equivalent_command(args)) == ["dbtui", *given]
