"""Prior preservation settings that run, but not as meant, or not at all: said by `dbtui validate` (and the wizard's
review, through ``check_profile``) before a run spends its time on class images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.profile.problems import Problem
from engine.profile_checks import check_profile
from test_bad_profiles import DEMO, user_error
from tests.training_helpers import tiny_profile


def _prior(tmp_path: Path, **concept: object):
    return tiny_profile(tmp_path, prior={"enabled": True, "steps": 2},
                        concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                   "class_dir": str(tmp_path / "class"), "class_prompt": "photo of a disc", **concept}])


def _keys(problems: list[Problem]) -> list[str]:
    return [problem.key for problem in problems]


@pytest.mark.parametrize(("class_prompt", "said"), [
    ("photo of zwx disc", "is the instance prompt"),
    ("  Photo of ZWX   disc ", "is the instance prompt"),
    ("a zwx", "names the subject's identifier 'zwx'"),
    ("a photo of zwx disc, high quality", "names the subject's identifier 'zwx'"),
])
def test_a_class_prompt_that_names_the_subject_is_a_warning(tmp_path: Path, class_prompt: str, said: str) -> None:
    warnings = check_profile(_prior(tmp_path, class_prompt=class_prompt)).warnings
    [problem] = [p for p in warnings if p.key == "concepts.0.class_prompt"]
    assert said in problem.message and "without the identifier" in problem.message


def test_a_class_prompt_holding_a_long_instance_prompt_is_a_warning(tmp_path: Path) -> None:
    """An identifier the guess cannot single out ('zwx man in a suit' has three words) is still among its words."""
    profile = _prior(tmp_path, instance_prompt="a photo of zwx man in a suit", class_prompt="photo of zwx man in a suit, 4k")
    assert "concepts.0.class_prompt" in _keys(check_profile(profile).warnings)


@pytest.mark.parametrize("class_prompt", ["photo of a disc", "disc", "photo of a round disc"])
def test_a_class_prompt_without_the_identifier_is_fine(tmp_path: Path, class_prompt: str) -> None:
    assert "concepts.0.class_prompt" not in _keys(check_profile(_prior(tmp_path, class_prompt=class_prompt)).warnings)


@pytest.mark.parametrize(("instance_prompt", "class_prompt"), [
    ("a red zwx", "a red car"), ("photo of man ohwx", "photo of a man"), ("photo of zwx disc", "photo of a disc"),
])
def test_a_word_both_prompts_share_is_not_taken_for_the_identifier(tmp_path: Path, instance_prompt: str,
                                                                   class_prompt: str) -> None:
    """The identifier was guessed from the instance prompt alone: 'red' of 'a red zwx', 'man' of 'photo of man ohwx'."""
    profile = _prior(tmp_path, instance_prompt=instance_prompt, class_prompt=class_prompt)
    assert "concepts.0.class_prompt" not in _keys(check_profile(profile).warnings)


def test_a_class_prompt_holding_an_instance_prompt_without_identifier_does_not_claim_one(tmp_path: Path) -> None:
    profile = _prior(tmp_path, instance_prompt="photo of disc", class_prompt="a photo of a disc on a table")
    [problem] = [p for p in check_profile(profile).warnings if p.key == "concepts.0.class_prompt"]
    assert "holds every word of the instance prompt" in problem.message and "its identifier" not in problem.message
    possessive = _prior(tmp_path, class_prompt="photo of a disc's zwx")
    assert "concepts.0.class_prompt" in _keys(check_profile(possessive).warnings)


@pytest.mark.parametrize("instance_prompt", ["!!!", "a photo", "photo of a"])
def test_an_instance_prompt_of_no_real_word_is_not_said_to_be_held_by_the_class_prompt(tmp_path: Path,
                                                                                       instance_prompt: str) -> None:
    """Its words, fillers aside, are none: "holds every word" was true of any class prompt."""
    profile = _prior(tmp_path, instance_prompt=instance_prompt, class_prompt="photo of a disc")
    assert "concepts.0.class_prompt" not in _keys(check_profile(profile).warnings)


def test_validate_says_a_class_prompt_equal_to_the_instance_prompt(capsys) -> None:
    assert main(["validate", str(DEMO), "--set", 'concepts.0.class_prompt="photo of zwx disc"']) == 0
    assert "concepts.0.class_prompt" in capsys.readouterr().out


def test_a_prior_loss_weighted_0_is_a_warning(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, prior={"enabled": True, "loss_weight": 0.0},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": "builtin:demo-class", "class_prompt": "photo of a disc", "num_class_images": 8}])
    [problem] = [p for p in check_profile(profile).warnings if p.key == "prior.loss_weight"]
    assert "enabled = false" in problem.message
    weighted = profile.model_copy(update={"prior": profile.prior.model_copy(update={"loss_weight": 0.5})})
    assert "prior.loss_weight" not in _keys(check_profile(weighted).warnings)


def test_the_run_warns_of_a_class_prompt_naming_the_subject_and_a_0_weight(tmp_path: Path) -> None:
    from engine.runs.in_process import train

    profile = tiny_profile(tmp_path, training={"max_train_steps": 1}, prior={"enabled": True, "loss_weight": 0.0},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": "builtin:demo-class", "class_prompt": "photo of zwx disc", "num_class_images": 2}])
    events = []
    train(profile, tmp_path / "run", sinks=[events.append])
    said = [e.message for e in events if e.kind == "warning"]
    assert any(m.startswith("concepts.0.class_prompt is the instance prompt") for m in said)
    assert any(m.startswith("prior.loss_weight is 0") for m in said)
    # Before the class images are generated, which is the cost they warn of (said after them, it came too late).
    generating = next(i for i, e in enumerate(events) if e.kind == "phase_started" and e.phase == "class_images")
    early = [e.message for e in events[:generating] if e.kind == "warning"]
    assert any(m.startswith("concepts.0.class_prompt") for m in early) and any(m.startswith("prior.loss_weight") for m in early)


def test_a_blank_class_prompt_is_refused_with_prior_preservation(capsys) -> None:
    said = user_error(capsys, ["validate", str(DEMO), "--set", 'concepts.0.class_prompt="   "'])
    assert "concepts.0.class_prompt" in said and "needs a class prompt" in said


@pytest.mark.parametrize("spelled", ["{d}", "{d}/", "{d}/./"])
def test_a_class_folder_written_as_the_instance_folder_is_an_error(tmp_path: Path, spelled: str, capsys) -> None:
    """Wrong on every machine, so `validate` fails as `run` does (it said "valid" and exited 0)."""
    folder = tmp_path / "inst"
    folder.mkdir()
    argv = ["validate", str(DEMO), "--set", f'concepts.0.instance_dir="{folder}"',
            "--set", f'concepts.0.class_dir="{spelled.format(d=folder)}"']
    said = user_error(capsys, argv)
    assert "concepts.0.class_dir" in said and "is the instance folder" in said


def test_a_class_folder_reaching_the_instance_folder_by_a_link_or_a_file_stays_a_warning(tmp_path: Path, capsys) -> None:
    """On another machine the link may lead elsewhere, and the file may be a folder: `run` refuses them here."""
    folder = tmp_path / "inst"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    (tmp_path / "afile").write_text("x")
    for class_dir, said in ((tmp_path / "link", "is the instance folder"), (tmp_path / "afile", "is a file")):
        argv = ["validate", "--elsewhere", str(DEMO), "--set", f'concepts.0.instance_dir="{folder}"', "--set", f'concepts.0.class_dir="{class_dir}"']
        assert main(argv) == 0
        assert said in capsys.readouterr().out


def test_a_class_folder_under_a_file_is_said_before_the_run(tmp_path: Path, capsys) -> None:
    """validate said valid, and `run` loaded the model and failed on it before generating the first class image."""
    (tmp_path / "afile").write_text("x")
    set_class_dir = ["--set", f'concepts.0.class_dir="{tmp_path / "afile" / "class"}"']
    assert main(["validate", "--elsewhere", str(DEMO), *set_class_dir]) == 0
    assert f"'{tmp_path / 'afile'}' is a file, so" in capsys.readouterr().out
    assert main(["run", str(DEMO), *set_class_dir, "--set", f'saving.output_dir="{tmp_path / "runs"}"']) == 2
    assert "cannot start the run: concepts.0.class_dir:" in capsys.readouterr().err


@pytest.mark.parametrize(("second_prompt", "own", "warned"), [("photo of a plate", 1, True), ("photo of a plate", 0, False),
                                                              ("Photo of a  DISC", 1, False)])
def test_own_pictures_in_a_class_folder_two_class_prompts_share_are_a_warning(tmp_path: Path, second_prompt: str,
                                                                              own: int, warned: bool) -> None:
    """The run takes a class folder's own pictures first for every concept that names it: a disc photo put there for
    'photo of a disc' served 'photo of a plate' too, without a word. Generated images are kept apart per prompt."""
    from PIL import Image

    shared = tmp_path / "class"
    (shared / "generated-0123abcd").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(shared / "generated-0123abcd" / "0.png")
    for n in range(own):
        Image.new("RGB", (64, 64)).save(shared / f"disc_{n}.png")
    profile = tiny_profile(tmp_path, prior={"enabled": True, "steps": 2}, concepts=[
        {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_dir": str(shared),
         "class_prompt": "photo of a disc"},
        {"instance_dir": str(tmp_path / "plates"), "instance_prompt": "photo of qrv plate",
         "class_dir": str(tmp_path / "." / "class"), "class_prompt": second_prompt}])
    found = [p for p in check_profile(profile).warnings if p.key == "concepts.1.class_dir"]
    assert bool(found) == warned, found
    if warned:
        assert "the class folder of concept 1 (concepts.0) too, and its 1 picture(s) of your own serve as class images of both" in found[0].message


@pytest.mark.parametrize("class_dir", ["builtin:demo-class", "~/class"])
def test_a_built_in_or_home_class_folder_two_class_prompts_share_is_a_warning(tmp_path: Path, class_dir: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """builtin:demo-class was skipped, though its discs serve as class images of every concept naming it."""
    from PIL import Image

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "class").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(tmp_path / "home" / "class" / "disc.png")
    profile = tiny_profile(tmp_path, prior={"enabled": True, "steps": 2}, concepts=[
        {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_dir": class_dir,
         "class_prompt": "photo of a disc"},
        {"instance_dir": str(tmp_path / "plates"), "instance_prompt": "photo of qrv plate", "class_dir": class_dir,
         "class_prompt": "photo of a plate"}])
    found = [p for p in check_profile(profile).warnings if p.key == "concepts.1.class_dir"]
    assert len(found) == 1 and "the class folder of concept 1 (concepts.0) too" in found[0].message


_SETTINGS = {"model": "m", "prompt": "photo of a dog", "seed": 0}
_SET = "generated-51df43aeef"  # the hash of _SETTINGS: engine.training.class_images names a set so


def _generated_set(folder: Path) -> Path:
    """A set as engine.training.class_images leaves it: its images and the manifest of what made them."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({**_SETTINGS, "images": []}), encoding="utf-8")
    return folder


@pytest.mark.parametrize(("class_dir", "inside"), [(f"class/{_SET}", False), (f"class/{_SET}/sub", True)])
def test_a_class_folder_in_a_generated_set_is_a_warning_naming_its_class_folder(tmp_path: Path, class_dir: str,
                                                                                 inside: bool, monkeypatch) -> None:
    from engine.profile.concept_warnings import warned_before_class_images

    # Another concept's generated set (dbtui makes generated-<hash> under a class folder): its images, made for that
    # concept's class prompt, would be taken as this one's class images.
    monkeypatch.chdir(tmp_path)
    _generated_set(tmp_path / "class" / _SET)
    (tmp_path / "class" / _SET / "sub").mkdir()
    profile = _prior(tmp_path, class_dir=class_dir)
    [problem] = [p for p in check_profile(profile).warnings if p.key == "concepts.0.class_dir"]
    assert 'set class_dir = "class"' in problem.message and ("is inside" in problem.message) == inside
    assert problem in warned_before_class_images(profile)  # the run's log says it too, before generating
    assert "concepts.0.class_dir" not in _keys(check_profile(_prior(tmp_path, class_dir="generated-images")).warnings)


def test_a_generated_set_is_known_by_its_manifest_not_its_name(tmp_path: Path) -> None:
    """A user's own folder named generated-<10 hex digits> was warned of as dbtui's set, and a link leading into a set
    was not: training takes the set's images whatever the link is named."""
    own = tmp_path / "mine" / "generated-0123456789"
    own.mkdir(parents=True)
    assert "concepts.0.class_dir" not in _keys(check_profile(_prior(tmp_path, class_dir=str(own))).warnings)
    made = _generated_set(tmp_path / "class" / _SET)
    (tmp_path / "dogs").symlink_to(made)
    [problem] = [p for p in check_profile(_prior(tmp_path, class_dir=str(tmp_path / "dogs"))).warnings
                 if p.key == "concepts.0.class_dir"]
    assert f'set class_dir = "{tmp_path / "class"}"' in problem.message and "is dbtui's" in problem.message


def test_another_tools_manifest_in_a_class_folder_is_not_a_generated_set(tmp_path: Path) -> None:
    """A user's class folder (or the folder above it) holding another tool's manifest.json with a model, a prompt, a
    seed and its images was said to be dbtui's generated set, with the advice to set class_dir to the folder above."""
    from engine.support.generated_set import generated_folder

    assert generated_folder(tmp_path / "class", _SETTINGS).name == _SET
    dogs = _generated_set(tmp_path / "regularization" / "dogs")
    (dogs / "sub").mkdir()
    for class_dir in (dogs, dogs / "sub"):
        assert "concepts.0.class_dir" not in _keys(check_profile(_prior(tmp_path, class_dir=str(class_dir))).warnings)


@pytest.mark.parametrize(("below", "inside"), [("", False), ("/sub", True)])
def test_a_generated_set_moved_and_linked_back_under_its_name_is_still_one(tmp_path: Path, below: str,
                                                                           inside: bool) -> None:
    """A set moved to another disk and linked back under its name (class/generated-<hash> -> /big/dogs-set), which the
    generator still finds by that name, was not warned of as a class_dir: only the folder the link leads to was
    looked at, and its name is not the settings' hash."""
    moved = _generated_set(tmp_path / "big" / "dogs-set")
    (moved / "sub").mkdir()
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / _SET).symlink_to(moved)
    [problem] = [p for p in check_profile(_prior(tmp_path, class_dir=f"{tmp_path / 'class' / _SET}{below}")).warnings
                 if p.key == "concepts.0.class_dir"]
    assert f'set class_dir = "{tmp_path / "class"}"' in problem.message and ("is inside" in problem.message) == inside
