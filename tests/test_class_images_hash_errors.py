"""A read of the model's weights that fails while they are hashed (EIO, a file removed mid-hash): the wizard's Dataset
check kept the failure for the session, saying 0 earlier class images on every re-check until the app restarted, and
the hash's bar, once shown, was left on the screen (the CLI's, the wizard's, and a run's that waits for its thread)."""

from __future__ import annotations

import errno
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted
from engine.training import model_weights, weight_hashing
from tests.test_class_images_check_hashes import _two_concepts_on_a_copy
from tests.test_class_images_moved import made  # noqa: F401  (made: the fixture)


def _failing_once(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """``model_weights.digest`` raising EIO on its first call, hashing on the next: the places it was asked for."""
    asked: list[Path] = []
    digest = weight_hashing.digest

    def failing(source: Path, *args: Any, **kwargs: Any) -> str:
        asked.append(source)
        if len(asked) == 1:
            raise OSError(errno.EIO, "Input/output error", str(source))
        return digest(source, *args, **kwargs)

    monkeypatch.setattr(model_weights, "digest", failing)
    return asked


def test_a_failed_read_is_not_kept_for_the_wizards_next_check(tmp_path: Path, tiny_sd1: Path, made: list[int],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The Dataset check after a failed read of the copied model said 0 earlier class images again and again."""
    from dbtui.engine_facade import RealEngine
    from engine.profile import load_profile

    profile = load_profile(_two_concepts_on_a_copy(tmp_path, tiny_sd1, shared=False)[0])
    asked = _failing_once(monkeypatch)
    engine = RealEngine()
    reports = [engine.check_dataset(profile, 0) for _ in range(3)]
    assert [report.summary.class_images_generated for report in reports] == [0, 2, 2]
    assert asked == [tmp_path / "m1"] * 2  # read again once, then known


def test_one_search_reads_a_failing_model_once(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each set a check compares with the model would read a failing disk again; the next check reads it anew."""
    asked = _failing_once(monkeypatch)
    settings = SimpleNamespace(pretrained=str(tiny_sd1), revision=None, vae=None, quantize=None)
    described = model_weights.model_identity(settings, tiny_sd1)["files"]["model"]
    known: model_weights.KnownHashes = {}
    search = model_weights.WeightDigests(settings, tiny_sd1, known=known)
    assert [search.of(tiny_sd1, described) for _ in range(2)] == [None, None] and len(asked) == 1
    again = model_weights.WeightDigests(settings, tiny_sd1, known=known).of(tiny_sd1, described)
    assert again == weight_hashing.digest(tiny_sd1) and len(asked) == 2


def test_a_model_not_there_during_a_check_is_hashed_once_it_is_back(tmp_path: Path, tiny_sd1: Path) -> None:
    """A drive unplugged during a check, plugged back: its model, as described, is the same as before."""
    model = shutil.copytree(tiny_sd1, tmp_path / "m")
    settings = SimpleNamespace(pretrained=str(model), revision=None, vae=None, quantize=None)
    described = model_weights.model_identity(settings, model)["files"]["model"]
    known: model_weights.KnownHashes = {}
    model.rename(tmp_path / "away")
    assert model_weights.WeightDigests(settings, model, known=known).of(model, described) is None
    (tmp_path / "away").rename(model)  # file times kept
    back = model_weights.WeightDigests(settings, model, known=known).of(model, described)
    assert back == weight_hashing.digest(model)


class _FailingRead:
    """A weight file whose second block cannot be read (EIO: a failing disk, a network drive gone), once ``first`` has
    let the read go on."""

    def __init__(self, file: Path, first: Callable[[], object]) -> None:
        self._stream = open(file, "rb")  # noqa: SIM115  (closed by __exit__)
        self._first, self._reads = first, 0

    def __enter__(self) -> _FailingRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()

    def read(self, size: int) -> bytes:
        self._reads += 1
        if self._reads > 1:
            self._first()
            raise OSError(errno.EIO, "Input/output error")
        return self._stream.read(size)


@pytest.mark.parametrize("waited", [False, True])
def test_a_failed_read_ends_the_hashs_phase(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch, waited: bool) -> None:
    """Its bar, shown after the first block, stood on the screen with no PhaseFinished: the hash's own (``now``), or
    the thread's that a run waited for, whose held events it replays (``waited``)."""
    monkeypatch.setattr(weight_hashing, "_SHOWN_AFTER", 0)
    monkeypatch.setattr(weight_hashing, "_BLOCK", 1024)
    waiting = threading.Event()
    waited_for = model_weights.wait
    # The run reaches its wait while the thread is mid-hash: its read fails once it does.
    monkeypatch.setattr(model_weights, "wait", lambda *a, **k: waiting.set() or waited_for(*a, **k))
    first = (lambda: waiting.wait(10)) if waited else (lambda: None)
    monkeypatch.setattr(weight_hashing, "open", lambda file, mode: _FailingRead(file, first), raising=False)
    events: list[Event] = []
    settings = SimpleNamespace(pretrained=str(tiny_sd1), revision=None, vae=None, quantize=None)
    digests = model_weights.WeightDigests(settings, tiny_sd1, events.append)
    if waited:
        digests.start(lambda: False)
    assert digests.now() == {} and waiting.is_set() == waited
    phase = [event for event in events if getattr(event, "phase", None) == weight_hashing.PHASE]
    assert [type(event) for event in phase] == [PhaseStarted, PhaseProgress, PhaseFinished] and phase[-1].stopped
