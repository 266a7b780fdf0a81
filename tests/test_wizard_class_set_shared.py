"""Two concepts sharing one class folder and class prompt (4 and 6 wanted, 3 pictures in it): the dataset step's
class-image line said '1 to generate' of one and '3 to generate' of the other, as if 4 were made, while the run makes
the most either wants, once (class_images._needed): 3 in all. It now says so, as `dbtui dataset check --profile` does."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual.widgets import Select, Static

from dbtui.app import make_app
from dbtui.session import Session
from dbtui.widgets.class_count import ClassCount
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle

SIZE = (80, 24)
SHARED = ("3 to generate in all for concepts 1 and 2 (one class folder and prompt: the run makes the most that any of "
          "them wants, once)")


def _shared_class_set(tmp_path: Path) -> Session:
    """Concepts 1 and 2 name animal-class/ (3 pictures) and 'photo of an animal', wanting 4 and 6; concept 3 names it
    with 'photo of a bird': a set of its own."""
    (tmp_path / "animal-class").mkdir()
    for index in range(3):
        Image.new("RGB", (64, 64)).save(tmp_path / "animal-class" / f"{index}.png")
    concepts = []
    for name, prompt, count in (("dog", "an animal", 4), ("cat", "an animal", 6), ("owl", "a bird", 5)):
        (tmp_path / name).mkdir()
        Image.new("RGB", (64, 64)).save(tmp_path / name / "0.png")
        concepts.append({"instance_dir": str(tmp_path / name), "instance_prompt": f"photo of zwx {name}",
                         "class_prompt": f"photo of {prompt}", "class_dir": str(tmp_path / "animal-class"),
                         "num_class_images": count})
    session = Session.for_demo()
    session.set("prior.enabled", True)
    session.set("concepts", concepts)
    return session


async def test_concepts_sharing_a_class_set_are_told_what_the_run_generates_for_it(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), _shared_class_set(tmp_path), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        said = []
        for index in range(3):
            screen.query_one("#ds-concept", Select).value = index
            await settle(pilot)
            await pilot.press("ctrl+r")
            await settle(pilot)
            said.append(str(screen.query_one("#ds-class-count", Static).render()))
        assert said == [f"wanted: 3 in the class folder, {SHARED}"] * 2 + ["wanted: 3 in the class folder, 2 to generate"]
        # The other concept's number changed: the set's count follows it, as the run would.
        app.session.set("concepts.1.num_class_images", 8)
        screen.query_one("#ds-concept", Select).value = 0
        await settle(pilot)
        assert str(screen.query_one("#ds-class-count", Static).render()) == (
            f"wanted: 3 in the class folder, {SHARED.replace('3 to generate', '5 to generate', 1)}")
        # Another concept's number the profile refuses: the set is not told, and the line is still drawn.
        app.session.set("concepts.1.num_class_images", 0)
        screen.query_one(ClassCount).show_counts()
        assert str(screen.query_one("#ds-class-count", Static).render()) == "wanted: 3 in the class folder, 1 to generate"




async def test_the_set_is_told_while_another_step_has_a_problem(tmp_path: Path, monkeypatch) -> None:
    """Steps typed on Parameters as "abc" kept the set from being told on the Dataset step: the line gave the
    concept's own '1 to generate', as if the run made 4."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), _shared_class_set(tmp_path), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await pilot.press("ctrl+r")
        await settle(pilot)
        app.session.edit("training.max_train_steps", "abc")  # as the Parameters step's field keeps it
        assert app.session.validate()[0] is None
        screen.query_one("#ds-concept", Select).value = 1  # and back: the concept shown again
        await settle(pilot)
        screen.query_one("#ds-concept", Select).value = 0
        await settle(pilot)
        assert str(screen.query_one("#ds-class-count", Static).render()) == f"wanted: 3 in the class folder, {SHARED}"
