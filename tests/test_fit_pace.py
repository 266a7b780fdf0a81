"""A fit test on a CPU that will take long says so, by the pace measured: a tiny Flux at 512 px cached its pictures for
many minutes with no word that 64 px measures in seconds, nor that the meter's estimate (no GPU) was already shown."""

from __future__ import annotations

from pathlib import Path

from dbtui.cli import main
from engine.events import PhaseProgress, PhaseStarted, StepEnded
from engine.runs.fit_pace import SlowFitHint
from tests.runs_helpers import profile_file


def caching(seconds_each: float, total: int = 14) -> list:
    return [PhaseStarted(time=0.0, phase="caching", total=total),
            *(PhaseProgress(time=seconds_each * n, phase="caching", done=n, total=total) for n in range(1, total + 1))]


def test_a_slow_phase_is_said_once_with_what_to_do_and_a_fast_one_not_at_all() -> None:
    hint = SlowFitHint(steps=10, resolution=512, set_it="--set dataset.resolution", estimate_shown=True)
    said = [text for event in caching(60.0) if (text := hint(event))]
    assert len(said) == 1 and "caching (14 items) will take about 14 min at 512 px" in said[0]
    assert "--set dataset.resolution=64" in said[0] and "the meter's estimate above" in said[0]
    fast = SlowFitHint(steps=10, resolution=64, set_it="--set dataset.resolution", estimate_shown=True)
    assert not [event for event in caching(0.5) if fast(event)]


def test_slow_steps_at_a_small_resolution_offer_no_smaller_one() -> None:
    hint = SlowFitHint(steps=10, resolution=64, set_it="--set dataset.resolution", estimate_shown=False)
    events = [PhaseStarted(time=0.0, phase="training", total=10),
              StepEnded(time=30.0, step=1, total_steps=300, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=0.03, eta_s=1.0)]
    said = [text for event in events if (text := hint(event))]
    assert said == ["on this CPU, the 10 steps measured will take about 5 min at 64 px"]


def test_dbtui_fit_on_a_cpu_prints_the_hint(monkeypatch, capsys, tmp_path: Path) -> None:
    import torch

    from dbtui.cli import cmd_fit
    from engine.runs import fit

    def fake_fit_test(profile, steps, emit, **kwargs):
        for event in caching(60.0):
            emit(event)
        ended = [StepEnded(time=900.0 + n, step=n, total_steps=300, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                           it_per_s=1.0, eta_s=1.0) for n in (1, 2)]
        return fit.measure(ended, setup_s=900.0)

    monkeypatch.setattr(fit, "fit_test", fake_fit_test)
    monkeypatch.setattr(cmd_fit, "_estimate", lambda profile, cards, say=print: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    profile = profile_file(tmp_path, training={"max_train_steps": 300}, dataset={"resolution": 512})
    assert main(["fit", str(profile), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("note: on this CPU, caching (14 items) will take about 14 min at 512 px") == 1, out
    assert "--set dataset.resolution=64" in out and "meter's estimate" not in out  # no estimate was shown
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU's pace is the run's: no word
    assert main(["fit", str(profile), "--steps", "2"]) == 0
    assert "on this CPU" not in capsys.readouterr().out
