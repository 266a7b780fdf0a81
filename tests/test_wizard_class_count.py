"""The dataset step's Class images field (concepts.N.num_class_images): a wizard profile with prior preservation made
the schema's default of each concept without a word, and the wizard had no way to set it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from PIL import Image
from textual.widgets import Input, Select, Static

from dbtui.app import make_app
from dbtui.session import Session
from engine.profile.schema import ConceptSection
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)
DEFAULT = ConceptSection.model_fields["num_class_images"].default


def _folder(tmp_path: Path, name: str, count: int) -> str:
    folder = tmp_path / name
    folder.mkdir()
    for index in range(count):
        Image.new("RGB", (64, 64), (90, 20, index)).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text("zwx")
    return str(folder)


def _two_concepts(tmp_path: Path) -> Session:
    """A new user's two concepts with prior preservation, each with its class prompt and folder (the first's has 3)."""
    session = Session.for_demo()
    session.set("prior.enabled", True)
    session.set("concepts", [
        {"instance_dir": _folder(tmp_path, f"{name}s", 2), "instance_prompt": f"photo of zwx {name}",
         "class_prompt": f"photo of a {name}", "class_dir": str(tmp_path / f"{name}-class")}
        for name in ("dog", "cat")])
    (tmp_path / "dog-class").mkdir()
    for index in range(3):
        Image.new("RGB", (64, 64)).save(tmp_path / "dog-class" / f"{index}.png")
    return session


def _field(screen) -> Input:
    return screen.query_one("#ds-num_class_images", Input)


def _counts(screen) -> str:
    return str(screen.query_one("#ds-class-count", Static).render())


async def _choose(pilot, screen, index: int) -> None:
    screen.query_one("#ds-concept", Select).value = index
    await settle(pilot)


async def test_the_field_shows_the_default_and_the_check_counts_what_is_in_the_class_folder(tmp_path: Path,
                                                                                            monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), _two_concepts(tmp_path), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        field = _field(screen)
        assert field.value == "" and field.placeholder == str(DEFAULT)  # the profile's default, said
        assert _counts(screen) == "wanted: Check (^r) counts the class folder"
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert _counts(screen) == f"wanted: 3 in the class folder, {DEFAULT - 3} to generate"
        field.value = "5"
        await settle(pilot)
        assert app.session.get("concepts.0.num_class_images") == 5
        assert 0 not in app.session.reports  # the check counted another number
        assert _counts(screen) == "wanted: Check (^r) counts the class folder"
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert _counts(screen) == "wanted: 3 in the class folder, 2 to generate"
        # Not cut off at 80 columns: the label, the number and the counts all lie on the screen.
        for widget in (screen.query_one("#ds-class-images Label"), field, screen.query_one("#ds-class-count", Static)):
            assert widget.region.width > 0 and widget.region.right <= SIZE[0]
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        assert any("Class images" in line and "5" in line and "2 to generate" in line for line in lines), lines


async def test_each_concept_keeps_its_number_through_switching_add_remove_and_the_steps(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), _two_concepts(tmp_path), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        _field(screen).value = "30"
        await settle(pilot)
        await _choose(pilot, screen, 1)
        assert _field(screen).value == ""  # the second concept's own: not the first's
        _field(screen).value = "50"
        await settle(pilot)
        await _choose(pilot, screen, 0)
        assert _field(screen).value == "30"
        await pilot.click("#ds-add")
        await settle(pilot)
        assert _field(screen).value == ""
        await pilot.click("#ds-remove")  # the new one
        await settle(pilot)
        await _choose(pilot, screen, 0)
        await pilot.click("#ds-remove")  # the first: the second moves up, with its number
        await settle(pilot)
        assert _field(screen).value == "50"
        assert [c.get("num_class_images") for c in app.session.get("concepts")] == [50]
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen"
        await pilot.press("escape")
        await settle(pilot)
        assert _field(app.screen).value == "50"


async def test_the_numbers_are_saved_and_opened_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), _two_concepts(tmp_path), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        _field(screen).value = "12"
        await settle(pilot)
        await _choose(pilot, screen, 1)
        _field(screen).value = "40"
        await settle(pilot)
        saved = app.session.save(tmp_path / "two.toml")
    assert [c["num_class_images"] for c in tomllib.loads(saved.read_text())["concepts"]] == [12, 40]
    app = make_app(FakeEngine(), Session.from_file(saved), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        assert _field(screen).value == "12"
        await _choose(pilot, screen, 1)
        assert _field(screen).value == "40"


async def test_a_number_out_of_the_schema_limits_is_the_profile_problem(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app = make_app(engine, _two_concepts(tmp_path), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        _field(screen).value = "0"
        await settle(pilot)
        assert _counts(screen) == "✗ prior preservation needs at least 1 class image"
        await pilot.press("ctrl+r")  # refused, as for any problem of the draft
        await settle(pilot)
        assert ("check_dataset", 0) not in engine.calls
        assert "concepts.0.num_class_images: prior preservation needs at least 1 class image" in (
            list(app._notifications)[-1].message)
        _field(screen).value = "100001"
        await settle(pilot)
        assert _counts(screen) == "✗ must be at most 100000, not 100001"
        app.session.set("prior.enabled", False)  # 0 is no problem without prior preservation
        _field(screen).value = "0"
        await settle(pilot)
        assert _counts(screen) == "used with prior preservation, which is off (Parameters)"


async def test_the_counts_are_the_real_checks_as_dataset_check_prints_them(tmp_path: Path, monkeypatch,
                                                                          tiny_sd1) -> None:
    """The demo's class folder holds 8: the line gives the counts of the check `dbtui dataset check --profile` runs."""
    from dbtui.engine_facade import RealEngine

    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.set("prior.enabled", True)
    app = make_app(RealEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        _field(screen).value = "11"
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.session.reports[0].summary.class_images_present == 8
        assert _counts(screen) == "wanted: 8 in the class folder, 3 to generate"


async def test_the_counts_go_when_the_class_folder_or_prompt_they_counted_change(tmp_path: Path, monkeypatch) -> None:
    """Another class folder typed after Ctrl+R: the line still said '3 in the class folder' of the folder before."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), _two_concepts(tmp_path), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        for key, value in (("class_prompt", "photo of a wolf"), ("class_dir", str(tmp_path / "elsewhere"))):
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert _counts(screen) == f"wanted: 3 in the class folder, {DEFAULT - 3} to generate"
            screen.query_one(f"#ds-{key}", Input).value = value
            await settle(pilot)
            assert _counts(screen) == "wanted: Check (^r) counts the class folder", key
