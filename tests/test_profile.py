import shutil
from pathlib import Path

import pytest

from engine.profile import (
    Profile,
    ProfileError,
    dumps_profile,
    load_profile,
    loads_profile,
    save_profile,
)

PROFILES = sorted((Path(__file__).parents[1] / "profiles").glob("*.toml"))

# model.pretrained shares line 1 with nothing else, so the line numbers asserted below stay simple.
MINIMAL = """model.pretrained = "builtin:tiny-sd1"
[[concepts]]
instance_dir = "data/dog"
instance_prompt = "photo of zwx dog"
"""


def problems_of(text: str, overrides: list[str] = ()) -> list:
    with pytest.raises(ProfileError) as caught:
        loads_profile(text, overrides)
    return caught.value.problems


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_every_example_profile_validates(path: Path) -> None:
    profile = load_profile(path)
    assert profile.concepts


def test_examples_include_the_named_profiles() -> None:
    names = {p.name for p in PROFILES}
    assert {"tiny-demo.toml", "sd15-person.toml", "sd15-style-native.toml", "sd15-lora-8gb.toml", "multi-concept.toml",
            "sdxl-person.toml", "sdxl-lora-12gb.toml"} <= names


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_round_trip_load_save_load_is_equal(path: Path, tmp_path: Path) -> None:
    first = load_profile(path)
    saved = save_profile(first, tmp_path / "p.toml")
    assert load_profile(saved) == first
    assert "None" not in saved.read_text() and "null" not in saved.read_text()


def test_syntax_error_names_its_line() -> None:
    [problem] = problems_of('name = "x"\n[model\npretrained = "a"\n')
    assert problem.line == 2
    assert "syntax" in problem.message


def test_unknown_key_suggests_the_nearest_valid_key() -> None:
    [problem] = problems_of(MINIMAL + "[optimizer]\nlearnig_rate = 1e-5\n")
    assert problem.key == "optimizer.learnig_rate"
    assert problem.suggestion == "optimizer.learning_rate"
    assert problem.line == 6


def test_wrong_type_and_out_of_range_are_reported() -> None:
    problems = problems_of(MINIMAL + "[training]\ntrain_batch_size = \"two\"\n[optimizer]\nbeta2 = 1.5\n")
    keys = {p.key: p for p in problems}
    assert keys["training.train_batch_size"].line == 6
    assert keys["training.train_batch_size"].message == "takes a whole number, not 'two'"
    assert keys["optimizer.beta2"].line == 8
    assert "less than 1" in keys["optimizer.beta2"].message


def test_seeds_are_refused_outside_what_the_generators_take() -> None:
    """numpy's generator (seeded by the run, beside torch's) takes 0 to 2**32 - 1: outside that a run failed as a bug."""
    problems = problems_of(MINIMAL, ["training.seed=-1", "sampling.seed=18446744073709551616", "evaluation.seed=4294967296"])
    assert {p.key for p in problems} == {"training.seed", "sampling.seed", "evaluation.seed"}
    assert loads_profile(MINIMAL, ["training.seed=4294967295"]).training.seed == 4294967295


@pytest.mark.parametrize(("value", "said"), [("../x.txt", "is not a file extension"), (".a.b", "is not a file extension"),
                                           ("PNG", "is an image extension"), ("", "is not a file extension"),
                                           ("tx t", "is not a file extension")])
def test_a_caption_extension_that_is_no_plain_extension_is_an_error_of_the_profile(value: str, said: str) -> None:
    """validate warned of these and run refused them: one rule now, the doctor's, in the profile itself."""
    [problem] = problems_of(MINIMAL, [f'dataset.caption_extension="{value}"'])
    assert problem.key == "dataset.caption_extension" and said in problem.message
    assert loads_profile(MINIMAL, ['dataset.caption_extension="caption"']).dataset.caption_extension == ".caption"



def test_empty_lora_target_lists_are_refused_rather_than_meaning_the_usual_ones() -> None:
    lora = ['training.method="lora"']
    [problem] = problems_of(MINIMAL, [*lora, "training.lora.unet_targets=[]"])
    assert problem.key == "training.lora.unet_targets" and problem.message.startswith("names no module")
    [problem] = problems_of(MINIMAL, [*lora, "training.lora.text_encoder_targets=[]"])
    assert problem.key == "training.lora.text_encoder_targets"


def test_missing_required_key_is_reported() -> None:
    [problem] = problems_of('model.pretrained = "m"\n[[concepts]]\ninstance_dir = "d"\n')
    assert problem.key == "concepts.0.instance_prompt"
    assert "missing" in problem.message
    assert problem.line == 2


def test_cross_field_rules_prior_preservation_and_lora() -> None:
    problems = problems_of(MINIMAL + "[prior]\nenabled = true\n[training]\nmethod = \"full\"\n[training.lora]\nrank = 4\n")
    keys = {p.key for p in problems}
    assert {"concepts.0.class_dir", "concepts.0.class_prompt", "training.lora"} <= keys


def test_lora_export_needs_lora_method() -> None:
    [problem] = problems_of(MINIMAL + '[training]\nmethod = "full"\n[saving]\nexport = ["lora_kohya"]\n')
    assert problem.key == "saving.export"


def test_every_problem_is_reported_together_field_and_cross_field() -> None:
    text = MINIMAL.replace('model.pretrained = "builtin:tiny-sd1"', "") + (
        "[model]\npretraind = \"x\"\n"
        "[prior]\nenabled = true\n"
        "[training]\nclip_skip = 0\n"
        "[dataset]\nresolution = \"big\"\n"
    )
    problems = problems_of(text)
    keys = {p.key for p in problems}
    assert {"model.pretraind", "training.clip_skip", "dataset.resolution", "concepts.0.class_dir"} <= keys
    assert all(p.line for p in problems)


@pytest.mark.parametrize("override", ['training.method="Full"', "training.method=5", "training=5"])
def test_a_rule_is_not_told_of_the_default_that_stands_in_for_a_bad_key(override: str) -> None:
    """The bad key is set aside to check the rest, and its default ("lora") must not break a rule (unet_half is for full
    fine-tunes) that the user's own value may keep; the rules that do not read it still speak."""
    text = MINIMAL + "[prior]\nenabled = true\n[saving]\nunet_half = true\n"
    problems = problems_of(text, [override])
    assert {p.key for p in problems} == {override.partition("=")[0], "concepts.0.class_dir", "concepts.0.class_prompt"}


def test_a_misspelt_key_leaves_the_key_it_means_unknown_to_the_rules() -> None:
    """metod = "full" leaves method at its default ("lora"): unet_half must not be told it is for full fine-tunes."""
    problems = problems_of(MINIMAL + "[training]\nmetod = \"full\"\n[saving]\nunet_half = true\n")
    assert [(p.key, p.suggestion) for p in problems] == [("training.metod", "training.method")]
    # Where the key meant is written too, it is the user's own value: its rules speak.
    problems = problems_of(MINIMAL + "[training]\nmethod = \"lora\"\nmetod = \"full\"\n[saving]\nunet_half = true\n")
    assert {p.key for p in problems} == {"training.metod", "saving.unet_half"}


def test_a_bad_key_in_one_concept_leaves_the_other_concepts_checked() -> None:
    text = (MINIMAL.replace("photo of zwx dog", " ") + "[[concepts]]\ninstance_dir = \"data/cat\"\n"
            "instance_prompt = \"photo of zwx cat\"\ncaption_mode = \"bogus\"\n")
    assert {p.key for p in problems_of(text)} == {"concepts.1.caption_mode", "concepts.0.instance_prompt"}
    # A bad prior.enabled leaves out the prior's rules for every concept, and only those.
    problems = problems_of(text.replace("bogus", "instance_prompt"), ['prior.enabled="yes please"'])
    assert {p.key for p in problems} == {"prior.enabled", "concepts.0.instance_prompt"}


def test_error_message_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + "[training]\nmax_train_step = 10\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    text = str(caught.value)
    assert f"{path}:6" in text and "training.max_train_steps" in text


def test_set_overrides_are_validated_by_the_same_model() -> None:
    profile = loads_profile(MINIMAL, ["optimizer.learning_rate=3e-6", "concepts.0.instance_prompt=a zwx", "training.lora.rank=32", "dataset.hflip=true"])
    assert profile.optimizer.learning_rate == 3e-6
    assert profile.concepts[0].instance_prompt == "a zwx"
    assert profile.lora.rank == 32
    assert profile.dataset.hflip is True
    [problem] = problems_of(MINIMAL, ["optimizer.learning_rate=fast"])
    assert problem.key == "optimizer.learning_rate"
    [problem] = problems_of(MINIMAL, ["concepts.3.instance_dir=x"])
    assert "no item 3" in problem.message
    [problem] = problems_of(MINIMAL, ["no-equals-sign"])
    assert "section.key=value" in problem.message
    [problem] = problems_of(MINIMAL, ["=1"])  # said "--set =1: =1: an override …"
    assert str(problem) == "--set =1: an override must look like section.key=value"
    [problem] = problems_of(MINIMAL, ['saving.output_dir="/tmp/o\udcff/runs"'])  # a Latin-1 name, as argv carries it
    assert "not UTF-8 text" in problem.message
    [problem] = problems_of(MINIMAL, ['concepts.0.instance_prompt="photo of zwx \udce2\udc98\udc83"'])  # ☃ read as ASCII
    assert "holds bytes that are not UTF-8 text" in problem.message
    [problem] = problems_of(MINIMAL, ['concepts.0="x"'])
    assert "is a concept: a table of keys" in problem.message and "ConceptSection" not in problem.message
    [problem] = problems_of(MINIMAL, ["training.max_train_steps="])
    assert problem.message.startswith("has no value after '='")
    # --set concepts.0.instance_prompt=$PROMPT with PROMPT unset: the example named training.max_train_steps.
    [problem] = problems_of(MINIMAL, ["concepts.0.instance_prompt="])
    assert "--set concepts.0.instance_prompt=VALUE" in problem.message and "max_train_steps" not in problem.message
    assert "a shell variable that is not set" in problem.message
    [problem] = problems_of(MINIMAL, ["évaluation.enabled=true"])  # a misspelling, not a malformed override
    assert (problem.message, problem.suggestion) == ("unknown key", "evaluation")


def test_every_field_has_a_one_line_doc() -> None:
    from pydantic import BaseModel

    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            assert field.description and "\n" not in field.description, f"{model.__name__}.{name}"
            annotation = field.annotation
            for candidate in (annotation, *getattr(annotation, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    walk(candidate)

    walk(Profile)


def test_profile_is_frozen() -> None:
    profile = loads_profile(MINIMAL)
    with pytest.raises(Exception):
        profile.name = "other"  # type: ignore[misc]


def test_newer_schema_version_is_refused_clearly() -> None:
    [problem] = problems_of("schema_version = 9\n" + MINIMAL)
    assert "upgrade dbtui" in problem.message
    assert problem.line == 1  # named at its line in the file, like every other problem


@pytest.mark.parametrize(("value", "said"), [("0", "no profile layout has version 0"),
                                             ('"1"', "write a whole number without quotes")])
def test_an_older_or_quoted_schema_version_is_not_told_to_upgrade(value: str, said: str) -> None:
    [problem] = problems_of(f"schema_version = {value}\n" + MINIMAL)
    assert said in problem.message and "upgrade" not in problem.message


@pytest.mark.parametrize(("value", "said"), [("true", "true is not"), ("1979-01-01", "1979-01-01 is not"),
                                             ('"1"', '"1" is not'), ("1.0", "1.0 is not")])
def test_a_schema_version_that_is_no_number_is_told_as_the_toml_written(value: str, said: str) -> None:
    [problem] = problems_of(f"schema_version = {value}\n" + MINIMAL)
    assert problem.message.startswith(said), problem.message  # not Python's True or datetime.date(1979, 1, 1)


@pytest.mark.parametrize(("value", "said"), [("99999999999999999999999", "must be at most 4096"),
                                             ("5001", "must be at most 4096"), ("65", "must be a multiple of 8")])
def test_a_resolution_out_of_range_is_told_so_before_its_multiple_of_8(value: str, said: str) -> None:
    with pytest.raises(ProfileError) as raised:
        loads_profile(MINIMAL, [f"dataset.resolution={value}"])
    assert [problem.message.split(",")[0] for problem in raised.value.problems] == [said]


def test_a_dollar_that_is_part_of_a_folder_name_is_taken_as_written_or_escaped(tmp_path: Path, monkeypatch) -> None:
    """A folder named money$saver was refused as "the environment variable $saver, which is not set", with no escape."""
    monkeypatch.delenv("saver", raising=False)
    (tmp_path / "money$saver").mkdir()
    folder = f"{tmp_path}/money$saver"
    taken = loads_profile(MINIMAL, [f'concepts.0.instance_dir="{folder}"'])
    assert taken.concepts[0].instance_dir == folder  # it exists as written
    to_make = loads_profile(MINIMAL, [f'saving.output_dir="{tmp_path}/new$$runs"'])
    assert to_make.saving.output_dir == f"{tmp_path}/new$runs"  # $$ is one $
    assert loads_profile(dumps_profile(to_make)) == to_make  # written back as $$, and read as the same path
    [problem] = problems_of(MINIMAL, [f'saving.output_dir="{tmp_path}/new$saver"'])  # a typo'd variable, say
    assert "$saver, which is not set here" in problem.message and "written $$" in problem.message


@pytest.mark.parametrize(("written", "said"), [
    ("%USERPROFILE%/runs", "has %USERPROFILE%, Windows' form of an environment variable, which is not read here: write ~"),
    ("%DBTUI_SET%\\runs", "has %DBTUI_SET%, Windows' form of an environment variable, which is not read here: write $DBTUI_SET"),
    ("$1/runs", "has $1, a shell script's parameter, which a profile does not read: write the path out"),
    ("runs/$@", "has $@, a shell script's parameter"),
])
def test_a_variable_of_windows_or_a_script_is_said_not_to_be_read(written: str, said: str, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """saving.output_dir = "%USERPROFILE%/runs" or "$1/runs" passed, and the run made a folder of that name in the
    working folder."""
    monkeypatch.delenv("USERPROFILE", raising=False)
    monkeypatch.setenv("DBTUI_SET", str(tmp_path))
    [problem] = problems_of(MINIMAL, [f"saving.output_dir='{written}'"])
    assert problem.message.startswith(said), problem.message


def test_a_folder_named_like_a_variable_of_windows_or_a_script_is_taken(tmp_path: Path) -> None:
    for name in ("%X%", "$1", "50%off%"):
        (tmp_path / name).mkdir()
        assert loads_profile(MINIMAL, [f"saving.output_dir='{tmp_path}/{name}'"]).saving.output_dir == f"{tmp_path}/{name}"
    assert loads_profile(MINIMAL, ["saving.output_dir='100% runs/$$1'"]).saving.output_dir == "100% runs/$1"


def test_a_path_read_from_a_dollar_escape_is_not_read_again_where_the_run_keeps_its_profile(tmp_path: Path,
                                                                                              monkeypatch) -> None:
    """saving.output_dir = "new$$runs" read as new$runs was read again, as "$runs", where `dbtui run` makes the
    profile's folders absolute, and where a resume or an export reads a checkpoint's manifest (model_dump): refused as
    "the environment variable $runs, which is not set", or another folder where that variable is set."""
    from engine.runs.checkpoints import recorded_profile
    from engine.runs.launcher import anchored_profile

    monkeypatch.delenv("runs", raising=False)
    profile = loads_profile(MINIMAL, [f'saving.output_dir="{tmp_path}/new$$runs"'])
    assert anchored_profile(profile).saving.output_dir == f"{tmp_path}/new$runs"
    monkeypatch.setenv("runs", "elsewhere")
    assert recorded_profile({"profile": profile.model_dump(mode="json")}) == profile


@pytest.mark.parametrize("name", ["m$$x", "x$HOME_LIKE"])
def test_a_model_folder_with_a_dollar_is_looked_for_where_the_profile_read_it(name: str, tiny_sd1: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    """model.pretrained read as .../m$$x (written m$$$$x) was read again where its folder is looked at (local_path):
    validate and the run refused the model as "does not exist" (m$x), or looked in $HOME_LIKE's folder instead."""
    from dbtui.engine_facade import RealEngine
    from engine.dataset.profile_paths import model_source_problems
    from engine.memory.absent_model import is_absent
    from engine.model_problems import model_part_problems

    monkeypatch.setenv("HOME_LIKE", str(tmp_path / "elsewhere"))
    shutil.copytree(tiny_sd1, tmp_path / name)
    written = str(tmp_path / name).replace("$", "$$")
    profile = loads_profile(MINIMAL, [f'model.pretrained="{written}"'])
    assert profile.model.pretrained == str(tmp_path / name)
    assert model_source_problems(profile.model.pretrained) == model_part_problems(profile.model) == []
    assert not is_absent(profile.model.pretrained)
    checked = RealEngine().inspect_model(written)  # the wizard's Model step, which checks the draft as written
    assert checked.supported and checked.source == written


def test_an_item_of_a_list_the_profile_does_not_set_says_to_set_the_whole_list() -> None:
    with pytest.raises(ProfileError) as raised:
        loads_profile(MINIMAL, ['sampling.prompts.0="a photo"'])
    [problem] = raised.value.problems
    assert "sampling.prompts is not set in this profile" in problem.message and "list of tables" not in problem.message


@pytest.mark.parametrize(("override", "suggestion", "said"), [
    ("max_train_steps=10", "training.max_train_steps", "unknown key"),
    ("training.lora.max_train_steps=10", "training.max_train_steps", "unknown key"),
])
def test_a_right_key_in_the_wrong_place_is_pointed_to_where_it_belongs(override: str, suggestion: str, said: str) -> None:
    with pytest.raises(ProfileError) as raised:
        loads_profile(MINIMAL, [override])
    [problem] = raised.value.problems
    assert (problem.suggestion, problem.message) == (suggestion, said)


@pytest.mark.parametrize(("override", "suggestion"), [("training.lr=1e-4", "optimizer.learning_rate"),
                                                      ("training.lora.network_dim=16", "training.lora.rank"),
                                                      ("with_prior_preservation=true", "prior.enabled")])
def test_a_key_named_as_other_tools_name_it_is_pointed_to_ours(override: str, suggestion: str) -> None:
    """`lr` is nearer `lora` as letters: the names diffusers' and kohya's scripts use come first."""
    [problem] = problems_of(MINIMAL, [override])
    assert problem.suggestion == suggestion


@pytest.mark.parametrize(("override", "suggestion"), [
    # kohya's and diffusers' Flux scripts call [dev]'s training guidance --guidance_scale: it was pointed to
    # prior.guidance_scale, the class images' guidance, which a Flux LoRA without prior preservation never reads.
    ("training.guidance_scale=1.0", "training.flow.guidance"),
    ("training.flow.guidance_scale=1.0", "training.flow.guidance"),
    ("training.discrete_flow_shift=3.1", "training.flow.shift"),
    ("training.weighting_scheme=\"cosmap\"", "training.flow.loss_weighting"),
    # Two of diffusers' --weighting_scheme values pick the timestep sampling: pointed to loss_weighting, which refuses
    # them, a user had no word of training.flow.timestep_sampling.
    ("training.weighting_scheme=\"logit_normal\"", "training.flow.timestep_sampling"),
    ("training.flow.weighting_scheme=\"mode\"", "training.flow.timestep_sampling"),
    ("model.fp8_base=true", "model.quantize"),
])
def test_a_flux_setting_named_as_other_tools_name_it_is_pointed_to_ours(override: str, suggestion: str) -> None:
    [problem] = problems_of(MINIMAL, [override])
    assert problem.suggestion == suggestion


def test_an_unknown_key_with_no_near_name_lists_the_keys_of_its_section() -> None:
    """An SDXL user's model.text_encoder_2 was told "unknown key" and nothing more: no near key, nothing to do."""
    [problem] = problems_of(MINIMAL, ['model.text_encoder_2="x"'])
    assert problem.suggestion is None
    assert problem.message == "unknown key; the keys here: pretrained, revision, vae, tokenizer, quantize"


@pytest.mark.parametrize("override", ["guidance_scale=3.5", "optimizer.guidance_scale=3.5"])
def test_a_key_several_sections_hold_is_told_with_each_of_them(override: str) -> None:
    """A top-level guidance_scale = 3.5 was pointed to prior.guidance_scale, the class images' guidance, where a user
    may mean the previews' or, as diffusers' Flux script names it, Flux's training guidance: each is named, none picked."""
    [problem] = problems_of(MINIMAL, [override])
    assert problem.suggestion is None
    assert problem.message == (
        "unknown key; it is a key of several sections, each its own setting: prior.guidance_scale (guidance for "
        "generated class images); sampling.guidance_scale (guidance for preview images); training.flow.guidance "
        "(Flux.1 [dev]'s guidance while training, which diffusers' and kohya's Flux scripts call guidance_scale)")


@pytest.mark.parametrize(("override", "suggestion", "others"), [
    ("sampling.guidance=7", "sampling.guidance_scale", "another section's guidance: training.flow.guidance (the guidance"),
    ("training.steps=5", "training.max_train_steps", "other sections' steps, each its own setting: prior.steps (sampling "
                                                     "steps for generated class images); sampling.steps (sampling steps"),
])
def test_a_key_of_another_section_that_a_key_here_spells_out_points_here_first(override: str, suggestion: str,
                                                                                others: str) -> None:
    """sampling.guidance was pointed to Flux's training.flow.guidance, and training.steps to prior.steps and
    sampling.steps only, where the section's own guidance_scale and max_train_steps are surely meant."""
    from dbtui.problem_lines import problem_line

    [problem] = problems_of(MINIMAL, [override])
    assert problem.suggestion == suggestion
    assert problem.message.startswith(f"unknown key; {others}"), problem.message
    assert str(problem).startswith(f"--set {override}: unknown key (did you mean '{suggestion}'?); {others}")
    assert problem_line(problem).startswith(f"{problem.key}: unknown key (did you mean {suggestion}?); {others}")


def test_a_name_beginning_a_keys_words_keeps_its_capitals() -> None:
    """launch.rank, pointed to launch.machine_rank first (0148120b), told the other section's key as
    "training.lora.rank (loRA rank)": the first letter of its description was lowered, a name's too."""
    [problem] = problems_of(MINIMAL, ["launch.rank=4"])
    assert problem.message == "unknown key; another section's rank: training.lora.rank (LoRA rank)", problem.message
    [problem] = problems_of(MINIMAL, ["sampling.guidance=7"])
    assert "training.flow.guidance (the guidance value" in problem.message, problem.message


def test_each_section_of_a_key_several_hold_is_told_in_whole_words() -> None:
    """The words were cut at the first comma, inside a bracket too: "evaluation.enabled (score every preview round
    (DreamBooth's DINO)", its bracket left open."""
    from collections import Counter

    from engine.profile.problem_words import field_paths

    held = Counter(path.rsplit(".", 1)[-1] for path in field_paths(Profile) if "." in path)
    for name in [name for name, count in held.items() if count > 1]:
        [problem] = problems_of(MINIMAL, [f"model.{name}=1"])
        told = problem.message.partition("each its own setting: ")[2]
        assert told and told.count("(") == told.count(")"), problem.message
        assert all(" (" in part and not part.endswith("()") for part in told.split("; ")), problem.message
    [enabled] = problems_of(MINIMAL, ["enabled=true"])
    assert "evaluation.enabled (score every preview round (DreamBooth's DINO, CLIP-I and CLIP-T) and name the best " \
           "step)" in enabled.message


def test_an_unknown_top_level_key_lists_the_keys_apart_from_the_sections() -> None:
    """The list mixed sections and the file's schema_version in with the keys: "the keys here: schema_version, name,
    model, concepts, …"."""
    [problem] = problems_of(MINIMAL, ["colour=1"])
    assert problem.message == ("unknown key; the keys here: name; the sections: [model], [[concepts]], [dataset], [prior], "
                               "[training], [optimizer], [precision], [sampling], [evaluation], [saving], [logging], [launch]")
    [inner] = problems_of(MINIMAL, ["training.zzz_qqq=1"])
    assert inner.message.endswith("the sections: [training.lora], [training.flow]"), inner.message


def test_every_other_tools_name_points_to_a_key_of_the_profile() -> None:
    from engine.profile.problem_words import field_paths
    from engine.profile.other_names import OTHER_TOOLS_NAMES, PLACED_NAMES, TIMESTEP_SCHEMES, other_tools_key

    by_value = {other_tools_key("weighting_scheme", value) for value in (*TIMESTEP_SCHEMES, "cosmap")}
    assert set(OTHER_TOOLS_NAMES.values()) | set(PLACED_NAMES.values()) | by_value <= set(field_paths(Profile))


def test_a_top_level_key_written_below_a_section_says_where_top_level_keys_go() -> None:
    [problem] = problems_of(MINIMAL + '\n[saving]\nname = "mine"\n')
    assert problem.key == "saving.name" and problem.suggestion == "name"
    assert "top-level keys go above the first [section]" in problem.message


@pytest.mark.parametrize(("override", "said"), [("name=2024", "2024 was read as a number: put it in quotes, name = \"2024\""),
                                                ("concepts.0.instance_prompt=true", "true was read as a boolean")])
def test_a_number_or_boolean_where_text_belongs_says_to_quote_it(override: str, said: str) -> None:
    with pytest.raises(ProfileError) as raised:
        loads_profile(MINIMAL, [override])
    assert said in raised.value.problems[0].message


def test_a_single_bracketed_concepts_table_says_to_write_two_brackets() -> None:
    [problem] = problems_of('model.pretrained = "builtin:tiny-sd1"\n[concepts]\ninstance_dir = "x"\ninstance_prompt = "y"\n')
    assert problem.key == "concepts" and problem.line == 2
    assert "write [[concepts]], with two brackets" in problem.message


def test_a_double_bracketed_section_says_to_write_one_bracket() -> None:
    """[[dataset]], written as [[concepts]] is, was told "set one key, e.g. dataset.resolution", with no line."""
    text = ('model.pretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "x"\ninstance_prompt = "y"\n'
            "[[dataset]]\nresolution = 64\n")
    [problem] = problems_of(text)
    assert problem.key == "dataset" and problem.line == 5
    assert "write [dataset], with one bracket" in problem.message


def test_dumps_drops_empty_options() -> None:
    text = dumps_profile(loads_profile(MINIMAL))
    assert "revision" not in text and "schema_version = 1" in text


def test_a_profile_write_failing_on_a_read_only_disk_says_so_not_the_cleanups_error(tmp_path: Path, monkeypatch) -> None:
    """The temporary file's removal failed too (EROFS even for a missing file) and its error replaced the write's."""
    import errno

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: read_only(self))
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: read_only(self))
    with pytest.raises(OSError) as raised:
        save_profile(loads_profile(MINIMAL), tmp_path / "p.toml")
    assert raised.value.errno == errno.EROFS and raised.value.filename.endswith(".tmp")
    assert raised.value.__context__ is None  # the write's own error, not the cleanup's raised while handling it


def test_a_file_name_of_255_bytes_is_saved(tmp_path: Path) -> None:
    """The temporary file was the name with 5 bytes added, which no file system takes past 250."""
    path = save_profile(loads_profile(MINIMAL), tmp_path / ("a" * 250 + ".toml"))
    assert loads_profile(path.read_text(encoding="utf-8")) == loads_profile(MINIMAL)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_quantize_none_as_the_wizard_names_it_says_to_leave_the_key_out() -> None:
    """The wizard's Base weights choice and README say "none" for an unquantized base: a profile writing it was told
    only the three values it takes, as if a quantized base were needed."""
    [problem] = problems_of(MINIMAL, ['model.quantize="none"'])
    assert problem.message.startswith("takes 'nf4', 'int8' or 'fp8', not 'none'")
    assert "leave model.quantize out or empty" in problem.message
    assert loads_profile(MINIMAL, ['model.quantize=""']).model.quantize is None
