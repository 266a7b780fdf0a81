"""What Parameters says of what is not on its form: a problem set on an earlier step says which step (the form has no
field for a concept's class folder and prompt, and the panel said their fields were marked), and the command of a profile
edited since it was saved says it is not saved."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.app import App
from textual.widgets import Input, Select, Static, Switch

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)


async def test_prior_preservation_switched_on_says_the_class_folder_and_prompt_are_set_on_the_dataset_step(
        tmp_path: Path, monkeypatch, demo_data: Path) -> None:
    monkeypatch.chdir(tmp_path)
    session = Session()
    session.set("model.pretrained", "builtin:tiny-sd1")
    session.set("concepts.0.instance_dir", str(demo_data / "instance"))
    app, said = _wizard_noting_what_it_says(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#f-prior--enabled", Switch).value = True
        await settle(pilot)
        panel = str(screen.query_one("#par-problems", Static).render())
        assert "concepts.0.class_dir" in panel and "set it on the Dataset step (Esc)" in panel
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert "class_prompt: prior preservation needs a class prompt for every concept; set it on the Dataset step" in said[-1]

        await pilot.press("escape")  # where the line says: both fields are there
        await settle(pilot)
        dataset = app.screen
        assert type(dataset).__name__ == "DatasetScreen"
        dataset.query_one("#ds-class_prompt", Input).value = "photo of a disc"
        dataset.query_one("#ds-class_dir", Input).value = str(demo_data / "class")
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert "The profile is valid" in str(app.screen.query_one("#par-problems", Static).render())


async def test_the_command_says_the_profile_is_not_saved_when_it_was_edited_after_saving(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """After a save and an edit, Ctrl+G showed the edited profile under the file's name with no note: its commands
    would run the settings saved before the edit."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert "Not saved yet" not in str(app.screen.query_one("#cmd-lines", Static).render())
        await pilot.press("escape")
        await settle(pilot)
        screen.query_one("#f-training--max_train_steps", Input).value = "7"
        await settle(pilot)
        await pilot.press("ctrl+g")
        await settle(pilot)
        lines = str(app.screen.query_one("#cmd-lines", Static).render())
        assert "Not saved yet: Ctrl+S writes profiles/tiny-demo.toml first." in lines
        assert "max_train_steps = 7" in str(app.screen.query_one("#cmd-toml", Static).render())


async def test_the_command_of_an_unsaved_profile_names_the_save_as_path_that_ctrl_s_writes(tmp_path: Path,
                                                                                           monkeypatch) -> None:
    """With another Save as path typed, Ctrl+G named profiles/NAME.toml and said Ctrl+S writes it; Ctrl+S wrote the
    typed path, so the commands shown read a file that was never written."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#par-path", Input).value = "mine/run.toml"
        await pilot.press("ctrl+g")
        await settle(pilot)
        lines = str(app.screen.query_one("#cmd-lines", Static).render())
        assert "Ctrl+S writes mine/run.toml first." in lines and "dbtui run mine/run.toml" in lines
        await pilot.press("escape")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert (tmp_path / "mine" / "run.toml").is_file() and not (tmp_path / "profiles").exists()
        await pilot.press("ctrl+g")
        await settle(pilot)
        lines = str(app.screen.query_one("#cmd-lines", Static).render())
        assert "Not saved yet" not in lines and "dbtui run mine/run.toml" in lines


async def test_ctrl_s_in_the_command_dialog_saves_as_its_note_says_asking_before_replacing_a_file(
        tmp_path: Path, monkeypatch) -> None:
    """The note of an unsaved profile says "Ctrl+S writes profiles/NAME.toml first", and Ctrl+S did nothing there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other.toml").write_text("# mine\n", encoding="utf-8")
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        await pilot.press("ctrl+g", "ctrl+s")
        await settle(pilot)
        assert app.screen is screen and (tmp_path / "profiles" / "tiny-demo.toml").is_file()
        screen.query_one("#par-path", Input).value = "other.toml"
        await pilot.press("ctrl+g", "ctrl+s")
        await settle(pilot)
        assert type(app.screen).__name__ == "OverwriteScreen"
        await pilot.press("escape")
        await settle(pilot)
        assert (tmp_path / "other.toml").read_text(encoding="utf-8") == "# mine\n"


async def test_a_model_vae_not_here_says_it_is_set_in_the_profile_file(tmp_path: Path, monkeypatch) -> None:
    """An opened profile's model.vae (or model.tokenizer) not on this machine stops Train, and the wizard has no field
    for it: the line named the key alone, sending the user looking for a field that is on no step."""
    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.set("model.vae", str(tmp_path / "vae-elsewhere"))
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        panel = str(screen.query_one("#par-problems", Static).render())
        assert f"model.vae: '{tmp_path / 'vae-elsewhere'}' does not exist on this machine" in panel
        assert "no field for it: edit it in the profile file" in panel
        await pilot.press("ctrl+s")  # as the line says: the draft is written, to be edited there
        await settle(pilot)
        assert "vae-elsewhere" in (tmp_path / "profiles" / "tiny-demo.toml").read_text(encoding="utf-8")


async def test_a_problem_of_a_concept_names_it_as_the_dataset_steps_selector_does(tmp_path: Path, monkeypatch,
                                                                                   demo_data: Path) -> None:
    """Keys count concepts from 0 and the Dataset step's selector from 1: 'concepts.1.class_prompt …; set it on the
    Dataset step' sent the user to the selector's Concept 1, the first concept, which had its class prompt."""
    monkeypatch.chdir(tmp_path)
    session = Session.for_demo()
    session.set("prior.enabled", True)
    first = {"instance_dir": str(demo_data / "instance"), "instance_prompt": "photo of zwx disc",
             "class_dir": str(demo_data / "class"), "class_prompt": "photo of a disc"}
    shutil.copytree(demo_data / "instance", tmp_path / "cat")
    session.set("concepts", [first, {"instance_dir": str(tmp_path / "cat"), "instance_prompt": "photo of qrv cat"}])
    app, said = _wizard_noting_what_it_says(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        panel = str(screen.query_one("#par-problems", Static).render())
        assert ("concepts.1.class_prompt: prior preservation needs a class prompt for every concept; set it on the Dataset "
                "step (Esc), where concepts.1 is Concept 2") in panel
        dataset = await at_step(app, pilot, 2, "DatasetScreen")
        dataset.query_one("#ds-concept", Select).value = 1
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "class_prompt: prior preservation needs a class prompt for every concept (concepts.1 is Concept 2 on the " \
               "Dataset step)" in said[-1]


def test_a_concept_a_problem_names_in_its_words_is_counted_as_the_dataset_steps_selector_does() -> None:
    """The engine's words counted concepts from 0 ('uses concept 0's identifier'), and the wizard renumbered every
    "concept N's" in them, a prompt the message quotes included: the engine now counts from 1, and the line says its
    words as they are."""
    from dbtui.problem_lines import problem_line
    from engine.profile import Problem
    from engine.profile.concept_warnings import shared_prompt_problems
    from engine.profile.schema import Profile

    concept = {"instance_dir": "a", "instance_prompt": "photo of concept 0's zwx toy"}
    profile = Profile.model_validate({"model": {"pretrained": "builtin:tiny-sd1"},
                                      "concepts": [concept, {**concept, "instance_dir": "b"}]})
    [problem] = shared_prompt_problems(profile)
    assert problem_line(problem) == f"concepts.1.instance_prompt: {problem.message} (concepts.1 is Concept 2 on the " \
                                    "Dataset step)"
    assert problem.message.startswith("is the prompt of concept 1 (concepts.0) too")
    quoted = Problem("concepts.1.instance_prompt", "'photo of concept 0's zwx toy' is too long")
    assert problem_line(quoted).startswith("concepts.1.instance_prompt: 'photo of concept 0's zwx toy' is too long")


def _wizard_noting_what_it_says(session: Session) -> tuple[App, list[str]]:
    """The wizard on ``session`` and a fake engine, and the list every message it notifies is added to."""
    said: list[str] = []
    app = make_app(FakeEngine(), session, image_renderer="none")
    notify = app.notify
    app.notify = lambda message, **kw: (said.append(message), notify(message, **kw))[1]
    return app, said
