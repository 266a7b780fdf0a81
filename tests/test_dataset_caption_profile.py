"""``dbtui dataset caption --profile P [--concept N] [--set KEY=VALUE]`` captions each concept's instance_dir with the
profile's caption extension, as check and prepare take a profile: caption alone said "unrecognized arguments: --profile",
so a profile's folders and extension had to be typed again for every caption edit."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured

from dbtui.cli import main
from engine.builtin import resolve_dir


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    """Two concepts whose images are captioned in .caption, which the profile's dataset.caption_extension says."""
    for name, tag in (("dog", "dog"), ("cat", "cat")):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(2):
            textured(i, (32, 32)).save(folder / f"{i}.png")
            (folder / f"{i}.caption").write_text(f"photo, {tag}\n", encoding="utf-8")
    path = tmp_path / "p.toml"
    path.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[dataset]\ncaption_extension = ".caption"\n'
                    f'[[concepts]]\ninstance_dir = "{tmp_path / "dog"}"\ninstance_prompt = "photo of ohwx dog"\n'
                    f'[[concepts]]\ninstance_dir = "{tmp_path / "cat"}"\ninstance_prompt = "photo of zwx cat"\n')
    return path


def _words(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())


def test_every_concept_s_folder_is_read_with_the_profile_s_caption_extension(profile: Path, tmp_path: Path,
                                                                             capsys) -> None:
    assert main(["dataset", "caption", "--profile", str(profile), "--frequency"]) == 0
    assert _words(capsys) == f"concepts.0: {tmp_path / 'dog'} 2 dog 2 photo concepts.1: {tmp_path / 'cat'} 2 cat 2 photo"


def test_concept_chooses_the_one_folder_edited(profile: Path, tmp_path: Path, capsys) -> None:
    assert main(["dataset", "caption", "--profile", str(profile), "--concept", "1", "--add-tag", "zwx"]) == 0
    assert "add tag 'zwx': 2 caption(s) changed" in _words(capsys)
    assert (tmp_path / "cat" / "0.caption").read_text(encoding="utf-8").startswith("zwx, photo, cat")
    assert (tmp_path / "dog" / "0.caption").read_text(encoding="utf-8") == "photo, dog\n"


def test_a_folder_given_takes_the_profile_s_extension(profile: Path, tmp_path: Path, capsys) -> None:
    assert main(["dataset", "caption", str(tmp_path / "dog"), "--profile", str(profile), "--frequency"]) == 0
    assert _words(capsys) == "2 dog 2 photo"
    assert main(["dataset", "caption", str(tmp_path / "dog"), "--profile", str(profile), "--concept", "0", "--trim"]) == 2
    assert "give FOLDER or --concept, not both" in capsys.readouterr().err


def test_set_changes_the_folders_and_extension_read(profile: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "dog" / "0.txt").write_text("ohwx, grass\n", encoding="utf-8")
    assert main(["dataset", "caption", "--profile", str(profile), "--concept", "0", "--frequency",
                 "--set", "dataset.caption_extension=.txt"]) == 0
    assert _words(capsys) == "1 grass 1 ohwx"
    bird = tmp_path / "bird"
    textured(0, (32, 32)).save((bird.mkdir() or bird) / "a.png")
    (bird / "a.caption").write_text("bird\n", encoding="utf-8")
    assert main(["dataset", "caption", "--profile", str(profile), "--concept", "1", "--frequency",
                 "--set", f'concepts.1.instance_dir="{bird}"']) == 0
    assert _words(capsys) == "1 bird"


def test_what_the_profile_gives_or_needs_is_refused_with_what_to_do(profile: Path, tmp_path: Path, capsys) -> None:
    assert main(["dataset", "caption", "--profile", str(profile), "--extension", ".txt", "--trim"]) == 2
    assert "--set dataset.caption_extension=.txt" in capsys.readouterr().err
    assert main(["dataset", "caption", str(tmp_path / "dog"), "--concept", "0", "--trim"]) == 2
    assert "--concept chooses a concept of a profile: give --profile with it" in capsys.readouterr().err
    assert main(["dataset", "caption", str(tmp_path / "dog"), "--set", "dataset.resolution=256", "--trim"]) == 2
    assert "--set overrides a profile's value: give --profile with it" in capsys.readouterr().err
    assert main(["dataset", "caption", "--trim"]) == 2
    assert "needs a FOLDER, or --profile to caption each concept's instance_dir" in capsys.readouterr().err
    assert main(["dataset", "caption", str(profile), "--trim"]) == 2
    assert f"`dbtui dataset caption --profile {profile}` captions each of its concepts' folders" in capsys.readouterr().err


def test_a_missing_concept_folder_is_refused_before_any_folder_is_edited(profile: Path, tmp_path: Path, capsys) -> None:
    gone = tmp_path / "gone"
    assert main(["dataset", "caption", "--profile", str(profile), "--add-tag", "x",
                 "--set", f'concepts.1.instance_dir="{gone}"']) == 2
    assert f"concepts.1.instance_dir: {gone} is not a folder" in capsys.readouterr().err
    assert (tmp_path / "dog" / "0.caption").read_text(encoding="utf-8") == "photo, dog\n"


def test_help_lists_the_profile_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["dataset", "caption", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--profile PROFILE" in out and "--concept CONCEPT" in out and "--set KEY=VALUE" in out
    assert "default with --profile: each concept's instance_dir" in out


def test_every_missing_concept_folder_is_named_with_where_a_relative_one_was_read(profile: Path, tmp_path: Path,
                                                                                  monkeypatch, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the profile's folders, given relative, are read from here, where they are not
    assert main(["dataset", "caption", "--profile", str(profile), "--trim",
                 "--set", 'concepts.0.instance_dir="dog"', "--set", 'concepts.1.instance_dir="cat"']) == 2
    said = " ".join(capsys.readouterr().err.split())
    for index, name in enumerate(("dog", "cat")):
        assert f"concepts.{index}.instance_dir: {name} is not a folder" in said
    assert f"(relative paths are read from the folder dbtui runs in, {elsewhere})" in said


def test_recursive_is_refused_beside_the_profile_s_folders(profile: Path, tmp_path: Path, capsys) -> None:
    """Training reads a concept's own images only; -r edited the sub-folders' captions too, and a concept's folder
    inside another's twice."""
    inner = tmp_path / "dog" / "puppy"
    inner.mkdir()
    (inner / "a.caption").write_text("puppy\n", encoding="utf-8")
    textured(0, (32, 32)).save(inner / "a.png")
    assert main(["dataset", "caption", "--profile", str(profile), "-r", "--replace", "puppy", "puppy, small",
                 "--set", f'concepts.1.instance_dir="{inner}"']) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "--recursive with --profile: training reads only the images directly in each concept's instance_dir" in said
    assert "leave out -r, make each sub-folder a concept of its own, or name the FOLDER to caption" in said
    assert (inner / "a.caption").read_text(encoding="utf-8") == "puppy\n"
    assert main(["dataset", "caption", str(tmp_path / "dog"), "--profile", str(profile), "-r", "--frequency"]) == 0
    assert _words(capsys) == "2 dog 2 photo 1 puppy"  # a FOLDER given is the user's to read with its sub-folders


def test_the_demo_s_own_pictures_are_read_but_not_edited(tmp_path: Path, monkeypatch, capsys) -> None:
    """`caption --profile profiles/tiny-demo.toml --add-tag` wrote caption files into dbtui's cache, beside the demo
    pictures every profile naming builtin:demo-instance reads; counting their tags edits nothing and is still taken."""
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path / "cache"))
    demo = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"
    captions = {path: path.read_bytes() for path in Path(resolve_dir("builtin:demo-instance")).glob("*.txt")}
    assert main(["dataset", "caption", "--profile", str(demo), "--add-tag", "hello"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "concepts.0.instance_dir is builtin:demo-instance" in said and "copy" in said, said
    assert captions and {path: path.read_bytes() for path in captions} == captions
    assert main(["dataset", "caption", "--profile", str(demo), "--frequency"]) == 0


def test_auto_loads_the_captioner_once_for_every_concept(profile: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """`caption --profile P --auto blip` loaded BLIP again for each concept's folder (seconds each for its base model)."""
    import importlib

    loaded = []

    class SaysAPhoto:
        def __init__(self, model: str) -> None:
            loaded.append(model)

        def __call__(self, pictures: list) -> list[str]:
            return ["a photo"] * len(pictures)

    # The module by its name: engine.dataset's function of that name hides it as an attribute.
    monkeypatch.setattr(importlib.import_module("engine.dataset.autocaption"), "_Blip", SaysAPhoto)
    assert main(["dataset", "caption", "--profile", str(profile), "--auto", "blip", "--overwrite", "--model", "m"]) == 0
    assert loaded == ["m"]
    for name in ("dog", "cat"):
        assert (tmp_path / name / "1.caption").read_text(encoding="utf-8").strip() == "a photo"


def test_an_image_extension_is_refused_before_the_captioner_loads(tmp_path: Path, monkeypatch, capsys) -> None:
    """`caption FOLDER --auto blip --extension .png` loaded BLIP (a download, or offline its failure said in place of
    the mistake) before refusing the extension, once the captioner was loaded ahead of the folders."""
    import importlib

    loaded = []

    class SaysAPhoto:
        def __init__(self, model: str) -> None:
            loaded.append(model)

        def __call__(self, pictures: list) -> list[str]:
            return ["a photo"] * len(pictures)

    monkeypatch.setattr(importlib.import_module("engine.dataset.autocaption"), "_Blip", SaysAPhoto)
    folder = tmp_path / "dog"
    folder.mkdir()
    textured(0, (32, 32)).save(folder / "0.png")
    assert main(["dataset", "caption", str(folder), "--auto", "blip", "--extension", ".png"]) == 2
    assert "caption extension '.png' is an image extension" in capsys.readouterr().err
    assert loaded == []
    assert main(["dataset", "caption", str(folder), "--auto", "blip", "--extension", "caption"]) == 0
    assert loaded == ["Salesforce/blip-image-captioning-base"]
    assert (folder / "0.caption").read_text(encoding="utf-8").strip() == "a photo"  # "caption" read as .caption
