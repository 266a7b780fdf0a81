"""`dbtui validate` exits as `dbtui run` would start: a CI step "validate, then run" passed validate (exit 0, a warning)
for a missing instance folder, and failed at run (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"


def test_a_missing_instance_folder_fails_validate_as_it_refuses_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtui.cli import main

    monkeypatch.chdir(tmp_path)
    given = [str(DEMO), "--set", 'concepts.0.instance_dir="photos"', "--set", 'saving.output_dir="runs"']
    said = "folder 'photos' does not exist"
    assert main(["validate", *given]) == 2
    validated = capsys.readouterr()
    assert said in validated.err and "valid (" not in validated.out
    assert main(["run", *given]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # A profile meant for another machine: what this one lacks is a warning there.
    assert main(["validate", *given, "--elsewhere"]) == 0
    assert f"  warning: --set concepts.0.instance_dir=\"photos\": {said}" in capsys.readouterr().out


def test_what_the_run_goes_on_with_stays_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scorer folder missing here: the run goes on unscored, so validate passes with a warning."""
    from dbtui.cli import main

    scorer = tmp_path / "no-clip"
    assert main(["validate", str(DEMO), "--set", f'evaluation.clip_model="{scorer}"']) == 0
    out = capsys.readouterr().out
    assert "valid (" in out and "warning: --set evaluation.clip_model" in out


@pytest.mark.parametrize("written", ["models/dino/", "scorers/dino/vits16", "dino/"])
def test_a_relative_scorer_folder_no_hub_id_can_be_is_warned_of_when_it_is_not_there(
        written: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The README: validate warns "of a scorer folder that is not there". One written as the shell completes it
    ("models/dino/"), or of several levels, passed validate with no word, and the run said it was "offline, and not in
    the Hugging Face cache", a hub id it cannot be; only one starting with /, ./, ../ or ~ was told missing."""
    from dbtui.cli import main
    from engine.evaluation.prompt_problems import missing_scorer_folder

    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(DEMO), "--set", f'evaluation.dino_model="{written}"']) == 0
    assert f"the folder '{written}' does not exist" in capsys.readouterr().out
    (tmp_path / written).mkdir(parents=True)
    assert missing_scorer_folder(written) is None
    assert missing_scorer_folder("facebook/dino-vits16") is None and missing_scorer_folder("builtin:tiny-dino") is None


@pytest.mark.parametrize("offline", [True, False])
def test_a_hub_scorer_not_cached_while_offline_is_warned_of(offline: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """With HF_HUB_OFFLINE=1 and the default scorers not in the cache, validate said the profile was valid with no word
    of scoring; the run then trained unscored ('cannot load the scorer … offline, and not in the Hugging Face cache')."""
    from dbtui.cli import main

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # nothing cached, whatever this machine holds
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert main(["validate", str(DEMO), "--set", 'evaluation.clip_model="openai/clip-vit-base-patch32"']) == 0
    said = ("warning: --set evaluation.clip_model=\"openai/clip-vit-base-patch32\": 'openai/clip-vit-base-patch32' is not "
            "in the Hugging Face cache, and HF_HUB_OFFLINE forbids downloading it")
    assert (said in capsys.readouterr().out) is offline


def test_an_uncached_hub_scorer_while_offline_is_told_the_download_not_to_give_a_hub_id(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warning ended "give a model folder, a hub id, or builtin:tiny-clip / builtin:tiny-dino" of a name that is a
    hub id already; it now says the command that downloads it, one huggingface_hub installs, or to give a folder."""
    from importlib.metadata import entry_points

    from engine.evaluation.prompt_problems import scorer_problems
    from engine.profile import load_profile

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    profile = load_profile(DEMO, ['evaluation.clip_model="openai/clip-vit-base-patch32"'])
    [problem] = [problem for problem in scorer_problems(profile) if problem.key == "evaluation.clip_model"]
    assert problem.message.startswith(
        "'openai/clip-vit-base-patch32' is not in the Hugging Face cache, and HF_HUB_OFFLINE forbids downloading it: the "
        "run would not be scored; download it first, where this machine reaches the hub (`HF_HUB_OFFLINE=0 hf download "
        "openai/clip-vit-base-patch32` keeps it in the cache), or give a folder of it (`hf download "
        "openai/clip-vit-base-patch32 --local-dir FOLDER` on a machine with internet, then copy FOLDER here)."), problem
    assert "a hub id" not in problem.message
    assert entry_points(group="console_scripts", name="hf")


def test_a_relative_scorer_folder_is_not_taken_for_a_hub_id_while_offline(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With HF_HUB_OFFLINE=1, evaluation.clip_model = "models/clip" (a folder in the working folder, which the run loads)
    was warned of as "'models/clip' is not in the Hugging Face cache … the run would not be scored"."""
    from engine.evaluation.prompt_problems import offline_scorer

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    (tmp_path / "models" / "clip").mkdir(parents=True)
    assert offline_scorer("models/clip") is None
    assert "'models/dino' is not in the Hugging Face cache" in (offline_scorer("models/dino") or "")
