"""Next on the dataset step looks at every concept, not only the one shown; Remove keeps the other concepts' checks."""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image
from textual.widgets import Select

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle


def _folder(tmp_path: Path, name: str, *images: str) -> str:
    """A folder of captioned images; FakeEngine finds an error in each image named small*."""
    folder = tmp_path / name
    folder.mkdir()
    for image in images:
        Image.new("RGB", (64, 64), (90, 20, 20)).save(folder / image)
        (folder / image).with_suffix(".txt").write_text("zwx")
    return str(folder)


def _session(*folders: str) -> Session:
    session = Session.for_demo()
    session.set("prior.enabled", False)
    session.set("concepts", [{"instance_dir": folder, "instance_prompt": "photo of zwx dog"} for folder in folders])
    return session


async def _check_each(app, pilot, count: int):
    """Every concept checked, from the last to the first (shown last)."""
    screen = await at_step(app, pilot, 2, "DatasetScreen")
    for index in reversed(range(count)):
        screen.query_one("#ds-concept", Select).value = index
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
    assert screen.concept == 0
    return screen


def _said(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_next_refuses_a_concept_not_shown_that_has_no_usable_image_and_checks_a_dropped_report_again(
        tmp_path: Path, monkeypatch) -> None:
    """Next looked only at the concept shown: an empty second concept went on to Parameters. Its report dropped, Next
    checks it again. One app for both (they were two, each its own): a refusal leaves nothing behind (Next refuses
    again), so the report is dropped after them as it was on a fresh step."""
    monkeypatch.chdir(tmp_path)
    session = _session(_folder(tmp_path, "a", "one.png"), _folder(tmp_path, "b", "small.png"))
    engine = FakeEngine()
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _check_each(app, pilot, 2)
        for _ in range(2):  # not once: an unusable concept is no warning to pass
            await pilot.press("ctrl+n")
            await settle(pilot)
            assert app.screen is screen
            assert _said(app)[-1] == "No usable images in concept 2 (b): fix the errors the check shows (choose it above)."
        assert engine.calls.count(("check_dataset", 1)) == 1  # a report to refuse by: not checked again

        session.reports.pop(1)  # as caption review does when the concept's captions changed
        await pilot.press("ctrl+n")
        assert _said(app)[-1].startswith("The last check of concept 2 (b) found no usable images before the last "
                                         "changes: checking again.")
        await settle(pilot)
        assert engine.calls.count(("check_dataset", 1)) == 2 and 1 in session.reports
        assert app.screen is screen


async def test_next_names_the_errors_of_every_concept_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    session = _session(_folder(tmp_path, "a", "one.png"), _folder(tmp_path, "b", "one.png", "small.png"))
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _check_each(app, pilot, 2)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        assert _said(app)[-1] == ("1 error(s) in concept 2 (b): fix them as each finding says (Prepare does not); Next again "
                                  "goes on anyway.")
        await pilot.press("ctrl+n")  # told once: Next again goes on
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"


async def test_remove_keeps_the_checks_of_the_other_concepts(tmp_path: Path, monkeypatch) -> None:
    """Remove dropped every concept's check: the empty concept after the one removed then passed Next unchecked."""
    monkeypatch.chdir(tmp_path)
    a, b, c = (_folder(tmp_path, "a", "one.png"), _folder(tmp_path, "b", "one.png"), _folder(tmp_path, "c", "small.png"))
    session = _session(a, b, c)
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _check_each(app, pilot, 3)
        screen.query_one("#ds-concept", Select).value = 1
        await settle(pilot)
        screen.query_one("#ds-remove").scroll_visible(animate=False)  # a check scrolls its findings into view: back up
        await settle(pilot)
        await pilot.click("#ds-remove")
        await settle(pilot)
        assert [session.checked[index][0] for index in sorted(session.checked)] == [a, c]
        assert sorted(session.reports) == [0, 1] and session.reports[1].folder == c
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        assert _said(app)[-1].startswith("No usable images in")


class _FailingEngine(FakeEngine):
    """Its check of a folder named bad fails, as an unreadable folder's does."""

    def check_dataset(self, profile, concept, emit=None):
        if Path(profile.concepts[concept].instance_dir).name == "bad":
            raise RuntimeError("cannot read folder bad")
        return super().check_dataset(profile, concept, emit)


async def _failed_second(app, pilot):
    """The second concept (bad) shown, and its check failed."""
    screen = await at_step(app, pilot, 2, "DatasetScreen")
    screen.query_one("#ds-concept", Select).value = 1
    await settle(pilot)
    await pilot.press("ctrl+r")
    await settle(pilot)
    assert screen.failed_check == "cannot read folder bad"
    return screen


async def test_add_after_a_failed_check_does_not_report_it_for_the_new_concept(tmp_path: Path, monkeypatch) -> None:
    """Add kept the failed check of the concept shown before: Next blamed the new, empty concept for it."""
    monkeypatch.chdir(tmp_path)
    session = _session(_folder(tmp_path, "good", "one.png"), _folder(tmp_path, "bad", "one.png"))
    app = make_app(_FailingEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _failed_second(app, pilot)
        await pilot.click("#ds-add")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        assert _said(app)[-1] == "Concept 3 has no images folder."


async def test_remove_the_failing_concept_lets_next_go_on(tmp_path: Path, monkeypatch) -> None:
    """Removing the concept whose check failed kept its failure: Next reported it for the concept left."""
    monkeypatch.chdir(tmp_path)
    session = _session(_folder(tmp_path, "good", "one.png"), _folder(tmp_path, "bad", "one.png"))
    app = make_app(_FailingEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await _failed_second(app, pilot)
        await pilot.click("#ds-remove")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"
        assert not [n for n in app._notifications if n.title == "Not yet"]


class _HeldEngine(FakeEngine):
    """Its checks of folder b wait for ``go`` once ``hold`` is set; then fail when ``fail`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold, self.go, self.fail = threading.Event(), threading.Event(), False

    def check_dataset(self, profile, concept, emit=None):
        if Path(profile.concepts[concept].instance_dir).name == "b" and self.hold.is_set():
            self.go.wait(10)
            if self.fail:
                raise RuntimeError("cannot read folder b")
        return super().check_dataset(profile, concept, emit)


async def _b_dropped(app, pilot):
    """Both concepts checked, the second's (b: no usable image) report dropped as caption review does."""
    screen = await _check_each(app, pilot, 2)
    app.session.reports.pop(1)
    return screen


def _two(tmp_path: Path) -> Session:
    return _session(_folder(tmp_path, "a", "one.png"), _folder(tmp_path, "b", "small.png"))


async def test_next_while_the_recheck_runs_waits_for_it_instead_of_starting_it_again(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """Each Next started the re-check again, cancelling the one under way: pressed quickly, none ever finished."""
    monkeypatch.chdir(tmp_path)
    engine = _HeldEngine()
    app = make_app(engine, _two(tmp_path), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _b_dropped(app, pilot)
        engine.hold.set()
        await pilot.press("ctrl+n")
        await pilot.pause(0.1)
        await pilot.press("ctrl+n")
        await pilot.pause(0.1)
        assert _said(app)[-1] == "Still checking concept 2 (b): Next again once it is done."
        engine.go.set()
        await settle(pilot)
        assert engine.calls.count(("check_dataset", 1)) == 2 and 1 in app.session.reports
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        assert _said(app)[-1].startswith("No usable images in concept 2 (b)")


async def test_a_failed_recheck_of_a_concept_not_shown_names_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = _HeldEngine()
    app = make_app(engine, _two(tmp_path), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await _b_dropped(app, pilot)
        engine.hold.set()
        engine.go.set()
        engine.fail = True
        await pilot.press("ctrl+n")
        await settle(pilot)
        [failed] = [n for n in app._notifications if n.severity == "error"]
        assert (failed.title, failed.message) == ("Dataset check of concept 2 (b) failed", "cannot read folder b")


async def test_next_does_not_promise_a_recheck_the_draft_keeps_from_starting(tmp_path: Path, monkeypatch) -> None:
    """Next said "checking again" while the check, refused by the draft's problems, never started."""
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app = make_app(engine, _two(tmp_path), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _b_dropped(app, pilot)
        app.session.set("dataset.resolution", 7)  # no profile validates: no check can start
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen and engine.calls.count(("check_dataset", 1)) == 1
        assert _said(app)[-1] == ("The last check of concept 2 (b) found no usable images before the last changes; fix "
                                  "the problems shown to check it again.")


async def test_the_concept_selector_names_the_first_concept_in_words_and_by_the_folder_typed(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    """A new profile's first concept was "Concept 1: ?", and one whose folder is "." read "Concept 1: " (its last part is
    empty). It kept "Concept 1: ?" for the first concept while its folder was typed (it followed only another's).
    One app for both (they were two, each its own): each name is read off the selector after the change that makes it."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), _session(""), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        for typed, named in [("", "Concept 1 (no folder yet)"), (".", "Concept 1: ."), ("", "Concept 1 (no folder yet)")]:
            screen.query_one("#ds-instance_dir").value = typed
            await settle(pilot)
            first = screen._compositor.render_strips()[1].text  # the selector's row, under the steps
            assert named in first and "?" not in first, first
        screen.query_one("#ds-instance_dir").focus()
        await pilot.press(*"/data/zwx-dog")
        await settle(pilot)
        shown = [strip.text for strip in screen._compositor.render_strips()]
        assert any("Concept 1: zwx-dog" in line for line in shown), shown[:3]


async def test_a_check_refused_names_the_problems_of_the_concept_shown_not_of_concept_ten(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    """The problems of concept 1 were found by the key's prefix 'concepts.1', which 'concepts.10' has too: with the
    eleventh concept's folder empty, checking the second named that problem alone, as if it were the second's."""
    monkeypatch.chdir(tmp_path)
    folders = [_folder(tmp_path, f"f{index}", "one.png") for index in range(11)]
    session = _session(*folders)
    session.set("concepts.1.instance_prompt", "")
    session.set("concepts.10.instance_prompt", "")
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-concept", Select).value = 1
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert _said(app)[-1].startswith("concepts.1.instance_prompt:")
        assert "concepts.10" not in _said(app)[-1]


async def test_prepare_refused_names_the_problems_of_the_concept_shown_as_the_selector_counts(tmp_path: Path,
                                                                                              monkeypatch) -> None:
    """Prepare on a draft that does not validate said the first problem of all, its key counted from 0
    ('<profile>: concepts.0.instance_prompt: …' on Concept 2), where Check says the shown concept's as the selector
    counts."""
    monkeypatch.chdir(tmp_path)
    session = _session(_folder(tmp_path, "dog", "one.png"), _folder(tmp_path, "cat", "one.png"))
    session.set("concepts.0.instance_prompt", "")
    session.set("concepts.1.instance_prompt", "")
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-concept", Select).value = 1
        await settle(pilot)
        screen.action_prepare()
        await settle(pilot)
        assert _said(app)[-1].startswith("concepts.1.instance_prompt:"), _said(app)[-1]
        assert "(concepts.1 is Concept 2 on the Dataset step)" in _said(app)[-1]
        assert screen.preparing is None
