"""A key given twice by --set took the last value without a word: a script's --set appended to a command that already
had one trained another value than the user read first. The run still takes the last; a warning names both."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main
from dbtui.cli.cmd_validate import VALIDATE_SAID
from engine.profile.overrides import repeated_overrides


def test_a_key_given_twice_is_told_with_both_values_and_the_one_used() -> None:
    assert repeated_overrides(["training.max_train_steps=100", "training.max_train_steps=200"]) == [
        "--set gives training.max_train_steps twice, 100 then 200: the last, 200, is used"]


def test_a_table_and_a_key_of_it_are_one_key_and_the_same_value_again_is_no_clash() -> None:
    said = repeated_overrides(["optimizer={learning_rate=1e-4, name=\"adamw\"}", "optimizer.learning_rate=2e-6",
                               "name=a", "name=a", "concepts.0.instance_prompt=x", "not an override"])
    assert said == ["--set gives optimizer.learning_rate twice, 0.0001 then 2e-6: the last, 2e-6, is used"]


def test_the_command_warns_before_it_reads_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "p.toml"), "--set", "training.max_train_steps=100",
                 "--set", "training.max_train_steps=200"]) == 2
    said = capsys.readouterr().err.splitlines()
    assert said[0] == "dbtui: warning: --set gives training.max_train_steps twice, 100 then 200: the last, 200, is used"
    assert said[1] == VALIDATE_SAID and "file not found" in said[3]  # then the check begun, and the refusal, as before


def test_the_last_value_is_the_one_read() -> None:
    from engine.profile.overrides import apply_overrides

    read = apply_overrides({}, ["training.max_train_steps=100", "training.max_train_steps=200"])
    assert read == {"training": {"max_train_steps": 200}}


def test_a_whole_list_after_a_key_within_it_is_told_as_replacing_it() -> None:
    """concepts.0.instance_prompt=…, then concepts=[…]: the list replaced the earlier key without a word (a table after
    a key of it merges, so that key is one key twice)."""
    said = repeated_overrides(['concepts.0.instance_prompt="photo of abc"',
                               'concepts=[{instance_dir="d", instance_prompt="photo of xyz"}]'])
    assert said == ['--set gives concepts.0.instance_prompt, "photo of abc", then the whole of concepts: the last is used, '
                    'so concepts.0.instance_prompt is not "photo of abc"']
    assert repeated_overrides(['concepts.0.instance_prompt="x"', 'concepts=[{instance_dir="d", instance_prompt="x"}]',
                               'optimizer.learning_rate=1e-4', 'optimizer={}',
                               'sampling.prompts=["a"]', 'sampling.prompts.0="b"']) == []
