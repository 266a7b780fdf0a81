"""A Save as or Open path the file system refuses to look at (a name over 255 bytes, a folder the user may not enter)
is a notification, not a crash: pathlib answers False only for a path that is missing, and raises for these."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle, until

SIZE = (80, 24)
TOO_LONG = "x" * 300 + ".toml"


def _errors(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


async def _open_refused(tmp_path: Path, monkeypatch, *paths: str) -> list[str]:
    """The errors the Open screen shows for ``paths``, entered in turn on one screen (each refusal one more error),
    asserted to stay open with the wizard running."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await settle(pilot)
        for count, path in enumerate(paths, start=1):
            app.screen.query_one("#open-path", Input).value = path
            await pilot.press("enter")
            await settle(pilot)
            assert app.is_running and type(app.screen).__name__ == "OpenProfileScreen"
            assert len(_errors(app)) == count, _errors(app)
        return _errors(app)


async def test_a_folder_the_user_may_not_enter_is_said_on_save(tmp_path: Path, monkeypatch) -> None:
    """As an ordinary user saving into another user's home: stat() answers EACCES (root cannot be refused, so the
    refusal is the file system's stand-in here)."""
    monkeypatch.chdir(tmp_path)
    private = tmp_path / "private"
    stat = Path.stat

    def refused(path: Path, *args, **kwargs):
        if private in path.parents:
            raise PermissionError(13, "Permission denied", str(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", refused)

    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-path", Input).value = str(private / "p.toml")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.is_running
        assert _errors(app) == [f"Cannot use {private / 'p.toml'}: Permission denied; give another path"]


def test_a_free_name_one_byte_too_long_is_offered_for_the_save_to_refuse(tmp_path: Path) -> None:
    """Beside a 254-byte name, name-2.toml is 256 bytes: looking for it raised inside the Overwrite dialog."""
    from dbtui.screens.overwrite import free_name

    taken = tmp_path / ("x" * 249 + ".toml")
    taken.write_text("")
    assert free_name(taken) == tmp_path / ("x" * 249 + "-2.toml")


async def test_a_failed_save_names_the_file_asked_for_and_what_is_wrong_with_its_folder(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    """It said "Cannot write blocker: File exists", and "Cannot write /proc/.p.toml.tmp" (save_profile's temporary file)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("mine")
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        for typed in ("blocker/p.toml", "/proc/p.toml"):
            screen.query_one("#par-path", Input).value = typed
            await pilot.press("ctrl+s")
            await settle(pilot)
        blocked, proc = _errors(app)
        assert blocked.startswith("Cannot write blocker/p.toml: ") and "'blocker' is a file, not a folder" in blocked
        assert proc.startswith("Cannot write /proc/p.toml: ") and ".tmp" not in proc


def test_a_path_too_long_to_write_blames_the_name_not_the_folder(tmp_path: Path) -> None:
    """It read "cannot use the folder …: the path is too long for the file system; use a shorter the Save as path"."""
    import errno

    from dbtui.save_failure import save_failure
    from engine.runs.folder import unusable_folder

    path = tmp_path / ("a" * 250 + ".toml")
    said = save_failure(path, OSError(errno.ENAMETOOLONG, "File name too long", str(path)))
    assert said == f"Cannot write {path}: the file system takes no file name or path this long; give a shorter one"
    worded = str(unusable_folder(tmp_path, OSError(errno.ENAMETOOLONG, "File name too long"), "the Save as path"))
    assert worded.endswith("set the Save as path to a shorter one")


async def test_an_open_path_dragged_in_quoted_or_escaped_opens_the_profile(tmp_path: Path, monkeypatch) -> None:
    """A file dragged onto the terminal arrives quoted or shell-escaped; it was told '… is not a file'."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "my profiles"
    folder.mkdir()
    profile = folder / "dog run.toml"
    profile.write_text((Path(__file__).parents[1] / "profiles" / "tiny-demo.toml").read_text(encoding="utf-8"),
                       encoding="utf-8")
    for pasted in (f"'{profile}'", str(profile).replace(" ", "\\ "), f"file://{str(profile).replace(' ', '%20')}"):
        app = make_app(FakeEngine(), Session(), image_renderer="none")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("o")
            await settle(pilot)
            app.screen.query_one("#open-path", Input).value = pasted
            await pilot.press("enter")
            await settle(pilot)
            assert _errors(app) == []
            assert app.session.path == profile and type(app.screen).__name__ != "OpenProfileScreen"


NO_USER = "~nosuchuser/p.toml starts with '~nosuchuser', which names no user here; write the path out"


async def test_a_save_as_name_too_long_or_of_no_user_here_is_said_the_wizard_goes_on_and_the_draft_is_kept(
        tmp_path: Path, monkeypatch) -> None:
    """'~nosuchuser/p.toml' in Save as ended the wizard with pathlib's "Could not determine home directory.", the
    draft unsaved and lost; the command line refuses it so (75b85aa2 and after), and the wizard now does too. (One app
    saves both paths in turn: each refusal is one more error, the wizard still on Parameters.)"""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        said = [f"Cannot use {TOO_LONG}: File name too long; give another path", NO_USER]
        for count, typed in enumerate((TOO_LONG, "~nosuchuser/p.toml"), start=1):
            screen.query_one("#par-path", Input).value = typed
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert app.is_running and type(app.screen).__name__ == "ParametersScreen"
            assert _errors(app) == said[:count]
    assert list(tmp_path.iterdir()) == []


async def test_an_open_path_too_long_or_of_no_user_here_is_said_and_the_open_screen_stays(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    assert await _open_refused(tmp_path, monkeypatch, TOO_LONG, "~nosuchuser/p.toml") == [
        f"Cannot open {TOO_LONG}: File name too long", NO_USER]


async def test_a_model_of_no_user_here_is_said_in_words_on_the_model_step(tmp_path: Path, monkeypatch) -> None:
    """The check said "✗ Could not determine home directory." of '~nosuchuser/model'."""
    from textual.widgets import Static

    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        await until(pilot, lambda: screen.checking is None)
        screen.query_one("#model-source", Input).value = "~nosuchuser/model"
        screen.action_check()
        await settle(pilot)
        said = " ".join(str(screen.query_one("#model-family", Static).render()).split())
        assert said == "✗ ~nosuchuser/model starts with '~nosuchuser', which names no user here; write the path out"
