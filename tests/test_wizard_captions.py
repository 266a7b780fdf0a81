"""The caption screen keeps what the user has: the doctor's findings, typed text, original captions, and the UI
responsive while a bulk edit runs."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from textual.widgets import Input, OptionList, Static, TextArea

from dbtui.app import make_app
from dbtui.screens.caption_rows import CaptionRows
from dbtui.screens.captions import CaptionScreen
from dbtui.session import Session
from engine.dataset import captions
from engine.dataset.autocaption import AutocaptionResult
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle, until

SIZE = (80, 24)


class RealCaptionsEngine(FakeEngine):
    """The fake engine with the real caption files (history, undo journal, encodings)."""

    def caption_store(self, folder: str, extension: str):
        return captions.CaptionStore(folder, extension)


def _images(tmp_path: Path, demo_data: Path, name: str = "images") -> Path:
    return Path(shutil.copytree(demo_data / "instance", tmp_path / name))


def _status(screen) -> str:
    return str(screen.query_one("#cap-status", Static).render())


def _messages(app) -> list[str]:
    return [notification.message for notification in app._notifications]


async def _captions(app, pilot, images: Path, concept: int | None = None) -> CaptionScreen:
    screen = CaptionScreen(app.session, app.engine, str(images), concept)
    app.push_screen(screen)
    await pilot.pause()  # mounted: the captions are read in a worker it starts
    # The read ends before the first row's highlight reaches the screen (none where the folder holds no image).
    await until(pilot, lambda: screen.job is None
                and (screen.image is not None or not screen.query_one("#cap-images").option_count))
    return screen


async def test_closing_captions_unedited_keeps_the_findings_so_next_still_refuses_a_folder_of_no_usable_image(
        tmp_path: Path, demo_data: Path) -> None:
    """Esc from captions cleared every report, so Next went on with 0 usable images (Ctrl+R, Ctrl+O, Esc, Next)."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(demo_data / "instance" / "zwx_00.png", images / "small.png")  # the fake doctor: unusable
    session = Session.for_demo()
    session.set("concepts.0.instance_dir", str(images))
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        dataset = await at_step(app, pilot, 2, "DatasetScreen")
        for key in ("ctrl+r", "ctrl+o", "escape", "ctrl+n"):
            await pilot.press(key)
            await settle(pilot)
        assert app.screen is dataset and 0 in session.reports
        assert any("No usable images" in message for message in _messages(app))


async def test_an_edit_forgets_the_findings_of_the_concepts_of_this_folder_only(tmp_path: Path, demo_data: Path) -> None:
    mine, other = _images(tmp_path, demo_data), _images(tmp_path, demo_data, "other")
    session = Session.for_demo()
    session.set("concepts", [{"instance_dir": str(mine), "instance_prompt": "photo of zwx disc",
                              "caption_mode": "caption_file"},
                             {"instance_dir": str(other), "instance_prompt": "photo of zwx disc"}])
    session.reports.update({0: "findings of images", 1: "findings of other"})
    app = make_app(RealCaptionsEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, mine, concept=0)
        screen.query_one(TextArea).text = "zwx disc, edited"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen and session.reports == {1: "findings of other"}


async def test_a_caption_that_cannot_be_saved_keeps_its_text_its_image_and_the_screen(
        tmp_path: Path, demo_data: Path, monkeypatch) -> None:
    """The save failed, but the list moved on (or the screen closed) and the typed text was gone."""
    images = _images(tmp_path, demo_data)

    def refused(path, data) -> None:  # as a read-only folder answers a user (root writes anyway)
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(captions, "atomic_write_bytes", refused)
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        first = screen.image
        screen.query_one(TextArea).text = "zwx disc, my careful words"
        await pilot.press("down")  # the list has focus: moving on saves, which fails
        await pilot.pause()
        assert screen.image == first and screen.query_one(OptionList).highlighted == 0
        assert screen.query_one(TextArea).text == "zwx disc, my careful words"
        assert "Prepare" in _status(screen) and any("Prepare" in message for message in _messages(app))
        screen.query_one(TextArea).text = "zwx disc, my careful words, and more"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and screen.query_one(TextArea).text.endswith("and more")
        await pilot.press("escape")  # again: the user was told it goes without the text
        await pilot.pause()
        assert app.screen is not screen


async def test_f2_puts_back_a_latin1_caption_byte_for_byte(tmp_path: Path, demo_data: Path) -> None:
    images = _images(tmp_path, demo_data)
    first = sorted(images.glob("*.png"))[0]
    latin = "zwx café".encode("latin-1")
    first.with_suffix(".txt").write_bytes(latin)
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        assert screen.image == first and "typing one and saving writes it as UTF-8" in _status(screen)
        screen.query_one(TextArea).text = "zwx cafe"
        await pilot.press("ctrl+s", "f2")
        await pilot.pause()
        assert first.with_suffix(".txt").read_bytes() == latin
        assert "Reverted to the earlier version" in _status(screen)
        assert not [m for m in _messages(app) if "not reverted" in m or ".dbtui-captions-history" in m]


async def test_a_bulk_edit_runs_in_a_worker_and_says_what_it_skipped(tmp_path: Path, demo_data: Path,
                                                                    monkeypatch) -> None:
    """A bulk edit of 3,000 captions blocked the screen for half a minute, and said nothing of those it skipped."""
    import threading

    images = _images(tmp_path, demo_data)
    pictures = sorted(images.glob("*.png"))
    pictures[1].with_suffix(".txt").write_bytes(b"caf\xe9")  # unreadable: left alone, and said
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        release, real_add = threading.Event(), screen.store.add_tag
        monkeypatch.setattr(screen.store, "add_tag", lambda *args, **kwargs: release.wait(10) and real_add(*args, **kwargs))
        screen.query_one("#cap-tag", Input).value = "sks"
        await pilot.click("#cap-add")
        assert screen.job == "adding tag 'sks'" and screen.query_one("#cap-progress").display
        assert screen.query_one(TextArea).read_only  # nobody types into a caption the edit is rewriting
        screen.query_one(OptionList).focus()
        await pilot.press("down")  # the screen answers meanwhile
        await pilot.pause()
        assert screen.image == pictures[1]
        await pilot.press("up")
        await pilot.pause()
        release.set()
        await settle(pilot)
        assert screen.job is None and not screen.query_one("#cap-progress").display
        said = _messages(app)[-1]
        assert f"{len(pictures) - 1} caption(s) changed" in said and "1 left as they were" in said
        assert "is not UTF-8 text" in said
        assert screen.query_one(TextArea).text.startswith("sks, ")  # the editor shows the edited caption
        assert "sks ×" in str(screen.query_one("#cap-tags", Static).render())
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "caption(s) changed" in _messages(app)[-1] and not screen.query_one(TextArea).text.startswith("sks")


async def test_auto_caption_finishing_keeps_what_the_user_typed_meanwhile(tmp_path: Path, demo_data: Path) -> None:
    import threading

    images = _images(tmp_path, demo_data)
    release = threading.Event()

    class SlowCaptioner(RealCaptionsEngine):
        def autocaption(self, folder: str, extension: str, emit=None) -> AutocaptionResult:
            release.wait(10)
            store = self.caption_store(folder, extension)
            for image in store.images():
                store.write(image, "a photo of a thing")
            return AutocaptionResult(tuple(str(store.path_for(image)) for image in store.images()), (), ())

    app = make_app(SlowCaptioner(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        await pilot.click("#cap-auto")
        await pilot.pause()
        screen.query_one(TextArea).text = "zwx disc, my own words"
        release.set()
        await settle(pilot)
        assert screen.query_one(TextArea).text == "zwx disc, my own words"
        assert "Your typing is kept" in _status(screen)
        await pilot.press("escape")
        await pilot.pause()
        assert screen.store.read(screen.image) == "zwx disc, my own words"


async def test_auto_caption_says_the_captions_it_kept_and_the_images_it_could_not_caption(
        tmp_path: Path, demo_data: Path) -> None:
    """It said only how many it wrote: captions kept (one saved while it ran) and unreadable images went unsaid."""
    images = _images(tmp_path, demo_data)

    class PartCaptioner(RealCaptionsEngine):
        def autocaption(self, folder: str, extension: str, emit=None) -> AutocaptionResult:
            return AutocaptionResult(("a.txt", "b.txt"), ("c.png",), (("d.png", "cannot be read"), ("e.png", "empty")))

    app = make_app(PartCaptioner(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await _captions(app, pilot, images)
        await pilot.click("#cap-auto")
        await settle(pilot)
        said = _messages(app)[-1]
        assert said.startswith("Auto-caption wrote 2 caption(s); 1 kept as they were (written before it, or while it ran)")
        assert "2 not captioned: d.png: cannot be read (and 1 more)" in said
        assert [notification.severity for notification in app._notifications][-1] == "warning"


async def test_a_save_updates_its_row_and_the_tag_counts_without_reading_every_caption(
        tmp_path: Path, demo_data: Path, monkeypatch) -> None:
    images = _images(tmp_path, demo_data)
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        reads = []
        real_read = screen.store.read
        monkeypatch.setattr(screen.store, "read", lambda image: reads.append(image) or real_read(image))
        screen.query_one(TextArea).text = "zwx disc, brandnew"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert reads == [screen.image]  # its own file alone, to see whether it holds that caption already
        assert "brandnew ×1" in str(screen.query_one("#cap-tags", Static).render())


async def test_at_the_smallest_terminal_the_editor_and_a_wrapped_status_show(tmp_path: Path, demo_data: Path) -> None:
    """At 40x10 the preview's minimum height took every row and clipped the editor away."""
    images = _images(tmp_path, demo_data)
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=(40, 10)) as pilot:
        screen = await _captions(app, pilot, images)
        editor = screen.query_one(TextArea).region
        assert editor.height >= 2 and screen.query_one("#cap-main").region.contains_region(editor)
        screen.query_one("#cap-status", Static).update("word " * 30)
        await pilot.pause()
        assert screen.query_one("#cap-status").region.height >= 2


async def test_remove_tag_says_which_captions_still_say_it_not_that_it_left_them(tmp_path: Path, demo_data: Path) -> None:
    """A caption it changed was counted as "left as they were" when a longer tag still said the word."""
    images = _images(tmp_path, demo_data)
    pictures = sorted(images.glob("*.png"))
    pictures[0].with_suffix(".txt").write_text("a photo of sks disc, sks\n")
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        screen.query_one("#cap-tag", Input).value = "sks"
        await pilot.click("#cap-remove")
        await settle(pilot)
        said = _messages(app)[-1]
        assert "1 caption(s) changed" in said and "left as they were" not in said
        assert "1 still say it inside a longer tag" in said
        assert pictures[0].with_suffix(".txt").read_text() == "a photo of sks disc\n"


async def test_a_save_updates_the_row_of_the_image_that_shares_its_caption_file(tmp_path: Path, demo_data: Path) -> None:
    """zwx_00.jpg and zwx_00.png share zwx_00.txt: saving one left the other's row showing the old caption."""
    from PIL import Image

    images = _images(tmp_path, demo_data)
    png = sorted(images.glob("*.png"))[0]
    png.with_suffix(".txt").unlink(missing_ok=True)
    Image.open(png).convert("RGB").save(png.with_suffix(".jpg"))
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        assert screen.image == png.with_suffix(".jpg")
        screen.query_one(TextArea).text = "zwx disc, brandnew"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.rows.get(png) == ("zwx disc, brandnew", "")
        assert "(none)" not in str(screen.query_one(OptionList).get_option_at_index(1).prompt)
        # The shared caption counts once, as --frequency counts it (the tags said brandnew ×2).
        assert "brandnew ×1" in str(screen.query_one("#cap-tags", Static).render())
        assert screen.rows.top_tags(8) == captions.CaptionStore(images).tag_frequency()[:8]
        assert CaptionRows.read(screen.store, screen.images).top_tags(8) == screen.rows.top_tags(8)


async def test_add_tag_says_the_captions_it_created_and_the_file_that_is_no_picture(tmp_path: Path, demo_data: Path) -> None:
    """The notice said "6 caption(s) changed" when one of them was created, and a caption was made beside an empty file."""
    images = _images(tmp_path, demo_data)
    pictures = sorted(images.glob("*.png"))
    pictures[0].with_suffix(".txt").unlink()
    (images / "empty.png").write_bytes(b"")
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        screen.query_one("#cap-tag", Input).value = "sks"
        await pilot.click("#cap-add")
        await settle(pilot)
        said = _messages(app)[-1]
        assert f"{len(pictures) - 1} caption(s) changed, 1 created for images that had none (Ctrl+R undoes)" in said
        assert "1 not created: " in said and "empty.png' is not an image" in said and "left as they were" not in said
        assert not (images / "empty.txt").exists()


async def test_a_caption_named_but_for_case_is_said_in_the_review_and_add_tag_leaves_it(tmp_path: Path,
                                                                                        demo_data: Path) -> None:
    """photo.jpg with photo.TXT showed "(none)", and Add tag created photo.txt beside it, hiding the user's text."""
    images = _images(tmp_path, demo_data)
    first = sorted(images.glob("*.png"))[0]
    first.with_suffix(".txt").rename(first.with_suffix(".TXT"))
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        assert screen.image == first and screen.rows.label(first).markup == f"{first.name} [yellow](misnamed)[/yellow]"
        status = " ".join(_status(screen).split())
        assert status.startswith(f"Caption misnamed: Its caption file is named {first.stem}.TXT, not {first.stem}.txt")
        screen.query_one("#cap-tag", Input).value = "sks"
        await pilot.click("#cap-add")
        await settle(pilot)
        said = _messages(app)[-1]
        assert "0 created" not in said and "1 not created: " in said and f"{first.stem}.TXT' differs from" in said
        assert not first.with_suffix(".txt").exists()


async def test_a_caption_linked_to_another_is_saved_through_the_link_and_said_to_be_shared(
        tmp_path: Path, demo_data: Path) -> None:
    """zwx_01.txt -> zwx_00.txt: saving zwx_01's caption replaced the link with a plain file, so the two images no
    longer shared it, and nothing said that the caption was zwx_00's too."""
    images = _images(tmp_path, demo_data)
    (images / "zwx_01.txt").unlink()
    (images / "zwx_01.txt").symlink_to("zwx_00.txt")
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await _captions(app, pilot, images)
        assert screen.image == images / "zwx_00.png" and "Shared with zwx_01.png" in _status(screen)
        await pilot.press("down")
        await pilot.pause()
        assert screen.image == images / "zwx_01.png" and "Shared with zwx_00.png" in _status(screen)
        screen.query_one(TextArea).text = "zwx disc, shared words"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert os.readlink(images / "zwx_01.txt") == "zwx_00.txt"
        assert (images / "zwx_00.txt").read_text(encoding="utf-8") == "zwx disc, shared words\n"
        assert screen.rows.get(images / "zwx_00.png")[0] == "zwx disc, shared words"
        assert "Shared with zwx_00.png" in _status(screen) and "Saved zwx_00.txt" in _status(screen)
        assert ("zwx disc ×1" in str(screen.query_one("#cap-tags", Static).render()))  # one file, counted once


async def test_an_image_name_with_a_newline_is_one_line_in_the_list_and_its_caption_saves_beside_it(
        tmp_path: Path, demo_data: Path) -> None:
    """new⏎line.png showed as two images, 'new' and 'line.png (none)'."""
    images = _images(tmp_path, demo_data)
    odd = images / "new\nline.png"
    shutil.copy(sorted(images.glob("*.png"))[0], odd)
    app = make_app(RealCaptionsEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _captions(app, pilot, images)
        index = screen.images.index(odd)
        label = str(screen.query_one(OptionList).get_option_at_index(index).prompt)
        assert "\n" not in label and label.startswith("new\\x0aline.png")
        screen.query_one(OptionList).highlighted = index
        await pilot.pause()
        screen.query_one(TextArea).text = "zwx disc, odd name"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (images / "new\nline.txt").read_text(encoding="utf-8").strip() == "zwx disc, odd name"
        assert "\n" not in _status(screen) and "Saved new\\x0aline.txt." in _status(screen)
