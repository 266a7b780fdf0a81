"""A Flux transformer file as model.pretrained, offline: the run converts it with its variant's repository (the
tokenizers, the scheduler, and the VAE and text encoders the file lacks), which must then be in the Hugging Face cache.
`validate` called such a profile valid, and the run made its folder and failed at the load saying how to get them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from test_flux_files import to_original, write_bfl_file

from dbtui.cli import main

PROFILE = """[model]
pretrained = "{file}"

[[concepts]]
instance_dir = "builtin:demo-instance"
instance_prompt = "photo of zwx disc"

[precision]
mixed_precision = "no"

[saving]
output_dir = "{runs}"
"""
SAID = "is a Flux.1 [dev] transformer file, converted when the run starts: the VAE, CLIP-L, T5, the tokenizers and " \
       "the scheduler for this Flux.1 [dev] transformer come from black-forest-labs/FLUX.1-dev, which is not in the " \
       "Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it"


@pytest.fixture
def flux_profile(tmp_path: Path, tiny_flux: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    weights = load_file(tiny_flux / "transformer" / "diffusion_pytorch_model.safetensors")
    file = write_bfl_file(tmp_path / "flux1-dev-mine.safetensors", to_original(weights))
    path = tmp_path / "flux.toml"
    path.write_text(PROFILE.format(file=file, runs=tmp_path / "runs"))
    return path


def test_validate_says_offline_what_the_run_would_fail_for(flux_profile: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["validate", "--elsewhere", str(flux_profile)]) == 0  # this machine lacks it: a warning, as an uncached hub id is
    assert f"{flux_profile}:2: model.pretrained: '{flux_profile.parent / 'flux1-dev-mine.safetensors'}' {SAID}" \
        in capsys.readouterr().out
    assert main(["run", str(flux_profile)]) == 2
    assert f"cannot start the run: model.pretrained: '{flux_profile.parent / 'flux1-dev-mine.safetensors'}' {SAID}" \
        in capsys.readouterr().err
    assert not (flux_profile.parent / "runs").exists()


def test_components_in_the_cache_or_a_hub_to_download_them_from_are_no_problem(
        flux_profile: Path, tiny_flux: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # online: the run downloads them; validate asks no network
    assert main(["validate", "--elsewhere", str(flux_profile)]) == 0
    assert "model.pretrained" not in capsys.readouterr().out
    repo = flux_profile.parent / "hub" / "models--black-forest-labs--FLUX.1-dev"
    shutil.copytree(tiny_flux, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["validate", "--elsewhere", str(flux_profile)]) == 0
    assert "model.pretrained" not in capsys.readouterr().out
    shutil.rmtree(repo / "snapshots" / ("0" * 40) / "text_encoder_2")  # a partial copy: the run's conversion says so
    assert main(["validate", "--elsewhere", str(flux_profile)]) == 0
    assert "the components black-forest-labs/FLUX.1-dev lack T5" in capsys.readouterr().out


def test_a_resume_on_the_runs_own_conversion_needs_no_components(flux_profile: Path, tiny_flux: Path,
                                                                   monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # A stopped run of the file resumes on its own conversion (RUN/model/<stem>-diffusers): refusing it offline for
    # want of components the conversion no longer needs stopped a resume the trainer would have made.
    from engine.profile import load_profile
    from engine.runs.folder import run_dir_for
    from engine.runs.inputs_check import RunInputsMissingError, check_inputs

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    profile = load_profile(flux_profile)
    run_dir = run_dir_for(profile)
    with pytest.raises(RunInputsMissingError, match="converted when the run starts"):
        check_inputs(profile, run_folder=run_dir)
    shutil.copytree(tiny_flux, run_dir / "model" / "flux1-dev-mine-diffusers")
    with pytest.raises(RunInputsMissingError, match="converted when the run starts"):
        check_inputs(profile)  # another run folder converts it again
    # Past the inputs' check, `dbtui run --resume` (as `dbtui resume` and the wizard's) meets this folder's empty log.
    for command in (["run", str(flux_profile), "--resume"], ["resume", str(run_dir)]):
        assert main(command) == 2
        said = capsys.readouterr().err
        assert "converted when the run starts" not in said and ("no run to resume" in said or "not a run" in said), said
