"""The dataset step while its Check, Prepare or token check runs: each result is filed under the concept and folder it
was started for (concepts removed or refolded meanwhile), a result replaced by a later job is dropped, the step is not
left while Prepare writes copies, and a folder the step shows is not rewritten by showing it."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from PIL import Image
from textual.widgets import Input, Select

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine, Report, Summary, fake_report
from wizard_steps import at_step, settle, until


class GatedEngine(FakeEngine):
    """The fake engine whose calls named in ``held`` wait for ``gate``; Prepare writes its (one) copy."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.held: set[str] = set()

    def _wait(self, what: str) -> None:
        if what in self.held:
            self.held.discard(what)  # only the first such call waits
            assert self.gate.wait(10)

    def prepare_dataset(self, profile, concept: int, emit=None):
        self._wait("prepare")
        result = super().prepare_dataset(profile, concept, emit)
        Path(result.destination).mkdir(exist_ok=True)
        Image.new("RGB", (64, 64)).save(result.written[0])
        return result

    def check_dataset(self, profile, concept: int, emit=None):
        self._wait("check")
        return super().check_dataset(profile, concept, emit)

    def identifier_tokens(self, model: str, identifier: str) -> list[str]:
        self._wait(identifier)
        return super().identifier_tokens(model, identifier)


def _pictures(tmp_path: Path, name: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "ok.png")
    return str(folder)


def _session(*concepts: tuple[str, str]) -> Session:
    session = Session.for_demo()
    session.data["prior"] = {"enabled": False}
    session.data["concepts"] = [{"instance_dir": folder, "instance_prompt": prompt} for folder, prompt in concepts]
    return session


def _messages(app) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_showing_a_folder_does_not_rewrite_it(tmp_path: Path, monkeypatch) -> None:
    """Opening the step rewrote /x/a\\b to /x/ab (shlex), and 'pics' (quotes its own) to pics."""
    monkeypatch.chdir(tmp_path)
    backslashed = _pictures(tmp_path, "a\\b")
    _pictures(tmp_path, "ab")
    _pictures(tmp_path, "pics")
    app = make_app(FakeEngine(), _session((backslashed, "photo of zwx dog"), ("'pics'", "photo of zwx cat")),
                   image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-concept", Select).value = 1
        await settle(pilot)
        assert [c["instance_dir"] for c in app.session.get("concepts")] == [backslashed, "'pics'"]


async def test_a_concept_removed_while_prepare_runs(tmp_path: Path, monkeypatch) -> None:
    """The result was set by its index then: on another concept (or IndexError) once one before it was removed."""
    monkeypatch.chdir(tmp_path)
    b, a, c = (_pictures(tmp_path, name) for name in "BAC")
    engine = GatedEngine()
    app = make_app(engine, _session((b, "photo of zwx dog"), (a, "photo of zwx cat"), (c, "photo of zwx cow")),
                   image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-concept", Select).value = 1
        await settle(pilot)
        engine.held = {"prepare"}
        await pilot.click("#ds-prepare")
        await pilot.pause(0.2)
        screen.query_one("#ds-concept", Select).value = 0
        await pilot.pause(0.2)
        await pilot.click("#ds-remove")  # B, before A: A is concept 0 now
        await pilot.pause(0.2)
        screen.query_one("#ds-concept", Select).value = 1  # C shown
        await pilot.pause(0.2)
        engine.gate.set()
        await settle(pilot)
        assert [c["instance_dir"] for c in app.session.get("concepts")] == [f"{a}-prepared", c]
        assert engine.calls[-1] == ("check_dataset", 0)  # the concept prepared is checked, not the one shown
        assert app.session.reports[0].folder == f"{a}-prepared"

        engine.gate.clear()
        engine.held = {"prepare"}
        await pilot.click("#ds-prepare")  # C, shown
        await pilot.pause(0.2)
        await pilot.click("#ds-remove")
        await pilot.pause(0.2)
        engine.gate.set()
        await settle(pilot)
        assert app.return_value is None and app._exception is None
        assert [c["instance_dir"] for c in app.session.get("concepts")] == [f"{a}-prepared"]
        assert _messages(app)[-1].startswith(f"Prepared copies in {c}-prepared, but the concept they were made of was "
                                             "removed or given another images folder meanwhile")


async def test_a_check_is_filed_under_the_folder_it_checked(tmp_path: Path, monkeypatch) -> None:
    """The report of folder A was stored for folder C, typed while A was checked: Next then held C to A's errors."""
    monkeypatch.chdir(tmp_path)
    a = tmp_path / "A"
    a.mkdir()
    Image.new("RGB", (64, 64)).save(a / "small.png")  # the fake's error: no usable image
    engine = GatedEngine()
    app = make_app(engine, _session((str(a), "photo of zwx dog")), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        engine.held = {"check"}
        await pilot.press("ctrl+r")
        await pilot.pause(0.2)
        c = _pictures(tmp_path, "C")
        screen.query_one("#ds-instance_dir", Input).value = c
        await pilot.pause(0.2)
        engine.gate.set()
        await settle(pilot)
        assert 0 not in app.session.reports and 0 not in app.session.checked
        assert str(screen.query_one("#findings-summary").render()) == "not checked yet"
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"


async def test_a_check_replaced_by_a_later_one_is_dropped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = _pictures(tmp_path, "A")
    engine = GatedEngine()
    old = Report(folder, (), Summary(1, 0, {"error": 1}))
    app = make_app(engine, _session((folder, "photo of zwx dog")), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        engine.held = {"check"}
        engine.check_dataset = lambda profile, concept, emit=None: (engine._wait("check"), old)[1]
        await pilot.press("ctrl+r")
        await pilot.pause(0.2)
        engine.check_dataset = lambda profile, concept, emit=None: fake_report(folder)
        await pilot.press("ctrl+r")  # cancels the first check's worker; its thread goes on
        await until(pilot, lambda: 0 in app.session.reports)
        engine.gate.set()
        await settle(pilot, 0.3)
        assert app.session.reports[0].summary.usable == 1
        assert screen.query_one("#ds-findings").report is app.session.reports[0]


@contextlib.asynccontextmanager
async def _preparing(tmp_path: Path, monkeypatch, name: str):
    """The Dataset step with a Prepare of the pictures in ``tmp_path/name`` held running until ``engine.gate`` is set;
    the app, its pilot, the screen, the engine and the folder."""
    monkeypatch.chdir(tmp_path)
    folder = _pictures(tmp_path, name)
    engine = GatedEngine()
    app = make_app(engine, _session((folder, "photo of zwx dog")), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        engine.held = {"prepare"}
        await pilot.click("#ds-prepare")
        await pilot.pause(0.2)
        yield app, pilot, screen, engine, folder


async def test_the_step_is_not_left_while_prepare_runs(tmp_path: Path, monkeypatch) -> None:
    """Left meanwhile, the copies were written and the concept went on with its originals, unsaid."""
    async with _preparing(tmp_path, monkeypatch, "E") as (app, pilot, screen, engine, folder):
        await pilot.press("ctrl+r")  # a check meanwhile: its end does not hide Prepare's progress
        await until(pilot, lambda: 0 in app.session.reports)
        assert screen.query_one("#ds-prepare-progress").display
        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        assert app.screen is screen
        assert _messages(app)[-1].startswith(f"Prepare is still making copies of {folder}: wait until it is done")
        assert _messages(app)[-1].endswith("Back or Next again leaves anyway, the concept on its own folder.")
        await pilot.click("#ds-prepare")
        await pilot.pause(0.2)
        assert _messages(app)[-1].startswith("Prepare is still making copies")
        engine.gate.set()
        await settle(pilot)
        assert app.session.get("concepts.0.instance_dir") == f"{folder}-prepared"
        assert not screen.query_one("#ds-prepare-progress").display
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"


async def test_a_second_back_leaves_while_prepare_hangs(tmp_path: Path, monkeypatch) -> None:
    """A Prepare that hung (a stalled network share) kept the step for good: only Ctrl+Q left it."""
    async with _preparing(tmp_path, monkeypatch, "H") as (app, pilot, screen, engine, folder):
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is screen
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is not screen and app.session.step == 1
        assert _messages(app)[-1] == (f"Left while Prepare ran: the concept keeps {folder}; the copies made so far "
                                      f"stay in {folder}-prepared.")
        engine.gate.set()
        await settle(pilot)
        assert app.session.get("concepts.0.instance_dir") == folder


async def test_what_escapes_prepare_does_not_keep_the_step(tmp_path: Path, monkeypatch) -> None:
    """Anything but an Exception left ``preparing`` set, and the step refused Next and Back for good."""
    class Escaped(BaseException):
        pass

    def escapes(profile, concept: int, emit=None):
        raise Escaped()

    monkeypatch.chdir(tmp_path)
    folder = _pictures(tmp_path, "X")
    engine = FakeEngine()
    engine.prepare_dataset = escapes
    app = make_app(engine, _session((folder, "photo of zwx dog")), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.click("#ds-prepare")
        await settle(pilot)
        assert screen.preparing is None and not screen.query_one("#ds-prepare-progress").display
        assert "Prepare stopped without a result (see the log)" in _messages(app)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not screen


async def test_next_goes_on_once_a_failed_recheck_was_said(tmp_path: Path, monkeypatch) -> None:
    """Each Next started another check of errors found before a caption edit, while that check kept failing."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "A"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "small.png")
    engine = FakeEngine()
    app = make_app(engine, _session((str(folder), "photo of zwx dog")), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.press("ctrl+r")
        await settle(pilot)
        app.session.reports.pop(0)  # as caption review drops it

        def unplugged(profile, concept, emit=None):
            raise OSError("the disk went away")

        engine.check_dataset = unplugged
        for _ in range(3):
            await pilot.press("ctrl+n")
            await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen" and screen is not app.screen
        said = _messages(app)
        assert sum(m.startswith("The last check found no usable images before the last changes: checking again")
                   for m in said) == 1
        assert said[-1] == "The check failed: the disk went away. Fix the folder, or Next again goes on anyway."
        assert said.count("the disk went away") == 1


async def test_a_token_result_of_another_concept_is_dropped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = GatedEngine()
    app = make_app(engine, _session((_pictures(tmp_path, "A"), "photo of abcdefg dog"),
                                    (_pictures(tmp_path, "B"), "photo of qqx cat")), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        engine.held = {"abcdefg"}
        select = screen.query_one("#ds-concept", Select)
        select.value = 1
        await settle(pilot)
        select.value = 0  # its token check waits
        await pilot.pause(0.2)
        select.value = 1
        await pilot.pause(0.2)
        engine.gate.set()
        await settle(pilot, 0.3)
        line = str(screen.query_one("#ds-tokens").render())
        assert line.startswith("Identifier 'qqx': one token"), line


async def test_captions_wait_for_prepare(tmp_path: Path, monkeypatch) -> None:
    """Opened while Prepare ran, caption review edited the originals' captions; Prepare's end then moved the concept
    to its copies, which never got those edits: training read the captions as they were, unsaid."""
    async with _preparing(tmp_path, monkeypatch, "E") as (app, pilot, screen, engine, folder):
        await pilot.press("ctrl+o")
        await pilot.pause(0.2)
        assert app.screen is screen
        assert _messages(app)[-1].startswith(f"Prepare is still making copies of {folder}: wait until it is done")
        assert "captions of the copies" in _messages(app)[-1]
        engine.gate.set()
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert type(app.screen).__name__ == "CaptionScreen" and app.screen.folder == f"{folder}-prepared"


async def test_prepared_copies_of_a_folder_with_a_dollar_are_named_as_the_profile_reads_them(tmp_path: Path,
                                                                                             monkeypatch) -> None:
    """The folder a$$b (written a$$$$b) was prepared into a$$b-prepared, put into the draft as read: the profile then
    read it as a$b-prepared, a folder that is not there, and the copies were never trained on."""
    monkeypatch.chdir(tmp_path)
    folder = _pictures(tmp_path, "a$$b")
    app = make_app(GatedEngine(), _session((folder.replace("$", "$$"), "photo of zwx dog")), image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.click("#ds-prepare")
        await settle(pilot)
        assert app.session.profile().concepts[0].instance_dir == f"{folder}-prepared"
        assert app.session.left_out[0][0] == app.session.get("concepts.0.instance_dir")  # its findings kept
        assert _messages(app)[-1].startswith(f"Prepared copies in {folder}-prepared;")


def test_where_copies_go_is_named_as_the_profile_reads_the_folder(tmp_path: Path, monkeypatch) -> None:
    """Left while Prepare ran, the copies of the folder a$$b (the draft writes it a$$$$b) were said to stay in
    a$$$$b-prepared, and those of "$DATA/x" in a folder "$DATA" of the working directory: neither is where they are."""
    from dbtui.screens.dataset_jobs import copies_of

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA", str(tmp_path))
    folder = _pictures(tmp_path, "a$$b")
    assert copies_of(folder.replace("$", "$$")) == f"{folder}-prepared"
    assert copies_of("$DATA/a$$$$b") == f"{folder}-prepared"
