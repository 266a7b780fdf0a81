"""What a new user types wrong in the wizard is said once and clearly, never a crash, and nothing is written
where the user did not ask: bad folders for captions and Prepare, failed checks, a NUL in a file name."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from textual.widgets import Input, Static

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.events import CheckpointSaved, StepEnded
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)


class RealFolderEngine(FakeEngine):
    """The fake engine, with the real caption store and Prepare: what they make of a folder is the test."""

    def caption_store(self, folder: str, extension: str):
        return RealEngine().caption_store(folder, extension)

    def prepare_dataset(self, profile, concept: int, emit=None):
        return RealEngine().prepare_dataset(profile, concept, emit=emit)


def _messages(app) -> list[str]:
    return [notification.message for notification in app._notifications]


async def _model_step(app, pilot):
    return await at_step(app, pilot, 1, "ModelScreen")


async def _check_model(pilot, screen, source: str) -> None:
    """``source`` typed on the model step and checked (Enter), the check done."""
    screen.query_one("#model-source", Input).value = source
    await pilot.press("enter")
    await settle(pilot)


def _failing_checks(engine, said: str) -> None:
    """Every model check of ``engine`` fails, saying ``said`` after the source."""
    def check(source):
        raise ValueError(f"{source}{said}")

    engine.inspect_model = check


async def _dataset_step(app, pilot, folder: str):
    screen = await at_step(app, pilot, 2, "DatasetScreen")
    screen.query_one("#ds-instance_dir", Input).value = folder
    await settle(pilot)
    return screen


async def test_captions_of_a_folder_that_cannot_be_listed_are_a_notification(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file.png").write_bytes(b"not a folder")
    app = make_app(RealFolderEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        # One app for every folder: a refused one leaves the step as it was, and each is told once, by its own name.
        for folder in ("missing", "a-file.png", "builtin:nope"):
            told = {id(n) for n in app._notifications}
            screen.query_one("#ds-instance_dir", Input).value = folder
            await settle(pilot)
            await pilot.press("ctrl+o")
            await settle(pilot)
            assert app.is_running and app.screen is screen, folder
            [notification] = [n for n in app._notifications if n.title == "Captions not opened" and id(n) not in told]
            assert folder in notification.message


async def test_prepare_of_a_home_relative_folder_writes_beside_it_not_into_a_folder_named_tilde(
        tmp_path: Path, demo_data: Path, monkeypatch) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    shutil.copytree(demo_data / "instance", home / "pics")
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    app = make_app(RealFolderEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dataset_step(app, pilot, "~/pics")
        await pilot.click("#ds-prepare")
        await settle(pilot, 0.3)
        assert app.session.get("concepts.0.instance_dir") == str(home / "pics-prepared")
        assert len(list((home / "pics-prepared").glob("*.png"))) == 6
        assert list(work.iterdir()) == []  # no "./~"
        assert screen.query_one("#ds-instance_dir", Input).value == str(home / "pics-prepared")


async def test_prepare_of_the_working_folder_writes_beside_it(tmp_path: Path, demo_data: Path, monkeypatch) -> None:
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "pics"))
    monkeypatch.chdir(images)
    app = make_app(RealFolderEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _dataset_step(app, pilot, ".")
        await pilot.click("#ds-prepare")
        await settle(pilot, 0.3)
        assert app.is_running
        assert app.session.get("concepts.0.instance_dir") == str(tmp_path / "pics-prepared")


async def test_prepare_with_no_usable_image_keeps_the_concept_on_its_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(RealFolderEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        # One app for both folders: neither prepare changes the concept's folder, and each says its own words.
        for contents in ("nothing", "broken images"):
            told = {id(n) for n in app._notifications}
            folder = tmp_path / contents.replace(" ", "-")
            folder.mkdir()
            if contents == "broken images":
                for name in ("a.png", "b.jpg"):
                    (folder / name).write_bytes(b"\x89PNG not really")
            screen.query_one("#ds-instance_dir", Input).value = str(folder)
            await settle(pilot)
            await pilot.click("#ds-prepare")
            await settle(pilot, 0.3)
            assert app.session.get("concepts.0.instance_dir") == str(folder)
            said = " ".join(n.message for n in app._notifications if id(n) not in told)
            if contents == "nothing":
                assert "no images in" in said and not folder.with_name(f"{folder.name}-prepared").exists()
            else:
                assert "2 image(s) could not be prepared" in said and "still uses its own folder" in said
            assert not any("now uses them" in message for message in _messages(app))


async def _prepare_in_the_wizard(images: Path) -> str:
    """What the wizard says after Prepare on the demo's dataset step with ``images``."""
    app = make_app(RealFolderEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _dataset_step(app, pilot, str(images))
        await pilot.click("#ds-prepare")
        await settle(pilot, 0.3)
        return " ".join(_messages(app))


async def test_prepare_keeps_a_file_of_the_users_in_the_prepared_folder_and_says_so(tmp_path: Path, demo_data: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "pics"))
    mine = tmp_path / "pics-prepared" / sorted(images.glob("*.png"))[0].name
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own file")
    said = await _prepare_in_the_wizard(images)
    assert "1 image(s) not prepared" in said and "holds files of the same names that dbtui did not make" in said
    assert mine.read_bytes() == b"the user's own file"


async def test_prepare_says_how_many_captions_it_set_aside_and_where(tmp_path: Path, demo_data: Path,
                                                                      monkeypatch) -> None:
    """The originals' captions gone since an earlier prepare: the notice said nothing of the captions moved away."""
    from engine.dataset import prepare_dataset

    monkeypatch.chdir(tmp_path)
    images = Path(shutil.copytree(demo_data / "instance", tmp_path / "pics"))
    prepare_dataset(images, tmp_path / "pics-prepared", resolution=64, workers=1)
    captions = sorted(images.glob("*.txt"))
    for caption in captions:
        caption.unlink()
    said = await _prepare_in_the_wizard(images)
    aside = next((tmp_path / "pics-prepared" / ".dbtui-captions-history").glob("removed-*"))
    assert f"{len(captions)} caption(s) whose original is gone were moved to {aside}" in said
    assert len(list(aside.glob("*.txt"))) == len(captions) > 0


async def test_a_failed_dataset_check_is_said_once_on_next_and_said_once_when_it_fails(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(RealFolderEngine(), Session.for_demo(), image_renderer="none")
    engine = app.engine

    def broken(profile, concept, emit=None):
        raise OSError("the disk went away")

    engine.check_dataset = broken
    async with app.run_test(size=SIZE) as pilot:
        screen = await _dataset_step(app, pilot, str(tmp_path))
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert sum("the disk went away" in message for message in _messages(app)) == 1  # one toast per failure
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        assert any(message.startswith("The check failed: the disk went away") for message in _messages(app))
        await pilot.press("ctrl+n")  # told once: Next again goes on
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"


async def test_a_failed_model_check_stops_next_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _model_step(app, pilot)
        _failing_checks(engine, ": unknown built-in")
        await _check_model(pilot, screen, "builtin:nope")
        assert sum("builtin:nope: unknown built-in" in message for message in _messages(app)) == 1
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        assert any(message.startswith("The model check failed: builtin:nope: unknown built-in") for message in _messages(app))
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "DatasetScreen"


async def test_a_model_typed_but_not_checked_is_checked_on_next_not_dropped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _model_step(app, pilot)
        screen.query_one("#model-source", Input).value = "builtin:tiny-sdxl"  # no Enter
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen and app.session.get("model.pretrained") == "builtin:tiny-sdxl"
        assert any("Checking builtin:tiny-sdxl first" in message for message in _messages(app))
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "DatasetScreen"
        assert app.session.get("model.pretrained") == "builtin:tiny-sdxl"


async def test_a_nul_character_in_the_save_as_name_is_a_notification(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-path", Input).value = "p\x00q.toml"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.is_running
        assert any("a path cannot hold a NUL character" in message for message in _messages(app))
        assert list(tmp_path.iterdir()) == []


async def test_the_problem_count_shows_first_and_the_panel_alone_holds_every_problem_at_80x24(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_step(app, pilot, 3, "ParametersScreen")
        session = app.session
        session.set("name", "my run")
        session.set("training.max_train_steps", -5)
        session.set("dataset.resolution", 33)
        session.set("optimizer.learning_rate", "abc")
        app.screen._validate()
        await settle(pilot)
        panel = app.screen.query_one("#par-problems", Static)
        assert str(panel.render()).startswith("✗ 4 problems to fix")  # the count is never what is cut off
        assert app.screen.query_one("#par-problems-box").region.height == 6  # its limit at 80x24: the rest scrolls
        assert all(key in str(panel.render()) for key in ("name", "max_train_steps", "resolution", "learning_rate"))
        assert panel.tooltip is None  # it repeated the panel, which scrolls to what it does not show
        await pilot.press("ctrl+n")  # and Next lists every one, for a keyboard that cannot hover
        await settle(pilot)
        [said] = [message for message in _messages(app) if message.startswith("Fix these first:")]
        assert all(key in said for key in ("name", "max_train_steps", "resolution", "learning_rate"))


async def test_checkpoints_replayed_when_a_run_is_followed_again_are_logged_not_notified(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    old = time.time() - 3600
    engine.events = [StepEnded(step=10, total_steps=50, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0,
                               eta_s=None, time=old),
                     CheckpointSaved(step=10, path="runs/tiny-demo/checkpoints/step-10", time=old),
                     # saved while followed (the fake replays all at once): news
                     CheckpointSaved(step=20, path="runs/tiny-demo/checkpoints/step-20", time=time.time() + 60)]
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.session.run_folder = tmp_path / "runs" / "tiny-demo"
        app.goto(4)
        await settle(pilot, 0.3)
        checkpoints = [message for message in _messages(app) if message.startswith("Checkpoint saved")]
        assert checkpoints == ["Checkpoint saved at step 20"]


async def test_a_run_that_crashed_seconds_before_it_is_opened_pops_no_checkpoint_notices(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    """Opened a few seconds after its trainer died, a run's last checkpoints popped up as news beside "The trainer
    process is gone": the slack for a run the wizard launches itself was given to every run opened."""
    monkeypatch.chdir(tmp_path)

    class Crashed(FakeEngine):
        def run_status(self, folder: Path) -> str:
            return "crashed"

    engine = Crashed()
    engine.events = [CheckpointSaved(step=10, path="runs/tiny-demo/checkpoints/step-10", time=time.time() - 3)]
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        app.session.run_folder = tmp_path / "runs" / "tiny-demo"
        app.goto(4)
        await settle(pilot, 0.3)
        assert not [message for message in _messages(app) if message.startswith("Checkpoint saved")]
        assert any(message.startswith("The trainer process is gone") for message in _messages(app))


async def test_attach_with_no_folder_says_what_to_type_and_reads_home_and_variables(tmp_path: Path, monkeypatch) -> None:
    from dbtui.screens.attach import AttachScreen

    monkeypatch.setenv("HOME", str(tmp_path))
    engine = FakeEngine()
    asked = []
    engine.list_runs = lambda output_dir, on_skip=None: asked.append(output_dir) or []
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = AttachScreen(engine, "")
        app.push_screen(screen)
        await settle(pilot)
        assert "Type the folder that holds your run folders" in str(screen.query_one("#attach-note", Static).render())
        assert asked == []
        field = screen.query_one("#attach-dir", Input)
        field.value = "~/runs"
        field.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert asked == [str(tmp_path / "runs")]
        assert str(screen.query_one("#attach-note", Static).render()) == f"no runs in {tmp_path / 'runs'}/"
        monkeypatch.setenv("RUNS", str(tmp_path / "elsewhere"))
        monkeypatch.delenv("NOT_SET_HERE", raising=False)
        for typed in ("$RUNS", "$NOT_SET_HERE/runs"):
            field.value = typed
            await pilot.press("enter")
            await settle(pilot)
        assert asked == [str(tmp_path / "runs"), str(tmp_path / "elsewhere")]  # an unset variable lists nothing
        assert "names the environment variable $NOT_SET_HERE, which is not set here" in str(
            screen.query_one("#attach-note", Static).render())


async def test_a_run_attached_under_a_folder_with_a_dollar_keeps_that_folder(tmp_path: Path, monkeypatch) -> None:
    """A run in runs$HOME_LIKE/r1 (where $HOME_LIKE is set) put its parent folder into the draft as read: the draft read
    it as $HOME_LIKE's folder, so Train after Esc started a new run there instead of offering to resume this one."""
    monkeypatch.setenv("HOME_LIKE", str(tmp_path / "elsewhere"))
    run = tmp_path / "runs$HOME_LIKE" / "r1"
    run.mkdir(parents=True)
    Session.for_demo().save(run / "profile.toml")
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen._attached(run)
        await settle(pilot)
        assert app.session.run_folder == run
        assert app.session.profile().saving.output_dir == str(run.parent)


async def test_square_brackets_in_captions_file_names_and_paths_show_as_typed_never_crash(
        tmp_path: Path, demo_data: Path, monkeypatch) -> None:
    """Textual read them as markup: a caption holding "[/]" or a Save as path with it crashed the wizard (its draft
    lost), and "dog [v2].png" showed as "dog .png"."""
    from textual.content import Content
    from textual.widgets import OptionList

    monkeypatch.chdir(tmp_path)
    images = tmp_path / "imgs"
    images.mkdir()
    source = sorted((demo_data / "instance").glob("*.png"))[0]
    shutil.copy(source, images / "dog [v2].png")
    (images / "dog [v2].txt").write_text("photo of zwx disc, [/], [b]bold\n", encoding="utf-8")
    app = make_app(RealFolderEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _dataset_step(app, pilot, str(images))
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert app.is_running and type(app.screen).__name__ == "CaptionScreen"
        tags = str(app.screen.query_one("#cap-tags", Static).render())
        assert "[/]" in tags and "[b]bold" in tags
        option = app.screen.query_one("#cap-images", OptionList).get_option_at_index(0)
        assert isinstance(option.prompt, Content) and option.prompt.plain == "dog [v2].png"  # as the list shows it
        app.notify("a [/] caption")  # every notification is plain text, whoever sends it
        await pilot.pause(0.2)
        assert app.is_running

        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-path", Input).value = "profiles/old[/]new.toml"
        await pilot.press("ctrl+s")
        await settle(pilot, 0.3)
        assert app.is_running
        assert (tmp_path / "profiles" / "old[" / "]new.toml").is_file()
        assert any("Saved profiles/old[/]new.toml" in message for message in _messages(app))


async def test_a_failed_model_check_forgets_the_model_checked_before_and_convert_cannot_convert_it(
        tmp_path: Path, monkeypatch) -> None:
    """After a single file checked fine, a failed check of another left its Convert and "The profile will use":
    Convert then converted the old file and put the old model back in the profile."""
    from textual.widgets import Button

    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _model_step(app, pilot)
        await _check_model(pilot, screen, "old-model.safetensors")  # the fake's single file
        assert screen.query_one("#model-convert-row").display
        _failing_checks(engine, ": no such file")
        await _check_model(pilot, screen, "new-model.safetensors")
        assert not screen.query_one("#model-convert-row").display
        assert str(screen.query_one("#model-folder", Static).render()) == ""
        screen.query_one("#model-convert", Button).press()
        await settle(pilot)
        assert app.session.get("model.pretrained") == "new-model.safetensors"
        assert not any(call[0] == "import_model" for call in engine.calls)
