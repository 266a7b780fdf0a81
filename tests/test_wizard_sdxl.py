"""The wizard knows model families: the model step names the family it found, the parameters
screen shows only what applies (family and method), the session takes the model's native size,
and the wizard trains builtin:tiny-sdxl by keyboard on the real engine."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Select, Static, Switch

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.runs.folder import RunFolder
from wizard_fakes import FakeEngine
from wizard_steps import settle

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def at_a_new_profiles_model_step(pilot) -> None:
    """From the start screen: a new profile (n), then its model step."""
    await pilot.press("n")
    await settle(pilot)
    pilot.app.goto(1)
    await settle(pilot)


async def check_model(pilot, source: str) -> None:
    """Replace the model field's text by typing, then Enter: the step checks it."""
    await pilot.press("end", "ctrl+u", *source, "enter")
    await settle(pilot)


# -- the model step ------------------------------------------------------------------------

async def test_the_model_step_names_each_family_and_refuses_what_it_cannot_train() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        screen = app.screen
        assert "✓ Hugging Face hub id" in text_of(screen, "#model-family")
        # A hub id's size is not read yet: its name's family's, which the draft takes.
        assert text_of(screen, "#model-family").splitlines()[1] == ("Likely made for 512 px images (by its name): the "
                                                                    "dataset step checks yours at that size.")

        trainable = {
            "builtin:tiny-sd1": ("✓ built-in tiny Stable Diffusion 1.x", "Made for 64 px"),
            "models/sd21": ("✓ diffusers folder: Stable Diffusion 2.x, v-prediction", "Made for 768 px"),
            "models/sdxl-base": ("✓ diffusers folder: Stable Diffusion XL", "Made for 1024 px"),
            "photo.safetensors": ("✓ single file: Stable Diffusion 1.x", "Made for 512 px"),
            "models/flux": ("✓ diffusers folder: Flux.1", "Made for 1024 px"),
        }
        for source, (family, size) in trainable.items():
            await check_model(pilot, source)
            shown = text_of(screen, "#model-family")
            assert family in shown and size in shown, shown
            assert app.session.family_id in ("sd", "sdxl", "flux")
        assert app.session.family_id == "flux"

        for source, words in {"models/sdxl-refiner": "✗ diffusers folder: the Stable Diffusion XL refiner",
                              "models/sd3": "✗ diffusers folder: a StableDiffusion3Pipeline"}.items():
            await check_model(pilot, source)
            assert words in text_of(screen, "#model-family")
            assert text_of(screen, "#model-folder") == ""  # no "the profile will use" for a refused model
            assert app.session.family_id is None
            await pilot.press("ctrl+n")  # refused: the step says why and stays
            await settle(pilot)
            assert app.screen is screen


async def test_a_late_check_of_a_replaced_source_is_ignored() -> None:
    from dbtui.messages import WorkDone

    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, "models/sdxl-base")
        app.screen.post_message(WorkDone("inspect", engine.inspect_model("builtin:tiny-sd1")))  # the slow old check
        await settle(pilot)
        assert app.session.family_id == "sdxl"
        assert "Stable Diffusion XL" in text_of(app.screen, "#model-family")


# -- the parameters step -------------------------------------------------------------------

def visible(screen, selector: str) -> bool:
    return all(getattr(node, "display", True) for node in screen.query_one(selector).ancestors_with_self)


async def parameters_for(pilot, model: str) -> None:
    app = pilot.app
    session = Session.for_demo()
    session.set("model.pretrained", model)
    session.adopt_model(FakeEngine().inspect_model(model))
    app._started(session)
    await settle(pilot)
    app.goto(3)
    await settle(pilot)
    for section in ("training", "training--lora"):
        app.screen.query_one(f"#sec-{section}").collapsed = False  # advanced rows are built when opened
    await settle(pilot, 0.3)


async def test_parameters_show_lora_and_text_encoder_fields_only_when_they_apply() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await parameters_for(pilot, "builtin:tiny-sd1")
        screen, session = app.screen, app.session
        assert session.get("training.method") == "full"
        assert not visible(screen, "#sec-training--lora")  # a full fine-tune has no LoRA options
        assert not visible(screen, "#row-f-training--text_encoder_stop_fraction")  # the text encoder is frozen
        assert visible(screen, "#row-f-training--clip_skip")

        screen.query_one("#f-training--method", Select).value = "lora"
        await settle(pilot)
        assert visible(screen, "#sec-training--lora") and visible(screen, "#row-f-training--lora--rank")
        assert not visible(screen, "#row-f-training--lora--text_encoder_targets")
        screen.query_one("#f-training--lora--rank", Input).value = "32"
        await settle(pilot)

        screen.query_one("#f-training--train_text_encoder", Switch).value = True
        await settle(pilot)
        assert visible(screen, "#row-f-training--lora--text_encoder_targets")
        assert visible(screen, "#row-f-training--text_encoder_stop_fraction")
        screen.query_one("#f-training--text_encoder_stop_fraction", Input).value = "0.5"
        await settle(pilot)

        # Switching a part off sets its values aside: no hidden problem blocks the run...
        screen.query_one("#f-training--train_text_encoder", Switch).value = False
        await settle(pilot)
        assert not visible(screen, "#row-f-training--text_encoder_stop_fraction")
        assert session.get("training.text_encoder_stop_fraction") is None
        screen.query_one("#f-training--method", Select).value = "full"
        await settle(pilot)
        assert not visible(screen, "#sec-training--lora")
        assert session.get("training.lora") is None
        assert "valid" in text_of(screen, "#par-problems")
        profile = session.profile()
        assert profile.training.method == "full" and profile.training.lora is None

        # ...and switching it on again brings them back.
        screen.query_one("#f-training--method", Select).value = "lora"
        screen.query_one("#f-training--train_text_encoder", Switch).value = True
        await settle(pilot)
        assert session.get("training.lora.rank") == 32
        assert session.get("training.text_encoder_stop_fraction") == 0.5
        assert screen.query_one("#f-training--lora--rank", Input).value == "32"


async def test_the_forms_values_are_shown_again_without_a_query_per_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """ProfileForm.refresh_values (after a preset, or a switch that moves values) queried the form once per field, each
    query matching every widget against that field's id: ~0.2 s of CPU each time. It walks the widgets once."""
    import textual.css.query

    from dbtui.widgets.profile_form import ProfileForm

    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await parameters_for(pilot, "builtin:tiny-sd1")
        form = app.screen.query_one(ProfileForm)
        app.session.set("training.max_train_steps", 7)
        app.session.set("training.lora.rank", 12)
        matched = []
        match = textual.css.query.match
        monkeypatch.setattr(textual.css.query, "match", lambda *args: matched.append(args) or match(*args))
        form.refresh_values()
        monkeypatch.undo()
        assert matched == []
        assert app.screen.query_one("#f-training--max_train_steps", Input).value == "7"
        assert app.screen.query_one("#f-training--lora--rank", Input).value == "12"  # a row built, though not shown


async def test_a_preset_switches_fields_on_and_off_too() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await parameters_for(pilot, "builtin:tiny-sd1")
        screen = app.screen
        screen.query_one("#par-preset", Select).value = "lora"
        screen.query_one("#par-apply", Button).press()
        await settle(pilot)
        assert visible(screen, "#sec-training--lora")
        assert screen.query_one("#f-training--lora--rank", Input).value == "16"
        screen.query_one("#par-preset", Select).value = "full"
        screen.query_one("#par-apply", Button).press()
        await settle(pilot)
        assert not visible(screen, "#sec-training--lora")
        assert "valid" in text_of(screen, "#par-problems")


async def test_a_hidden_field_with_a_problem_is_shown() -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        session = Session.for_demo()
        session.set("training.lora.rank", 4)  # with method = "full": an error to fix
        app._started(session)
        await settle(pilot)
        app.goto(3)
        await settle(pilot)
        assert "training.lora" in text_of(app.screen, "#par-problems")
        assert visible(app.screen, "#sec-training--lora")


def help_of(screen, key: str) -> str:
    row = screen.query_one(f"#row-f-{key.replace('.', '--')}")
    siblings = list(row.parent.children)
    return str(siblings[siblings.index(row) + 1].render())


@pytest.mark.parametrize(("model", "words", "resolution"), [
    ("builtin:tiny-sd1", "Also train the text encoder", "made for 64 px"),
    ("models/sdxl-base", "Also train both text encoders", "made for 1024 px"),
])
async def test_help_speaks_of_the_models_family(model: str, words: str, resolution: str) -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await parameters_for(pilot, model)
        screen = app.screen
        assert words in help_of(screen, "training.train_text_encoder")
        assert resolution in help_of(screen, "dataset.resolution")
        clip_skip = help_of(screen, "training.clip_skip")
        assert ("SDXL's own (the penultimate)" in clip_skip) == (model == "models/sdxl-base")


# -- the session -----------------------------------------------------------------------------

def configs_only_folder(root: Path, name: str, index: dict, parts: dict[str, dict]) -> Path:
    """A diffusers folder with configs and no weights: all that describing a model reads."""
    folder = root / name
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    for part, config in parts.items():
        file = folder / part
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(config), encoding="utf-8")
    return folder


SDXL_INDEX = {"_class_name": "StableDiffusionXLPipeline", "text_encoder": ["transformers", "CLIPTextModel"],
              "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}
SDXL_SIZE = {"unet/config.json": {"sample_size": 128}, "vae/config.json": {"block_out_channels": [128, 256, 512, 512]}}


def test_an_sdxl_folder_whose_configs_say_1024_sets_1024(tmp_path: Path) -> None:
    # Every part the index lists is there: one missing is said instead (tests/test_model_folder_parts.py).
    encoders = {f"{part}/{name}": {} for part in ("text_encoder", "text_encoder_2")
                for name in ("config.json", "model.safetensors")}
    folder = configs_only_folder(tmp_path, "sdxl", SDXL_INDEX, {**SDXL_SIZE, **encoders})
    info = RealEngine().inspect_model(str(folder))
    assert (info.family, info.family_id, info.supported, info.resolution) == (
        "diffusers folder: Stable Diffusion XL", "sdxl", True, 1024)
    session = Session()
    session.set("model.pretrained", str(folder))
    session.adopt_model(info)
    assert session.get("dataset.resolution") == 1024 and session.family_id == "sdxl"


def test_builtin_tiny_sdxl_sets_64(tiny_sdxl: Path) -> None:
    info = RealEngine().inspect_model("builtin:tiny-sdxl")
    assert info.family == "built-in tiny Stable Diffusion XL with random weights"
    session = Session()
    session.set("model.pretrained", "builtin:tiny-sdxl")
    session.adopt_model(info)
    assert session.get("dataset.resolution") == 64 and session.family_id == "sdxl"


def test_an_sdxl_single_file_is_named_and_sets_1024(tiny_sdxl: Path, tmp_path: Path) -> None:
    from engine.convert import export_single_file

    file = export_single_file(tiny_sdxl, tmp_path / "mine.safetensors")
    info = RealEngine().inspect_model(str(file))
    assert info.family.startswith("single file: Stable Diffusion XL") and info.folder is None
    assert (info.supported, info.family_id, info.resolution) == (True, "sdxl", 1024)


async def test_the_dataset_step_checks_images_for_a_single_file_model(tiny_sdxl: Path, tmp_path: Path) -> None:
    """A .safetensors model holds no tokenizer: the dataset step's check failed ("no CLIP tokenizer found …: give a
    diffusers model folder"), though its run converts it with the CLIP tokenizer shipped with dbtui, which now judges
    the identifier and the captions."""
    from PIL import Image

    from engine.convert import export_single_file
    from wizard_steps import at_step

    (tmp_path / "photos").mkdir()
    for index, size in enumerate([(96, 96), (128, 80)]):
        Image.new("RGB", size, (index * 90, 40, 200)).save(tmp_path / "photos" / f"{index}.png")
    session = Session()
    session.set("model.pretrained", str(export_single_file(tiny_sdxl, tmp_path / "mine.safetensors")))
    session.data["concepts"] = [{"instance_dir": str(tmp_path / "photos"), "instance_prompt": "photo of zwx person"}]
    app = make_app(RealEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert text_of(screen, "#findings-summary").startswith("2 images, 2 usable"), text_of(screen, "#findings-summary")
        assert text_of(screen, "#ds-tokens").startswith("Identifier 'zwx': splits into 2 tokens")


def test_a_size_taken_from_one_model_follows_the_next_but_a_chosen_one_stays() -> None:
    engine = FakeEngine()
    session = Session()
    session.adopt_model(engine.inspect_model("photo.safetensors"))
    assert session.get("dataset.resolution") == 512
    session.adopt_model(engine.inspect_model("models/sdxl-base"))
    assert session.get("dataset.resolution") == 1024
    session.set("dataset.resolution", 768)  # the user's choice
    session.adopt_model(engine.inspect_model("photo.safetensors"))
    assert session.get("dataset.resolution") == 768
    assert session.family_id is None  # the draft still names another model


def test_clearing_a_sections_last_value_removes_the_section() -> None:
    session = Session.for_demo()
    session.set("training.lora.rank", 4)
    session.set("training.lora.rank", None)
    assert session.get("training.lora") is None and session.get("training.method") == "full"
    assert session.profile().training.lora is None  # so "LoRA options are set" is not an error


def test_the_engine_names_sd1_sd2_and_the_families_it_refuses(tmp_path: Path) -> None:
    sd_index = {"_class_name": "StableDiffusionPipeline"}
    sd1 = configs_only_folder(tmp_path, "sd1", sd_index, {"text_encoder/config.json": {"hidden_act": "quick_gelu"}})
    sd2v = configs_only_folder(tmp_path, "sd2v", sd_index, {
        "text_encoder/config.json": {"hidden_act": "gelu"},
        "scheduler/scheduler_config.json": {"prediction_type": "v_prediction"}})
    refiner = configs_only_folder(tmp_path, "refiner", {**SDXL_INDEX, "text_encoder": [None, None],
                                                        "_class_name": "StableDiffusionXLImg2ImgPipeline"}, {})
    flux = configs_only_folder(tmp_path, "flux", {"_class_name": "FluxPipeline"}, {})
    sd3 = configs_only_folder(tmp_path, "sd3", {"_class_name": "StableDiffusion3Pipeline"}, {})
    engine = RealEngine()
    described = {name: engine.inspect_model(str(folder)) for name, folder in
                 {"sd1": sd1, "sd2v": sd2v, "refiner": refiner, "flux": flux, "sd3": sd3}.items()}
    assert described["sd1"].family == "diffusers folder: Stable Diffusion 1.x"
    assert described["sd2v"].family == "diffusers folder: Stable Diffusion 2.x, v-prediction"
    assert described["sd1"].family_id == described["sd2v"].family_id == "sd"
    assert "Stable Diffusion XL refiner" in described["refiner"].family  # with what to use instead
    assert "use the SDXL base model" in described["refiner"].family
    assert described["flux"].family == "diffusers folder: Flux.1" and described["flux"].family_id == "flux"
    assert described["flux"].supported
    assert "StableDiffusion3Pipeline, which dbtui does not train" in described["sd3"].family
    for name in ("refiner", "sd3"):
        assert not described[name].supported and described[name].family_id is None


# -- a real tiny-SDXL run, by keyboard -------------------------------------------------------

async def through_the_dataset_step(pilot):
    """From the model step, on past the dataset step (the demo's concept as it is) to the parameters step."""
    await pilot.press("ctrl+n")
    await pilot.pause()
    await pilot.press("ctrl+n")
    await pilot.pause()
    params = pilot.app.screen
    assert type(params).__name__ == "ParametersScreen"
    return params


async def until(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    await pilot.pause()


@pytest.mark.slow
async def test_the_wizard_trains_tiny_sdxl_by_keyboard(tiny_sd1, tiny_sdxl, demo_data) -> None:
    app = make_app(RealEngine(), Session(), image_renderer="halfcell")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")  # the demo: its images, prompts and CPU settings
        await until(pilot, lambda: app.session.hardware is not None, 120, "the hardware probe")
        # No scoring rounds (the base model's and the last step's) and one small preview: a short run. What the test
        # checks is the wizard's way to an SDXL run; scoring is tested on its own (tests/test_evaluation.py), and the
        # SDXL pipeline's previews by tests/test_sdxl.py's demo-profile run.
        app.session.set("evaluation.enabled", False)
        app.session.set("sampling.num_images", 1)
        app.session.set("sampling.steps", 2)

        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.session.model_info is not None, 60, "the demo model's check")
        await pilot.press("end", "ctrl+u", *"builtin:tiny-sdxl", "enter")
        await until(pilot, lambda: app.session.family_id == "sdxl", 60, "the tiny SDXL's check")
        assert "✓ built-in tiny Stable Diffusion XL" in text_of(app.screen, "#model-family")
        assert app.session.get("dataset.resolution") == 64

        params = await through_the_dataset_step(pilot)
        assert "both text encoders" in help_of(params, "training.train_text_encoder")
        await pilot.press("tab", "tab", "end", "ctrl+u", "3")  # from the run name to the number of steps
        await pilot.pause()
        assert app.session.get("training.max_train_steps") == 3
        assert "valid" in text_of(params, "#par-problems")

        await pilot.press("ctrl+n")  # train: a detached trainer process, followed by the dashboard
        dashboard = app.screen
        await until(pilot, lambda: getattr(dashboard, "finished", False), 240, "the run to finish")
        assert dashboard.query_one("#tr-stats").status == "finished"
        assert len(dashboard.history) == 3
        index = RunFolder(app.session.run_folder).outputs / "diffusers" / "model_index.json"
        assert json.loads(index.read_text(encoding="utf-8"))["_class_name"] == "StableDiffusionXLPipeline"
