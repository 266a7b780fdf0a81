"""The wizard's conversion of a single file: an editable folder, and the file's earlier conversion found and reused
rather than refused ("models/X-diffusers already exists and is not empty")."""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.convert import ModelMismatchError
from engine.events import PhaseProgress, PhaseStarted, Warning as WarningEvent
from engine.model_import import ConversionTarget, conversion_target, import_model
from engine.profile.fields import expanded_path
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, visible
from wizard_fakes import FakeEngine
from wizard_steps import settle, until
from fake_conversion import copy_converted


@pytest.fixture
def conversions(tiny_sd1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each conversion made, in a fresh working folder; each "converts" into a copy of the tiny SD1.x model, with the
    progress the real converter sends (the wizard reads its PhaseStarted as a conversion made, not reused)."""
    import engine.convert

    made: list[Path] = []

    def convert(path: Path, out: Path, emit: Callable | None = None,
                before_publish: Callable[[Path], None] | None = None, **_: object) -> Path:
        engine.convert.check_new_folder(out)
        if emit is not None:
            emit(PhaseStarted(phase="convert", total=2, description=path.name))
            emit(PhaseProgress(phase="convert", done=2, total=2))
        copy_converted(tiny_sd1, out, before_publish)
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


def test_a_flux_conversion_is_offered_for_the_parts_it_was_made_from(conversions: list[Path]) -> None:
    """The offer was made for the default parts, and import_model checked the typed ones: a conversion made with a
    components folder or part files was never offered (a second conversion of tens of GB ran into -2), and one made
    from the default parts was offered, then refused ("already exists") once a component was typed."""
    source = _file(Path("a"))
    typed = {"components": "black-forest-labs/FLUX.1-dev", "part_files": {"t5": "t5xxl.safetensors"}}
    import_model(source, Path("models/m-diffusers"), **typed)
    assert conversion_target(source, **typed) == ConversionTarget(Path("models/m-diffusers"), True)
    assert conversion_target(source, components="black-forest-labs/FLUX.1-dev") == ConversionTarget(
        Path("models/m-diffusers-2"), False)  # without the T5 file: another model
    import_model(source, Path("models/m-diffusers-2"))
    assert conversion_target(source) == ConversionTarget(Path("models/m-diffusers-2"), True)
    assert conversion_target(source, into=Path("models/m-diffusers")) == ConversionTarget(Path("models/m-diffusers"), False)
    assert conversion_target(source, **typed, into=Path("models/m-diffusers")).holds_it and len(conversions) == 2




def test_a_flux_conversion_knows_its_parts_as_they_stand_and_its_components_folder_however_typed(
        conversions: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts were noted by path text: a T5 file written over at its path still matched, and ~/flux and the same
    folder typed in full did not (a second conversion of tens of GB), while models/flux typed elsewhere did."""
    source = _file(Path("a"))
    Path("flux").mkdir()
    Path("t5.safetensors").write_bytes(b"t5 in fp16")
    monkeypatch.setenv("HOME", str(tmp_path))
    typed = {"components": "~/flux", "part_files": {"t5": "t5.safetensors"}}
    import_model(source, Path("models/m-diffusers"), **typed)
    assert conversion_target(source, components=str(tmp_path / "flux"), part_files=typed["part_files"]).holds_it
    Path("other").mkdir()
    monkeypatch.chdir("other")
    Path("flux").mkdir()
    assert not conversion_target(str(tmp_path / source), tmp_path / "models", components="flux",
                                 part_files={"t5": str(tmp_path / "t5.safetensors")}).holds_it
    monkeypatch.chdir(tmp_path)
    Path("t5.safetensors").write_bytes(b"t5 in fp8")  # another precision, downloaded under the same name
    assert not conversion_target(source, **typed).holds_it

def test_a_file_replaced_while_it_converts_is_not_offered_as_converted(tiny_sd1: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The note described the file as it stood after the conversion: the new file, offered the old one's."""
    import engine.convert

    source = _file(tmp_path / "a")

    def convert(path: Path, out: Path, before_publish: Callable[[Path], None] | None = None, **_: object) -> Path:
        copy_converted(tiny_sd1, out, before_publish)
        Path(source).write_bytes(b"the new, longer weights")  # `mv new.safetensors m.safetensors` meanwhile
        return out

    monkeypatch.setattr(engine.convert, "import_single_file", convert)
    import_model(source, tmp_path / "models/m-diffusers")
    assert not conversion_target(source, tmp_path / "models").holds_it

@dataclass
class ConvertingEngine(FakeEngine):
    """The fake, with the engine's own choice of folder and conversion (its converter a copy of the tiny model)."""

    def conversion_target(self, source: str, **asked) -> ConversionTarget:
        return conversion_target(source, **asked)

    def import_model(self, source: str, out_dir: Path, emit=None, **flux) -> Path:
        self.calls.append(("import_model", source, str(out_dir)))
        return import_model(source, out_dir, emit=emit, **flux)


async def check_model(pilot, source: str) -> None:
    """The Model field set to ``source``, then Enter: the step checks it. Typed key by key (test_wizard_sdxl's
    check_model, which tests the typing), each key cost a render of the step; these tests check what follows Enter."""
    field = pilot.app.screen.query_one("#model-source", Input)
    field.focus()
    field.value = source
    await pilot.press("enter")
    await settle(pilot)


async def _convert(pilot) -> None:
    pilot.app.screen.query_one("#model-convert", Button).press()
    await settle(pilot)


@asynccontextmanager
async def _checked(engine: FakeEngine, source: str) -> AsyncIterator[Pilot]:
    """A new profile's Model step, with `source` checked."""
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        await check_model(pilot, source)
        yield pilot


async def test_the_wizard_reuses_a_files_conversion_and_converts_into_the_folder_typed(
        conversions: list[Path]) -> None:
    first, second = _file(Path("a")), _file(Path("b"), b"other weights")
    engine = ConvertingEngine()
    async with _checked(engine, first) as pilot:
        app, screen = pilot.app, pilot.app.screen
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


async def test_a_conversion_into_a_folder_with_a_dollar_is_the_model_the_profile_reads(conversions: list[Path],
                                                                                       tmp_path: Path) -> None:
    """Converted into out$$dir (a folder of that name), the draft took the folder as read, "out$$dir": the profile read
    it as out$dir, a folder that is not there, and the Model step said the model it had just converted was missing."""
    source = _file(Path("a"))
    async with _checked(ConvertingEngine(), source) as pilot:
        app = pilot.app
        await _type(pilot, "#model-convert-to", "out$$dir")  # $$: a $ of the name, as in the Model field
        await _convert(pilot)
        assert Path("out$dir/model_index.json").is_file()
        assert expanded_path(app.session.get("model.pretrained")) == "out$dir"  # as the profile reads the draft
        assert app.session.model_info.supported and app.session.model_info.source == app.session.get("model.pretrained")


async def test_into_reads_a_variable_as_the_model_field_does(conversions: list[Path], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Into took $MODELS/conv literally, while it expanded ~: a folder named "$MODELS" was made in the working
    folder, and "Converted into $MODELS/conv" looked as if it were the variable's."""
    monkeypatch.setenv("MODELS", str(tmp_path / "models-here"))
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    source = _file(Path("a"))
    async with _checked(ConvertingEngine(), source) as pilot:
        app, screen = pilot.app, pilot.app.screen
        await _type(pilot, "#model-convert-to", "$NOT_SET_HERE/conv")
        await _convert(pilot)
        assert "$NOT_SET_HERE, which is not set" in str(screen.query_one("#model-folder", Static).render())
        assert not conversions and not Path("$NOT_SET_HERE").exists()
        await _type(pilot, "#model-convert-to", "$MODELS/conv")
        await _convert(pilot)
        assert (tmp_path / "models-here/conv/model_index.json").is_file() and not Path("$MODELS").exists()
        assert expanded_path(app.session.get("model.pretrained")) == str(tmp_path / "models-here/conv")


class DraftReadingEngine(FakeEngine):
    """The fake, whose conversions go through the wizard's real engine: given the draft's model.pretrained as written."""

    def conversion_target(self, source: str, **asked) -> ConversionTarget:
        return RealEngine().conversion_target(source, **asked)

    def import_model(self, source: str, out_dir: Path, emit=None, **flux) -> Path:
        return RealEngine().import_model(source, out_dir, emit=emit, **flux)


@pytest.mark.parametrize("folder", ["a$$b", "$MODELS"])
async def test_a_file_named_with_a_dollar_or_a_variable_is_converted(folder: str, conversions: list[Path],
                                                                     tmp_path: Path, monkeypatch) -> None:
    """The Model step converted the draft's model.pretrained as written: a$$$$b/m.safetensors (the file a$$b/m.safetensors)
    or $MODELS/m.safetensors was looked for under that very name, and the conversion failed ("not found")."""
    monkeypatch.setenv("MODELS", str(tmp_path / "models-here"))
    _file(Path(expanded_path(folder.replace("$$", "$$$$"))))
    async with _checked(DraftReadingEngine(), f"{folder.replace('$$', '$$$$')}/m.safetensors") as pilot:
        app = pilot.app
        assert pilot.app.screen.query_one("#model-convert-to", Input).value == "models/m-diffusers"
        await _convert(pilot)
        assert app.session.get("model.pretrained") == "models/m-diffusers" and len(conversions) == 1


@dataclass
class AskingEngine(FakeEngine):
    """A conversion that asks for what the wizard does not pass: --config, or (a warning) --prediction-type."""

    warn: bool = False

    def import_model(self, source: str, out_dir: Path, emit=None, **flux) -> Path:
        if self.warn:  # said once converting, as the converter says it: after its PhaseStarted
            emit(PhaseStarted(phase="convert", total=4, description=source))
            emit(WarningEvent(message=f"{source}: v_prediction is a guess from its weights",
                              advice=f"if its images come out as noise, run `dbtui convert to-diffusers {source} OUT "
                                     "--prediction-type epsilon` and train from OUT"))
            return Path(out_dir)
        raise ModelMismatchError("the UNet weights could not be loaded: convert it with `dbtui convert to-diffusers "
                                 "FILE OUT --config FOLDER` and train from OUT")


@pytest.mark.parametrize("warn", [False, True])
async def test_the_wizard_says_the_command_for_what_it_cannot_pass(warn: bool) -> None:
    async with _checked(AskingEngine(warn=warn), "odd file.safetensors") as pilot:
        app = pilot.app
        await _convert(pilot)
        said = " ".join(" ".join(str(app.screen.query_one(f"#model-{part}", Static).render())
                                 for part in ("family", "warning")).split())
        expected = ("In a terminal: dbtui convert to-diffusers 'odd file.safetensors' 'models/odd file-diffusers-epsilon' "
                    "--prediction-type epsilon" if warn else
                    "In a terminal: dbtui convert to-diffusers 'odd file.safetensors' 'models/odd file-diffusers' "
                    "--config FOLDER")
        assert expected in said


@dataclass
class FluxConvertingEngine(ConvertingEngine):
    """The converting fake, for which m.safetensors is a Flux transformer file."""

    def inspect_model(self, source: str):
        info = super().inspect_model(source)
        if source.endswith("m.safetensors"):
            return replace(info, family="single file: Flux.1 [dev] transformer", family_id="flux", resolution=1024)
        return info


async def _type(pilot, field: str, text: str) -> None:
    pilot.app.screen.query_one(field, Input).value = text
    await settle(pilot)


def _said(screen) -> tuple[str, str]:
    return (screen.query_one("#model-convert-to", Input).value, str(screen.query_one("#model-convert", Button).label))


async def test_the_wizard_offers_a_flux_conversion_for_the_parts_typed_and_says_a_typed_folder_is_reused(
        conversions: list[Path]) -> None:
    source = _file(Path("a"))
    async with _checked(FluxConvertingEngine(), source) as pilot:
        app, screen = pilot.app, pilot.app.screen
        await _type(pilot, "#model-components", "black-forest-labs/FLUX.1-dev")
        await _convert(pilot)
        assert app.session.get("model.pretrained") == "models/m-diffusers" and len(conversions) == 1

        screen.query_one("#model-source", Input).focus()
        await check_model(pilot, source)  # the components still typed: the conversion made with them is offered
        assert _said(screen) == ("models/m-diffusers", "Use this conversion")
        await _type(pilot, "#model-components", "")  # the default parts: another model, and another folder
        assert _said(screen) == ("models/m-diffusers-2", "Convert to diffusers")
        await _type(pilot, "#model-components", "black-forest-labs/FLUX.1-dev")
        assert _said(screen) == ("models/m-diffusers", "Use this conversion")

        shutil.copytree("models/m-diffusers", "elsewhere/copy")  # a folder of the user's that holds it too
        await _type(pilot, "#model-convert-to", "elsewhere/copy")
        assert _said(screen) == ("elsewhere/copy", "Use this conversion")
        await _type(pilot, "#model-components", "other/flux")  # a folder the user named is kept, and told again
        assert _said(screen) == ("elsewhere/copy", "Convert to diffusers")
        await _type(pilot, "#model-components", "black-forest-labs/FLUX.1-dev")
        await _convert(pilot)
        assert app.session.get("model.pretrained") == "elsewhere/copy" and len(conversions) == 1
        assert any(n.message == "Using elsewhere/copy, which holds this file's conversion" for n in app._notifications)


@dataclass
class RefusingEngine(FakeEngine):
    """The fake, whose answer for the folder "slow" is a refusal that comes once the test lets it."""

    def __post_init__(self) -> None:
        self.asked, self.let_go = threading.Event(), threading.Event()

    def conversion_target(self, source: str, components=None, part_files=None, into=None) -> ConversionTarget:
        if into == Path("slow"):
            self.asked.set()
            self.let_go.wait(10)
            raise ValueError("slow cannot be written")
        return super().conversion_target(source, components, part_files, into)


async def test_a_failure_for_a_folder_retyped_since_does_not_replace_the_answer_for_the_new_one() -> None:
    """The worker asked for the earlier folder, replaced by the newer one's, still posts its failure, after that answer."""
    engine = RefusingEngine()
    async with _checked(engine, "m.safetensors") as pilot:
        screen = pilot.app.screen
        posted: list = []
        post = screen.post_message
        screen.post_message = lambda message: posted.append(message) or post(message)  # type: ignore[method-assign]
        field = screen.query_one("#model-convert-to", Input)
        field.value = "slow"
        await until(pilot, engine.asked.is_set)
        field.value = "fine"
        await settle(pilot)
        engine.let_go.set()
        await until(pilot, lambda: "cannot be written" in str([getattr(m, "message", "") for m in posted]))
        await settle(pilot)  # the late failure handled, not only posted
        assert "cannot be written" not in str(screen.query_one("#model-folder", Static).render())
        field.value = "slow"  # asked now: its failure is said
        await settle(pilot)
        assert "✗ slow cannot be written" in str(screen.query_one("#model-folder", Static).render())


@dataclass
class SlowConvertingEngine(ConvertingEngine):
    """A conversion that waits, as one of gigabytes does, until the test lets it finish (or fail)."""

    fail: bool = False

    def __post_init__(self) -> None:
        self.started, self.let_go = threading.Event(), threading.Event()

    def import_model(self, source: str, out_dir: Path, emit=None, **flux) -> Path:
        self.started.set()
        self.let_go.wait(30)
        if self.fail:
            raise ModelMismatchError("the UNet weights could not be loaded")
        return super().import_model(source, out_dir, emit=emit, **flux)


@asynccontextmanager
async def _converting(source: str, fail: bool = False) -> AsyncIterator[tuple[Pilot, SlowConvertingEngine]]:
    """A new profile's Model step, `source` checked and its conversion started: held until the test sets let_go."""
    engine = SlowConvertingEngine(fail=fail)
    async with _checked(engine, source) as pilot:
        pilot.app.screen.query_one("#model-convert", Button).press()
        await until(pilot, engine.started.is_set)
        yield pilot, engine


async def _finish(pilot: Pilot, engine: SlowConvertingEngine) -> None:
    """Lets the held conversion end, and waits until the wizard has said so."""
    engine.let_go.set()
    await until(pilot, lambda: any("Conver" in f"{n.title} {n.message}" for n in pilot.app._notifications))
    await settle(pilot)


async def _held_until_its_folder(pilot: Pilot, engine: SlowConvertingEngine, screen: Screen) -> None:
    """The step was not left while it converts; once let finish, its folder is the model."""
    app = pilot.app
    assert app.screen is screen and any("Still converting" in n.message for n in app._notifications)
    engine.let_go.set()
    await until(pilot, lambda: app.session.get("model.pretrained") == "models/m-diffusers")
    await settle(pilot)


@pytest.mark.parametrize("fail", [False, True])
async def test_a_conversion_ending_after_another_model_was_checked_keeps_that_model(
        fail: bool, conversions: list[Path]) -> None:
    """Another model checked while a file converted: the conversion, once done, put its folder into the Model field
    and the profile in place of the model the user had chosen since (its failure showed ✗ over that model's ✓)."""
    first, second = _file(Path("a")), _file(Path("b"), b"other weights")
    async with _converting(first, fail=fail) as (pilot, engine):
        app, screen = pilot.app, pilot.app.screen
        screen.query_one("#model-source", Input).focus()
        await pilot.press("end", "ctrl+u", *second, "enter")
        await until(pilot, lambda: "✓" in str(screen.query_one("#model-family", Static).render()))
        await _finish(pilot, engine)
        assert app.session.get("model.pretrained") == second
        assert screen.query_one("#model-source", Input).value == second
        assert "✓" in str(screen.query_one("#model-family", Static).render())


async def test_a_conversion_ending_after_another_model_was_typed_keeps_what_was_typed(conversions: list[Path]) -> None:
    """Another model typed, not yet checked, while a file converted: the conversion, once done, replaced it in the Model
    field with its folder, and the profile took that folder; what the user typed was gone."""
    first, second = _file(Path("a")), _file(Path("b"), b"other weights")
    async with _converting(first) as (pilot, engine):
        app, screen = pilot.app, pilot.app.screen
        screen.query_one("#model-source", Input).focus()
        await pilot.press("end", "ctrl+u", *second)
        await _finish(pilot, engine)
        assert screen.query_one("#model-source", Input).value == second
        assert app.session.get("model.pretrained") == first


async def test_next_while_a_file_converts_waits_for_its_folder(conversions: list[Path]) -> None:
    """Next while it converted went on with the file: the conversion's folder was never used (training converted the
    file again), and the step's return offered another conversion beside the one still being written."""
    async with _converting(_file(Path("a"))) as (pilot, engine):
        app, screen = pilot.app, pilot.app.screen
        await pilot.press("ctrl+n")
        await pilot.pause()
        await _held_until_its_folder(pilot, engine, screen)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.screen is not screen and app.session.get("model.pretrained") == "models/m-diffusers"


@pytest.mark.parametrize("leave", ["escape", "palette"])
async def test_back_while_a_file_converts_waits_for_its_folder(leave: str, conversions: list[Path]) -> None:
    """Back (Esc) or the palette's Go to hardware while it converted left the step: the conversion's folder, once
    made, never reached the profile, which still named the file (training converted it again)."""
    async with _converting(_file(Path("a"))) as (pilot, engine):
        app, screen = pilot.app, pilot.app.screen
        if leave == "escape":
            await pilot.press("escape")
        else:
            next(c.callback for c in app.get_system_commands(screen) if c.title == "Go to hardware")()
        await pilot.pause()
        await _held_until_its_folder(pilot, engine, screen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not screen and app.session.get("model.pretrained") == "models/m-diffusers"


async def test_quitting_while_a_file_converts_says_the_process_finishes_it(conversions: list[Path]) -> None:
    """Ctrl+Q while it converted closed the app and left the shell silent: the process waited for the conversion's
    thread, minutes of a terminal seemingly hung."""
    async with _converting(_file(Path("a"))) as (pilot, engine):
        await pilot.press("ctrl+q")
        await pilot.pause()
        said = "\n".join(str(line) for line in pilot.app._exit_renderables)  # printed once the app has closed
    engine.let_go.set()
    assert "Finishing the conversion into models/m-diffusers… (Ctrl-C to abandon it" in said


def test_an_abandoned_conversion_leaves_no_partial_folder_of_its_own(tmp_path: Path) -> None:
    from engine.convert.partials import partial_path

    from dbtui.conversions import Conversion, abandon

    into = tmp_path / "models" / "m-diffusers"
    ours = partial_path(into)
    ours.mkdir(parents=True)
    (ours / "unet").mkdir()
    another_process = into.with_name(".m-diffusers.otherhost.12-34.abcdef12.partial")
    another_process.mkdir()
    abandon([Conversion("m.safetensors", into)])
    assert not ours.exists() and another_process.is_dir()
