"""Images in sub-folders of an instance folder are not read: the check says where they are, not "no images"."""

from __future__ import annotations

import json
from pathlib import Path

from dataset_fixture import textured

from engine.dataset import check_concept, check_dataset
from engine.dataset.captions import HISTORY_DIR, ORIGINALS_DIR
from engine.dataset.prepared_origin import ORIGIN_RECORD
from engine.profile import Profile


def _images(folder: Path, count: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        textured(seed + i, (64, 64)).save(folder / f"{i}.png")


def _generated_set(class_dir: Path, count: int, *, manifest: bool = True, seed: int = 0) -> Path:
    """A class-image set as engine.training.class_images writes it in ``class_dir``, named by its settings' hash: its
    images, then (after each batch) the manifest."""
    from engine.support.generated_set import generated_folder

    settings = {"model": "m", "prompt": "photo of a dog", "seed": seed}
    folder = generated_folder(class_dir, settings)
    folder.mkdir(parents=True)
    names = [f"class_{i:05d}.png" for i in range(count)]
    for i, name in enumerate(names):
        textured(30 + i, (64, 64)).save(folder / name)
    if manifest:
        (folder / "manifest.json").write_text(json.dumps({**settings, "images": names}), encoding="utf-8")
    return folder


def _folder_findings(report) -> dict[str, str]:
    return {f.code: f.message for f in report.findings if f.path == report.folder}


def test_a_folder_whose_images_are_all_in_sub_folders_says_where_they_are(tmp_path: Path) -> None:
    _images(tmp_path / "a", 2)
    _images(tmp_path / "b", 3, seed=10)
    found = _folder_findings(check_dataset(tmp_path, workers=1))
    assert found["no_images"] == ("the folder has no images of its own; 5 image(s) in sub-folders (a/, b/) are not "
                                  "used: training reads only the images directly in the folder")
    assert "images_in_sub_folders" not in found
    assert "no_images" not in _folder_findings(check_dataset(tmp_path, workers=1, recursive=True))  # it reads them


def test_images_at_the_top_too_get_a_warning_naming_the_sub_folders(tmp_path: Path) -> None:
    _images(tmp_path, 1)
    _images(tmp_path / "more", 2, seed=5)
    report = check_dataset(tmp_path, workers=1)
    finding = next(f for f in report.findings if f.code == "images_in_sub_folders")
    assert finding.severity == "warning" and "2 image(s) in sub-folders (more/)" in finding.message
    assert "make each sub-folder a concept" in finding.fix
    assert "no_images" not in _folder_findings(report)


def test_dbtuis_own_folders_the_class_folder_and_other_concepts_are_not_counted(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    _images(folder, 1)
    for sub in (HISTORY_DIR, f"{HISTORY_DIR}/{ORIGINALS_DIR}", ".originals", "copies", "class", "second"):
        _images(folder / sub, 1, seed=3)
    _generated_set(folder, 1)
    (folder / "copies" / ORIGIN_RECORD).write_text('{"source": "%s"}' % folder, encoding="utf-8")  # prepared into it
    assert "images_in_sub_folders" not in _folder_findings(check_dataset(folder, workers=1, class_dir=folder / "class",
                                                                         concept_folders=(folder / "second",)))
    profile = Profile(model={"pretrained": str(tmp_path / "no-model")}, concepts=[
        {"instance_dir": str(folder), "instance_prompt": "photo of zwx dog", "class_dir": str(folder / "class")},
        {"instance_dir": str(folder / "second"), "instance_prompt": "photo of zwx cat"}])
    assert "images_in_sub_folders" not in _folder_findings(check_concept(profile, 0, workers=1))
    _images(folder / "mine", 1, seed=8)
    assert "(mine/)" in _folder_findings(check_concept(profile, 0, workers=1))["images_in_sub_folders"]


def test_a_link_to_the_folder_itself_or_above_it_is_no_sub_folder(tmp_path: Path) -> None:
    """pics/self -> . and pics/abs_alias -> /…/pics said "6 image(s) in sub-folders (abs_alias/, self/) are not used"
    of the images training does use."""
    folder = tmp_path / "pics"
    _images(tmp_path, 2, seed=20)
    _images(folder, 3)
    (folder / "self").symlink_to(".")
    (folder / "abs_alias").symlink_to(folder)
    (folder / "up").symlink_to("..")
    assert "images_in_sub_folders" not in _folder_findings(check_dataset(folder, workers=1))
    _images(folder / "more", 1, seed=8)
    assert "1 image(s) in sub-folders (more/)" in _folder_findings(check_dataset(folder, workers=1))["images_in_sub_folders"]


def test_other_concepts_class_folders_are_not_counted(tmp_path: Path) -> None:
    """Only their instance folders were passed over: another concept's class folder inside this one's instance or class
    folder was said to hold unused images."""
    for sub, seed in (("pics", 0), ("pics/cat-class", 6), ("reg", 16), ("reg/bird-class", 12), ("cats", 4), ("birds", 5)):
        _images(tmp_path / sub, 1 if "-" not in sub else 2, seed=seed)

    def concept(name: str, class_dir: str) -> dict[str, object]:
        return {"instance_dir": str(tmp_path / name), "instance_prompt": f"photo of zwx {name}",
                "class_dir": str(tmp_path / class_dir), "class_prompt": f"photo of a {name}", "num_class_images": 1}

    profile = Profile(model={"pretrained": str(tmp_path / "no-model")}, prior={"enabled": True}, concepts=[
        concept("pics", "reg"), concept("cats", "pics/cat-class"), concept("birds", "reg/bird-class")])
    findings = check_concept(profile, 0, workers=1).findings
    assert not [f for f in findings if f.code in ("images_in_sub_folders", "class_images_unused")], findings


def test_a_class_folder_of_generated_class_images_only_is_said_so_not_empty(tmp_path: Path) -> None:
    """`dbtui dataset check classA` of a folder holding only dbtui's generated class images said it had no images and
    to point to the folder of the training images."""
    made = _generated_set(tmp_path, 3)
    found = _folder_findings(check_dataset(tmp_path, workers=1))
    assert "no_images" not in found
    assert found["only_generated_class_images"].startswith("the folder holds only the 3 class image(s) dbtui generated")
    (made / "class_00000.png").rename(made / "class_00000.txt")
    (made / "class_00001.png").unlink()
    (made / "class_00002.png").unlink()
    assert "no_images" in _folder_findings(check_dataset(tmp_path, workers=1))  # an empty generated set is no images


def test_a_profile_instance_dir_of_generated_class_images_only_is_an_error(tmp_path: Path) -> None:
    """`dataset check --profile` of a concept whose instance_dir held only generated class images (the folders mixed
    up) said it as a warning, with 0 errors, and advised the very check run: the run then refused the folder."""
    _generated_set(tmp_path / "classes", 3)
    profile = Profile.model_validate({"model": {"pretrained": "builtin:tiny-sd1"}, "concepts": [
        {"instance_dir": str(tmp_path / "classes"), "instance_prompt": "photo of zwx dog"}]})
    report = check_concept(profile, 0, workers=1)
    assert "only_generated_class_images" not in _folder_findings(report)
    assert report.has_errors and "no_images" in _folder_findings(report)


def test_a_folder_of_the_users_named_generated_is_said_and_dbtuis_sets_are_not(tmp_path: Path) -> None:
    """A sub-folder was taken for dbtui's generated class images by its name alone (generated-…): a user's own
    (pics/generated-portraits/, class/generated-regs/) was passed over in silence, its images not read; in a folder of
    nothing else `dataset check` said they were class images dbtui generated, a warning. A set is known by its manifest,
    or, while its first images are made (or after a crash then), by its name and its images' names."""
    from engine.data.images import unused_class_images

    _images(tmp_path / "pics" / "generated-portraits", 2)
    found = _folder_findings(check_dataset(tmp_path / "pics", workers=1))
    assert "only_generated_class_images" not in found
    assert "2 image(s) in sub-folders (generated-portraits/) are not used" in found["no_images"]
    classes = tmp_path / "class"
    _images(classes, 1)
    _images(classes / "generated-0123456789", 3, seed=5)  # named as dbtui names a set, but holding the user's photos
    _generated_set(classes, 2)
    being_made = _generated_set(classes, 1, manifest=False, seed=1)  # a set being made: no manifest yet
    (being_made / ".class_00001.png.99.tmp").write_bytes(b"")
    _generated_set(classes, 2, seed=2).rename(classes / "renamed-set")  # the generator no longer finds it: the user's
    count, why = unused_class_images(classes)
    assert count == 5 and "sub-folder(s) 'generated-0123456789', 'renamed-set' hold 5 image(s)" in why, why


def test_validate_the_run_and_prepare_say_where_a_folders_images_are_not_just_no_images(tmp_path: Path) -> None:
    """Photos sorted into photos/2023/: the doctor said where they were, but validate, the run and prepare said only
    "no images in 'photos'", which the user, seeing them there, could not act on."""
    import re

    import pytest

    from engine.data.examples import build_examples
    from engine.data.images import DataError
    from engine.dataset import prepare_dataset
    from engine.dataset.errors import DatasetError
    from engine.dataset.profile_paths import path_problems

    _images(tmp_path / "photos" / "2023", 2)
    profile = Profile.model_validate({"model": {"pretrained": "builtin:tiny-sd1"}, "concepts": [
        {"instance_dir": str(tmp_path / "photos"), "instance_prompt": "photo of zwx dog"}]})
    said = "its sub-folder(s) '2023' hold 2 image(s), which are not read"
    assert any(said in problem.message for problem in path_problems(profile))
    with pytest.raises(DataError, match=re.escape(said)):
        build_examples(profile, [tmp_path / "photos"], {}, [(64, 64)])
    with pytest.raises(DatasetError, match=re.escape(said) + ".*--recursive"):
        prepare_dataset(tmp_path / "photos", tmp_path / "out", resolution=64, workers=1)


def test_a_recursive_check_and_prepare_name_a_linked_folder_outside_they_do_not_follow(tmp_path: Path) -> None:
    """A recursive check listed nothing of it, and prepare left its images out without a word."""
    from engine.dataset import prepare_dataset

    photos, album = tmp_path / "photos", tmp_path / "album"
    _images(photos, 1)
    _images(album, 2, seed=5)
    (photos / "linked-album").symlink_to(album)
    (photos / "inside").symlink_to(photos)  # a link within the folder: its pictures are read where they are
    report = check_dataset(photos, workers=1, recursive=True)
    refused = [(Path(f.path).name, f.code, f.severity) for f in report.findings if f.code == "link_outside"]
    assert refused == [("linked-album", "link_outside", "error")]
    summary = prepare_dataset(photos, tmp_path / "out", resolution=64, workers=1, recursive=True)
    assert [Path(path).name for path, *_ in summary.failed_folders] == ["linked-album"]


def test_a_refused_folder_is_spoken_of_as_a_folder_and_not_counted_as_an_image(tmp_path: Path, monkeypatch) -> None:
    """A linked folder outside got the advice to copy 'the picture', and it and an unreadable sub-folder were counted
    as images ('3 images, 2 usable' for 2 pictures)."""
    import os

    photos, album = tmp_path / "photos", tmp_path / "album"
    _images(photos, 2)
    _images(album, 2, seed=5)
    (photos / "linked-album").symlink_to(album)
    _images(photos / "locked", 1, seed=9)
    real_scandir = os.scandir

    def scandir(path):  # root lists a chmod-000 folder, so the refusal comes from a stand-in
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = check_dataset(photos, workers=1, recursive=True, resolution=64)
    errors = {Path(f.path).name: f.fix for f in report.findings if f.severity == "error"}
    assert errors == {"linked-album": "copy the folder into the dataset folder instead of linking to it",
                      "locked": f"give yourself access with `chmod u+rx {photos / 'locked'}` (read to list it, execute "
                                "to open its files)"}
    assert (report.summary.images, report.summary.usable) == (2, 2)


def test_prepare_and_the_wizard_count_a_linked_folder_outside_as_a_folder_not_an_image(tmp_path: Path, capsys) -> None:
    """`dataset prepare -r` said '1 image(s) and 0 caption(s) could not be prepared' of 2 pictures and a linked folder,
    and the wizard '1 image(s) could not be prepared', where the check counts that folder as no image."""
    from dbtui.cli import main
    from dbtui.screens.dataset_jobs import prepare_said
    from engine.dataset import prepare_dataset
    from engine.dataset.prepare_findings import left_out_findings

    photos, album = tmp_path / "photos", tmp_path / "album"
    _images(photos, 2)
    _images(album, 2, seed=5)
    (photos / "linked-album").symlink_to(album)
    assert main(["dataset", "prepare", str(photos), str(tmp_path / "cli"), "-r", "--resolution", "64"]) == 1
    said = " ".join(capsys.readouterr().out.split())
    assert "1 sub-folder(s), 0 image(s) and 0 caption(s) could not be prepared" in said, said
    summary = prepare_dataset(photos, tmp_path / "out", resolution=64, workers=1, recursive=True)
    assert (summary.failed, len(summary.written)) == ((), 2)
    assert prepare_said(summary)[1] == "1 sub-folder(s) could not be read: the findings list each, with why and what to do"
    [finding] = left_out_findings(summary)
    assert finding.fix == "copy the folder into the dataset folder instead of linking to it, then Prepare again"


def test_a_recursive_check_prepare_and_caption_pass_over_the_copies_prepared_inside_the_folder(tmp_path: Path) -> None:
    """`prepare photos photos/prepared -r` then `check photos -r` counted the copies beside their originals (twice
    the images, the suggested steps inflated); a second prepare -r into another folder copied the copies."""
    from engine.dataset import prepare_dataset
    from engine.dataset.captions import CaptionStore

    photos = tmp_path / "photos"
    _images(photos, 2)
    _images(photos / "sub", 1, seed=5)
    prepare_dataset(photos, photos / "prepared", resolution=64, workers=1, recursive=True)
    report = check_dataset(photos, workers=1, recursive=True)
    assert sorted(Path(p.path).relative_to(photos).as_posix() for p in report.probes) == ["0.png", "1.png", "sub/0.png"]
    again = prepare_dataset(photos, tmp_path / "other", resolution=64, workers=1, recursive=True)
    assert len(again.written) == 3 and not (tmp_path / "other" / "prepared").exists()
    assert len(CaptionStore(photos, recursive=True).images()) == 3


def test_check_with_a_profile_refuses_recursive_which_counted_pictures_training_never_reads(tmp_path: Path,
                                                                                              capsys) -> None:
    """`dataset check --profile P.toml -r` counted a concept's sub-folders' images (6 images, 600 suggested steps) and
    hid their warning, where the run trains from the 3 directly in instance_dir."""
    from dbtui.cli import main

    photos = tmp_path / "photos"
    _images(photos, 3)
    _images(photos / "sub", 3, seed=5)
    profile = tmp_path / "p.toml"
    profile.write_text(f'schema_version = 1\nname = "p"\n[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\n'
                       f'instance_dir = "{photos}"\ninstance_prompt = "photo of zwx dog"\n[dataset]\nresolution = 64\n',
                       encoding="utf-8")
    assert main(["dataset", "check", "--profile", str(profile), "-r", "--workers", "1"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "--recursive with --profile: training reads only the images directly in each concept's instance_dir" in said
    assert "name the FOLDER to check with its sub-folders (`dbtui dataset check FOLDER --profile FILE -r`)" in said


def test_photos_two_levels_down_as_a_phone_exports_them_are_counted_not_said_to_be_none(tmp_path: Path) -> None:
    """A phone's export (photos/DCIM/Camera/*.jpg): check said "the folder has no images" and to point to the folder of
    the training images, and prepare "nothing to prepare", with no word of the pictures a level further down that -r
    reads; images beside them were said to be 2 in sub-folders where 3 were."""
    from engine.data.images import why_no_images

    photos = tmp_path / "photos"
    _images(photos / "DCIM" / "Camera", 2)
    _images(photos / "DCIM" / "Camera" / "prepared", 2, seed=10)
    (photos / "DCIM" / "Camera" / "prepared" / ORIGIN_RECORD).write_text('{"source": "x"}', encoding="utf-8")
    _images(photos / "DCIM" / ".thumbnails", 2, seed=20)
    found = _folder_findings(check_dataset(photos, workers=1))
    assert found["no_images"].startswith("the folder has no images of its own; 2 image(s) in sub-folders (DCIM/)")
    assert "its sub-folder(s) 'DCIM' hold 2 image(s)" in why_no_images(photos)
    _images(photos, 1, seed=30)
    _images(photos / "web", 1, seed=40)
    found = _folder_findings(check_dataset(photos, workers=1))
    assert "3 image(s) in sub-folders (DCIM/, web/)" in found["images_in_sub_folders"]
    assert len(check_dataset(photos, workers=1, recursive=True).probes) == 4  # what -r, which they are told of, reads


def test_check_with_a_profile_reads_the_sub_folders_of_a_folder_named_as_caption_does(tmp_path: Path, capsys) -> None:
    """`dataset check --profile P FOLDER -r` was refused while `dataset caption --profile P FOLDER -r` read FOLDER's
    sub-folders: a FOLDER the user names is read with them by both, and the check says which images training skips."""
    from dbtui.cli import main

    photos = tmp_path / "photos"
    _images(photos, 3)
    _images(photos / "sub", 2, seed=5)
    profile = tmp_path / "p.toml"
    profile.write_text(f'schema_version = 1\nname = "p"\n[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\n'
                       f'instance_dir = "{photos}"\ninstance_prompt = "photo of zwx dog"\n[dataset]\nresolution = 64\n',
                       encoding="utf-8")
    assert main(["dataset", "check", str(photos), "--profile", str(profile), "-r", "--workers", "1"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "5 images, 3 usable" in said  # the 3 a run reads: the 2 below were counted before
    assert (f"2 image(s) in sub-folders of {photos} were checked, as -r asks, and are not counted as usable nor in the "
            "figures below: a run reads only the images directly in a concept's instance_dir") in said


def test_check_with_a_profile_and_r_passes_over_its_class_folder_inside_folder(tmp_path: Path, capsys) -> None:
    """`dataset check photos --profile P -r`, P's class_dir photos/class: its class images were counted as the
    concept's own, and the note told the user to move them up into the instance_dir, to train them as the subject."""
    from dbtui.cli import main

    photos = tmp_path / "photos"
    _images(photos, 3)
    _images(photos / "class", 4, seed=20)
    _images(photos / "sub", 2, seed=40)
    profile = tmp_path / "p.toml"
    profile.write_text(f'schema_version = 1\nname = "p"\n[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\n'
                       f'instance_dir = "{photos}"\ninstance_prompt = "photo of zwx dog"\nclass_dir = "{photos / "class"}"\n'
                       'class_prompt = "photo of a dog"\nnum_class_images = 4\n[prior]\nenabled = true\n'
                       '[dataset]\nresolution = 64\n', encoding="utf-8")
    assert main(["dataset", "check", str(photos), "--profile", str(profile), "-r", "--workers", "1"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "5 images, 3 usable" in said and "4 present" in said, said
    assert f"2 image(s) in sub-folders of {photos} were checked" in said


def test_a_recursive_check_without_a_profile_suggests_for_the_images_a_run_reads(tmp_path: Path, capsys) -> None:
    """`dataset check photos -r` counted the sub-folders' images as usable: 5 usable, 500 suggested steps and a bucket
    of 5, where a run given photos trains its 3; the sub-folders' images are still checked, and said left out."""
    from dbtui.cli import main

    photos = tmp_path / "photos"
    _images(photos, 3)
    _images(photos / "sub", 2, seed=5)
    assert main(["dataset", "check", str(photos), "-r", "--workers", "1", "--resolution", "64"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "5 images, 3 usable" in said and "Suggested training steps: 300 " in said, said
    assert f"2 image(s) in sub-folders of {photos} were checked, as -r asks, and are not counted as usable" in said
    summary = check_dataset(photos, workers=1, recursive=True, resolution=64, bucketing=True).summary
    assert (summary.images, summary.usable, summary.sub_folder_images) == (5, 3, 2)
    assert summary.suggested_steps == 300 and sum(summary.buckets.values()) == 3


def test_prepare_r_names_an_image_it_leaves_out_by_its_path_under_the_folder(tmp_path: Path) -> None:
    """`prepare photos out -r` where out/a/0.png and out/b/0.png are the user's: both were told "0.png was not
    prepared", not which of photos/a/0.png and photos/b/0.png."""
    from engine.dataset import prepare_dataset

    photos, out = tmp_path / "photos", tmp_path / "out"
    for sub in ("a", "b"):
        _images(photos / sub, 1)
        _images(out / sub, 1, seed=3)
    reasons = sorted(reason for _, reason in prepare_dataset(photos, out, resolution=64, workers=1, recursive=True).kept)
    assert f"and a/0.png (in {photos}) was not prepared" in reasons[0], reasons
    assert f"and b/0.png (in {photos}) was not prepared" in reasons[1], reasons


def test_a_recursive_check_and_prepare_pass_links_that_loop(tmp_path: Path) -> None:
    """`dataset check -r` on a folder holding a -> b -> a stopped with "unexpected error (OSError: Too many levels of
    symbolic links)"; without -r the same folder checked fine. A loop named like an image is still named."""
    from engine.dataset import prepare_dataset

    photos = tmp_path / "photos"
    _images(photos, 1)
    (photos / "a").symlink_to("b")
    (photos / "b").symlink_to("a")
    (photos / "self.png").symlink_to("self.png")
    report = check_dataset(photos, workers=1, recursive=True)
    assert [(Path(f.path).name, f.code) for f in report.findings if f.code == "broken_link"] == [("self.png", "broken_link")]
    assert len(prepare_dataset(photos, tmp_path / "out", resolution=64, workers=1, recursive=True).written) == 1
