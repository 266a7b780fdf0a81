"""The wizard's conversion of a single file: an editable folder, and the file's earlier conversion found and reused
rather than refused ("models/X-diffusers already exists and is not empty")."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Static

from dbtui.app import make_app
from dbtui.session import Session
from engine.convert import ModelMismatchError
from engine.events import Warning as WarningEvent
from engine.model_import import ConversionTarget, conversion_target, import_model
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, check_model, visible
from wizard_fakes import FakeEngine
from wizard_steps import settle


@pytest.fixture
def conversions(tiny_sd1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each conversion made, in a fresh working folder; each "converts" into a copy of the tiny SD1.x model."""
    import engine.convert

    made: list[Path] = []

    def convert(path: Path, out: Path, **_: object) -> Path:
        engine.convert.check_new_folder(out)
        shutil.copytree(tiny_sd1, out)
        made.append(path)
        return out

    monkeypatch.setattr(engine.convert, "import_single_file", convert)
    monkeypatch.chdir(tmp_path)
    return made


def _file(folder: Path, content: bytes = b"weights") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.safetensors").write_bytes(content)
    return str(folder / "m.safetensors")


def test_the_same_file_is_offered_its_conversion_and_another_of_its_name_a_free_folder(conversions: list[Path]) -> None:
    first, second = _file(Path("a")), _file(Path("b"), b"other weights")
    assert conversion_target(first) == ConversionTarget(Path("models/m-diffusers"), False)
    import_model(first, Path("models/m-diffusers"))
    assert conversion_target(first) == ConversionTarget(Path("models/m-diffusers"), True)
    assert import_model(first, Path("models/m-diffusers")) == Path("models/m-diffusers") and len(conversions) == 1
    assert conversion_target(second) == ConversionTarget(Path("models/m-diffusers-2"), False)
    import_model(second, Path("models/m-diffusers-2"))
    assert conversion_target(second) == ConversionTarget(Path("models/m-diffusers-2"), True)
    Path(first).write_bytes(b"written over")  # no longer the file converted
    assert conversion_target(first) == ConversionTarget(Path("models/m-diffusers-3"), False)


def test_a_flux_conversion_from_other_parts_is_not_reused(conversions: list[Path]) -> None:
    source = _file(Path("a"))
    import_model(source, Path("models/m-diffusers"), components="black-forest-labs/FLUX.1-dev")
    assert import_model(source, Path("models/m-diffusers"), components="black-forest-labs/FLUX.1-dev") == Path(
        "models/m-diffusers") and len(conversions) == 1
    assert not conversion_target(source).holds_it  # the default parts: another model
    with pytest.raises(Exception, match="already exists and is not empty"):
        import_model(source, Path("models/m-diffusers"))


@dataclass
class ConvertingEngine(FakeEngine):
    """The fake, with the engine's own choice of folder and conversion (its converter a copy of the tiny model)."""

    def conversion_target(self, source: str) -> ConversionTarget:
        return conversion_target(source)

    def import_model(self, source: str, out_dir: Path, emit=None, **flux) -> Path:
        self.calls.append(("import_model", source, str(out_dir)))
        return import_model(source, out_dir, emit=emit, **flux)


async def _convert(pilot) -> None:
    pilot.app.screen.query_one("#model-convert", Button).press()
    await settle(pilot)


async def test_the_wizard_reuses_a_files_conversion_and_converts_into_the_folder_typed(
        conversions: list[Path]) -> None:
    first, second = _file(Path("a")), _file(Path("b"), b"other weights")
    engine = ConvertingEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        screen = app.screen
        await check_model(pilot, first)
        assert visible(screen, "#model-convert-to") and screen.query_one("#model-convert-to", Input).value == "models/m-diffusers"
        await _convert(pilot)
        assert app.session.get("model.pretrained") == "models/m-diffusers" and len(conversions) == 1

        screen.query_one("#model-source", Input).focus()
        await check_model(pilot, first)  # the same file again: its conversion is offered, not refused
        assert str(screen.query_one("#model-convert", Button).label) == "Use this conversion"
        assert "holds this file's conversion already" in str(screen.query_one("#model-folder", Static).render())
        await _convert(pilot)
        assert app.session.get("model.pretrained") == "models/m-diffusers" and len(conversions) == 1

        screen.query_one("#model-source", Input).focus()
        await check_model(pilot, second)  # another m.safetensors: a folder of its own
        assert screen.query_one("#model-convert-to", Input).value == "models/m-diffusers-2"
        screen.query_one("#model-convert-to", Input).value = "elsewhere/mine"
        await pilot.pause()
        assert str(screen.query_one("#model-convert", Button).label) == "Convert to diffusers"
        await _convert(pilot)
        assert engine.calls[-1] == ("import_model", second, "elsewhere/mine")
        assert app.session.get("model.pretrained") == "elsewhere/mine" and len(conversions) == 2


@dataclass
class AskingEngine(FakeEngine):
    """A conversion that asks for what the wizard does not pass: --config, or (a warning) --prediction-type."""

    warn: bool = False

    def import_model(self, source: str, out_dir: Path, emit=None, **flux) -> Path:
        if self.warn:
            emit(WarningEvent(message=f"{source}: v_prediction is a guess from its weights",
                              advice=f"if its images come out as noise, run `dbtui convert to-diffusers {source} OUT "
                                     "--prediction-type epsilon` and train from OUT"))
            return Path(out_dir)
        raise ModelMismatchError("the UNet weights could not be loaded: convert it with `dbtui convert to-diffusers "
                                 "FILE OUT --config FOLDER` and train from OUT")


@pytest.mark.parametrize("warn", [False, True])
async def test_the_wizard_says_the_command_for_what_it_cannot_pass(warn: bool) -> None:
    app = make_app(AskingEngine(warn=warn), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, "odd file.safetensors")
        await _convert(pilot)
        said = " ".join(" ".join(str(app.screen.query_one(f"#model-{part}", Static).render())
                                 for part in ("family", "warning")).split())
        expected = ("In a terminal: dbtui convert to-diffusers 'odd file.safetensors' 'models/odd file-diffusers-epsilon' "
                    "--prediction-type epsilon" if warn else
                    "In a terminal: dbtui convert to-diffusers 'odd file.safetensors' 'models/odd file-diffusers' "
                    "--config FOLDER")
        assert expected in said
