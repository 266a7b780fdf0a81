"""``dbtui dataset …`` end to end through the CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixture import textured, write_fixture

from dbtui.cli import main
from engine.builtin.tiny_model import write_byte_tokenizer


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # Rich wraps table cells at 80 columns when piped


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    folder = tmp_path / "clean"
    folder.mkdir()
    for i in range(3):
        textured(i).save(folder / f"{i}.jpg", quality=95)
        (folder / f"{i}.txt").write_text(f"ohwx, dog, scene {i}\n")
    return folder


def test_check_exits_1_on_errors_and_0_on_a_clean_folder(tmp_path: Path, clean: Path, capsys) -> None:
    broken = write_fixture(tmp_path / "broken")
    assert main(["dataset", "check", str(broken), "--caption-mode", "caption_file"]) == 1
    out = capsys.readouterr().out
    assert "webpage.jpg" in out and "uncaptioned.jpg" in out and "error" in out
    assert "Suggested training steps: 1600" in out
    assert main(["dataset", "check", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "3 images, 3 usable" in out and "512×512: 3" in out


def test_check_with_a_profile_uses_its_settings(tmp_path: Path, clean: Path, capsys) -> None:
    write_byte_tokenizer(tmp_path / "tokenizer")  # byte-level: every word is several tokens
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\ntokenizer = "{tmp_path / "tokenizer"}"\n'
                       f'[[concepts]]\ninstance_dir = "{clean}"\ninstance_prompt = "photo of ohwx dog"\n'
                       'class_prompt = "photo of a dog"\ncaption_mode = "caption_file"\n[dataset]\nresolution = 768\n')
    assert main(["dataset", "check", "--profile", str(profile), "--all"]) == 0
    out = capsys.readouterr().out
    assert "smaller than the 768 px" in out
    # Guessed from the prompts; the profile's byte-level tokenizer spells words out, so it says it cannot judge.
    assert "identifier 'ohwx' cannot be judged" in out


def test_check_with_a_profile_says_the_captions_it_does_not_read(tmp_path: Path, clean: Path, capsys) -> None:
    """A folder with a caption per image, in a profile trained with the instance prompt (the wizard's default), was
    checked clean: nothing said its captions would not be used, until the run trained without them."""
    profile = tmp_path / "p.toml"
    concept = f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{clean}"\n'
    profile.write_text(concept + 'instance_prompt = "photo of ohwx dog"\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 image(s) have a caption file (.txt), which training does not read" in out
    assert '"instance_prompt", so each image trains with its instance prompt alone' in out
    assert 'set caption_mode = "caption_file_then_prompt"' in out
    profile.write_text(concept + 'instance_prompt = "photo of ohwx dog"\ncaption_mode = "caption_file_then_prompt"\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    assert "which training does not read" not in capsys.readouterr().out
    for caption in clean.glob("*.txt"):
        caption.unlink()
    profile.write_text(concept + 'instance_prompt = "photo of ohwx dog"\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    assert "which training does not read" not in capsys.readouterr().out


def test_a_folder_checked_alone_says_no_caption_unread_unless_a_caption_mode_is_given(clean: Path, capsys) -> None:
    """`dbtui dataset check FOLDER`, no profile and no --caption-mode, said a captioned folder's captions were files
    'which training does not read: the caption mode is "instance_prompt"', a mode nobody had chosen."""
    assert main(["dataset", "check", str(clean)]) == 0
    assert "which training does not read" not in capsys.readouterr().out
    assert main(["dataset", "check", str(clean), "--caption-mode", "instance_prompt"]) == 0
    assert "3 of 3 image(s) have a caption file (.txt), which training does not read" in capsys.readouterr().out


def test_a_caption_file_of_line_breaks_alone_is_no_caption_training_ignores(clean: Path, capsys) -> None:
    """A caption file holding only a line break (or blanks) trains as no caption, but was counted among the captions
    training would not read; the wizard's count of a folder still being typed raised in its worker."""
    from dbtui.screens.dataset_caption_use import caption_count

    captions = sorted(clean.glob("*.txt"))
    captions[0].write_bytes(b"\r\n")
    captions[1].write_bytes(b"\xef\xbb\xbf  \t\n")
    assert main(["dataset", "check", str(clean), "--caption-mode", "instance_prompt"]) == 0
    assert "1 of 3 image(s) have a caption file (.txt), which training does not read" in capsys.readouterr().out
    assert caption_count(str(clean), ".txt") == (1, 3)
    assert caption_count(str(clean / "being-typ"), ".txt") == (0, 0)


def test_a_profile_given_as_the_folder_is_pointed_to_profile(tmp_path: Path, clean: Path, capsys) -> None:
    """`dbtui dataset check my.toml`, as `validate my.toml` takes it, said 'is a file, not a folder: give the folder that
    holds it (profiles)', which would check the profiles folder as images. It now says to give it as --profile."""
    profile = tmp_path / "my.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{clean}"\n'
                       'instance_prompt = "photo of ohwx dog"\n')
    assert main(["dataset", "check", str(profile)]) == 2
    err = capsys.readouterr().err
    assert f"is a profile, not an image folder: `dbtui dataset check --profile {profile}`" in err, err
    assert "give the folder that holds it" not in err


def test_check_with_a_profile_checks_every_concept_past_one_whose_folder_is_missing(
        tmp_path: Path, clean: Path, capsys) -> None:
    """It stopped at concept 0's missing folder, "nope is not a folder", naming no key and checking no other concept."""
    profile = tmp_path / "p.toml"
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n'
                       f'[[concepts]]\ninstance_dir = "{tmp_path / "nope"}"\ninstance_prompt = "photo of zwx dog"\n'
                       f'[[concepts]]\ninstance_dir = "{clean}"\ninstance_prompt = "photo of qrv cat"\n'
                       '[dataset]\nresolution = 64\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 2
    said = capsys.readouterr()
    assert "3 images, 3 usable" in said.out  # concept 1 is checked
    assert f"concepts.0.instance_dir: {tmp_path / 'nope'} is not a folder" in said.err


def test_a_folder_with_a_profile_of_two_concepts_is_checked_under_one_concept_s_settings(
        tmp_path: Path, clean: Path, capsys) -> None:
    """FOLDER --profile was checked once under each concept's settings: reported clean (concept 0's instance prompt)
    and then full of errors (concept 1's caption files), neither report naming whose settings judged it."""
    uncaptioned = tmp_path / "uncaptioned"
    uncaptioned.mkdir()
    for i in range(2):
        textured(i).save(uncaptioned / f"{i}.jpg", quality=95)
    profile = tmp_path / "p.toml"
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n'
                       f'[[concepts]]\ninstance_dir = "{uncaptioned}"\ninstance_prompt = "photo of zwx dog"\n'
                       f'[[concepts]]\ninstance_dir = "{clean}"\ninstance_prompt = "photo of ohwx dog"\n'
                       'caption_mode = "caption_file"\n[dataset]\nresolution = 64\n')
    assert main(["dataset", "check", str(tmp_path / "uncaptioned" / ".." / "clean"), "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert out.count("3 images, 3 usable") == 1 and "concepts." not in out  # the concept whose folder it is
    assert main(["dataset", "check", str(uncaptioned), "--profile", str(profile), "--concept", "1"]) == 1
    assert capsys.readouterr().out.count("2 images, 0 usable") == 1  # --concept still chooses
    assert main(["dataset", "check", str(tmp_path), "--profile", str(profile)]) == 2
    assert "add --concept N (0 to 1) to say whose settings check it" in capsys.readouterr().err
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert out.index(f"concepts.0: {uncaptioned}") < out.index("2 images, 2 usable") < out.index(f"concepts.1: {clean}")


def test_a_relative_folder_of_a_profile_not_there_says_where_it_was_read_from(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """"data/dog is not a folder" from the profile's own folder, where data/dog is: the relative path is read from the
    working directory (as validate and the run say), which the check did not say."""
    (tmp_path / "profiles" / "data" / "dog").mkdir(parents=True)
    profile = tmp_path / "profiles" / "p.toml"
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n'
                       '[[concepts]]\ninstance_dir = "data/dog"\ninstance_prompt = "photo of zwx dog"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["dataset", "check", "--profile", str(profile)]) == 2
    assert (f"concepts.0.instance_dir: data/dog is not a folder: give the folder that holds your training images "
            f"(relative paths are read from the folder dbtui runs in, {tmp_path})") in capsys.readouterr().err


def test_a_profiles_missing_or_file_instance_dir_is_refused_before_any_tokenizer_is_read(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """`dataset check --profile P` loaded the model's tokenizer (8-10 s for SDXL) before it said the folder was missing,
    though every refusal was to come first. Each bad concept is named. (Beside a concept whose folder is there, the
    tokenizer is read for that one's report, and the missing are named after it: the test above.)"""
    from dbtui.cli import dataset_check_profile

    (tmp_path / "photo.png").write_bytes(b"")
    profile = tmp_path / "p.toml"
    concepts = "".join(f'[[concepts]]\ninstance_dir = "{folder}"\ninstance_prompt = "photo of zwx{index} dog"\n'
                       for index, folder in enumerate((tmp_path / "gone", tmp_path / "photo.png")))
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n' + concepts)

    def read(*args: object) -> None:
        raise AssertionError("a tokenizer was read before the refusal")

    monkeypatch.setattr(dataset_check_profile, "loaded_readers", read)
    assert main(["dataset", "check", "--profile", str(profile)]) == 2
    err = capsys.readouterr().err
    assert f"concepts.0.instance_dir: {tmp_path / 'gone'} is not a folder" in err
    assert f"concepts.1.instance_dir: {tmp_path / 'photo.png'} is a file, not a folder" in err


def test_prepare_and_caption_commands(clean: Path, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "prepared"
    assert main(["dataset", "prepare", str(clean), str(out_dir), "--resolution", "64", "--flatten-color", "#00ff00"]) == 0
    assert "3 written" in capsys.readouterr().out and len(list(out_dir.glob("*.png"))) == 3
    assert main(["dataset", "caption", str(clean), "--add-tag", "best", "--back"]) == 0
    assert (clean / "0.txt").read_text() == "ohwx, dog, scene 0, best\n"
    assert main(["dataset", "caption", str(clean), "--frequency"]) == 0
    assert "     3  best" in capsys.readouterr().out
    assert main(["dataset", "caption", str(clean), "--undo"]) == 0
    assert (clean / "0.txt").read_text() == "ohwx, dog, scene 0\n"
    assert main(["dataset", "caption", str(clean), "--undo"]) == 2  # nothing left to undo: a message, not a traceback
    assert "nothing to undo" in capsys.readouterr().err


def test_undo_in_a_sub_folder_of_a_recursive_edit_says_where_its_record_is(clean: Path, capsys) -> None:
    """`caption -r DIR --add-tag x` then `caption DIR/sub --undo` said only "nothing to undo", as if the edit were
    lost: its record is DIR's; the refusal now says the command that undoes it."""
    sub = clean / "sub"
    sub.mkdir()
    textured(5).save(sub / "s.jpg", quality=95)
    (sub / "s.txt").write_text("dog\n")
    assert main(["dataset", "caption", "-r", str(clean), "--add-tag", "x"]) == 0
    capsys.readouterr()
    assert main(["dataset", "caption", str(sub), "--undo"]) == 2
    assert f"undo it with `dbtui dataset caption {clean} --undo`" in capsys.readouterr().err.replace("\n", "")
    assert (sub / "s.txt").read_text() == "x, dog\n"  # nothing undone in part


@pytest.mark.parametrize(("given", "said"), [(["--remove-tag", "x", "--back"], "--back goes with --add-tag only"),
                                           (["--add-tag", "x", "--overwrite"], "--overwrite goes with --auto only"),
                                           (["--undo", "--model", "m"], "--model goes with --auto only"),
                                           (["--trim", "--new-captions"], "--new-captions goes with --add-tag only")])
def test_caption_options_without_their_action_are_refused(clean: Path, capsys, given: list[str], said: str) -> None:
    """`caption --remove-tag x --back` (and --overwrite or --model without --auto) did the action, the option
    ignored without a word; it is now refused before anything is changed, as argparse refuses."""
    with pytest.raises(SystemExit) as stop:
        main(["dataset", "caption", str(clean), *given])
    assert stop.value.code == 2 and f"error: {said}" in capsys.readouterr().err
    assert (clean / "0.txt").read_text() == "ohwx, dog, scene 0\n"
    assert not (clean / ".dbtui-captions-history").exists()


def test_bad_flatten_colour_is_refused(clean: Path, tmp_path: Path, capsys) -> None:
    assert main(["dataset", "prepare", str(clean), str(tmp_path / "o"), "--flatten-color", "green"]) == 2
    assert "--flatten-color 'green' is not R,G,B" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("concept", ["3", "-1"])
def test_a_concept_number_the_profile_lacks_is_refused_with_the_numbers_it_has(concept: str, capsys) -> None:
    demo = str(Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml")
    assert main(["dataset", "check", "--profile", demo, "--concept", concept]) == 2
    assert f"--concept {concept}: the profile has 1 concept(s), numbered 0 to 0" in capsys.readouterr().err


@pytest.mark.parametrize(("action", "said"), [
    (["--add-tag", ""], "the tag is empty"), (["--remove-tag", "  "], "the tag is empty"),
    (["--add-tag", "a,b"], "'a,b' holds a comma, which separates tags"), (["--replace", "", "x"], "the text to find is empty"),
])
def test_an_empty_tag_or_find_text_is_refused_and_nothing_changes(action: list[str], said: str, clean: Path, capsys) -> None:
    (clean / "x.txt").write_text("a,b\n")
    before = {path.name: path.read_bytes() for path in clean.glob("*.txt")}
    assert main(["dataset", "caption", str(clean), *action]) == 2
    assert said in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in clean.glob("*.txt")} == before


def test_dataset_folders_written_with_a_tilde_the_shell_left_are_in_the_home_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`dbtui dataset prepare data '~/prepared'` made a folder named "~" in the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home" / "data").mkdir(parents=True)
    textured(1, (80, 80)).save(tmp_path / "home" / "data" / "a.jpg")
    assert main(["dataset", "prepare", "~/data", "~/prepared", "--resolution", "64"]) == 0
    assert (tmp_path / "home" / "prepared" / "a.png").is_file() and not (tmp_path / "~").exists()
    assert main(["dataset", "check", "~/prepared", "--resolution", "64"]) == 0
    assert main(["dataset", "caption", "~/prepared", "--add-tag", "zwx"]) == 0
    assert (tmp_path / "home" / "prepared" / "a.txt").read_text().strip() == "zwx"
    capsys.readouterr()


def test_prepare_recursive_says_its_copies_in_sub_folders_need_a_concept_each(tmp_path: Path, capsys) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    textured(1, (80, 80)).save(tmp_path / "src" / "top.jpg")
    textured(2, (80, 80)).save(tmp_path / "src" / "sub" / "x.jpg")
    assert main(["dataset", "prepare", str(tmp_path / "src"), str(tmp_path / "out"), "-r", "--resolution", "64"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"1 copy is in sub-folders of {tmp_path / 'out'}: training reads only the images directly" in out


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_a_blur_threshold_that_would_turn_the_check_off_silently_is_refused(value: str, clean: Path, capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["dataset", "check", str(clean), "--blur-threshold", value])
    assert raised.value.code == 2 and "give a number of 0 or more" in capsys.readouterr().err


def test_prepare_steps_buckets_by_the_model_it_is_given(tmp_path: Path, tiny_sdxl: Path) -> None:
    """Without a profile, bucketed copies for SDXL or Flux stepped by SD's 64 px: training then cut them again."""
    from PIL import Image

    from dbtui.cli import main
    from engine.data.buckets import nearest_bucket
    from engine.data.examples import bucket_list
    from engine.models.loading import load_components

    (tmp_path / "src").mkdir()
    Image.new("RGB", (300, 210), (90, 60, 30)).save(tmp_path / "src" / "wide.png")
    assert main(["dataset", "prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--resolution", "64", "--bucketing",
                 "--model", str(tiny_sdxl)]) == 0
    trained = nearest_bucket(300, 210, bucket_list(64, True, None, load_components(tiny_sdxl).size_multiple))
    with Image.open(tmp_path / "out" / "wide.png") as copy:
        assert copy.size == trained


def test_prepare_says_how_many_files_of_the_users_were_kept(tmp_path: Path, capsys) -> None:
    (tmp_path / "X" / "raw").mkdir(parents=True)
    textured(1, (80, 80)).save(tmp_path / "X" / "raw" / "a.jpg")
    textured(2, (100, 100)).save(tmp_path / "X" / "a.png")
    before = (tmp_path / "X" / "a.png").read_bytes()
    assert main(["dataset", "prepare", str(tmp_path / "X" / "raw"), str(tmp_path / "X"), "--resolution", "64"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "a.png exists and is not a copy dbtui made" in out
    assert "1 file(s) in" in out and "give another (new or empty) output folder" in out
    assert (tmp_path / "X" / "a.png").read_bytes() == before


def test_prepare_names_the_captions_it_set_aside_as_their_originals_are_gone_and_where(tmp_path: Path, capsys) -> None:
    (tmp_path / "src").mkdir()
    textured(1, (80, 80)).save(tmp_path / "src" / "a.jpg")
    (tmp_path / "src" / "a.txt").write_text("a caption\n")
    command = ["dataset", "prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--resolution", "64"]
    assert main(command) == 0
    (tmp_path / "src" / "a.txt").unlink()
    capsys.readouterr()
    assert main(command) == 0
    out = " ".join(capsys.readouterr().out.split())
    kept = next((tmp_path / "out").glob(".dbtui-captions-history/removed-*/a.txt"))
    assert kept.read_text() == "a caption\n"
    assert (f"caption set aside {tmp_path / 'out' / 'a.txt'} → {kept}: an earlier prepare copied it, and its original "
            "caption is gone; move it back to train with it") in out


def test_check_with_a_profile_counts_the_class_images_a_run_generated_earlier(tmp_path: Path, clean: Path, tiny_sd1: Path,
                                                                              capsys) -> None:
    """Only the folder's own images were counted: "3 wanted, 1 present, 2 to generate" where the next run makes none."""
    from diffusers import StableDiffusionPipeline

    from engine.profile import load_profile
    from engine.training.class_images import ClassRequest, ensure_class_images
    from engine.training.model_weights import model_identity

    classes = tmp_path / "dogs"
    classes.mkdir()
    textured(9).save(classes / "mine.jpg")
    profile = tmp_path / "p.toml"
    text = (f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{clean}"\n'
            f'instance_prompt = "photo of ohwx dog"\nclass_dir = "{classes}"\nclass_prompt = "photo of a dog"\n'
            'num_class_images = 3\n[dataset]\nresolution = 64\n[prior]\nenabled = true\nsteps = 2\n[training]\nseed = 1\n')
    profile.write_text(text)
    settings = load_profile(profile)
    # As the trainer makes them: its model's identity, and SD1's usual guidance where the profile sets none.
    ensure_class_images([ClassRequest(0, classes, "photo of a dog", "", 3)],
                        make_pipeline=lambda: StableDiffusionPipeline.from_pretrained(tiny_sd1),
                        prompt_kwargs=lambda prompt, negative, count: {"prompt": [prompt] * count, "negative_prompt": [negative] * count},
                        model=model_identity(settings.model, tiny_sd1), resolution=64, seed=1, steps=2, guidance=7.5, batch_size=2)
    main(["dataset", "check", "--profile", str(profile)])
    assert "3 wanted, 1 present, 2 generated earlier in " in (out := capsys.readouterr().out) and ", 0 to generate" in out
    profile.write_text(text.replace("seed = 1", "seed = 2"))  # another seed: those images are not the next run's
    main(["dataset", "check", "--profile", str(profile)])
    assert "3 wanted, 1 present, 2 to generate" in capsys.readouterr().out


def test_caption_help_says_add_tag_creates_the_captions_images_lack(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["dataset", "caption", "--help"])
    assert "create a caption of the tag for each image that has none" in capsys.readouterr().out


def test_many_unreadable_captions_are_named_ten_and_counted_past_that(tmp_path: Path, capsys) -> None:
    """200 unreadable captions printed 600 lines from --add-tag, --frequency and prepare."""
    for i in range(13):
        textured(i, (64, 64)).save(tmp_path / f"{i:02d}.jpg")
        (tmp_path / f"{i:02d}.txt").write_bytes(b"caf\xe9")  # Latin-1: not UTF-8
    for command in (["caption", str(tmp_path), "--add-tag", "x"], ["caption", str(tmp_path), "--frequency"],
                    ["prepare", str(tmp_path), str(tmp_path / "out"), "--resolution", "64", "--workers", "1"]):
        main(["dataset", *command])
        out = capsys.readouterr().out
        assert "09.txt" in out and "10.txt" not in out, command
        assert "… and 3 more" in out and "--caption-mode caption_file` names each caption that cannot be read" in out


def test_the_check_hint_past_ten_skipped_is_given_for_unreadable_captions_only_and_keeps_r(
        tmp_path: Path, capsys, monkeypatch) -> None:
    """Files that are no picture got the hint of `dataset check`, which does not name them, and -r was dropped."""
    monkeypatch.setenv("COLUMNS", "400")
    sub = tmp_path / "sub"
    sub.mkdir()
    for i in range(12):
        (sub / f"{i:02d}.jpg").write_bytes(b"")  # no picture: --add-tag creates no caption beside it
    assert main(["dataset", "caption", str(tmp_path), "-r", "--add-tag", "x"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "… and 2 more skipped"
    for i in range(12):
        (sub / f"{i:02d}.jpg").unlink()
        textured(i, (64, 64)).save(sub / f"{i:02d}.jpg")
        (sub / f"{i:02d}.txt").write_bytes(b"caf\xe9")  # Latin-1: not UTF-8
    assert main(["dataset", "caption", str(tmp_path), "-r", "--add-tag", "x"]) == 1
    out = capsys.readouterr().out
    assert f"(`dbtui dataset check {tmp_path} --caption-mode caption_file -r` names each caption" in out


def test_frequency_only_reads_so_an_unreadable_caption_is_named_and_it_exits_0(clean: Path, capsys) -> None:
    (clean / "1.txt").write_bytes(b"caf\xe9")  # Latin-1: not UTF-8
    assert main(["dataset", "caption", str(clean), "--frequency"]) == 0
    out = capsys.readouterr().out
    assert "     2  ohwx" in out and f"skipped caption file '{clean / '1.txt'}'" in " ".join(out.split())


@pytest.mark.parametrize(("command", "given"), [
    (["check"], ["--resolution", "1024"]), (["check"], ["--caption-mode", "caption_file"]),
    (["check"], ["--bucketing"]), (["prepare"], ["--resolution", "1024"]), (["prepare"], ["--no-center-crop"]),
    (["prepare"], ["--caption-extension", ".caption"])])
def test_a_setting_the_profile_gives_is_refused_beside_it_not_left_unused(command: list[str], given: list[str],
                                                                          clean: Path, tmp_path: Path, capsys) -> None:
    # It was dropped without a word: prepare --profile P --resolution 1024 wrote copies at the profile's 512 px.
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{clean}"\n'
                       'instance_prompt = "photo of ohwx dog"\n')
    folders = [str(clean), str(tmp_path / "out")] if command == ["prepare"] else []
    assert main(["dataset", *command, *folders, "--profile", str(profile), *given]) == 2
    assert f"{given[0]}: with --profile" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_check_shows_the_tokenizers_loading_before_the_images(tmp_path: Path, clean: Path, capsys) -> None:
    """Importing transformers and reading a model's tokenizers took seconds before the first line of the check."""
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{clean}"\n'
                       'instance_prompt = "photo of ohwx dog"\n')
    for arguments in (["--profile", str(profile)], [str(clean), "--model", "builtin:tiny-sd1"]):
        assert main(["dataset", "check", *arguments]) == 0
        out = capsys.readouterr().out
        assert out.index("[load_tokenizer] started builtin:tiny-sd1") < out.index("[load_tokenizer] done in")
        assert out.index("[load_tokenizer] done in") < out.index("[dataset_check] started")
    hub = tmp_path / "hub.toml"  # a hub id is not read to check a dataset: nothing is said loading
    hub.write_text(profile.read_text().replace("builtin:tiny-sd1", "some-user/some-model"))
    assert main(["dataset", "check", "--profile", str(hub)]) == 0
    assert "load_tokenizer" not in capsys.readouterr().out


def test_check_names_the_tokenizer_it_reads_beside_a_hub_id_model(tmp_path: Path, clean: Path, capsys) -> None:
    """A hub-id model with a local model.tokenizer: "[load_tokenizer] started some-user/some-model" read as if the hub
    model were downloaded, where only the tokenizer on this machine is read."""
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "some-user/some-model"\ntokenizer = "builtin:tiny-sd1"\n[[concepts]]\n'
                       f'instance_dir = "{clean}"\ninstance_prompt = "photo of ohwx dog"\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "[load_tokenizer] started builtin:tiny-sd1" in out and "some-user/some-model" not in out


def test_check_with_a_profile_counts_a_class_folder_not_made_yet_as_empty(tmp_path: Path, clean: Path, capsys) -> None:
    """A new profile's class folder, which the run makes and fills: the check said '3 wanted' alone, where a folder made
    empty said '0 present, 3 to generate'."""
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{clean}"\n'
                       'instance_prompt = "photo of ohwx dog"\ncaption_mode = "caption_file"\nclass_prompt = "photo of a dog"\n'
                       f'class_dir = "{tmp_path / "class"}"\nnum_class_images = 3\n[prior]\nenabled = true\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    assert "Class images for prior preservation: 3 wanted, 0 present, 3 to generate" in capsys.readouterr().out
    assert not (tmp_path / "class").exists()  # only read
