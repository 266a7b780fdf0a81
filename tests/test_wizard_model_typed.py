"""What a new user types on the Model step is what the profile gets: an emptied field, a path with a stray space or
a ``~``, a file or folder that is no model, and a family switched after Parameters were set."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)


def _messages(app) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_an_emptied_model_field_is_refused_not_replaced_by_the_model_checked_before(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")

        def check(source):
            raise ValueError(f"unknown built-in model {source!r}")

        engine.inspect_model = check
        screen.query_one("#model-source", Input).value = "builtin:tiny-sd3"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+n")  # the failed check is said once
        await settle(pilot)
        screen.query_one("#model-source", Input).value = ""
        for _ in range(2):
            await pilot.press("ctrl+n")
            await settle(pilot)
            assert app.screen is screen
        assert any(message.startswith("Name the base model") for message in _messages(app))


async def test_check_on_an_emptied_model_field_puts_away_the_check_of_the_model_before(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    """Check on the emptied field did nothing: the ✓ and "The profile will use: builtin:tiny-sd1" stayed beside it."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        family, folder = screen.query_one("#model-family", Static), screen.query_one("#model-folder", Static)
        assert str(family.render()).startswith("✓") and "builtin:tiny-sd1" in str(folder.render())
        screen.query_one("#model-source", Input).value = ""
        await pilot.click("#model-check")
        await settle(pilot)
        assert str(family.render()).startswith("✗ Name the base model")
        assert str(folder.render()) == ""
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen
        app.goto(0)  # the draft kept the model checked before, which the step shows again
        await settle(pilot)
        screen = await at_step(app, pilot, 1, "ModelScreen")
        assert screen.query_one("#model-source", Input).value == "builtin:tiny-sd1"
        assert str(screen.query_one("#model-family", Static).render()).startswith("✓")


class _HeldCheckEngine(FakeEngine):
    """Its check of the SDXL folder waits for ``answer``: a hub model's check downloads its config meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()

    def inspect_model(self, source: str):
        if source == "models/sdxl-base":
            self.answer.wait(10)
        return super().inspect_model(source)


async def test_a_check_answered_after_the_field_was_emptied_shows_no_tick(tmp_path: Path, monkeypatch) -> None:
    """Check on the emptied field while the model typed before was still being checked: that check's answer then put
    "✓ diffusers folder: Stable Diffusion XL" and "The profile will use: models/sdxl-base" beside the empty field."""
    monkeypatch.chdir(tmp_path)
    engine = _HeldCheckEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        field, family = screen.query_one("#model-source", Input), screen.query_one("#model-family", Static)
        field.value = "models/sdxl-base"
        await pilot.click("#model-check")
        field.value = ""
        await pilot.click("#model-check")
        engine.answer.set()
        await settle(pilot, 0.5)
        assert field.value == "" and app.session.model_info.source == "models/sdxl-base"
        assert str(family.render()).startswith("✗ Name the base model"), family.render()
        assert str(screen.query_one("#model-folder", Static).render()) == ""


async def test_caption_review_of_an_empty_folder_says_it_holds_no_images(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        screen.query_one("#ds-instance_dir", Input).value = str(tmp_path / "empty")
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert type(app.screen).__name__ == "CaptionScreen"
        status = str(app.screen.query_one("#cap-status", Static).render())
        assert "This folder holds no images" in status and "Dataset step" in status


@pytest.mark.parametrize("wrap", ["'{}'", '"{}"', "file://{}"])
async def test_a_pasted_quoted_model_folder_is_checked_as_the_folder_not_passed_as_a_hub_id(wrap: str, tmp_path: Path,
                                                                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "my model"
    folder.mkdir()
    engine = FakeEngine()
    engine.inspect_model = lambda source, **parts: RealEngine().inspect_model(source, **parts)
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        screen.query_one("#model-source", Input).value = wrap.format(folder)
        await pilot.press("enter")
        await settle(pilot)
        assert app.session.get("model.pretrained") == str(folder)
        assert "not a diffusers model" in str(screen.query_one("#model-family", Static).render())
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen


async def test_a_hub_page_address_is_refused_with_its_hub_id_not_passed_as_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    engine.inspect_model = lambda source, **parts: RealEngine().inspect_model(source, **parts)
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        screen.query_one("#model-source", Input).value = "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0"
        await pilot.press("enter")
        await settle(pilot)
        said = str(screen.query_one("#model-family", Static).render()).replace("\n", " ")
        assert "✗" in said and "give its hub id, stabilityai/stable-diffusion-xl-base-1.0" in said
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is screen


async def test_the_flux_preset_on_a_flux_model_sets_nothing_aside(tmp_path: Path, monkeypatch) -> None:
    """It put clip_skip = 1, the default, which the Flux rules set aside at once: "Set aside ... clip_skip = 1" on
    applying the preset made for this model."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        screen.query_one("#model-source", Input).value = "models/flux"
        await pilot.press("enter")
        await settle(pilot)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-preset", Select).value = "flux-lora-16gb"
        screen.action_apply_preset()
        await settle(pilot)
        assert app.session.get("model.quantize") == "nf4"
        assert [n.message for n in app._notifications if n.title == "Set aside"] == []


def test_a_set_aside_value_at_its_default_is_not_said_and_one_off_it_is() -> None:
    from dbtui.field_rules import aside_note

    session = Session.for_demo()
    session.aside = {"training.clip_skip": 1, "optimizer.lr_warmup_steps": 0, "model.quantize": "nf4",
                     "training.flow": {"guidance": 1.0}}
    assert aside_note(session, {"training.clip_skip", "optimizer.lr_warmup_steps"}) is None
    note = aside_note(session, set(session.aside))
    assert note is not None and "model.quantize = 'nf4'" in note and "training.flow" in note and "clip_skip" not in note


async def test_a_single_file_named_with_a_tilde_is_read_as_the_profile_reads_it(tmp_path: Path, monkeypatch) -> None:
    """It said "~/tiny.safetensors: no such file" while a folder named with ``~`` was found."""
    from engine.builtin import resolve_model
    from engine.convert import export_single_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    export_single_file(resolve_model("builtin:tiny-sd1"), tmp_path / "tiny.safetensors")
    engine = FakeEngine()
    engine.inspect_model = lambda source, **parts: RealEngine().inspect_model(source, **parts)
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        screen.query_one("#model-source", Input).value = "~/tiny.safetensors"
        await pilot.press("enter")
        await settle(pilot)
        assert str(screen.query_one("#model-family", Static).render()).startswith("✓ single file: Stable Diffusion 1.x")


async def test_a_single_file_named_with_a_variable_converts_from_where_it_is(tmp_path: Path, monkeypatch) -> None:
    """$MODELS/tiny.safetensors showed ✓ and offered Convert, which failed: "No such file or directory:
    '$MODELS/tiny.safetensors'", the converter being given the name as typed."""
    from textual.widgets import Button

    from engine.builtin import resolve_model
    from engine.convert import export_single_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBTUI_TEST_MODELS", str(tmp_path / "files"))
    export_single_file(resolve_model("builtin:tiny-sd1"), tmp_path / "files" / "tiny.safetensors")
    engine, real, given = FakeEngine(), RealEngine(), []
    engine.inspect_model = lambda source, **parts: real.inspect_model(source, **parts)
    engine.conversion_target = lambda source, **asked: real.conversion_target(source, **asked)
    engine.import_model = real.import_model

    def import_model(source: str | Path, out_dir: Path, emit=None, **flux) -> Path:
        given.append(str(source))
        Path(source).stat()  # as the converter first does (the tiny file itself is no full checkpoint to convert)
        return out_dir

    monkeypatch.setattr("engine.model_import.import_model", import_model)
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        screen.query_one("#model-source", Input).value = "$DBTUI_TEST_MODELS/tiny.safetensors"
        await pilot.press("enter")
        await settle(pilot)
        assert str(screen.query_one("#model-family", Static).render()).startswith("✓ single file")
        screen.query_one("#model-convert", Button).press()
        await settle(pilot)
        assert given == [str(tmp_path / "files" / "tiny.safetensors")], _messages(app)
        assert not any("No such file" in message for message in _messages(app)), _messages(app)


@pytest.mark.parametrize(("page", "said"), [("https://huggingface.co/datasets/o/n", "is a dataset's page"),
                                            ("https://hf.co/spaces/o/n", "is a Space's (an app's) page")])
def test_a_dataset_or_space_page_is_said_to_be_no_model(page: str, said: str) -> None:
    """It was told to give the hub id 'datasets/o', which names no model."""
    family = RealEngine().inspect_model(page).family
    assert said in family and "not a model's" in family and "give its hub id" not in family


def test_a_link_to_a_hub_models_config_is_told_its_hub_id_not_to_download_the_file() -> None:
    """It was told to download model_index.json alone, no model to train."""
    family = RealEngine().inspect_model("https://huggingface.co/o/n/resolve/main/model_index.json").family
    assert "give its hub id, o/n" in family and "hf download" not in family


async def test_the_model_step_names_the_model_as_the_profile_stores_it(tmp_path: Path, monkeypatch) -> None:
    """builtin:tiny-sd1 checked, the step said 'The profile will use: /root/.cache/dbtui/models/tiny-sd1', a folder the
    profile never names: it stores builtin:tiny-sd1, and says so now."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")  # the fake keeps it in /cache/tiny-sd1
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        screen.query_one("#model-source", Input).value = "builtin:tiny-sd1"
        await pilot.press("enter")
        await settle(pilot)
        assert str(screen.query_one("#model-folder", Static).render()) == "The profile will use: builtin:tiny-sd1"
        assert app.session.get("model.pretrained") == "builtin:tiny-sd1"
