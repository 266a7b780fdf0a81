"""The wizard's review says what ``dbtui validate`` says (one engine function, engine.profile_checks): its warnings
under "✓ The profile is valid.", and what this machine lacks (an empty images folder) as a problem that stops Train,
as the run itself would refuse it; class settings while prior preservation is off are a warning in both."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.app import make_app
from dbtui.cli import main
from dbtui.session import Session
from test_flux_wizard import open_parameters
from test_wizard_sdxl import SIZE, settle, text_of
from wizard_fakes import FakeEngine

SHARED = "photo of zwx disc"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _folder(path: Path, images: int) -> str:
    from PIL import Image

    path.mkdir()
    for index in range(images):
        Image.new("RGB", (8, 8)).save(path / f"{index}.png")
    return str(path)


def _draft(tmp_path: Path, *, empty: bool) -> Session:
    """The demo on the tiny SD1 without prior preservation, its model step done: two concepts with one prompt and,
    if ``empty``, one with an empty folder."""
    session = Session.for_demo()
    session.adopt_model(FakeEngine().inspect_model("builtin:tiny-sd1"))
    concepts = [{"instance_dir": _folder(tmp_path / "a", 2), "instance_prompt": SHARED},
                {"instance_dir": _folder(tmp_path / "b", 2), "instance_prompt": SHARED}]
    if empty:
        concepts.append({"instance_dir": _folder(tmp_path / "empty", 0), "instance_prompt": "photo of qrt disc"})
    session.set("concepts", concepts)
    session.set("prior.enabled", False)  # as a new profile has it
    return session


def _validate_warnings(capsys: pytest.CaptureFixture[str], path: Path) -> set[str]:
    """``dbtui validate --elsewhere``'s warnings (what this machine lacks among them), without the file and line each
    starts with."""
    assert main(["validate", "--elsewhere", str(path)]) == 0
    lines = [line.removeprefix("  warning: ") for line in capsys.readouterr().out.splitlines()[1:]]
    return {line.split(": ", 1)[1] for line in lines}


def test_the_review_says_what_validate_says_and_an_empty_folder_stops_the_run(tmp_path: Path, capsys) -> None:
    session = _draft(tmp_path, empty=True)
    profile, problems, missing_here, warnings = session.review()
    assert profile is not None and problems == []  # it saves: the folder may be filled, or the profile be for elsewhere
    assert [(p.key, p.message) for p in missing_here] == [("concepts.2.instance_dir", f"no images in '{tmp_path / 'empty'}'")]
    assert [p.key for p in warnings] == ["concepts.1.instance_prompt"]
    assert "learns both folders as one subject" in warnings[0].message
    said = _validate_warnings(capsys, session.save(tmp_path / "p.toml"))
    assert said == {f"{p.key}: {p.message}" for p in missing_here + warnings}
    # What stops the wizard's Train stops validate too (exit 2), as it stops the run.
    assert main(["validate", str(tmp_path / "p.toml")]) == 2
    assert f"concepts.2.instance_dir: no images in '{tmp_path / 'empty'}'" in capsys.readouterr().err


def test_class_settings_while_prior_preservation_is_off_are_a_warning(tmp_path: Path, capsys) -> None:
    session = _draft(tmp_path, empty=False)
    session.set("concepts.1.class_dir", str(tmp_path / "class"))
    session.set("concepts.1.class_prompt", "photo of a disc")
    session.set("concepts.0.class_prompt", "photo of a disc")
    warned = {p.key: p.message for p in session.review().warnings}
    assert warned["concepts.1.class_dir"].startswith("is not used in training: prior preservation is off; turn it on in "
                                                     "Parameters ([prior] enabled = true")
    assert warned["concepts.1.class_dir"].endswith("or leave the class folder and class prompt empty")
    assert warned["concepts.0.class_prompt"].endswith("or leave the class prompt empty")
    assert any("concepts.1.class_dir: is not used in training" in line
               for line in _validate_warnings(capsys, session.save(tmp_path / "p.toml")))
    session.set("prior.enabled", True)
    session.set("concepts.0.class_dir", str(tmp_path / "class0"))
    assert not [p for p in session.review().warnings if "prior preservation is off" in p.message]


@pytest.mark.parametrize("prompts, warned", [([], False), (["photo of zwx disc"], True)])
def test_a_class_prompt_that_evaluations_default_prompts_read_is_not_called_unused(tmp_path: Path, prompts: list[str],
                                                                                  warned: bool) -> None:
    """With [evaluation] on and its default prompts, the class prompt is scored (class drift, and the noun of 'a zwx disc
    on the beach'), yet validate and the wizard said it was 'not used in training … leave the class prompt empty',
    which took those scores away. Said now only where the evaluation prompts are the user's own."""
    session = _draft(tmp_path, empty=False)
    session.set("concepts.0.class_prompt", "photo of a disc")
    session.set("evaluation.enabled", True)
    session.set("evaluation.prompts", prompts)
    keys = [p.key for p in session.review().warnings if "prior preservation is off" in p.message]
    assert ("concepts.0.class_prompt" in keys) is warned


def test_a_class_prompt_that_tells_the_identifier_to_the_evaluation_prompts_is_not_called_unused(tmp_path: Path) -> None:
    """'photo of zwx red disc' tells its identifier only beside the class prompt 'photo of a red disc': emptying it, as
    the warning advised, scored "a zwx red disc on the beach" as a class prompt (no subject score, 'zwx' read by CLIP-T),
    with no word from validate."""
    session = _draft(tmp_path, empty=False)
    session.set("concepts.0.instance_prompt", "photo of zwx red disc")
    session.set("concepts.0.class_prompt", "photo of a red disc")
    session.set("evaluation.enabled", True)
    session.set("evaluation.prompts", ["a zwx red disc on the beach"])
    keys = [p.key for p in session.review().warnings if "prior preservation is off" in p.message]
    assert "concepts.0.class_prompt" not in keys


def test_typing_reads_the_folders_again_only_when_their_settings_change(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.dataset.profile_paths as profile_paths

    session = _draft(tmp_path, empty=False)
    reads = []
    real = profile_paths.path_problems
    monkeypatch.setattr(profile_paths, "path_problems", lambda *a, **k: reads.append(1) or real(*a, **k))
    session.review()
    session.set("training.max_train_steps", 123)
    session.review()
    assert len(reads) == 1
    session.review(fresh=True)  # the folders may have changed on disk meanwhile
    session.set("dataset.caption_extension", ".caption")
    session.review()
    assert len(reads) == 3


async def test_the_parameters_step_warns_as_validate_does_and_train_waits_for_an_empty_folder(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, _draft(tmp_path, empty=True))
        screen = app.screen
        panel = text_of(screen, "#par-problems")
        assert "✗ concepts.2.instance_dir: no images in" in panel and "valid" not in panel
        await pilot.press("ctrl+n")  # Train
        await settle(pilot)
        assert type(app.screen).__name__ == "ParametersScreen" and not [c for c in engine.calls if c[0] == "start_run"]
        from PIL import Image

        Image.new("RGB", (8, 8)).save(tmp_path / "empty" / "0.png")  # no setting changed: Train reads the folders again
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert [c for c in engine.calls if c[0] == "start_run"]


async def test_the_panel_shows_validates_warning_under_valid(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await open_parameters(pilot, _draft(tmp_path, empty=False))
        panel = text_of(app.screen, "#par-problems")
        assert "✓ The profile is valid." in panel
        assert "⚠ concepts.1.instance_prompt: is the prompt of concept 1 (concepts.0) too" in panel


def test_raising_the_class_image_count_reads_the_class_images_headers_again(tmp_path: Path) -> None:
    """The launch reads the headers of the first num_class_images class images: raising it past a broken one is a
    problem at once, not only after Parameters saves or trains."""
    session = _draft(tmp_path, empty=False)
    _folder(tmp_path / "class", 2)
    (tmp_path / "class" / "2.png").write_bytes(b"not a png")
    session.set("prior.enabled", True)
    for index, folder in enumerate(("class", "class1")):
        session.set(f"concepts.{index}.class_dir", str(tmp_path / folder))
        session.set(f"concepts.{index}.class_prompt", "photo of a disc")
    session.set("concepts.0.num_class_images", 2)
    assert not [p for p in session.review().missing_here if p.key == "concepts.0.class_dir"]
    session.set("concepts.0.num_class_images", 3)
    assert [p.key for p in session.review().missing_here if "2.png" in p.message] == ["concepts.0.class_dir"]
