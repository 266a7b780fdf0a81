"""Pictures a user put in a class folder that are not used as class images (links leading out of it, images in its
sub-folders) are said, by the run and by the dataset doctor: they were left out in silence, and class images
generated in their place."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dbtui.cli import main
from engine.data.images import unused_class_images
from engine.training.class_generation import unused_class_image_warnings
from engine.training.class_images import ClassRequest


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # Rich wraps table cells at 80 columns when piped, and the paths are long under xdist


def _pictures(folder: Path, count: int, prefix: str = "disc") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}_{i}.png" for i in range(count)]
    for path in paths:
        Image.new("RGB", (64, 64), (40 * len(path.name), 80, 120)).save(path)
    return paths


def _linked(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "cls_links"
    folder.mkdir()
    for picture in _pictures(tmp_path / "photos", count):
        (folder / picture.name).symlink_to(picture)
    return folder


def test_links_out_of_a_class_folder_and_its_sub_folders_images_are_counted_with_why(tmp_path: Path) -> None:
    folder = _linked(tmp_path, 3)
    count, why = unused_class_images(folder)
    assert count == 3 and "3 image link(s) lead out of the folder" in why
    _pictures(folder / "man_euler", 2)
    for picture in _pictures(folder / "generated-0123456789", 4, prefix="class"):  # a set being made: no manifest yet
        picture.rename(picture.with_name(f"class_{int(picture.stem[6:]):05d}.png"))
    _pictures(folder / ".thumbnails", 4)
    count, why = unused_class_images(folder)
    assert count == 5 and "sub-folder(s) 'man_euler' hold 2 image(s), which are not read" in why


def test_a_class_folder_whose_pictures_are_all_used_says_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "cls"
    _pictures(folder, 2)
    (folder / "inside.png").symlink_to(folder / "disc_0.png")  # a link within the folder is read
    assert unused_class_images(folder) == (0, "")
    assert unused_class_images(tmp_path / "missing") == (0, "")


def test_the_run_says_each_class_folder_with_unused_pictures_once(tmp_path: Path) -> None:
    folder = _linked(tmp_path, 2)
    requests = [ClassRequest(0, folder, "photo of a disc", "", 4), ClassRequest(1, folder, "photo of a disc", "", 4),
                ClassRequest(2, tmp_path / "photos", "photo of a disc", "", 4)]
    [said] = unused_class_image_warnings(requests, **_SETTINGS)
    assert said.startswith(f"concepts.0.class_dir: 2 picture(s) in '{folder}' are not used as class images: its 2 image")
    assert said.endswith("class images are generated in their place")


_SETTINGS = dict(model={"pretrained": "m"}, resolution=64, seed=1, steps=2, guidance=7.5)


def test_a_sub_folder_that_cannot_be_read_is_passed_over(tmp_path: Path, monkeypatch) -> None:
    """A disk's lost+found (drwx------ root) as a class folder's sub-folder stopped the run and the dataset check."""
    folder = tmp_path / "cls"
    _pictures(folder, 1)
    _pictures(folder / "lost+found", 1)
    _pictures(folder / "extra", 2)
    listed = Path.iterdir

    def iterdir(self: Path):
        if self.name == "lost+found":
            raise PermissionError(13, "Permission denied", str(self))
        return listed(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    count, why = unused_class_images(folder)
    assert count == 2 and "'extra'" in why and "lost+found" not in why
    [said] = unused_class_image_warnings([ClassRequest(0, folder, "photo of a disc", "", 4)], **_SETTINGS)
    assert "2 picture(s)" in said


def test_the_warning_says_whether_class_images_are_generated(tmp_path: Path) -> None:
    folder = tmp_path / "cls"
    _pictures(folder, 3)
    _pictures(folder / "extra", 2)
    [enough] = unused_class_image_warnings([ClassRequest(0, folder, "photo of a disc", "", 3)], **_SETTINGS)
    assert enough.endswith("none are needed: the class images already there make the 3 wanted")
    assert "generated" not in enough
    [short] = unused_class_image_warnings([ClassRequest(0, folder, "photo of a disc", "", 5)], **_SETTINGS)
    assert short.endswith("class images are generated in their place")


def test_the_instance_folder_below_the_class_folder_is_not_counted(tmp_path: Path) -> None:
    """A class folder 'data' above the instance folder 'data/dog': advising to give 'dog' as the class folder pointed
    at the instance folder."""
    folder = tmp_path / "data"
    _pictures(folder, 2)
    _pictures(folder / "dog", 3)
    assert unused_class_images(folder, (tmp_path / "data" / "dog",)) == (0, "")
    requests = [ClassRequest(0, folder, "photo of a dog", "", 4)]
    assert unused_class_image_warnings(requests, (folder / "dog",), **_SETTINGS) == []


def test_a_run_on_a_class_folder_of_links_warns_that_it_generates_instead(tmp_path: Path) -> None:
    from engine.runs.in_process import train
    from tests.training_helpers import tiny_profile

    folder = _linked(tmp_path, 1)
    profile = tiny_profile(tmp_path, training={"max_train_steps": 1}, prior={"enabled": True, "steps": 1},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": str(folder), "class_prompt": "photo of a disc", "num_class_images": 1}])
    events = []
    train(profile, tmp_path / "run", sinks=[events.append])
    [warning] = [e for e in events if e.kind == "warning" and "class_dir" in e.message]
    assert "1 image link(s) lead out of the folder" in warning.message


def test_dataset_check_says_why_a_class_folder_of_links_has_none_present(tmp_path: Path, capsys) -> None:
    """It said "4 wanted, 0 present" with no reason, where `ls` shows 4 pictures."""
    instance = tmp_path / "inst"
    _pictures(instance, 3, "zwx")
    folder = _linked(tmp_path, 4)
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{instance}"\n'
                       f'instance_prompt = "photo of zwx disc"\nclass_dir = "{folder}"\nclass_prompt = "photo of a disc"\n'
                       'num_class_images = 4\n[dataset]\nresolution = 64\n[prior]\nenabled = true\nsteps = 2\n')
    main(["dataset", "check", "--profile", str(profile)])
    out = capsys.readouterr().out
    assert "4 picture(s) in the class folder are not used as class images: its 4 image link(s) lead out" in out
    assert "4 wanted, 0 present (4 more picture(s) in the folder not used: see its warning), 4 to generate" in out
    profile.write_text(profile.read_text().replace("enabled = true", "enabled = false"))
    main(["dataset", "check", "--profile", str(profile)])
    assert "not used as class images" not in capsys.readouterr().out  # no class images are wanted


def test_dataset_check_says_nothing_is_generated_when_the_class_folder_holds_enough(tmp_path: Path, capsys) -> None:
    instance = tmp_path / "data" / "inst"
    _pictures(instance, 3, "zwx")
    folder = tmp_path / "data"
    _pictures(folder, 2)
    _pictures(folder / "extra", 2)
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{instance}"\n'
                       f'instance_prompt = "photo of zwx disc"\nclass_dir = "{folder}"\nclass_prompt = "photo of a disc"\n'
                       'num_class_images = 2\n[dataset]\nresolution = 64\n[prior]\nenabled = true\nsteps = 2\n')
    main(["dataset", "check", "--profile", str(profile)])
    out = capsys.readouterr().out
    assert "2 picture(s) in the class folder are not used" in out and "'inst'" not in out
    assert "nothing to do if the class images already there" in out and "in their place" not in out
