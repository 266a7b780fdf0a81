"""`dbtui validate` and `dbtui dataset check`: their first words came after 1.1-1.7 s of silence, the checks' imports
(engine.profile_checks, engine.dataset), which a line on stderr now comes before. As test_fit_first_line's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dbtui.cli.cmd_dataset import CHECK_SAID
from dbtui.cli.cmd_validate import VALIDATE_SAID
from tests.runs_helpers import env


@pytest.mark.parametrize(("command", "said", "slow_import"), [
    (["validate"], VALIDATE_SAID, "engine.profile_checks"),
    (["dataset", "check", "--profile"], CHECK_SAID, "engine.dataset")], ids=["validate", "dataset check"])
def test_the_check_is_said_before_its_imports_and_stdout_keeps_the_report_alone(
        command: list[str], said: str, slow_import: str, tmp_path: Path) -> None:
    # A folder that is not here: both refuse it without loading a model.
    profile = tmp_path / "p.toml"
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "nowhere"\n'
                       'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
    # -X importtime writes each import on stderr as it ends, in order with the command's own lines there.
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "dbtui", *command, str(profile)],
                            cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    lines = result.stderr.splitlines()
    imported = next(index for index, line in enumerate(lines)
                    if line.startswith("import time:") and line.split("|")[-1].strip() == slow_import)
    assert said in lines[:imported], result.stderr[-2000:]
    assert result.returncode != 0 and "nowhere" in result.stderr + result.stdout, result.stderr[-2000:]
    assert said not in result.stdout, result.stdout
