"""The demo's closing hint to train it again under a new name."""

from __future__ import annotations

from pathlib import Path


def test_the_demos_train_again_hint_names_a_run_that_does_not_exist_yet(tmp_path: Path) -> None:
    """A second demo's hint, `dbtui run dbtui-demo/tiny-demo-2.toml --set name=another-run`, was refused once the
    first demo's same hint had been followed: dbtui-demo/runs/another-run held a finished run."""
    from dbtui.cli.cmd_demo import closing_words
    from engine.builtin import demo_profile_text
    from engine.profile import loads_profile
    from engine.runs.folder import RunFolder

    runs = tmp_path / "runs"
    folder = RunFolder(runs / "tiny-demo-2")
    profile = loads_profile(demo_profile_text())
    assert closing_words(profile, folder, tmp_path / "tiny-demo-2.toml").endswith("--set name=another-run")
    (runs / "another-run").mkdir(parents=True)
    (runs / "another-run-2").mkdir()
    said = closing_words(profile, folder, tmp_path / "tiny-demo-2.toml")
    assert said.endswith(f"dbtui run {tmp_path / 'tiny-demo-2.toml'} --set name=another-run-3")
