"""Broken profiles and unusable run folders end in a message and exit status 2, never a traceback."""

from __future__ import annotations

import errno
import random
import shlex
import tomllib
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from dbtui.cli import main
from engine.profile import Profile, loads_profile

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "profiles" / "tiny-demo.toml"
SHIPPED = [*sorted((ROOT / "profiles").glob("*.toml")), ROOT / "engine" / "builtin" / "tiny-demo.toml"]

GOOD = """[model]
pretrained = "builtin:tiny-sd1"

[[concepts]]
instance_dir = "data/dog"
instance_prompt = "photo of zwx dog"
"""


def write(tmp_path: Path, content: str | bytes, name: str = "p.toml") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def user_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``dbtui argv``, expect exit status 2, and return stderr."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "bug in dbtui" not in err
    return err


# -- encodings -------------------------------------------------------------------------

NOT_UTF8 = {
    "binary": bytes(range(256)) * 4,
    "utf-16 with BOM": GOOD.encode("utf-16"),
    "utf-16 without BOM": GOOD.encode("utf-16-le"),
    "latin-1": GOOD.replace("zwx dog", "zwx café secretword").encode("latin-1"),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("kind", list(NOT_UTF8))
def test_a_profile_that_is_not_utf8_is_a_profile_error(kind: str, command: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, NOT_UTF8[kind])
    err = user_error(capsys, [command, str(path)])
    assert str(path) in err and "save it as UTF-8" in err
    assert "secretword" not in err  # the file's contents are never echoed


@pytest.mark.parametrize(("encoding", "named"), [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16"),
                                                   ("utf-32", "UTF-32"), ("utf-32-le", "UTF-32"), ("utf-32-be", "UTF-32")])
def test_a_profile_in_a_wide_encoding_is_told_by_its_name(encoding: str, named: str, tmp_path: Path, capsys) -> None:
    # A UTF-32 file was said to be "saved as UTF-16": its little-endian mark begins with UTF-16's.
    err = user_error(capsys, ["validate", str(write(tmp_path, GOOD.encode(encoding)))])
    assert f"saved as {named}" in err and "save it as UTF-8" in err
    assert {"UTF-16": "UTF-32", "UTF-32": "UTF-16"}[named] not in err


def test_a_utf8_bom_is_accepted(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + GOOD.encode())
    assert main(["validate", "--elsewhere", str(path)]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_model_file_given_as_the_profile_is_refused_without_reading_it_whole(command: str, tmp_path: Path, capsys,
                                                                              monkeypatch) -> None:
    # `dbtui run sdxl.safetensors` read all 6.5 GB into memory (twice over) to say it holds NUL bytes.
    path = tmp_path / "model.safetensors"
    with path.open("wb") as file:
        file.truncate(4 * 1024**3)  # sparse: no disk used
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read whole") if self == path else read_bytes(self))
    err = user_error(capsys, [command, str(path)])
    assert str(path) in err and "far more than a profile" in err and "model.pretrained" in err


def test_nesting_too_deep_for_the_toml_reader_is_a_profile_error(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in user_error(capsys, ["validate", str(path)])


@pytest.mark.parametrize("key", ['"model.pretrained"', "'model.pretrained'", 'model."pretrained.x"'])
def test_a_dotted_key_in_quotes_is_said_to_be_one_key(key: str, tmp_path: Path, capsys) -> None:
    # It said "model.pretrained: unknown key", the very key the user meant to write.
    path = write(tmp_path, GOOD.replace("[model]\npretrained", key))
    err = user_error(capsys, ["validate", str(path)])
    assert "in quotes, a name with dots is one key" in err and "without the quotes" in err


@pytest.mark.parametrize("text", [
    '[model]\n"model.pretrained" = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "d"\ninstance_prompt = "a zwx"\n',
    '[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "d"\ninstance_prompt = "a zwx"\n'
    '"model.revision" = "main"\n'])
def test_a_dotted_key_in_quotes_under_a_section_is_said_to_go_above_the_first_section(text: str, tmp_path: Path,
                                                                                      capsys) -> None:
    # Written without the quotes where it stood, as it said, it became model.model.pretrained (or
    # concepts.0.model.revision): unknown again.
    err = user_error(capsys, ["validate", str(write(tmp_path, text))])
    assert "write it without the quotes above the first [section] of the file" in err


# -- model.pretrained ------------------------------------------------------------------


def test_a_profile_without_a_model_is_refused_with_what_to_write(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD.replace('[model]\npretrained = "builtin:tiny-sd1"\n', ""))
    err = user_error(capsys, ["validate", str(path)])
    assert "model.pretrained: required key is missing" in err
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in err and "builtin:tiny-sd1" in err and ".safetensors" in err


@pytest.mark.parametrize("value", ['""', '"   "'])
def test_a_blank_model_is_refused(value: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD.replace('"builtin:tiny-sd1"', value))
    err = user_error(capsys, ["validate", str(path)])
    assert f"{path}:2: model.pretrained: is empty; name the base model" in err


@pytest.mark.parametrize("path", SHIPPED, ids=[f"{p.parent.name}/{p.name}" for p in SHIPPED])
def test_every_shipped_profile_names_its_model(path: Path) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["model"]["pretrained"].strip()


# -- paths and prompts -------------------------------------------------------------------

PATH_KEYS = ["concepts.0.instance_dir", "concepts.0.class_dir", "saving.output_dir", "model.pretrained", "model.vae",
             "model.tokenizer"]


@pytest.mark.parametrize("key", PATH_KEYS)
def test_a_nul_character_in_a_path_is_refused(key: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f'{key}="runs\\u0000x"'])
    assert f"{key}" in err and "NUL character" in err



@pytest.mark.parametrize("content", ["[training]\nmax_train_steps = 1,000\n", "[training]\nmax_train_steps = 1 000\n",
                                     "[training]\nmax_train_steps = 2k\n", "[optimizer]\nlearning_rate = 2,5e-6\n",
                                     "[optimizer]\nlearning_rate = 5e\n", "[prior]\nloss_weight = 50%\n",
                                     "[optimizer]\nlearning_rate = 1.e-4\n", "[training]\nmax_train_steps = 0300\n"])
def test_a_number_written_wrongly_is_not_told_as_another_number(content: str, tmp_path: Path, capsys) -> None:
    # Was told "max_train_steps = 1" for 1,000 (so pasted, a one-step run), "= 2" for 2,5e-6 and "= 0300" or
    # "= 1.e-4", refused again.
    err = user_error(capsys, ["validate", str(write(tmp_path, GOOD + content))])
    assert "written without letters or units" not in err
    assert "takes one number, written as TOML writes numbers: no commas, spaces, letters or % in it (1000, or 1_000" in err


@pytest.mark.parametrize(("value", "meant"), [("'photo of zwx's dog'", "photo of zwx's dog"),
                                              ('"photo of "zwx" dog"', 'photo of "zwx" dog'),
                                              ('"photo of zwx dog', "photo of zwx dog"), ('"123', '"123"'),
                                              ('"[zwx] dog', "[zwx] dog")])
def test_a_set_text_whose_quotes_do_not_pair_up_is_refused(value: str, meant: str, tmp_path: Path, capsys) -> None:
    # Was taken as a text with its quotes in it: the run trained on the prompt "'photo of zwx's dog'", quotes and all.
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f"concepts.0.instance_prompt={value}"])
    assert "its quotes do not pair up" in err
    advised = shlex.split(err.rpartition("--set ")[2])[0]
    assert loads_profile(GOOD, [advised]).concepts[0].instance_prompt == meant.strip('"')


@pytest.mark.parametrize(("value", "meant"), [(r'"C:\x\y"', r"C:\x\y"), (r'"C:\Users\me\dog"', r"C:\Users\me\dog"),
                                              (r'"photo of \zwx"', r"photo of \zwx"), (r'"123\q"', r"123\q")])
def test_a_set_text_in_double_quotes_with_an_unknown_escape_is_refused(value: str, meant: str, tmp_path: Path,
                                                                        capsys) -> None:
    # Was taken with its quotes: --set 'concepts.0.instance_dir="C:\x\y"' read the folder '"C:\x\y"'.
    err = user_error(capsys, ["validate", str(write(tmp_path, GOOD)), "--set", f"concepts.0.instance_prompt={value}"])
    assert "begins an escape" in err and "'single quotes'" in err
    advised = shlex.split(err.rpartition("--set ")[2])[0]
    assert loads_profile(GOOD, [advised]).concepts[0].instance_prompt == meant
    assert loads_profile(GOOD, [f"concepts.0.instance_prompt='{meant}'"]).concepts[0].instance_prompt == meant


@pytest.mark.parametrize("value", ['"zwx" dog on a beach', "'zwx' dog on a beach", 'a "zwx" dog'])
def test_a_set_text_that_begins_with_a_quoted_word_is_taken_with_its_quotes(value: str) -> None:
    # Was refused as "its quotes do not pair up", advising zwx" dog on a beach: one quote kept, the other dropped.
    assert loads_profile(GOOD, [f"concepts.0.instance_prompt={value}"]).concepts[0].instance_prompt == value

PROMPT_KEYS = ["concepts.0.instance_prompt", "concepts.0.class_prompt", "concepts.0.class_negative_prompt",
               "sampling.negative_prompt"]


@pytest.mark.parametrize("key", PROMPT_KEYS)
@pytest.mark.parametrize(("character", "named"), [("\\u0000", "NUL (U+0000)"), ("\\u001b[2J", "ESC (U+001B)")])
def test_a_prompt_holding_nul_or_a_terminal_escape_is_refused_as_a_caption_is(
        key: str, character: str, named: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f'{key}="photo of {character}zwx"'])
    assert key in err and f"holds {named}" in err and "\x1b" not in err and "\x00" not in err
    for prompts in ("sampling.prompts", "evaluation.prompts"):
        err = user_error(capsys, ["validate", str(path), "--set", f'{prompts}=["photo of {character}zwx"]'])
        assert f"{prompts}.0: holds {named}" in err
    err = user_error(capsys, ["validate", str(path), "--set", f'{key}="photo of \x1b[2Jzwx"'])
    assert "\x1b" not in err and "\\x1b[2J" in err  # the refused value is echoed with its escape written out


@pytest.mark.parametrize(("key", "said"), [("concepts.0.instance_prompt", "the instance prompt is empty"),
                                           ("concepts.0.class_prompt", "prior preservation needs a class prompt")])
def test_a_prompt_of_invisible_characters_alone_is_empty(key: str, said: str, tmp_path: Path, capsys) -> None:
    """A zero-width space pasted from a web page passed where a blank is refused: the subject trained on no words."""
    path = write(tmp_path, GOOD + "[prior]\nenabled = true\n")
    err = user_error(capsys, ["validate", str(path), "--set", 'concepts.0.class_prompt="photo of a dog"',
                              "--set", f'{key}="\\u200b \\ufeff"'])
    assert said in err


def test_an_empty_instance_prompt_says_how_a_style_trains_without_one(tmp_path: Path, capsys) -> None:
    """A style with no identifier, left in caption mode instance_prompt, was told only to name its subject."""
    err = user_error(capsys, ["validate", str(write(tmp_path, GOOD)), "--set", 'concepts.0.instance_prompt=""'])
    assert "for a style with no identifier, set caption_mode = \"caption_file\"" in " ".join(err.split())


def test_the_style_hint_names_the_caption_extension_training_reads(tmp_path: Path, capsys) -> None:
    """With dataset.caption_extension = ".caption" the hint said "a .txt caption beside each image": files training
    never reads."""
    err = user_error(capsys, ["validate", str(write(tmp_path, GOOD)), "--set", 'concepts.0.instance_prompt=""',
                              "--set", 'dataset.caption_extension=".caption"'])
    assert "with a .caption caption beside each image" in " ".join(err.split()) and ".txt" not in err


def test_a_path_longer_than_the_os_allows_is_refused(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f'saving.output_dir="{"a/" * 3000}"'])
    assert "at most 4,096 characters" in err


@pytest.mark.parametrize("name", ["..", "."])
def test_a_run_name_that_names_no_folder_of_its_own_is_refused(name: str, tmp_path: Path, capsys) -> None:
    """The run folder is output_dir/name: ".." would write the run (its profile.toml too) into the folder above."""
    (tmp_path / "work").mkdir()
    path = write(tmp_path / "work", f'name = "{name}"\n' + GOOD)
    before = path.read_bytes()
    err = user_error(capsys, ["run", str(path), "--plain"])
    assert f"{path}:1: name: '{name}' names no folder of its own" in err
    assert path.read_bytes() == before and sorted(p.name for p in (tmp_path / "work").iterdir()) == ["p.toml"]


@pytest.mark.parametrize("name", ["my run", "a/b", "café"])
def test_a_run_name_says_in_words_which_characters_it_may_hold(name: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f'name="{name}"'])
    assert "use the letters a-z and A-Z, digits, '.', '_' and '-' (no spaces or slashes)" in err and "pattern" not in err


def test_a_run_name_too_long_for_its_output_files_is_refused_before_training(tmp_path: Path, capsys) -> None:
    """A 250-character name validated and trained, then failed writing NAME-lora-kohya.safetensors, losing the weights."""
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f'name="{"a" * 151}"'])
    assert "…: is 151 characters long; use at most 150" in err


def test_home_and_environment_variables_in_paths_are_read_as_a_shell_reads_them(tmp_path: Path, monkeypatch) -> None:
    """Left as written, "~/runs" made a folder named "~" in the working directory."""
    from engine.profile import load_profile

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATA", str(tmp_path / "data"))
    profile = load_profile(write(tmp_path, GOOD), ['saving.output_dir="~/runs"', 'concepts.0.instance_dir="${DATA}/dog"',
                                                   'concepts.0.class_dir="$DATA/dogs"'])
    assert profile.saving.output_dir == str(tmp_path / "home" / "runs")
    assert (profile.concepts[0].instance_dir, profile.concepts[0].class_dir) == (str(tmp_path / "data" / "dog"),
                                                                                 str(tmp_path / "data" / "dogs"))


@pytest.mark.parametrize(("value", "said"), [("$DBTUI_TEST_UNSET/dog", "$DBTUI_TEST_UNSET, which is not set here"),
                                             ("~nosuchuser-xyz/dog", "'~nosuchuser-xyz', which names no user here"),
                                             # Was taken as a folder named "${HOME" in the working folder.
                                             ("${HOME/dog", "has ${ with no closing }: write ${NAME}"),
                                             # Was told as "no closing }", which it has.
                                             ("${HOME:-/tmp}/dog", "has a ${…} that is no variable's name (shell forms")])
def test_a_path_that_cannot_be_expanded_is_refused(value: str, said: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f'concepts.0.instance_dir="{value}"'])
    assert said in err


@pytest.mark.parametrize(("content", "hint"), [
    ('name = "a"\nname = "b"\n', ":2: TOML syntax error: Cannot overwrite a value (at line 2, column 11); a key or table is written twice"),
    ("[dataset]\ncenter_crop = True\n", ":2: TOML syntax error: Invalid value (at line 2, column 15); TOML writes true and false in lower case"),
    ('[[concepts]]\ninstance_dir = "C:\\Users\\me\\dog"\n', "write the path with / or in 'single quotes'"),
    ('[[concepts]]\ninstance_dir = "data\\dog"\n', "write the path with / or in 'single quotes'"),
    ("name = mine\n", 'a text value needs quotes: name = "value"'),
    # Said only "Expected newline or end of document after a statement": these begin as a number or a date.
    ('[launch]\nmain_process_ip = 10.0.0.1\n', ':2: TOML syntax error: Expected newline or end of document after a statement '
                                              '(at line 2, column 23); a text value needs quotes: main_process_ip = "10.0.0.1"'),
    ("name = 2024-05-01-run  # mine\n", 'a text value needs quotes: name = "2024-05-01-run"'),
    # A text of several words that begins as a number had no advice at all.
    ('[[concepts]]\ninstance_prompt = 1e5 photo\n', 'a text value needs quotes: instance_prompt = "1e5 photo"'),
    ("name = 3 dogs, smiling  # mine\n", 'a text value needs quotes: name = "3 dogs, smiling"\n'),
    # A backslash was copied into "double quotes", an escape TOML refuses: the advice, pasted, failed again.
    ("[[concepts]]\ninstance_dir = 2024\\shoot\n", "a text value needs quotes: instance_dir = '2024\\shoot'\n"),
    ("[[concepts]]\ninstance_dir = C:\\photos\n", "a text value needs quotes: name = 'value' (single quotes take a"),
    # A number setting with letters after it was told to be quoted, which then fails as no number.
    ("[dataset]\nresolution = 512px\n", "resolution takes a number, written without letters or units: resolution = 512"),
    ("[training]\nmax_train_steps = 1_000x\n", "max_train_steps = 1_000"),
    ("[training.optimizer]\nlearning_rate = 1e-4x\n", "learning_rate = 1e-4"),
    # ... in an optional section or a [[concepts]] entry too, whose settings were read as none of the numbers
    ("[training.lora]\nrank = 16x\n", "rank takes a number, written without letters or units: rank = 16"),
    ('[[concepts]]\ninstance_dir = "a"\nnum_class_images = 200imgs\n', "num_class_images = 200\n"),
    # No ' after it in the file: tomllib says "at end of document", and the line was told as "(top level)".
    ('name = "zwx\'s"  # it\'s\n[model]\npretrained = \'m\n', ":3: TOML syntax error: Expected \"'\" (at end of document); a "
                                                          "text's closing quote is missing: end it with ' on the same line"),
    # A quote inside a quoted text ended it: only "Expected newline or end of document after a statement" was said.
    ("[[concepts]]\ninstance_prompt = 'photo of zwx's dog'\n", "a ' inside a 'single-quoted' text ends it: put the text in"),
    ('[[concepts]]\ninstance_prompt = "photo of "zwx" dog"\n', 'a " inside a "double-quoted" text ends it: write it \\"'),
    ('[sampling]\nprompts = ["a", "photo of "zwx" dog"]\n', ':2: TOML syntax error: Unclosed array (at line 2, column 28); a " insi'),
    # Every value TOML could not read was told to be quoted, a number as "name = \"value\"" too.
    ("[optimizer]\nlearning_rate = .0003\n", "Invalid value (at line 2, column 17); a number needs a digit before its dot: 0.0003"),
    ("[optimizer]\nlearning_rate =   # the default\n", "Invalid value (at line 2, column 19); nothing is written after =: w"),
    # A comment ending in = was read as the value left out: told "nothing is written after =" for an unquoted text.
    ("[[concepts]]\ninstance_prompt = photo of zwx  # was =\n", "column 19); a text value needs quotes: name = \"value\""),
    # A list's missing comma or ] was told only as "Unclosed array", at the line after the list where ] was missing.
    ('[sampling]\nprompts = ["a" "b"]\n', "Unclosed array (at line 2, column 16); a list's items are separated by commas,"),
    ('[sampling]\nprompts = ["a", "b"\nnum_images = 2\n', ":3: TOML syntax error: Unclosed array (at line 3, column 1); a "
                                                         "list's items are separated by commas, and it ends with ]: the list "
                                                         "begun on a line above misses a comma or its ] before this point"),
    # The [section] after a list missing its ] was told only that items are separated by commas, as if it held the list.
    ('[sampling]\nprompts = ["a", "b"\n\n[training]\n', ":4: TOML syntax error: Unclosed array (at line 4, column 1); a "
                                                         "list's items are separated by commas, and it ends with ]: the list "
                                                         "begun on a line above misses a comma or its ] before this point"),
    # Told only "Expected '=' after a key in a key/value pair".
    ('[model]\npretrained: "m"\n', "Expected '=' after a key in a key/value pair (at line 2, column 11); TOML writes "
                                    "pretrained = value, with = rather than :"),
    ('model]\npretrained = "m"\n', ":1: TOML syntax error: Expected '=' after a key in a key/value pair (at line 1, column "
                                    "6); a section's name is written in brackets: [model]"),
    ('[model]\npretrained "m"\n', "(at line 2, column 12); each line holds key = value, a [section] or a # comment"),
    ('name = "a"\r[model]\r', "old Mac line endings (CR alone): save it with LF line endings"),
    ('name = "mine\n[model]\n', ":1: TOML syntax error: Illegal character '\\n' (at line 1, column 13); a text's closing quote is missing"),
    ('[model]\npretrained = "m"\nname = """mine\n', ":3: TOML syntax error: Unterminated string (at end of document); a text's closing"),
])
def test_a_toml_syntax_error_says_what_to_write_instead(content: str, hint: str, tmp_path: Path, capsys) -> None:
    err = user_error(capsys, ["validate", str(write(tmp_path, content))])
    assert hint in err and "(top level)" not in err


PROMPT_KEYS = ["concepts.0.instance_prompt", "concepts.0.class_prompt", "concepts.0.class_negative_prompt",
               "sampling.negative_prompt"]


@pytest.mark.parametrize("key", PROMPT_KEYS)
def test_a_huge_prompt_is_refused_and_the_limit_explained(key: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f'{key}="{"x" * 100_000}"'])
    assert "100,000 characters long" in err and "1,000" in err and "77 tokens" in err
    assert "x" * 200 not in err  # the value itself is not echoed


def test_a_huge_sampling_prompt_in_the_file_is_refused(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD + f'[sampling]\nprompts = ["ok", "{"y" * 100_000}"]\n')
    err = user_error(capsys, ["validate", str(path)])
    assert f"{path}:8: sampling.prompts.1: is 100,000 characters long" in err


def test_a_long_but_sane_prompt_is_accepted(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    assert main(["validate", "--elsewhere", str(path), "--set", f'concepts.0.instance_prompt="{"zwx dog " * 100}"']) == 0


# -- --set overrides name themselves -------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optimizer.learning_rate=abc", "--set optimizer.learning_rate=abc: takes a number, not 'abc': write digits, with "
                                        "a dot for decimals (7.5)"),
        ("prior.guidance_scale=7,5", "--set prior.guidance_scale=7,5: takes a number, not '7,5'"),
        ("training.max_train_steps=abc", "--set training.max_train_steps=abc: takes a whole number, not 'abc'"),
        ("sampling.prompts=a cat", """--set sampling.prompts=a cat: takes a list: write prompts = ["a cat"], one text in """
                                   """quotes per item (with --set: --set 'sampling.prompts=["a cat"]')"""),
        ('dataset.hflip="maybe"', """--set dataset.hflip="maybe": takes true or false, not 'maybe'"""),
        ("saving.export=diffusers", """--set saving.export=diffusers: takes a list: write export = ["diffusers"]"""),
        ('saving.export="diffusers, safetensors"', """takes a list: write export = ["diffusers", "safetensors"], one """
                                                   """text in quotes per item"""),  # the choices named, not one of both
        ('sampling.prompts="a cat, smiling"', """write prompts = ["a cat, smiling"]"""),  # a prompt's commas are its own
        ("dataset.buckets=512x512", "--set dataset.buckets=512x512: takes a list of [width, height] pairs"),
        ("concepts=photos", "--set concepts=photos: is a list of tables: write each concept under [[concepts]]"),
        ("dataset.buckets=[64,64]", "--set dataset.buckets=[64,64]: takes a list of [width, height] pairs, e.g. buckets = "
                                    "[[512, 512], [576, 448]]\n"),  # once, not once per item
        ("name=2024-12-04", """--set name=2024-12-04: takes text, and 2024-12-04 was read as a date: put it in quotes, """
                            """name = "2024-12-04" (with --set: --set 'name="2024-12-04"')"""),
        ('sampling.prompts=["a", 2]', """item 1 takes text, and 2 was read as a number: put it in quotes in the list, "2" """
                                      """(with --set, the whole list: --set 'sampling.prompts=[..., "2"]')"""),
        ("training.gradient_checkpointing=true", "unknown key (did you mean 'precision.gradient_checkpointing'?)"),
        ("concepts[0].instance_prompt=x", "(here: concepts.0.instance_prompt=…; list items are numbered with dots"),
        ("launch.main-process-ip=1.2.3.4", "(here: launch.main_process_ip=…;"),
        # Was told "(here: concepts._1.instance_prompt=…", refused again as "no item _1".
        ("concepts.-1.instance_prompt=x", "section.key=value (list items are numbered from 0, with dots: concepts.0 is the f"),
        ("concepts[-1].instance_prompt=x", "(list items are numbered from 0, with dots: concepts.0 is the first; -1 for the"),
        ("concepts.0.instance_prompt=[zwx] dog", """a text that begins with [ goes in double quotes too: """
                                                 """--set 'concepts.0.instance_prompt="[zwx] dog"'"""),
        ("optimizer.max_train_steps=3", "unknown key (did you mean 'training.max_train_steps'?)"),
        ("training.nope=1", "--set training.nope=1: unknown key"),
        ("dataset.resolution=36", "--set dataset.resolution=36: must be a multiple of 8, not 36"),
        ("training=5", "--set training=5: is a section, [training]: a table of keys (method, seed, …); set one key, e.g. "
                       "training.method\n"),
        ("concepts=[]", "--set concepts=[]: needs at least one concept: write one under [[concepts]]"),
        ("dataset.resolution=[512]", "--set dataset.resolution=[512]: takes a whole number, and [512] was read as a list"),
        ("dataset.resolution=1.5", "--set dataset.resolution=1.5: takes a whole number, not 1.5"),
        ("optimizer.learning_rate=[1]", "--set optimizer.learning_rate=[1]: takes a number, and [1] was read as a list"),
        ("dataset.hflip=[1]", "--set dataset.hflip=[1]: takes true or false, and [1] was read as a list"),
        ("training.max_train_steps=0", "--set training.max_train_steps=0: must be at least 1, not 0"),
        # Not pydantic's "Unable to parse input string as an integer, exceeded maximum size".
        ("training.max_train_steps=1e20", "--set training.max_train_steps=1e20: must be at most 10000000, not 1e20\n"),
        ("training.max_train_steps=-1e20", "--set training.max_train_steps=-1e20: must be at least 1, not -1e20\n"),
        ("launch.machine_rank=1e20", "--set launch.machine_rank=1e20: takes a whole number, and 1e20 is too large for one"),
        ("optimizer.learning_rate=0", "--set optimizer.learning_rate=0: must be more than 0, not 0"),
        # Not "not 1000000000000000019884624838656": a float that large has no such digits to write as a whole number.
        ("optimizer.learning_rate=1e30", "--set optimizer.learning_rate=1e30: must be at most 1, not 1e+30\n"),
        ('training.method="Full"', """--set training.method="Full": takes 'full' or 'lora', not 'Full'"""),
        ("dataset.buckets=[[512]]", "--set dataset.buckets=[[512]]: takes a list of [width, height] pairs"),
        ("training.max_train_steps=true", "--set training.max_train_steps=true: is true, but this setting is a number"),
        ("training.min_snr_gamma=false", "--set training.min_snr_gamma=false: is false, but this setting is a number"),
        ("sampling.prompts=[a, b]", """--set sampling.prompts=[a, b]: [a, b] is not a TOML list: put each text in double """
                                    """quotes, and the whole in single quotes for the shell: --set 'sampling.prompts=["first", "second"]'"""),
    ],
)
def test_a_bad_override_is_reported_as_the_override(override: str, expected: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD + "[optimizer]\nlearning_rate = 1e-4\n[training]\nseed = 1\n[dataset]\nresolution = 512\n")
    err = user_error(capsys, ["validate", str(path), "--set", override])
    assert expected in err
    assert f"{path}:" not in err  # the file's own lines hold valid values


@pytest.mark.parametrize(("written", "where"), [
    ("1e5", "file"), ("0x1F", "file"), ("1_000  # a count", "file"), ("1.50", "file"), ("1e5", "set"), ("0x1F", "set")])
def test_a_text_read_as_a_number_is_quoted_as_it_was_typed(written: str, where: str, tmp_path: Path, capsys) -> None:
    """instance_prompt = 1e5 was told to be written "100000.0" (and 0x1F "31"): the advice changed the user's text."""
    typed = written.partition("  #")[0]
    content = GOOD.replace('"photo of zwx dog"', written) if where == "file" else GOOD
    argv = ["--set", f"concepts.0.instance_prompt={written}"] if where == "set" else []
    err = user_error(capsys, ["validate", str(write(tmp_path, content)), *argv])
    assert f"instance_prompt = \"{typed}\" (with --set: --set 'concepts.0.instance_prompt=\"{typed}\"')" in err


def test_a_list_item_read_as_a_number_is_quoted_as_it_was_typed(tmp_path: Path, capsys) -> None:
    content = GOOD + '[sampling]\nprompts = ["a, 1", 1e5, "b,c", 0x10]  # two, bad\n'
    err = user_error(capsys, ["validate", str(write(tmp_path, content))])
    assert 'item 1 takes text, and 1e5 was read' in err and 'item 3 takes text, and 0x10 was read' in err


def test_a_table_override_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    """--set 'optimizer={learning_rate=2e-6}' put every other optimizer key back to its default, silently: sdxl-person's
    adafactor and fused step became AdamW with a full set of gradients, over 25 GB on the 24 GB card it is written for."""
    from engine.profile import load_profile

    path = write(tmp_path, GOOD + '[optimizer]\nname = "adafactor"\nfused_backward = true\n[precision]\nmixed_precision = "bf16"\n'
                         '[training.lora]\nrank = 16\n')
    profile = load_profile(path, ["optimizer={learning_rate=2e-6}", "training={lora={alpha=4}}"])
    assert (profile.optimizer.name, profile.optimizer.fused_backward, profile.optimizer.learning_rate) == ("adafactor", True, 2e-6)
    assert (profile.training.lora.rank, profile.training.lora.alpha) == (16, 4)
    kept = load_profile(path, ['concepts.0={instance_prompt="photo of qqq dog"}']).concepts[0]
    assert (kept.instance_dir, kept.instance_prompt) == ("data/dog", "photo of qqq dog")


def test_a_table_override_is_blamed_only_for_the_keys_it_names(tmp_path: Path, capsys) -> None:
    """A warning on a key the file sets was shown as the --set's, though the table did not name it."""
    path = write(tmp_path, GOOD + '[training]\nmax_train_steps = 10\n[optimizer]\nlr_scheduler = "constant_with_warmup"\n'
                 'lr_warmup_steps = 5000\n')
    assert main(["validate", "--elsewhere", str(path), "--set", "optimizer={learning_rate=2e-6}"]) == 0
    line = path.read_text().splitlines().index("lr_warmup_steps = 5000") + 1
    assert f"warning: {path}:{line}: optimizer.lr_warmup_steps: is 5000" in capsys.readouterr().out
    err = user_error(capsys, ["validate", "--elsewhere", str(path), "--set", 'optimizer={learning_rate="x"}'])
    assert """--set optimizer={learning_rate="x"}: optimizer.learning_rate: takes a number""" in err


def test_an_empty_text_leaves_an_optional_setting_empty(tmp_path: Path) -> None:
    """Help says "empty means …", but --set could not take back a value the profile set: "" was refused as no number."""
    from engine.profile import load_profile

    path = write(tmp_path, GOOD.replace('"builtin:tiny-sd1"\n', '"builtin:tiny-sd1"\nquantize = "nf4"\n')
                 + '[training]\nmethod = "lora"\nmax_train_steps = 400\n')
    profile = load_profile(path, ['model.quantize=""', 'training.max_train_steps=""'])
    assert (profile.model.quantize, profile.training.max_train_steps) == (None, None)
    assert load_profile(path).model.quantize == "nf4"


def test_keys_not_overridden_keep_their_file_line(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD + "[optimizer]\nbeta2 = 1.5\n")
    err = user_error(capsys, ["validate", str(path), "--set", "optimizer.learning_rate=abc"])
    assert f"{path}:8: optimizer.beta2:" in err
    assert "--set optimizer.learning_rate=abc:" in err


def _float_keys(model: type[BaseModel] = Profile, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        args = typing.get_args(field.annotation) or (field.annotation,)
        nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested and typing.get_origin(field.annotation) is not list:
            keys += _float_keys(nested[0], f"{prefix}{name}.")
        elif float in args:
            keys.append(prefix + name)
    return keys


FLOAT_KEYS = _float_keys()


def test_the_float_fields_are_all_found() -> None:
    assert {"optimizer.learning_rate", "prior.loss_weight", "training.lora.alpha", "training.min_snr_gamma"} <= set(FLOAT_KEYS)
    assert len(FLOAT_KEYS) >= 15


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_nan_and_inf_are_not_finite_numbers(key: str, value: str, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f"{key}={value}"])
    assert f"--set {key}={value}: is not a finite number" in err


def test_nan_in_the_file_is_reported_at_its_line(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD + "[optimizer]\nlearning_rate = nan\n")
    err = user_error(capsys, ["validate", str(path)])
    assert f"{path}:8: optimizer.learning_rate: is not a finite number" in err
    assert "less than or equal" not in err


@pytest.mark.parametrize("concept", ['[concepts.0]\ninstance_dir = "data/dog"\n',
                                     'concepts.0.instance_dir = "data/dog"\n'], ids=["header", "dotted-key"])
def test_a_table_named_with_dots_is_told_at_its_line(concept: str, tmp_path: Path, capsys) -> None:
    # [concepts.0] for [[concepts]] was told without a line: only "concepts.0", not "concepts", had one.
    path = write(tmp_path, 'name = "x"\n\n' + concept + '[model]\npretrained = "builtin:tiny-sd1"\n')
    err = user_error(capsys, ["validate", str(path)])
    assert f"{path}:3: concepts: must be a list of tables" in err


# -- run folders ---------------------------------------------------------------------------

RUN_COMMANDS = [["run"], ["run", "--detach"], ["fit", "--steps", "2"]]


def _run_ids(commands: list[list[str]]) -> list[str]:
    return [" ".join(c) for c in commands]


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=_run_ids(RUN_COMMANDS))
@pytest.mark.parametrize("below", ["", "/sub"], ids=["is-a-file", "parent-is-a-file"])
def test_an_output_dir_that_is_a_file_is_a_run_folder_error(command: list[str], below: str, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    err = user_error(capsys, [*command, str(DEMO), "--set", f"saving.output_dir='{blocker}{below}'"])
    # run refuses it with the profile's other problems, before the run folder; fit when it makes the folder
    refused = "cannot start the run: saving.output_dir" if command[0] == "run" else f"cannot use the folder {blocker}{below}/tiny-demo"
    assert refused in err
    assert f"'{blocker}' is a file, not a folder" in err and "saving.output_dir" in err
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("below", ["", "/sub"], ids=["is-a-file", "parent-is-a-file"])
def test_validate_warns_of_an_output_dir_that_is_a_file(below: str, tmp_path: Path, capsys) -> None:
    """validate said "valid" and only run refused it."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    assert main(["validate", "--elsewhere", str(DEMO), "--set", f"saving.output_dir='{blocker}{below}'"]) == 0
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if "saving.output_dir" in line)
    assert warning.startswith("  warning: --set saving.output_dir") and f"'{blocker}' is a file, not a folder" in warning
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=_run_ids(RUN_COMMANDS))
def test_an_output_dir_the_os_refuses_is_a_run_folder_error(command: list[str], capsys) -> None:
    # /sys refuses new folders even to root, so this is a real refusal, not a chmod root ignores.
    err = user_error(capsys, [*command, str(DEMO), "--set", "saving.output_dir='/sys/dbtui-test'"])
    assert "cannot use the folder /sys/dbtui-test/tiny-demo: permission denied" in err


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=_run_ids(RUN_COMMANDS))
def test_a_read_only_file_system_is_a_run_folder_error(command: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    target = tmp_path / "ro"
    real_mkdir = Path.mkdir

    def read_only_mkdir(self: Path, *args, **kwargs) -> None:
        if self == target or target in self.parents:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    err = user_error(capsys, [*command, str(DEMO), "--set", f"saving.output_dir='{target}'"])
    assert f"cannot use the folder {target}/tiny-demo: the file system is read-only" in err
    assert not target.exists()


def test_a_demo_workdir_that_is_a_file_is_a_folder_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "demo"
    blocker.write_text("keep me")
    err = user_error(capsys, ["demo", "--workdir", str(blocker)])
    assert f"'{blocker}' is a file, not a folder" in err and "--workdir" in err


def test_fit_probes_the_run_folder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    from engine.runs.folder import check_creatable

    check_creatable(tmp_path / "a" / "b" / "run")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_name_too_long_for_the_file_system_is_a_warning(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD.replace('"data/dog"', f'"{tmp_path / ("d" * 300)}"'))
    assert main(["validate", "--elsewhere", str(path)]) == 0
    assert "cannot read folder" in capsys.readouterr().out


# -- anything at all -----------------------------------------------------------------------


def _odd_inputs() -> list[tuple[str, bytes]]:
    rng = random.Random(12)
    real = [p.read_bytes() for p in sorted((ROOT / "profiles").glob("*.toml"))]
    inputs = [(f"random-{i}", rng.randbytes(rng.randint(0, 400))) for i in range(10)]
    inputs += [(f"truncated-{i}", (text := rng.choice(real))[: rng.randint(0, len(text))]) for i in range(10)]
    text = real[0].decode()
    inputs += [
        ("utf-16", text.encode("utf-16")),
        ("utf-16-be", text.encode("utf-16-be")),
        ("utf-32", text.encode("utf-32")),
        ("cp1252", (text + "# “quoted” ©\n").encode("cp1252")),
        ("latin-1", ("name = \"é\"\n" + text).encode("latin-1")),
        ("nul-inside", text.encode()[:50] + b"\x00" + text.encode()[50:]),
        ("bom-then-junk", b"\xef\xbb\xbf" + rng.randbytes(64)),
        ("printable-junk", "".join(rng.choice("[]{}=\"'.#\n abc123") for _ in range(300)).encode()),
        ("lone-surrogate-escape", b'name = "\\ud800"\n'),
        ("empty", b""),
    ]
    return inputs


ODD = _odd_inputs()


@pytest.mark.parametrize(("kind", "content"), ODD, ids=[k for k, _ in ODD])
def test_validate_never_crashes_and_never_touches_the_file(kind: str, content: bytes, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, content)
    before = path.stat().st_mtime_ns
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert "bug in dbtui" not in err
    # A truncated real profile may still be whole; everything else is a profile error.
    assert code in ((0, 2) if kind.startswith("truncated") else (2,)), err
    assert path.read_bytes() == content and path.stat().st_mtime_ns == before


@pytest.mark.parametrize("key", ["training.max_train_steps", "optimizer.lr_warmup_steps"])
def test_a_step_count_past_any_fine_tune_is_refused(key: str, tmp_path: Path, capsys) -> None:
    """99999999999999999999999 steps validated and started (its ETA in billions of hours), and the saved profile held
    an integer TOML cannot."""
    path = write(tmp_path, GOOD)
    err = user_error(capsys, ["validate", str(path), "--set", f"{key}=99999999999999999999999"])
    assert key in err and "10000000" in err


def test_an_interval_may_be_written_huge_to_mean_never_but_not_past_what_toml_holds(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    assert main(["validate", "--elsewhere", str(path), "--set", "saving.every_n_steps=99999999"]) == 0
    capsys.readouterr()
    err = user_error(capsys, ["validate", "--elsewhere", str(path), "--set", "saving.every_n_steps=99999999999999999999999"])
    assert "saving.every_n_steps" in err


def test_a_folder_of_image_links_that_lead_out_of_it_is_said_to_be_so(tmp_path: Path, capsys) -> None:
    """Its images were left out (training reads only the folder's own files), and all it said was "no images in"."""
    from PIL import Image

    elsewhere = tmp_path / "library"
    elsewhere.mkdir()
    Image.new("RGB", (8, 8)).save(elsewhere / "a.png")
    linked = tmp_path / "person"
    linked.mkdir()
    (linked / "a.png").symlink_to(elsewhere / "a.png")
    path = write(tmp_path, GOOD)
    assert main(["validate", "--elsewhere", str(path), "--set", f'concepts.0.instance_dir="{linked}"']) == 0
    out = capsys.readouterr().out
    assert f"no images in '{linked}': its 1 image link(s) lead out of the folder" in out


def test_an_export_format_listed_twice_is_one_output() -> None:
    """`saving.export = ["safetensors", "diffusers", "diffusers"]` was taken as three outputs."""
    from dbtui.session import Session

    session = Session.for_demo()
    session.set("saving.export", ["safetensors", "diffusers", "diffusers"])
    profile, _ = session.validate()
    assert profile is not None and profile.saving.export == ["safetensors", "diffusers"]
