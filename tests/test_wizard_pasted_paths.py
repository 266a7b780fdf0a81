"""A folder pasted or dragged into the dataset step is read as the folder it names: quoted, shell-escaped or as a
file:// URL it was refused as "is not a folder"; a picture given instead of its folder says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.pasted_path import pasted_path
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle


@pytest.mark.parametrize("pasted", ["'{}'", '"{}"', "escaped", "file://{}", "file://localhost{}", "  '{}' "])
def test_a_wrapped_path_is_the_path_it_wraps(pasted: str, tmp_path: Path) -> None:
    folder = tmp_path / "my pics"
    folder.mkdir()
    text = str(folder).replace(" ", "\\ ") if pasted == "escaped" else pasted.format(
        str(folder).replace(" ", "%20") if pasted.startswith("file") else folder)
    assert pasted_path(text) == str(folder)


@pytest.mark.parametrize("typed", ["/x/my pics", "/x/bob's pics", "builtin:demo-instance", "~/pics", "'a' 'b'",
                                   "file://server/share/pics", "/x/it's \\", "'/x/my pics'", "/x/my\\ pics",
                                   "C:\\Users\\me\\pics"])
def test_a_plain_path_is_left_as_typed(typed: str) -> None:
    """What unwraps to no existing path is left as typed: \\ and quotes may be the name's own (C:\\Users\\me)."""
    assert pasted_path(typed) == typed


@pytest.mark.parametrize("name", ["a\\b", "'quoted'", '"q"', "x\\ y"])
def test_a_path_that_exists_as_typed_is_never_unwrapped(name: str, tmp_path: Path, monkeypatch) -> None:
    """shlex read /tmp/a\\b as /tmp/ab, and a folder named 'quoted' (quotes included) as quoted."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).mkdir()
    (tmp_path / name.strip("'\"").replace("\\", "")).mkdir(exist_ok=True)  # the unwrapped one exists too
    assert pasted_path(f" {name} ") == name
    assert pasted_path(str(tmp_path / name)) == str(tmp_path / name)


@pytest.mark.parametrize("url, path", [("file:///x/a#b", "/x/a#b"), ("file:///x/a%23b%3F", "/x/a#b?"),
                                       ("file:///x/a?b#c", "/x/a?b#c"), ("FILE://LOCALHOST/x/%C3%A9", "/x/é")])
def test_a_file_url_keeps_its_hash_and_question_mark_as_part_of_the_name(url: str, path: str) -> None:
    assert pasted_path(url) == path


class RealCaptionsEngine(FakeEngine):
    """The fake engine with the real caption store: what it makes of the folder is the test."""

    def caption_store(self, folder: str, extension: str):
        return RealEngine().caption_store(folder, extension)


def _pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "my pics"
    folder.mkdir()
    Image.new("RGB", (64, 64), (90, 20, 20)).save(folder / "ok.png")
    return folder


@pytest.mark.parametrize("wrap", ["'{}'", '"{}"', "escaped", "file://{}"])
async def test_a_pasted_folder_is_checked_and_its_captions_open(wrap: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = _pictures(tmp_path)
    pasted = str(folder).replace(" ", "\\ ") if wrap == "escaped" else wrap.format(
        str(folder).replace(" ", "%20") if wrap.startswith("file") else folder)
    app = make_app(RealCaptionsEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-instance_dir", Input).value = pasted
        await settle(pilot)
        assert app.session.get("concepts.0.instance_dir") == str(folder)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert str(screen.query_one("#findings-summary").render()).startswith("1 images")
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert type(app.screen).__name__ == "CaptionScreen", [n.message for n in app._notifications]


async def test_a_picture_given_for_its_folder_is_called_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    picture = _pictures(tmp_path) / "ok.png"
    app = make_app(RealCaptionsEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-instance_dir", Input).value = f"'{picture}'"
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        [said] = [n.message for n in app._notifications if n.title == "Captions not opened"]
        assert said == f"{picture} is a file, not a folder: give the folder that holds it ({picture.parent})"
