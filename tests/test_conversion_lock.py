"""A second conversion of one file into one folder while the first runs waits for it and reuses its folder."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.events import Warning as WarningEvent
from engine.model_import import import_model
from engine.models.loading import resolve_model_folder, run_models
from fake_conversion import copy_converted


@pytest.fixture
def slow_conversions(tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Path], threading.Event]:
    """Each conversion made, each a copy of the tiny SD1.x model; the first one holds until the event is set (a real
    one takes minutes), the others are quick."""
    import engine.convert

    made: list[Path] = []
    release = threading.Event()

    def convert(path: Path, out: Path, before_publish: Callable[[Path], None] | None = None, **_: object) -> Path:
        made.append(path)
        if len(made) == 1:
            assert release.wait(30)
        engine.convert.check_new_folder(out)
        copy_converted(tiny_sd1, out, before_publish)
        return out

    monkeypatch.setattr(engine.convert, "import_single_file", convert)
    return made, release


def _both(convert: Callable[[list], Path], made: list[Path], release: threading.Event) -> tuple[list, list]:
    """The first conversion in a thread, a second begun while it converts; what each returned or raised, and what the
    second was told."""
    results: list = []
    said: list = []

    def run(emit: Callable | None = None) -> None:
        try:
            results.append(convert([said.append] if emit else []))
        except Exception as error:  # noqa: BLE001 - the test says which
            results.append(error)

    first = threading.Thread(target=run)
    first.start()
    while not made and first.is_alive():  # the first is converting
        first.join(0.01)
    second = threading.Thread(target=run, args=(True,))
    second.start()
    # It says it waits for the first (or, unfixed, converts and returns at once): a fixed 3 s join waited the same.
    end = time.monotonic() + 30
    while not said and second.is_alive() and time.monotonic() < end:
        second.join(0.01)
    release.set()
    first.join(30)
    second.join(30)
    return results, said


def test_a_second_wizard_conversion_of_the_file_waits_and_reuses_the_folder(slow_conversions, tmp_path: Path) -> None:
    """The second (the wizard's Convert in another terminal) converted for minutes too, then failed: "models/X-diffusers
    already exists", or "was filled while converting", leaving a copy of gigabytes beside it."""
    made, release = slow_conversions
    source = tmp_path / "m.safetensors"
    source.write_bytes(b"weights")
    out = tmp_path / "models" / "m-diffusers"

    def convert(emit: list) -> Path:
        return import_model(str(source), out, emit=emit[0] if emit else None)

    results, said = _both(convert, made, release)
    assert results == [out, out] and made == [source]
    assert [type(event) for event in said] == [WarningEvent] and "under way" in said[0].message
    assert sorted(path.name for path in out.parent.iterdir()) == ["m-diffusers"]  # no copy, and no lock file left


def test_an_export_converting_a_runs_base_while_its_trainer_does_waits_and_reuses_it(slow_conversions,
                                                                                     tmp_path: Path) -> None:
    """A resumed run whose base was deleted converts it again; `dbtui export` then converted it as well, and one of
    them (the trainer too) failed."""
    made, release = slow_conversions
    source = tmp_path / "m.safetensors"
    source.write_bytes(b"weights")
    run = tmp_path / "runs" / "r"
    out = run_models(run) / "m-diffusers"

    def convert(emit: list) -> Path:
        return resolve_model_folder(str(source), work_dir=run_models(run), emit=emit[0] if emit else None,
                                    run_base=True)

    results, _ = _both(convert, made, release)
    assert results == [out, out] and made == [source]
    assert sorted(path.name for path in out.parent.iterdir()) == ["m-diffusers"]


@pytest.mark.parametrize("typed", [".", "./", "/"])
def test_a_folder_typed_without_a_name_of_its_own_is_refused_as_taken_not_with_a_path_error(
        typed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Into "." (or "/") in the wizard's Convert said "PosixPath('.') has an empty name", where it said the folder
    was taken and what to do: the lock beside the folder had no name to put there."""
    from engine.convert import OutputExistsError

    work = tmp_path / "work"
    work.mkdir()
    (work / "m.safetensors").write_bytes(b"weights")
    monkeypatch.chdir(work)
    with pytest.raises(OutputExistsError, match="already exists and is not empty; choose a new output folder"):
        import_model("m.safetensors", Path(typed))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["work"]  # no lock file left beside it
