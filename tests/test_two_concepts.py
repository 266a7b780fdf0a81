"""Two concepts that would train or be scored as one: one instance folder however its path is written (validate and
run say so alike), one identifier."""

from pathlib import Path

import pytest

from dbtui.cli import main
from engine.profile import load_profile
from engine.runs.inputs_check import RunInputsMissingError, check_inputs


def _profile(tmp_path: Path, second: str, prompts: tuple[str, str] = ("photo of zwx dog", "photo of qrv dog"),
             class_prompt: str = "") -> Path:
    """Two concepts: tmp_path/dog (one image), and ``second``."""
    from PIL import Image

    (tmp_path / "dog").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "dog" / "a.png")
    profile = tmp_path / "p.toml"
    profile.write_text('[model]\npretrained = "builtin:tiny-sd1"\n'
                       + "".join(f'[[concepts]]\ninstance_dir = "{folder}"\ninstance_prompt = "{prompt}"\n{class_prompt}'
                                 for folder, prompt in zip((tmp_path / "dog", second), prompts)))
    return profile


def test_one_folder_spelt_two_ways_is_an_error_at_its_set(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    profile = _profile(tmp_path, "cat")
    for command in ("validate", "run"):  # the run's own error, not one from the run folder's copy of the profile
        assert main([command, str(profile), "--set", 'concepts.0.instance_dir="dog"', "--set", 'concepts.1.instance_dir="./dog/"']) == 2
        assert '--set concepts.1.instance_dir="./dog/": is the instance folder of concept 1 (concepts.0) too' in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_one_folder_through_a_symlink_is_a_warning_and_a_run_refuses_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = _profile(tmp_path, tmp_path / "doglink")
    (tmp_path / "doglink").symlink_to(tmp_path / "dog")
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    assert f":7: concepts.1.instance_dir: is the instance folder '{tmp_path / 'dog'}' of concept 1 (concepts.0) by" in capsys.readouterr().out
    with pytest.raises(RunInputsMissingError, match=r"concepts.1.instance_dir: is the instance folder '.*' of concept 1 \(concepts.0\) by"):
        check_inputs(load_profile(profile))


@pytest.mark.parametrize(("prompts", "warned"), [(("photo of zwx dog", "a ZWX dog"), True),
                                                 (("photo of zwx dog", "a qrv dog"), False)])
def test_two_concepts_with_one_identifier_are_a_warning(prompts: tuple[str, str], warned: bool, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "puppy").mkdir()
    profile = _profile(tmp_path, tmp_path / "puppy", prompts, 'class_prompt = "photo of a dog"\n')
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    out = capsys.readouterr().out
    assert ("concepts.1.instance_prompt: uses the identifier 'ZWX' of concept 1 (concepts.0) too" in out) == warned
    assert ("give each concept its own rare token" in out) == warned
