"""The hash of the model's weights said as a phase with its progress wherever it takes over a second: a hash of any
size (a model on a slow disk), and the thread's hash that a run waits for once its class images are made, which showed
a line without progress after the images' full bar."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted
from engine.training import model_weights, weight_hashing
from tests.test_class_images_copied import _copied, _run
from tests.test_class_images_moved import made  # noqa: F401  (made: the fixture)


def _settings(model: Path) -> SimpleNamespace:
    return SimpleNamespace(pretrained=str(model), revision=None, vae=None, quantize=None)


def _phase(events: list[Event]) -> list[Event]:
    return [event for event in events if getattr(event, "phase", None) == weight_hashing.PHASE]


@pytest.mark.parametrize("tick, shown", [(0.3, True), (0.0, False)])
def test_a_hash_of_a_small_model_is_shown_once_it_takes_over_a_second(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      tick: float, shown: bool) -> None:
    """Only models of a gigabyte or more were shown: one of 900 MB on a network drive hashed for a minute in silence."""
    clock = itertools.count(step=tick) if tick else itertools.repeat(0.0)
    monkeypatch.setattr(weight_hashing.time, "perf_counter", lambda: next(clock))  # a read of each block: `tick` s
    monkeypatch.setattr(weight_hashing, "_BLOCK", 2**20)
    events: list[Event] = []
    hashed = model_weights.WeightDigests(_settings(tiny_sd1), tiny_sd1, events.append).now()
    assert hashed == model_weights.WeightDigests(_settings(tiny_sd1), tiny_sd1).now()
    kinds = [event.kind for event in _phase(events)]
    assert bool(kinds) == shown
    if shown:
        assert kinds[0] == "phase_started" and kinds[-1] == "phase_finished" and "phase_progress" in kinds
        assert events[-2].done == events[0].total == sum(f.stat().st_size for _, f in weight_hashing.hashed_files(
            tiny_sd1, weight_hashing.CURRENT)) // 2**20


def test_a_stopped_hash_ends_its_phase(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its bar stood on the screen for the rest of the run."""
    monkeypatch.setattr(weight_hashing, "_SHOWN_AFTER", 0)
    monkeypatch.setattr(weight_hashing, "_BLOCK", 1024)
    events: list[Event] = []
    read = itertools.count()
    assert model_weights.WeightDigests(_settings(tiny_sd1), tiny_sd1, events.append).now(lambda: next(read) > 3) is None
    assert isinstance(events[0], PhaseStarted) and isinstance(events[-1], PhaseFinished) and events[-1].stopped


def test_the_hash_a_run_waits_for_shows_its_progress(tmp_path: Path, tiny_sd1: Path, made: list[int],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The images made, the run waited for the thread's hash with a phase line alone: no bar, no hint of how long."""
    monkeypatch.setattr(weight_hashing, "_SHOWN_AFTER", 0)
    monkeypatch.setattr(weight_hashing, "_MIB", 1024)
    waiting = threading.Event()
    waited = model_weights.wait
    # The run reaches its wait while the thread is mid-hash: the thread goes on once it does.
    monkeypatch.setattr(model_weights, "wait", lambda *a, **k: waiting.set() or waited(*a, **k))
    hashed = weight_hashing.digest

    def digest(source, scheme, emit, should_stop):
        return hashed(source, scheme, lambda event: (waiting.wait(10) if isinstance(event, PhaseProgress) else None,
                                                     emit(event)), should_stop)

    monkeypatch.setattr(model_weights, "digest", digest)
    events: list[Event] = []
    _run(tmp_path, _copied(tiny_sd1, tmp_path / "m0"), events=events)
    shown = _phase(events)
    assert isinstance(shown[0], PhaseStarted) and shown[0].total and isinstance(shown[-1], PhaseFinished)
    assert made == [0, 1] and waiting.is_set()
    progress = [event.done for event in shown if isinstance(event, PhaseProgress)]
    assert progress and progress[-1] == shown[0].total
    assert all(before.time <= after.time for before, after in zip(events, events[1:]))  # the log's lines in order
    ended = [event.phase for event in events if isinstance(event, PhaseFinished)]
    assert ended[-2:] == [weight_hashing.PHASE, "class_images"]  # the run waits for it before the images' phase ends
