"""[evaluation] on a style run (instance_prompt = "", trained from its captions) scored images of an empty prompt at every
round, and named a best step by them, with no word from `dbtui validate` or the run: its default prompts are each
concept's instance prompt. Both now say so, and that evaluation.prompts, not sampling.prompts, is what the scorer reads."""

from __future__ import annotations

import threading
from pathlib import Path

from dbtui.cli import main
from engine.evaluation.prompt_problems import evaluation_problems
from engine.events import RunStarted
from engine.runs.in_process import train
from tests.runs_helpers import ROOT
from tests.training_helpers import tiny_profile

TINY_SCORERS = {"clip_model": "builtin:tiny-clip", "dino_model": "builtin:tiny-dino"}
STYLE_CONCEPT = {"instance_dir": "builtin:demo-instance", "instance_prompt": "", "caption_mode": "file_name"}


def test_validate_warns_of_a_style_profile_scoring_its_empty_prompt(capsys) -> None:
    shipped = str(ROOT / "profiles" / "sd15-style-native.toml")
    main(["validate", shipped, "--set", "evaluation.enabled=true"])  # its model and images are not here: status 2
    out = " ".join(capsys.readouterr().out.split())
    assert "evaluation.prompts: is empty" in out and "concepts.0.instance_prompt is empty" in out, out
    assert "images made from no prompt" in out and "(sampling.prompts makes only the previews)" in out
    main(["validate", shipped])  # [evaluation] off: nothing is scored, nothing said
    assert "evaluation.prompts" not in capsys.readouterr().out


def test_a_style_profile_is_told_how_to_have_a_best_step_named(tmp_path: Path) -> None:
    style = dict(concepts=[STYLE_CONCEPT], evaluation={"enabled": True, "prompts": ["a lighthouse at dusk"], **TINY_SCORERS})
    [problem] = evaluation_problems(tiny_profile(tmp_path, **style))
    # "Leave the list empty for the defaults" sent a style run back to scoring its empty prompt.
    assert "no concept has one" in problem.message and "leave the list empty" not in problem.message
    assert 'instance_prompt = "zwx style"' in problem.message
    trained = {**STYLE_CONCEPT, "instance_prompt": "zwx style", "caption_mode": "prompt_then_caption_file"}
    named = tiny_profile(tmp_path, concepts=[trained],
                         evaluation={"enabled": True, "prompts": ["a lighthouse at dusk, zwx style"], **TINY_SCORERS})
    assert evaluation_problems(named) == []  # what the advice says to do is no problem


def test_a_style_runs_start_warns_of_its_empty_evaluation_prompt(tmp_path: Path) -> None:
    """A headless run, or one whose review was passed by, says it too; stopped once it said it."""
    profile = tiny_profile(tmp_path, concepts=[STYLE_CONCEPT], training={"max_train_steps": 1},
                           evaluation={"enabled": True, **TINY_SCORERS})
    events, stop = [], threading.Event()

    def sink(event) -> None:
        events.append(event)
        if isinstance(event, RunStarted):
            stop.set()

    train(profile, tmp_path / "run", sinks=[sink], cancel=stop)
    warnings = [e.message for e in events if e.kind == "warning"]
    said = [w for w in warnings if w.startswith("evaluation.prompts is empty")]
    assert len(said) == 1 and "concepts.0.instance_prompt is empty" in said[0], warnings
