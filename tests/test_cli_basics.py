from pathlib import Path

import pytest

from dbtui.cli import main

ROOT = Path(__file__).parents[1]


def test_validate_ok_and_exit_2_with_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "profiles" / "tiny-demo.toml")]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[[concepts]]\ninstance_dir = "d"\ninstance_prompt = "p"\n[trainig]\nseed = 1\n[optimizer]\nname = "sgd"\n'
                   '[model]\npretrained = "m"\n')
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "did you mean 'training'" in err and ":7:" in err


def test_validate_missing_file_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/p.toml"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_a_folder_or_a_name_without_toml_given_as_the_profile_says_which_file(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # Was "cannot read the file: Is a directory", and "file not found" beside mine.toml.
    (tmp_path / "mine.toml").write_text("", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 2
    assert f"is a folder: give a profile's .toml file, e.g. {tmp_path / 'mine.toml'}" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "mine")]) == 2
    assert f"file not found; did you mean {tmp_path / 'mine.toml'}?" in capsys.readouterr().err


def test_a_profile_that_is_a_link_to_nowhere_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Was "file not found" for a file `ls` lists.
    (tmp_path / "p.toml").symlink_to(tmp_path / "moved" / "p.toml")
    assert main(["validate", str(tmp_path / "p.toml")]) == 2
    assert (f"file not found; it is a link to {tmp_path / 'moved' / 'p.toml'}, which is not there (moved or deleted): "
            "point it at the profile") in capsys.readouterr().err


def test_a_profile_linked_through_links_to_nowhere_names_the_missing_end(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # Named only the first link's target, itself a link that ls lists: the missing file was never named.
    (tmp_path / "p.toml").symlink_to("q.toml")
    (tmp_path / "q.toml").symlink_to(tmp_path / "moved" / "p.toml")
    assert main(["validate", str(tmp_path / "p.toml")]) == 2
    assert (f"file not found; it is a link to {tmp_path / 'q.toml'}, itself a link to {tmp_path / 'moved' / 'p.toml'}, "
            "which is not there (moved or deleted): point it at the profile") in capsys.readouterr().err
    (tmp_path / "q.toml").unlink()
    (tmp_path / "q.toml").symlink_to("p.toml")
    assert main(["validate", str(tmp_path / "p.toml")]) == 2
    assert (f"it is a link to {tmp_path / 'q.toml'}, itself a link to {tmp_path / 'p.toml'}, round in a loop: point it "
            "at the profile") in capsys.readouterr().err
    (tmp_path / "loop").symlink_to("loop")  # a folder on the path round a loop: "a link to , which is not there"
    assert main(["validate", str(tmp_path / "loop" / "p.toml")]) == 2
    assert "cannot read the file: Too many levels of symbolic links: a folder on its path is a link that leads round " \
           "in a loop" in capsys.readouterr().err
    (tmp_path / "r.toml").symlink_to(tmp_path / "loop" / "x.toml")  # was "…, which is not there (moved or deleted)"
    assert main(["validate", str(tmp_path / "r.toml")]) == 2
    assert f"it is a link to {tmp_path / 'loop' / 'x.toml'}, whose path runs through a link round a loop" \
        in capsys.readouterr().err


def test_validate_applies_set_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(ROOT / "profiles" / "tiny-demo.toml"), "--set", "training.clip_skip=0"])
    assert code == 2
    assert "training.clip_skip" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "run", "resume", "demo", "runs", "attach", "stop", "save", "sample", "dataset"])
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out) > 100


@pytest.mark.parametrize("command", [["run"], ["export"], ["report"], ["dataset", "check"], [],
                                     ["convert", "to-diffusers"], ["convert", "lora-to-kohya"]])
def test_help_wraps_its_description_to_the_terminal_and_keeps_the_examples_lines(
        command: list[str], monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    out = capsys.readouterr().out
    prose = [line for line in out.split("examples:")[0].splitlines()[1:] if not line.startswith(" ")]  # no usage, options
    assert all(len(line) <= 80 for line in prose), prose
    if "examples:" in out:
        examples = out[out.index("examples:"):].split("\n\n")[0].splitlines()
        assert examples[1].startswith("  dbtui ") and all(line.startswith("  ") for line in examples[1:])


def test_the_wizard_without_a_terminal_says_what_to_use_instead(monkeypatch, capsys) -> None:
    """`ssh host dbtui` or `dbtui < /dev/null`: it drew escape codes into a file until killed, or failed on a closed stream."""
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    assert main([]) == 2  # pytest's stdin is no terminal
    assert "the wizard needs a terminal" in (err := capsys.readouterr().err) and "dbtui run PROFILE" in err


def test_a_deleted_current_folder_is_said_before_anything_runs(monkeypatch, capsys) -> None:
    import os

    def gone() -> str:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "getcwd", gone)
    assert main(["validate", str(ROOT / "profiles" / "tiny-demo.toml")]) == 2
    assert "the current folder was deleted (or moved) under this shell: `cd` to a folder" in capsys.readouterr().err


def test_output_in_a_locale_without_its_characters_is_escaped_not_a_crash(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    profile = tmp_path / "prüfung.toml"
    profile.write_text((ROOT / "profiles" / "tiny-demo.toml").read_text())
    done = subprocess.run([sys.executable, "-m", "dbtui", "validate", str(profile)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONIOENCODING="ascii"), cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pr\\xfcfung.toml: valid" in done.stdout


def test_a_crash_log_is_written_for_a_command_line_of_undecodable_bytes(tmp_path: Path, monkeypatch) -> None:
    from dbtui.cli import boundary

    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path))
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log = boundary.write_crash_log(["fit", "bad\udcffname.toml"])
    assert log is not None and "bad\\udcffname.toml" in log.read_text() and "RuntimeError: boom" in log.read_text()


def test_packaged_demo_profile_is_the_example_profile() -> None:
    """A copy, not a link: `cp -r profiles/ mine/` must give a profile that works."""
    from engine.builtin import demo_profile_text

    example = ROOT / "profiles" / "tiny-demo.toml"
    assert not example.is_symlink() and demo_profile_text() == example.read_text()


def test_a_demo_writes_over_no_earlier_run_and_no_edited_profile(tmp_path: Path) -> None:
    from dbtui.cli.cmd_demo import demo_name

    assert demo_name(tmp_path) == "tiny-demo"
    (tmp_path / "tiny-demo.toml").write_text("# the user's edits\n")  # a demo that stopped before its run began
    assert demo_name(tmp_path) == "tiny-demo-2"
    (tmp_path / "runs" / "tiny-demo-2").mkdir(parents=True)
    (tmp_path / "runs" / "tiny-demo-2" / "events.jsonl").write_text("")
    assert demo_name(tmp_path) == "tiny-demo-3"


def test_a_demo_in_a_workdir_written_with_a_tilde_keeps_the_earlier_demos_edited_profile(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui demo --workdir=~/demo` (the shell leaves that ~ alone) a second time wrote over the first demo's profile,
    which the user may have edited, then failed on its finished run; and its closing hint, `dbtui run
    '~/demo/tiny-demo.toml'`, quoted the ~ so that no shell expands it, naming a file that is not there."""
    import engine.runs.launcher
    from engine.errors import DbtuiError

    class Started(DbtuiError):
        pass

    def start_run(profile, given_as, waiting=None):
        raise Started(f"started {profile.name} as {given_as}")

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engine.runs.launcher, "start_run", start_run)
    edited = tmp_path / "home" / "demo" / "tiny-demo.toml"
    edited.parent.mkdir(parents=True)
    edited.write_text("# the user's edits\n")
    assert main(["demo", "--workdir", "~/demo", "--plain"]) == 2
    assert edited.read_text() == "# the user's edits\n"
    assert f"started tiny-demo-2 as {edited.parent / 'tiny-demo-2.toml'}" in capsys.readouterr().err
    assert not (tmp_path / "~").exists()


def test_a_demo_in_a_workdir_with_a_dollar_runs_in_that_workdir(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui demo --workdir 'x$HOME_LIKE'` (quoted: the shell leaves the $ alone; $HOME_LIKE set) saved its profile
    there, but put its runs folder into the profile as read, so that the profile read it as $HOME_LIKE's folder: the
    run trained elsewhere (with 'a$$b': in a$b, which nothing names)."""
    import engine.runs.launcher
    from engine.errors import DbtuiError
    from engine.profile import load_profile

    class Started(DbtuiError):
        pass

    def start_run(profile, given_as, waiting=None):
        raise Started(f"runs in {profile.saving.output_dir}")

    monkeypatch.setenv("HOME_LIKE", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(engine.runs.launcher, "start_run", start_run)
    # With a backslash, or both quotes, its runs folder was named a\\b or 'it\\'s "x"'/runs, quotes and all.
    for name in ("x$HOME_LIKE", "a$$b", "a\\b", "it's \"x\""):
        workdir = tmp_path / name
        assert main(["demo", "--workdir", str(workdir), "--plain"]) == 2
        assert f"runs in {workdir / 'runs'}" in capsys.readouterr().err
        assert load_profile(workdir / "tiny-demo.toml").saving.output_dir == str(workdir / "runs")


def test_a_demo_named_with_set_keeps_an_existing_profile_of_that_name(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text("# the user's own profile\n")
    assert main(["demo", "--workdir", str(tmp_path), "--plain", "--set", "name=mine"]) == 2
    assert mine.read_text() == "# the user's own profile\n"
    assert "keeps it as it is" in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_the_demo_says_it_builds_its_builtins_only_when_they_are_not_built(tmp_path: Path, monkeypatch,
                                                                            _isolated_cache: Path) -> None:
    """It said "building the tiny model and demo images on first use" at every demo."""
    from dbtui.cli.cmd_demo import builtins_built
    from engine.builtin import demo_profile_text, resolve_dir, resolve_model, resolve_scorer
    from engine.profile import loads_profile

    profile = loads_profile(demo_profile_text())
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path / "fresh"))
    assert not builtins_built(profile)
    resolve_dir(profile.concepts[0].instance_dir)
    assert not builtins_built(profile)  # the model and the scorers are still to build
    monkeypatch.setenv("DBTUI_CACHE", str(_isolated_cache))
    resolve_model(profile.model.pretrained)
    resolve_dir(profile.concepts[0].instance_dir)
    resolve_scorer(profile.evaluation.clip_model)
    resolve_scorer(profile.evaluation.dino_model)
    assert builtins_built(profile)


def _one_image_folder(tmp_path: Path) -> Path:
    """tmp_path/imgs holding a.png, with no caption file."""
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "a.png")
    return images


def test_validate_warns_about_missing_folders_and_captions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = _one_image_folder(tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text(f'[[concepts]]\ninstance_dir = "{images}"\ninstance_prompt = "x"\ncaption_mode = "caption_file"\n'
                       f'[[concepts]]\ninstance_dir = "{tmp_path / "nope"}"\ninstance_prompt = "y"\n[model]\npretrained = "m"\n')
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "concepts.0.caption_mode: 1 image(s) have no caption file, e.g. a.png" in out
    assert "concepts.1.instance_dir: folder" in out and "does not exist" in out
    assert "model.pretrained" not in out  # "m" is a hub id, looked up when the run starts


def test_validate_asks_the_models_family_and_knows_the_built_in_names(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    """What the load would refuse (a setting the family cannot honour, a built-in that does not exist) is said by validate."""
    demo = str(ROOT / "profiles" / "tiny-demo.toml")
    flux = ["--set", 'model.pretrained="builtin:tiny-flux"', "--set", 'training.method="lora"',
            "--set", "training.min_snr_gamma=5", "--set", "training.clip_skip=2", "--set", "dataset.resolution=72"]
    assert main(["validate", demo, *flux]) == 2  # the family is certain (a built-in's name): errors, every one at once
    err = capsys.readouterr().err
    assert "2 problems in the profile" in err and "--set training.min_snr_gamma=5: min-SNR weighting" in err
    assert "--set training.clip_skip=2: Flux uses CLIP-L" in err
    assert "dataset.resolution" not in err  # 72 is a multiple of the tiny Flux's own step (4), if not of a real Flux's 16
    assert "(as a Flux.1 model)" in err
    # Refused before the load, and in a folder of the test's own: the launch lock is taken first (its folder made),
    # and /nonexistent/runs left behind once made test_meter_absent_model's "/nonexistent/…" a folder that exists.
    runs = tmp_path / "runs"
    assert main(["run", demo, *flux, "--set", f'saving.output_dir="{runs}"']) == 2
    assert "training.clip_skip" in capsys.readouterr().err
    assert not runs.exists()
    assert main(["validate", demo, "--set", 'model.pretrained="someone/my-flux-finetune"',
                 "--set", "training.min_snr_gamma=5"]) == 0  # a hub id not in the cache: the family is a guess, so a warning
    assert "warning: --set training.min_snr_gamma=5: min-SNR weighting" in capsys.readouterr().out
    # A misspelt built-in is wrong on every machine: an error, where a folder not copied here yet is a warning.
    assert main(["validate", demo, "--set", 'model.pretrained="builtin:tiny-sd3"',
                 "--set", 'concepts.0.instance_dir="builtin:demo-instanse"']) == 2
    err = capsys.readouterr().err
    assert """--set model.pretrained="builtin:tiny-sd3": unknown built-in model 'builtin:tiny-sd3'; choose one of: builtin:tiny-sd1""" in err
    assert "unknown built-in folder 'builtin:demo-instanse'" in err and "2 problems in the profile" in err
    assert main(["validate", demo, *flux[:4], "--set", 'precision.mixed_precision="fp16"']) == 0  # runs, likely not as meant
    assert 'warning: --set precision.mixed_precision="fp16": Flux in fp16' in capsys.readouterr().out
    assert main(["validate", demo, *flux, "--set", 'precision.mixed_precision="fp16"']) == 2  # warnings beside errors too
    said = capsys.readouterr()
    assert 'warning: --set precision.mixed_precision="fp16": Flux in fp16' in said.out and "2 problems in the profile" in said.err
    assert main(["validate", demo]) == 0
    assert "warning" not in capsys.readouterr().out


def test_validate_warns_about_empty_caption_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty caption would train its image with no prompt: the dataset doctor calls it an error, and so does run."""
    images = _one_image_folder(tmp_path)
    (images / "a.txt").write_text(" \n")
    profile = tmp_path / "p.toml"
    profile.write_text(f'[[concepts]]\ninstance_dir = "{images}"\ninstance_prompt = "x"\ncaption_mode = "caption_file"\n'
                       '[model]\npretrained = "m"\n')
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    assert "concepts.0.caption_mode: 1 caption file(s) are empty, e.g. a.txt" in capsys.readouterr().out
    (images / "a.txt").write_text("photo of zwx dog\n")
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    assert "empty" not in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["caption_file", "caption_file_then_prompt", "prompt_then_caption_file"])
def test_a_caption_that_cannot_be_read_stops_a_run_before_the_model_loads(
        mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Latin-1 caption was found by the trainer only after the model had loaded (exit 1); missing and empty ones by
    validate and before the run."""
    images = _one_image_folder(tmp_path)
    (images / "a.txt").write_bytes(b"caf\xe9 photo of zwx\n")
    profile = tmp_path / "p.toml"
    profile.write_text(f'name = "r"\n[[concepts]]\ninstance_dir = "{images}"\ninstance_prompt = "x"\ncaption_mode = "{mode}"\n'
                       f'[model]\npretrained = "builtin:tiny-sd1"\n[saving]\noutput_dir = "{tmp_path / "runs"}"\n')
    said = f"concepts.0.caption_mode: 1 caption file(s) cannot be read, e.g. caption file '{images / 'a.txt'}' is not UTF-8"
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    assert said in " ".join(capsys.readouterr().out.split())
    assert main(["run", str(profile), "--plain"]) == 2
    assert said in " ".join(capsys.readouterr().err.split()) and not (tmp_path / "runs").exists()


def test_a_run_whose_model_or_images_are_missing_stops_before_its_trainer_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = _one_image_folder(tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text(f'name = "r"\n[[concepts]]\ninstance_dir = "{tmp_path / "nope"}"\ninstance_prompt = "y"\n'
                       f'[model]\npretrained = "{tmp_path / "no-model"}"\n[saving]\noutput_dir = "{tmp_path / "runs"}"\n')
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    assert f"warning: {profile}:6: model.pretrained: '{tmp_path / 'no-model'}' does not exist on this machine" in capsys.readouterr().out
    assert main(["run", str(profile), "--plain"]) == 2
    err = capsys.readouterr().err
    assert "cannot start the run: model.pretrained:" in err and "concepts.0.instance_dir: folder" in err
    assert not (tmp_path / "runs").exists()  # no run folder, no trainer
    assert main(["run", str(profile), "--plain", "--set", f"concepts.0.instance_dir={str(images)!r}",
                 "--set", "concepts.0.caption_mode='caption_file'", "--set", "model.pretrained='builtin:tiny-sd1'"]) == 2
    assert "concepts.0.caption_mode: 1 image(s) have no caption file" in capsys.readouterr().err


@pytest.mark.parametrize("argv, usage, message", [
    (["serve", "--port", "99999"], "usage: dbtui serve", "99999 is out of range: give 1–65535"),
    (["fit", "p.toml", "--steps", "0"], "usage: dbtui fit", "0 is too small: give 1 or more"),
    (["fit", "p.toml", "--price-per-hour", "-1"], "usage: dbtui fit", "-1 is not a price: give 0 or more"),
    (["fit", "p.toml", "--price-per-hour", "nan"], "usage: dbtui fit", "nan is not a price"),
    (["export", "runs/x", "--plain"], "usage: dbtui export", "unrecognized arguments: --plain"),
    (["export", "runs/x", "--step", "latest"], "usage: dbtui export", "'latest' is not a checkpoint: give its step (800)"),
    (["export", "runs/x", "--step", "\u0663"], "usage: dbtui export", "is not a checkpoint: give its step (800)"),
    (["convert", "to-single-file", "a", "b.safetensors", "--bogus"], "usage: dbtui convert to-single-file", "--bogus"),
    # A misspelling is answered with its closest match, not the usage alone (argparse < 3.14 names none).
    (["run", "p.toml", "--detatch"], "usage: dbtui run", "unrecognized arguments: --detatch; did you mean --detach?"),
    (["hardware", "--famliy", "sd"], "usage: dbtui hardware", "--famliy sd; did you mean --family?"),
    (["run", "p.toml", "--detatch", "--plian"], "usage: dbtui run", "did you mean --detach for --detatch, --plain for --plian?"),
    # --set brought to a command that reads the run's profile: what it does instead, not its close match.
    (["resume", "runs/x", "--set", "training.max_train_steps=40"], "usage: dbtui resume",
     "--set training.max_train_steps=40; resume trains the run's own profile.toml as it is; to change a setting, "
     "`dbtui run PROFILE --resume --set KEY=VALUE`"),
    (["export", "runs/x", "--set=saving.export=[]"], "usage: dbtui export", "; export reads RUN/profile.toml: edit its"),
    (["rnu", "p.toml"], "usage: dbtui ", "invalid choice: 'rnu' (choose from"),
    (["rnu", "p.toml"], "usage: dbtui ", "; did you mean 'run'?"),
    (["dataset", "chek", "photos"], "usage: dbtui dataset", "; did you mean 'check'?"),
    (["convert", "to-diffuser", "a", "b"], "usage: dbtui convert", "; did you mean 'to-diffusers'?"),
    (["hardware", "--family", "sdx"], "usage: dbtui hardware", "invalid choice: 'sdx' (choose from 'sd', 'sd-768', 'sd-1024', 'sd2', 'sd2-768', 'sd2-1024', 'sdxl', 'flux'); did you mean 'sdxl'?"),
    (["wizard"], "usage: dbtui ", "; run `dbtui` with no command to open the wizard"),
])
def test_a_bad_option_is_refused_with_the_commands_own_usage(argv: list[str], usage: str, message: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and message in err


def test_a_missing_relative_folder_says_where_relative_paths_are_read_from(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text('[[concepts]]\ninstance_dir = "data/dog"\ninstance_prompt = "x"\n[model]\npretrained = "m"\n')
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    assert f"folder 'data/dog' does not exist (relative paths are read from the folder dbtui runs in, {tmp_path})" in \
        capsys.readouterr().out


def test_fit_refuses_missing_inputs_before_it_estimates_or_loads_anything(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text('[[concepts]]\ninstance_dir = "nope"\ninstance_prompt = "x"\n[model]\npretrained = "builtin:tiny-sd1"\n')
    assert main(["fit", str(profile)]) == 2
    out, err = capsys.readouterr()
    assert "concepts.0.instance_dir: folder 'nope' does not exist" in err and "memory estimate" not in out


def test_resuming_a_run_whose_profile_is_gone_says_how_to_resume_it(tmp_path: Path, capsys) -> None:
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "events.jsonl").write_text("")
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'profile.toml'} is missing" in err and "dbtui run PROFILE --resume" in err


def test_validate_refuses_what_a_run_would_only_fail_on_at_its_end(tmp_path: Path, capsys) -> None:
    demo = str(ROOT / "profiles" / "tiny-demo.toml")
    assert main(["validate", demo, "--set", 'model.pretrained="builtin:tiny-flux"', "--set", 'saving.export=["safetensors"]']) == 2
    assert """--set saving.export=["safetensors"]: lists safetensors, single-file layouts of SD and SDXL""" in capsys.readouterr().err
    assert main(["validate", demo, "--set", "saving.export=[]"]) == 2
    assert 'names no format: list at least one, e.g. export = ["diffusers"]' in capsys.readouterr().err


def test_a_class_folder_that_is_a_file_or_the_instance_folder_is_a_problem(tmp_path: Path, capsys) -> None:
    images = _one_image_folder(tmp_path)
    profile = tmp_path / "p.toml"
    base = (f'[[concepts]]\ninstance_dir = "{images}"\ninstance_prompt = "zwx"\nclass_prompt = "a disc"\n'
            '[prior]\nenabled = true\n[model]\npretrained = "m"\n')
    profile.write_text(base.replace('class_prompt', f'class_dir = "{images / "a.png"}"\nclass_prompt'))
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    assert "concepts.0.class_dir: '" in (out := capsys.readouterr().out) and "a.png' is a file: give a folder" in out
    profile.write_text(base.replace('class_prompt', f'class_dir = "{images}/"\nclass_prompt'))
    assert main(["validate", "--elsewhere", str(profile)]) == 2  # typed as the instance folder: wrong on every machine
    assert "concepts.0.class_dir: is the instance folder" in capsys.readouterr().err
    other = tmp_path / "cat"
    other.mkdir()
    profile.write_text(base.replace('class_prompt', f'class_dir = "{other}"\nclass_prompt')
                       + f'[[concepts]]\ninstance_dir = "{other}"\ninstance_prompt = "qxr"\n'
                       f'class_dir = "{tmp_path / "cats"}"\nclass_prompt = "a cat"\n')
    assert main(["validate", "--elsewhere", str(profile)]) == 2
    assert "concepts.0.class_dir: is the instance folder of concept 2 (concepts.1): those subject photos" in capsys.readouterr().err
    demo = str(ROOT / "profiles" / "tiny-demo.toml")  # a built-in folder is the same folder by its name
    assert main(["validate", "--elsewhere", demo, "--set", "prior.enabled=true", "--set", 'concepts.0.class_dir="builtin:demo-instance"',
                 "--set", 'concepts.0.class_prompt="a disc"']) == 2
    assert 'class_dir="builtin:demo-instance": is the instance folder' in capsys.readouterr().err


def test_an_instance_folder_that_is_a_file_or_empty_is_said_as_such(tmp_path: Path, capsys) -> None:
    demo = str(ROOT / "profiles" / "tiny-demo.toml")
    assert main(["validate", "--elsewhere", demo, "--set", f'concepts.0.instance_dir="{tmp_path / "a.png"}"']) == 0
    assert "does not exist" in capsys.readouterr().out
    (tmp_path / "a.png").write_bytes(b"x")
    assert main(["validate", "--elsewhere", demo, "--set", f'concepts.0.instance_dir="{tmp_path / "a.png"}"']) == 0
    assert "a.png' is a file: give the folder that holds your subject's images" in capsys.readouterr().out
    assert main(["validate", "--elsewhere", demo, "--set", 'concepts.0.instance_dir=" "']) == 2  # was the current folder, trained as it is
    assert "concepts.0.instance_dir=\" \": is empty; give the folder" in capsys.readouterr().err


def test_sample_is_refused_for_a_run_that_makes_no_previews(tmp_path: Path, capsys, monkeypatch, trainer_of) -> None:
    from engine.profile import save_profile
    from engine.runs.folder import RunFolder, RunState
    from tests.training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "runs" / "t").create()
    folder.events.write_text("")
    save_profile(tiny_profile(tmp_path, sampling={"num_images": 0}), folder.profile)
    folder.write_state(RunState(pid=trainer_of(folder.path), status="running", step=3, total_steps=10))
    assert main(["sample", str(folder.path)]) == 2
    assert "makes no previews (sampling.num_images = 0 and [evaluation] off" in capsys.readouterr().err
    assert not (folder.path / "control" / "sample").exists()


def test_sample_is_asked_of_a_run_that_scores_without_previews(tmp_path: Path, capsys, monkeypatch, trainer_of) -> None:
    # Was refused as making no previews, though its trainer, asked, renders and scores an [evaluation] round, as the
    # dashboard's Sample now (p) asks it to.
    from engine.profile import save_profile
    from engine.runs.folder import RunFolder, RunState
    from tests.training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "runs" / "t").create()
    folder.events.write_text("")
    save_profile(tiny_profile(tmp_path, sampling={"num_images": 0}, evaluation={"enabled": True}), folder.profile)
    folder.write_state(RunState(pid=trainer_of(folder.path), status="running", step=3, total_steps=10))
    assert main(["sample", str(folder.path)]) == 0
    assert (folder.path / "control" / "sample").exists()


@pytest.mark.parametrize(("evaluation", "keep", "said"), [
    (False, 1, "latest 1 checkpoint (saving.keep_last_n): this one is deleted once 1 newer is saved;"),
    (True, 3, "latest 3 checkpoints (saving.keep_last_n): this one is deleted once 3 newer are saved, unless it is the "
              "best-scored step's;")])
def test_a_save_says_that_later_saves_delete_it(evaluation: bool, keep: int, said: str, tmp_path: Path, capsys,
                                                trainer_of) -> None:
    # `dbtui save` said only "it acts at the next step boundary": the checkpoint asked for to keep went at the next
    # periodic saves, as keep_last_n rotates every checkpoint, with nothing said.
    from engine.profile import save_profile
    from engine.runs.folder import RunFolder, RunState
    from tests.training_helpers import tiny_profile

    folder = RunFolder(tmp_path / "runs" / "t").create()
    folder.events.write_text('{"event": "step_ended", "time": 1.0}\n')
    save_profile(tiny_profile(tmp_path, saving={"keep_last_n": keep}, evaluation={"enabled": evaluation}), folder.profile)
    folder.write_state(RunState(pid=trainer_of(folder.path), status="running", step=3, total_steps=10))
    assert main(["save", str(folder.path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert said in out and f"`dbtui export {folder.path} --step STEP` keeps its model" in out
    assert (folder.control / "save").exists()


@pytest.mark.parametrize(("status", "said"), [("starting", "still setting up, so it stops before the first step"),
                                               ("running", "it acts at the next step boundary")])
def test_a_stop_asked_in_set_up_is_said_to_end_it_before_the_first_step(status: str, said: str, tmp_path: Path, capsys,
                                                                        trainer_of) -> None:
    """A stop during set-up ends the run before its first step; `dbtui stop` said it acts at the next step boundary."""
    from engine.runs.folder import RunFolder, RunState

    folder = RunFolder(tmp_path / "runs" / "t").create()
    if status == "running":  # it has trained a step (engine.runs.control.trained_since)
        folder.events.write_text('{"event": "step_ended", "time": 1.0}\n')
    folder.write_state(RunState(pid=trainer_of(folder.path), status=status, step=0, total_steps=10))
    assert main(["stop", str(folder.path)]) == 0
    assert said in capsys.readouterr().out
    assert (folder.path / "control" / "stop").exists()


def test_evaluation_prompts_that_name_no_identifier_are_a_warning(capsys) -> None:
    demo = str(ROOT / "profiles" / "tiny-demo.toml")
    assert main(["validate", demo, "--set", 'evaluation.prompts=["photo of a disc", "a red square"]']) == 0
    out = capsys.readouterr().out
    assert "none names a concept's identifier" in out and "'a zwx disc on the beach'" in out
    assert main(["validate", demo]) == 0
    assert "evaluation.prompts" not in capsys.readouterr().out  # the shipped prompts name zwx


@pytest.mark.parametrize(("second_prompt", "warned"), [("Photo of  ZWX disc", True), ("photo of qrv disc", False)])
def test_two_concepts_with_one_prompt_are_a_warning(second_prompt: str, warned: bool, tmp_path: Path, capsys) -> None:
    demo = (ROOT / "profiles" / "tiny-demo.toml").read_text()
    concept = demo[demo.index("[[concepts]]"):demo.index("[dataset]")]
    second = tmp_path / "second"
    second.mkdir()
    profile = tmp_path / "two.toml"
    profile.write_text(demo.replace("[dataset]", concept.replace('"builtin:demo-instance"', f'"{second}"')
                                    .replace('"photo of zwx disc"', f'"{second_prompt}"') + "[dataset]", 1))
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    out = capsys.readouterr().out
    # Each warning names the line its value is on, as an error does.
    line = next(n for n, text in enumerate(profile.read_text().splitlines(), 1) if second_prompt in text)
    assert (f"warning: {profile}:{line}: concepts.1.instance_prompt: is the prompt of concept 1 (concepts.0) too" in out) == warned


@pytest.mark.parametrize(("folder", "said"), [
    ("model/unet", "it is one part of the diffusers model in"),
    ("runs/mine", "is a dbtui run folder, not a model: the model it finished with is in"),
    ("runs/mine/checkpoints/step-00000004", "is (part of) a training checkpoint, not a model: `dbtui export"),
    ("empty", "give the folder that holds model_index.json"),
])
def test_a_folder_that_is_not_a_diffusers_model_is_said_by_validate_and_refused_by_run(
        folder: str, said: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "model" / "unet").mkdir(parents=True)
    (tmp_path / "model" / "model_index.json").write_text("{}")
    (tmp_path / "runs" / "mine" / "checkpoints" / "step-00000004").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "checkpoints" / "step-00000004" / "manifest.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    _model_said_by_validate_and_refused_by_run(str(tmp_path / folder), said, tmp_path / "out", capsys)


def _model_said_by_validate_and_refused_by_run(model: str, said: str, output_dir: Path, capsys) -> None:
    demo = str(ROOT / "profiles" / "tiny-demo.toml")
    assert main(["validate", demo, "--set", f'model.pretrained="{model}"']) == 2  # as the run: this machine lacks it
    err = capsys.readouterr().err
    assert '  --set model.pretrained="' in err and said in err  # a long override is shown shortened
    assert main(["run", demo, "--set", f'model.pretrained="{model}"', "--set", f"saving.output_dir={output_dir}"]) == 2
    assert said in capsys.readouterr().err and not output_dir.exists()


@pytest.mark.parametrize(("name", "content", "said"), [
    ("fake.safetensors", b"garbage\n", "is a text file, not a model"),
    ("half.safetensors", b"", "is empty (0 bytes): the download or copy did not finish"),
    ("photo.png", b"\x89PNG\r\n", "is a file, but not a model file"),
])
def test_a_damaged_model_file_or_a_file_of_another_kind_is_said_by_validate_and_refused_by_run(
        name: str, content: bytes, said: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """A relative path to an image is a local file, not a hub id; a damaged .safetensors was a crash (exit 3)."""
    (tmp_path / name).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    _model_said_by_validate_and_refused_by_run(name, said, tmp_path / "out", capsys)
    demo = str(ROOT / "profiles" / "tiny-demo.toml")
    profile = tmp_path / "p.toml"
    profile.write_text(Path(demo).read_text().replace('"builtin:tiny-sd1"', f'"{name}"'))
    # The machine's facts, then validate's words and no advice: SD1.5's presets were advised for it, exit 0.
    assert main(["hardware", "--profile", str(profile)]) == 2
    captured = capsys.readouterr()
    assert said in captured.err and "GPU memory by the memory meter" not in captured.out


@pytest.mark.parametrize(("size", "said"), [
    ((0, 0), ["reports a size of 0x0", "`stty cols 80 rows 24`"]),
    ((12, 24), ["is 12x24", "needs at least 40x10", "enlarge the window"]),  # a crash in the start screen's list
    ((80, 9), ["is 80x9", "needs at least 40x10"]),
])
def test_a_terminal_without_a_size_or_too_small_is_refused_with_what_to_do(size: tuple[int, int], said: list[str],
                                                                            monkeypatch, capsys) -> None:
    import os

    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size(size))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert all(words in err for words in said), err


def test_a_logger_whose_package_is_missing_is_said_before_the_run_starts(tmp_path: Path, monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    demo = str(ROOT / "profiles" / "tiny-demo.toml")
    wandb = ["--set", 'logging.logger="wandb"']
    assert main(["validate", "--elsewhere", demo, *wandb]) == 0
    assert 'warning: --set logging.logger="wandb": "wandb" needs the wandb package: pip install wandb' in capsys.readouterr().out
    assert main(["run", demo, *wandb, "--set", f"saving.output_dir={tmp_path / 'out'}"]) == 2
    assert "pip install wandb" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "said"), [("missing", "does not exist on this machine"),
                                            ("notes.txt", "is a file, but not a model file"),
                                            ("empty", "is a folder but not a diffusers model")])
def test_the_wizards_model_check_says_what_is_wrong_with_a_local_path(name: str, said: str, tmp_path: Path) -> None:
    from engine.model_info import describe_model

    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    described = describe_model(str(tmp_path / name))
    assert not described.supported and said in described.family


def test_runs_shows_each_run_path_whole_at_80_columns(tmp_path: Path, monkeypatch, capsys) -> None:
    """It cut long paths to `dbtui-demo/runs/tiny-de…`, the one column one copies into attach or resume."""
    from engine.runs.folder import RunFolder, RunState

    monkeypatch.setenv("COLUMNS", "80")
    base = tmp_path / "a-rather-long-folder-for-runs" / "dbtui-demo" / "runs"
    for name in ("tiny-demo-first-attempt", "tiny-demo-second-attempt"):
        RunFolder(base / name).create().write_state(RunState(pid=1, status="finished", step=4, total_steps=4))
    assert main(["runs", "--dir", str(base)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    column = "".join(line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│"))
    assert str(base / "tiny-demo-first-attempt") in column and str(base / "tiny-demo-second-attempt") in column


def test_runs_names_the_folders_that_hold_runs_when_its_own_holds_none(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui runs` after `dbtui demo` said only "no runs in 'runs'": the demo's are in dbtui-demo/runs."""
    from engine.runs.folder import RunFolder, RunState

    RunFolder(tmp_path / "dbtui-demo" / "runs" / "tiny-demo").create().write_state(RunState(pid=1, status="finished"))
    (tmp_path / ".hidden" / "runs" / "x" / "events.jsonl").parent.mkdir(parents=True)
    (tmp_path / ".hidden" / "runs" / "x" / "events.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    assert main(["runs"]) == 0
    assert capsys.readouterr().out.strip() == "no runs in 'runs'; runs are in `dbtui runs dbtui-demo/runs`"
    assert main(["runs", "dbtui-demo/runs"]) == 0  # DIR given as users type it, without --dir
    assert "tiny-demo" in capsys.readouterr().out
    assert main(["attach"]) == 2
    assert "runs are in dbtui-demo/runs: add `--dir dbtui-demo/runs`" in capsys.readouterr().err


def test_the_demos_closing_words_name_its_report_and_what_its_scores_are_worth(tmp_path: Path) -> None:
    """They named no report.html (the one page to open), and the random scorers' "best step" read as a verdict."""
    from dbtui.cli.cmd_demo import closing_words
    from engine.builtin import demo_profile_text
    from engine.profile import loads_profile
    from engine.runs.folder import RunFolder

    folder = RunFolder(tmp_path / "runs" / "tiny-demo")
    said = closing_words(loads_profile(demo_profile_text()), folder, tmp_path / "tiny-demo.toml")
    assert f"report:  {folder.path / 'report.html'}" in said
    assert f"{folder.path / 'evaluation' / 'step-000000'} (the model before training)" in said
    assert "random-weight scorers (builtin:tiny-clip, builtin:tiny-dino)" in said
    real = loads_profile(demo_profile_text(), ['evaluation.clip_model="openai/clip-vit-base-patch32"',
                                               'evaluation.dino_model="facebook/dino-vits16"'])
    assert "random-weight" not in closing_words(real, folder, tmp_path / "tiny-demo.toml")
    unscored = closing_words(loads_profile(demo_profile_text(), ["evaluation.enabled=false"]), folder, tmp_path / "p.toml")
    assert "random-weight" not in unscored and "before:" not in unscored


def test_version_names_dbtui_its_commit_and_the_training_libraries(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"dbtui {metadata.version('dbtui')}")
    if (ROOT / ".git").exists():
        assert "(commit " in out.splitlines()[0]
    assert f"torch {metadata.version('torch')}" in out and f"diffusers {metadata.version('diffusers')}" in out


def test_version_from_a_checkout_not_pip_installed_is_its_pyproject_version(monkeypatch) -> None:
    """Run from a checkout (PYTHONPATH) with no dbtui package metadata, --version said "dbtui not installed
    (commit ...)": the checkout's pyproject.toml has the version of the code that runs."""
    import tomllib
    from importlib import metadata

    from dbtui.cli import version_text

    def no_metadata(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version_text.metadata, "version", no_metadata)
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version_text.version_text().splitlines()[0].startswith(f"dbtui {expected}")


def test_demo_help_names_the_folder_that_holds_the_before_picture(monkeypatch, capsys) -> None:
    """It said the previews in samples/ turn from a white shape: samples/ holds only steps 150 and 300, never the
    model before training, whose pictures are in evaluation/step-000000/."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "white shape (evaluation/step-000000/ in the run folder" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", [["report"], ["attach"], ["resume"], ["export"], ["stop"]])
def test_a_run_named_but_kept_in_another_output_folder_is_told_the_dir_to_add(
        command: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui report tiny-demo` after `dbtui demo` said only "'tiny-demo' is not a run folder (no events.jsonl)":
    the demo's run is in dbtui-demo/runs, which --dir names."""
    from engine.runs.folder import RunFolder, RunState

    RunFolder(tmp_path / "dbtui-demo" / "runs" / "tiny-demo").create().write_state(RunState(pid=1, status="finished"))
    monkeypatch.chdir(tmp_path)
    assert main([*command, "tiny-demo"]) == 2
    assert "a run named 'tiny-demo' is in dbtui-demo/runs: add `--dir dbtui-demo/runs`" in capsys.readouterr().err
    assert main([*command, "other-name"]) == 2  # no run of that name anywhere: as before
    assert "no folder 'other-name' here or in 'runs'; `dbtui runs` lists them" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["report"], ["attach"], ["resume"], ["export"], ["stop"], ["sample"], ["save"]])
def test_a_run_folder_that_does_not_exist_is_said_so(command: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui report nonexist` said "'nonexist' is not a run folder", as of a folder that holds no run: a typo'd name
    or path was not told as one."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    assert main([*command, "nonexist"]) == 2
    assert "dbtui: no folder 'nonexist' here or in 'runs'; `dbtui runs` lists them" in capsys.readouterr().err
    assert main([*command, f"{tmp_path}/gone/run"]) == 2
    assert f"dbtui: '{tmp_path}/gone/run' does not exist; `dbtui runs` lists them" in capsys.readouterr().err
    assert main([*command, "photos"]) == 2  # there, and no run
    assert "'photos' is not a run folder (no events.jsonl)" in capsys.readouterr().err
    assert main([*command, "nonexist", "--dir", "elsewhere"]) == 2  # plain `dbtui runs` would look in runs/
    assert "in 'elsewhere'; `dbtui runs elsewhere` lists them" in capsys.readouterr().err


def test_a_runs_folder_written_with_a_tilde_is_the_home_folders(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui runs --dir=~/demo/runs` (the shell leaves that ~ alone) said '~/demo/runs' does not exist, and
    `dbtui report tiny-demo --dir=~/demo/runs` that tiny-demo is not a run folder."""
    from engine.runs.folder import RunFolder, RunState

    RunFolder(tmp_path / "home" / "runs" / "tiny-demo").create().write_state(RunState(pid=1, status="finished"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "--dir", "~/runs"]) == 0
    assert "finished" in capsys.readouterr().out  # its row (the path itself folds in the table's narrow column)
    assert main(["stop", "tiny-demo", "--dir", "~/runs"]) == 2  # found: refused only because it is finished
    assert "no trainer is running" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "p.toml", "--resume=~/runs/r/checkpoints/step-00000059"],
                                  ["resume", "r", "--from=~/runs/r/checkpoints/step-00000059"]])
def test_a_checkpoint_path_written_with_a_tilde_is_the_home_folders(argv: list[str], tmp_path: Path, monkeypatch) -> None:
    """`dbtui resume live --from=~/runs/live/checkpoints/step-00000059` (a ~ the shell leaves after `=`) was refused as "no
    checkpoint folder ~/runs/live/checkpoints/step-00000059", naming that very folder among the run's kept ones."""
    from dbtui.cli import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    args = build_parser().parse_args(argv)
    assert (args.resume if argv[0] == "run" else args.checkpoint) == str(tmp_path / "runs/r/checkpoints/step-00000059")


@pytest.mark.parametrize("command", [["validate"], ["fit", "--estimate-only"], ["hardware", "--profile"],
                                     ["dataset", "check", "--profile"]])
def test_a_profile_path_written_with_a_quoted_tilde_is_the_home_folders(command: list[str], tmp_path: Path,
                                                                        monkeypatch, capsys) -> None:
    """`dbtui validate '~/demo/tiny-demo.toml'` (a ~ the shell leaves in quotes) was "file not found"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "p.toml").write_text((ROOT / "profiles" / "tiny-demo.toml").read_text())
    argv = [*command[:1], *command[2:], "~/p.toml", *command[1:2]] if command[0] == "fit" else [*command, "~/p.toml"]
    main(argv)
    assert "not found" not in capsys.readouterr().err


def test_a_run_or_runs_folder_starting_with_a_tilde_of_no_user_is_looked_for_as_written(tmp_path: Path, monkeypatch,
                                                                                         capsys) -> None:
    """'~old' (a folder kept by hand, or no user of that name) crashed 'dbtui report', 'dbtui runs --dir' and
    'dbtui demo --workdir' as 'a bug in dbtui': pathlib raises where the home of ~old is not known; the demo's refusal
    named `--set saving.output_dir`, not --workdir."""
    from engine.runs.folder import RunFolder, RunState

    RunFolder(tmp_path / "~no-such-user-x" / "tiny-demo").create().write_state(RunState(pid=1, status="finished"))
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "--dir", "~no-such-user-x"]) == 0
    assert "finished" in capsys.readouterr().out
    assert main(["stop", "tiny-demo", "--dir", "~no-such-user-x"]) == 2  # found: refused only because it is finished
    assert "no trainer is running" in capsys.readouterr().err
    assert main(["report", "~no-such-user-y"]) == 2
    assert "no folder '~no-such-user-y' here or in 'runs'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # said before anything is written
        main(["demo", "--plain", "--workdir", "~no-such-user-z"])
    assert refused.value.code == 2
    # Named as typed: it was told as `--set saving.output_dir="~no-such-user-z/runs"`, which the user never gave.
    err = capsys.readouterr().err
    assert "argument --workdir: ~no-such-user-z starts with '~no-such-user-z', which names no user here" in err
    assert "saving.output_dir" not in err


def test_an_export_step_that_is_no_step_says_where_the_kept_checkpoints_are() -> None:
    """It sent the user to `dbtui runs`, which lists no kept steps; a checkpoint's path (resume --from takes one) was
    refused without a word of why."""
    import argparse

    from dbtui.cli.cmd_export import checkpoint_step

    assert checkpoint_step("step-00000800") == 800 and checkpoint_step(" 800") == 800
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        checkpoint_step("runs/x/checkpoints/step-00000800")
    assert "dbtui runs" not in str(refused.value)
    assert "not its path; the folders there are the kept checkpoints" in str(refused.value)
