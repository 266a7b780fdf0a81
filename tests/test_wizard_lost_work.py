"""Nothing a user did in the wizard is lost: an engine error inside a screen is a notification
(the app and its steps live on), and a save never replaces an existing file without asking."""

from __future__ import annotations

import shutil
from pathlib import Path

from dbtui.app import make_app
from dbtui.screens.captions import CaptionScreen
from dbtui.screens.parameters import ParametersScreen
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import settle, until

SIZE = (80, 24)


class RealCaptionsEngine(FakeEngine):
    def caption_store(self, folder: str, extension: str):
        from engine.dataset.captions import CaptionStore

        return CaptionStore(folder, extension)


def _messages(app) -> list[str]:
    return [notification.message for notification in app._notifications]


def _demo_images(tmp_path: Path, demo_data: Path) -> Path:
    """A copy of the demo images (with their captions) to edit."""
    return Path(shutil.copytree(demo_data / "instance", tmp_path / "images"))


async def _shown_caption_screen(app, pilot, images: Path, concept: int | None = None) -> CaptionScreen:
    """The caption screen of ``images`` (concept ``concept``'s) pushed over the app, on the app's engine, and shown."""
    screen = CaptionScreen(app.session, app.engine, str(images), concept)
    app.push_screen(screen)
    await pilot.pause()  # mounted: the captions are read in a worker it starts
    # The read ends before the first row's highlight reaches the screen: under load a test saw no image shown yet.
    await until(pilot, lambda: screen.job is None and screen.image is not None)
    return screen


async def test_undo_with_nothing_to_undo_keeps_the_app_and_says_so(tmp_path: Path, demo_data: Path) -> None:
    images = _demo_images(tmp_path, demo_data)
    engine = RealCaptionsEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _shown_caption_screen(app, pilot, images)
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()  # undo runs in a worker
        await pilot.pause()
        await pilot.click("#cap-undo")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen and app.is_running
        assert sum("nothing to undo" in message for message in _messages(app)) == 2
        screen.query_one("#cap-text").text = "zwx disc on grass"
        await pilot.press("ctrl+s")  # the screen still answers keys after the errors
        await pilot.pause()
        assert screen.store.read(screen.image) == "zwx disc on grass"


async def _parameters(pilot, app, engine) -> ParametersScreen:
    app.session.step = 3
    screen = ParametersScreen(app.session, engine)
    app.push_screen(screen)
    await pilot.pause()
    return screen


async def test_saving_over_an_existing_profile_asks_first(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = tmp_path / "profiles" / "tiny-demo.toml"
    shipped.parent.mkdir()
    shipped.write_text("# my notes\nname = \"tiny-demo\"\n", encoding="utf-8")
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.session.profiles_dir = Path("profiles")
        screen = await _parameters(pilot, app, engine)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert type(app.screen).__name__ == "OverwriteScreen"
        await pilot.press("escape")  # cancel: nothing written
        await pilot.pause()
        assert app.screen is screen and shipped.read_text(encoding="utf-8").startswith("# my notes")

        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("n")  # a new name beside it
        await pilot.pause()
        assert shipped.read_text(encoding="utf-8").startswith("# my notes")
        assert app.session.path == Path("profiles/tiny-demo-2.toml") and app.session.path.exists()

        await pilot.press("ctrl+s")  # the file this session wrote: saved again without asking
        await pilot.pause()
        assert app.screen is screen

        screen.query_one("#par-path").value = str(shipped)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("o")  # overwrite, chosen explicitly
        await pilot.pause()
        assert not shipped.read_text(encoding="utf-8").startswith("# my notes")
        assert Session.from_file(shipped).profile() == Session.for_demo().profile()


async def test_attach_then_back_opens_the_parameters_without_a_hardware_check(tmp_path: Path, monkeypatch) -> None:
    """The dashboard of an attached run has no hardware report behind it: going back must still
    show the parameters (its preset list with no choice), not end the app."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "tiny-demo"
    run.mkdir(parents=True)
    (run / "profile.toml").write_text('name = "attached"\n[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\n'
                                      'instance_dir = "builtin:demo-instance"\ninstance_prompt = "photo of zwx disc"\n')
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await settle(pilot)  # the runs are read in a worker; the list takes the keys once shown
        await pilot.press("enter")  # the first run in the list
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "TrainingScreen"
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "ParametersScreen" and app.is_running
        # Not the run's own profile.toml, which `dbtui resume` reads: a save goes to profiles/, named as the run is.
        assert app.screen.query_one("#par-path").value == str(Path("profiles") / "tiny-demo.toml")


async def _shown_training_screen(app, pilot, session: Session, engine: FakeEngine):
    """The training screen pushed, with its start or attach and its following done."""
    from dbtui.screens.training import TrainingScreen

    screen = TrainingScreen(session, engine)
    app.push_screen(screen)
    await settle(pilot, 0.2)
    return screen


async def test_a_run_that_cannot_start_says_so_and_takes_no_controls(tmp_path: Path, monkeypatch) -> None:
    """Its name holds a finished run: the screen says "not started" and what to do, for good, not "starting"."""
    from textual.widgets import Log

    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(finished_run=True)
    session = Session.for_demo()
    session.set("saving.output_dir", str(tmp_path / "runs"))  # a long path: its line is wider than the log
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _shown_training_screen(app, pilot, session, engine)
        assert "not started" in str(screen.query_one("#tr-phase").render())
        log = screen.query_one(Log)
        text = " ".join(line.strip() for line in log.lines)
        assert "holds a finished run, whose outputs are kept" in text and "give the run a new name" in text
        assert all(len(line) <= log.scrollable_content_region.width for line in log.lines)  # wrapped, not cut
        [said] = [n for n in app._notifications if n.title == "Not started"]  # the reason whole, which the log may scroll off
        assert "holds a finished run, whose outputs are kept. Go back (Esc)" in said.message and said.timeout == 60
        assert [button.id for button in screen.query("#tr-buttons Button") if button.is_on_screen] == ["tr-detach"]
        await pilot.press("s")
        await pilot.pause()
        assert not any(call[0] == "control" for call in engine.calls)
        await pilot.press("d")  # no run to detach from: it quit the wizard, its settings lost
        await pilot.pause()
        assert app.is_running and any("nothing to detach from" in n.message for n in app._notifications)


async def test_training_reached_with_profile_problems_says_not_started_and_takes_no_controls(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    session = Session.for_demo()
    session.set("training.max_train_steps", 0)
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _shown_training_screen(app, pilot, session, engine)
        assert "not started" in str(screen.query_one("#tr-phase").render())
        assert [button.id for button in screen.query("#tr-buttons Button") if button.is_on_screen] == ["tr-detach"]
        assert not any(call[0] == "start_run" for call in engine.calls)


def _resumed_run_events(finished: bool) -> list:
    from engine.events import RunFinished, RunStarted, StepEnded

    def started(resumed: int) -> RunStarted:
        return RunStarted(time=1.0, run_dir="runs/x", profile={}, hardware={}, versions={}, total_steps=120,
                          resumed_from_step=resumed)

    def step(n: int) -> StepEnded:
        return StepEnded(time=2.0, step=n, total_steps=120, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                         it_per_s=1.0, eta_s=1.0)

    events = [started(0), step(43), RunFinished(time=3.0, step=43, outputs={}, seconds=1.0, status="stopped"),
              started(43), step(60)]
    if finished:
        events += [step(120), RunFinished(time=4.0, step=120, outputs={"diffusers": "runs/x/outputs"}, seconds=2.0)]
    return events


async def test_a_resumed_run_is_controlled_and_shown_as_one_run(tmp_path: Path, monkeypatch) -> None:
    from textual.widgets import ProgressBar

    monkeypatch.chdir(tmp_path)
    for finished in (False, True):
        engine = FakeEngine(events=_resumed_run_events(finished))
        session = Session()
        session.run_folder = tmp_path / "runs" / "x"
        app = make_app(engine, session, image_renderer="none")
        async with app.run_test(size=SIZE) as pilot:
            screen = await _shown_training_screen(app, pilot, session, engine)
            await pilot.press("s")
            await pilot.pause()
            bar = screen.query_one("#tr-progress", ProgressBar)
            if finished:
                assert ("control", "stop") not in engine.calls
                assert bar.display and bar.percentage == 1.0
                assert "finished" in str(screen.query_one("#tr-phase").render())
            else:
                assert ("control", "stop") in engine.calls  # the resumed run answers s, c and p


async def test_the_fit_test_shows_its_progress_and_result_in_view_at_80x24(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _parameters(pilot, app, engine)
        status = screen.query_one("#par-fit-status")
        assert not status.display
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert "s/step" in str(status.render())
        region = status.region
        assert region.height >= 1 and 0 <= region.y and region.bottom <= SIZE[1]  # on the 80×24 screen
        assert app.screen is screen


def test_the_model_step_sets_the_models_own_resolution_for_the_doctor(tmp_path: Path, monkeypatch) -> None:
    """Checking a dataset before the parameters step judged image sizes at 512 px even for the
    64 px tiny model: the draft now takes the model's own size unless it names one."""
    from dbtui.engine_facade import ModelInfo

    session = Session()
    session.adopt_model(ModelInfo("builtin:tiny-sd1", "builtin", "tiny", "/x", resolution=64))
    assert session.get("dataset.resolution") == 64
    chosen = Session()
    chosen.set("dataset.resolution", 768)
    chosen.adopt_model(ModelInfo("m", "diffusers", "sd", "/m", resolution=512))
    assert chosen.get("dataset.resolution") == 768


def test_the_real_engine_knows_the_tiny_models_size(tiny_sd1: Path) -> None:
    from dbtui.engine_facade import RealEngine

    assert RealEngine().inspect_model("builtin:tiny-sd1").resolution == 64
    assert RealEngine().inspect_model(str(tiny_sd1)).resolution == 64


async def test_edited_captions_ask_for_the_caption_mode_and_one_caption_can_be_reverted(tmp_path: Path, demo_data: Path) -> None:
    images = _demo_images(tmp_path, demo_data)
    engine = RealCaptionsEngine()
    session = Session()
    session.set("concepts.0.instance_dir", str(images))
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _shown_caption_screen(app, pilot, images, concept=0)
        first = screen.store.read(screen.image)
        screen.query_one("#cap-text").text = "zwx disc, seen from above"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.store.read(screen.image) == "zwx disc, seen from above"
        await pilot.press("f2")  # one caption back to what the save replaced
        await pilot.pause()
        assert screen.store.read(screen.image) == first
        screen.query_one("#cap-text").text = "zwx disc, seen from below"  # reverted alone, it changed nothing to ask of
        await pilot.press("ctrl+s")
        await pilot.pause()

        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "CaptionModeScreen"
        await pilot.press("c")
        await pilot.pause()
        assert session.get("concepts.0.caption_mode") == "caption_file_then_prompt"
        assert app.screen is not screen and type(app.screen).__name__ != "CaptionModeScreen"


async def test_a_caption_that_is_not_utf8_is_marked_and_the_others_stay_editable(tmp_path: Path, demo_data: Path) -> None:
    images = _demo_images(tmp_path, demo_data)
    first, second = sorted(images.glob("*.png"))[:2]
    first.with_suffix(".txt").write_bytes(b"caf\xe9 zwx disc")  # Latin-1, as an old editor saves it
    engine = RealCaptionsEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _shown_caption_screen(app, pilot, images)
        assert app.screen is screen and screen.image == first
        assert "is not UTF-8 text" in str(screen.query_one("#cap-status").render())
        labels = [str(screen.query_one("#cap-images").get_option_at_index(i).prompt) for i in range(2)]
        assert "(unreadable)" in labels[0] and "(unreadable)" not in labels[1]
        await pilot.press("down")
        await pilot.pause()
        assert screen.image == second and screen.query_one("#cap-text").text == (screen.store.read(second) or "")


async def test_a_changed_caption_is_saved_when_the_user_moves_on_or_leaves(tmp_path: Path, demo_data: Path) -> None:
    images = _demo_images(tmp_path, demo_data)
    engine = RealCaptionsEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _shown_caption_screen(app, pilot, images)
        first = screen.image
        screen.query_one("#cap-text").text = "zwx disc, typed and never saved"
        await pilot.press("down")  # the list has focus: another image
        await pilot.pause()
        assert screen.image != first and screen.store.read(first) == "zwx disc, typed and never saved"
        assert any("Saved" in message for message in _messages(app))
        second = screen.image
        screen.query_one("#cap-text").text = "zwx disc, then Esc"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert str(screen.query_one("#cap-status").render()) == f"Saved {second.with_suffix('.txt').name}."  # not wiped
        screen.query_one("#cap-text").text = "zwx disc, edited again"
        await pilot.press("escape")
        await pilot.pause()
        assert screen.store.read(second) == "zwx disc, edited again"


async def test_after_a_run_has_ended_train_starts_the_run_the_form_now_describes(tmp_path: Path, monkeypatch) -> None:
    """It used to show the ended run again, whatever the form said."""
    from wizard_fakes import run_events

    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(events=run_events(4))
    session = Session.for_demo()
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _shown_training_screen(app, pilot, session, engine)
        assert screen.finished and [c for c in engine.calls if c[0] == "start_run"] == [("start_run", "tiny-demo")]
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "ParametersScreen" and session.run_folder is None
        session.set("name", "second-run")
        app.goto(4)
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        assert [c for c in engine.calls if c[0] == "start_run"] == [("start_run", "tiny-demo"), ("start_run", "second-run")]


async def test_detaching_from_a_failed_run_does_not_promise_outputs(tmp_path: Path, monkeypatch) -> None:
    from engine.events import RunFailed
    from wizard_fakes import run_events

    monkeypatch.chdir(tmp_path)
    engine = FakeEngine(events=[*run_events(4)[:3], RunFailed(time=3.0, reason="2 image file(s) cannot be read", advice="", step=1)])
    session = Session.for_demo()
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _shown_training_screen(app, pilot, session, engine)
        [failure] = [n for n in app._notifications if n.title == "Training failed"]
        assert failure.message == "2 image file(s) cannot be read" and failure.timeout >= 60  # the whole reason, for long
        said = []
        monkeypatch.setattr(app, "exit", lambda message=None, **_: said.append(message))
        await pilot.press("d")
        await pilot.pause()
    assert len(said) == 1 and "failed (not finished)" in said[0] and "outputs" not in said[0]


async def test_save_as_reads_home_and_refuses_a_folder_leaving_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "a-folder").mkdir()
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _parameters(pilot, app, engine)
        screen.query_one("#par-path").value = "~/p.toml"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (tmp_path / "home" / "p.toml").is_file() and not (tmp_path / "~").exists()
        screen.query_one("#par-path").value = str(tmp_path / "a-folder")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen and any("is a folder: give a file name" in m for m in _messages(app))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "home"]  # no .a-folder.tmp


def test_a_profile_save_that_fails_leaves_no_temporary_file(tmp_path: Path) -> None:
    import pytest

    from engine.profile import save_profile

    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save_profile(Session.for_demo().profile(), tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


async def test_quitting_with_a_live_run_says_where_it_goes_on(tmp_path: Path, monkeypatch) -> None:
    """Ctrl+Q left a running trainer without a word, where Detach says where the run goes on."""
    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.run_folder = tmp_path / "runs" / "person-v2"  # the fake engine lists it as running
    app = make_app(FakeEngine(), session, image_renderer="none")
    exits: list = []
    real_exit = app.exit
    monkeypatch.setattr(app, "exit", lambda *args, **kwargs: (exits.append(kwargs.get("message")), real_exit(*args, **kwargs)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
    [said] = exits
    assert f"the run goes on in {session.run_folder}" in said and f"dbtui stop {session.run_folder}" in said


async def test_a_typed_save_as_path_and_price_are_kept_after_going_back_and_returning(tmp_path: Path, monkeypatch) -> None:
    """Esc to the dataset step and back reset Save as to the offered path and emptied the price per hour."""
    from textual.widgets import Input

    from wizard_steps import at_step

    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        offered = screen.query_one("#par-path", Input).value
        screen.query_one("#par-path", Input).value = str(tmp_path / "mine.toml")
        screen.query_one("#par-price", Input).value = "0.79"
        await settle(pilot)
        app.goto(2)
        await settle(pilot)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        assert screen.query_one("#par-path", Input).value == str(tmp_path / "mine.toml")
        assert screen.query_one("#par-price", Input).value == "0.79"
        screen.query_one("#par-path", Input).value = offered  # typed back to the offered path: it follows the name again
        await settle(pilot)
        assert app.session.typed_save_as is None
