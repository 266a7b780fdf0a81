"""A single file without its VAE (a "pruned, no VAE" download) or a text encoder, as model.pretrained: `dbtui validate`
said "valid" with nothing more, and only `dbtui run` refused it, once it converted the file. Its header's key names
tell it before a run; the conversion says it in the same words."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dbtui.cli import main
from engine.convert import export_single_file, import_single_file
from engine.convert.errors import IncompleteCheckpointError
from engine.dataset.profile_paths import model_source_problems
from tests.runs_helpers import profile_file

VAE = "has no VAE weights (first_stage_model.*)"
ADVICE = "To fix: get the full checkpoint"


@pytest.fixture(scope="module")
def whole_files(tiny_sd1: Path, tiny_sd2v: Path, tiny_sdxl: Path,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each built-in tiny model of the Stable Diffusion families, exported whole as a single file."""
    place = tmp_path_factory.mktemp("whole")
    return {name: export_single_file(folder, place / f"{name}.safetensors")
            for name, folder in (("sd1", tiny_sd1), ("sd2", tiny_sd2v), ("sdxl", tiny_sdxl))}


def _without(whole: Path, dropped: str, out: Path) -> Path:
    save_file({k: v for k, v in load_file(whole).items() if not k.startswith(dropped)}, out)
    return out


@pytest.mark.parametrize(("family", "dropped", "said"), [
    ("sd1", "first_stage_model.", VAE),
    ("sd1", "cond_stage_model.", "has no text encoder weights (cond_stage_model.transformer.*)"),
    ("sd2", "first_stage_model.", VAE),
    ("sdxl", "first_stage_model.", VAE),
    ("sdxl", "conditioner.embedders.1.",
     "has no second text encoder (OpenCLIP ViT-bigG) weights (conditioner.embedders.1.model.*)"),
    ("sdxl", "conditioner.", "has no first text encoder (CLIP ViT-L) weights (conditioner.embedders.0.transformer.*) "
                             "and no second text encoder (OpenCLIP ViT-bigG) weights (conditioner.embedders.1.model.*)"),
])
def test_validate_names_the_part_a_single_file_lacks_as_the_conversion_does(
        whole_files: dict[str, Path], family: str, dropped: str, said: str, tmp_path: Path, capsys) -> None:
    pruned = _without(whole_files[family], dropped, tmp_path / "pruned.safetensors")
    assert main(["validate", "--elsewhere", str(profile_file(tmp_path, model={"pretrained": str(pruned)}))]) == 0
    out = capsys.readouterr().out
    assert f"model.pretrained: '{pruned}' {said}" in out and ADVICE in out
    [problem] = model_source_problems(str(pruned))
    with pytest.raises(IncompleteCheckpointError) as refused:
        import_single_file(pruned, tmp_path / "out")
    assert str(refused.value) == problem.message.replace(f"'{pruned}'", pruned.name)  # one message, by one function
    assert not (tmp_path / "out").exists()
    assert model_source_problems(str(whole_files[family])) == []


def test_model_vae_stands_in_for_the_vae_a_file_lacks(whole_files: dict[str, Path], tiny_sd1: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The run converted the file whole before model.vae was read, so a "pruned, no VAE" file was refused with model.vae
    set, and the message did not say model.vae could not stand in. Now validate, the wizard's check and the run's
    conversion take model.vae's VAE for the one the file lacks; without model.vae the message says it can."""
    import engine.convert.to_diffusers as to_diffusers
    from dbtui.engine_facade import RealEngine
    from engine.models.loading import load_components, resolve_model_folder

    configs = tmp_path / "configs"  # the tiny model's architecture stands for SD1.x's shipped configs, to stay fast
    configs.mkdir()
    (configs / "sd1").symlink_to(tiny_sd1)
    monkeypatch.setattr(to_diffusers, "CONFIGS", configs)
    pruned = _without(whole_files["sd1"], "first_stage_model.", tmp_path / "pruned.safetensors")
    vae = str(tiny_sd1 / "vae")
    [problem] = model_source_problems(str(pruned))
    assert problem.message.endswith("or train from this file with model.vae set to a diffusers VAE folder or hub id of "
                                    "its family (stabilityai/sd-vae-ft-mse), which stands in for the VAE it lacks "
                                    "(`dbtui convert to-diffusers` takes it as --vae)")
    assert main(["validate", str(profile_file(tmp_path, model={"pretrained": str(pruned), "vae": vae}))]) == 0
    assert "model.pretrained" not in capsys.readouterr().out
    assert RealEngine().inspect_model(str(pruned), vae=vae).supported
    assert (RealEngine().import_model(str(pruned), tmp_path / "wizard", vae=vae) / "vae" / "config.json").is_file()
    folder = resolve_model_folder(str(pruned), work_dir=tmp_path / "model", vae=vae)
    made = load_components(folder)  # its own VAE now, not model.vae's at the load
    given = load_components(tiny_sd1)
    assert all(torch.equal(a, b) for a, b in zip(made.vae.state_dict().values(), given.vae.state_dict().values()))
    # A text encoder the file lacks is still refused: only a VAE can be given apart.
    no_text = _without(whole_files["sd1"], "cond_stage_model.", tmp_path / "no_text.safetensors")
    with pytest.raises(IncompleteCheckpointError, match="has no text encoder weights") as refused:
        import_single_file(no_text, tmp_path / "out", vae=tiny_sd1)
    assert "model.vae" not in str(refused.value)


def test_the_wizard_s_convert_reads_model_vae_as_the_profile_does(whole_files: dict[str, Path], tiny_sd1: Path,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An opened profile's model.vae = "$VAES/vae" (which validate and the run read) went to the wizard's Convert as
    written: "'$VAES/vae' is not a local folder, a model file or a valid hub id"."""
    import engine.convert.to_diffusers as to_diffusers
    from dbtui.engine_facade import RealEngine

    configs = tmp_path / "configs"  # the tiny model's architecture stands for SD1.x's shipped configs, to stay fast
    configs.mkdir()
    (configs / "sd1").symlink_to(tiny_sd1)
    monkeypatch.setattr(to_diffusers, "CONFIGS", configs)
    monkeypatch.setenv("VAES", str(tiny_sd1))
    pruned = _without(whole_files["sd1"], "first_stage_model.", tmp_path / "pruned.safetensors")
    folder = RealEngine().import_model(str(pruned), tmp_path / "wizard", vae="$VAES/vae")
    assert (folder / "vae" / "config.json").is_file()


def test_dbtui_convert_s_vae_gives_a_pruned_sd_file_its_vae(whole_files: dict[str, Path], tiny_sd1: Path,
                                                           tiny_sd2v: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`dbtui convert to-diffusers pruned.safetensors out --vae VAE` was told that --vae is for Flux transformer files,
    and the message pointed to model.vae at training alone: the file could not be converted into a whole folder. --vae
    now takes what model.vae takes (a VAE folder, a model folder with vae/, a hub id) for an SD file too."""
    import engine.convert.to_diffusers as to_diffusers
    from engine.models.loading import load_components

    configs = tmp_path / "configs"  # the tiny model's architecture stands for SD1.x's shipped configs, to stay fast
    configs.mkdir()
    (configs / "sd1").symlink_to(tiny_sd1)
    monkeypatch.setattr(to_diffusers, "CONFIGS", configs)
    pruned = _without(whole_files["sd1"], "first_stage_model.", tmp_path / "pruned.safetensors")
    out = tmp_path / "out"
    assert main(["convert", "to-diffusers", str(pruned), str(out), "--vae", str(tiny_sd1 / "vae")]) == 0, \
        capsys.readouterr().err
    made, model = load_components(out), load_components(tiny_sd1)
    assert all(torch.equal(a, b) for a, b in zip(made.vae.state_dict().values(), model.vae.state_dict().values()))
    # A whole file's VAE is replaced by the one asked for: another model's (tiny SD2's) VAE, its vae/ part named.
    replaced = tmp_path / "replaced"
    assert main(["convert", "to-diffusers", str(whole_files["sd1"]), str(replaced), "--vae", str(tiny_sd2v)]) == 0
    other = load_components(tiny_sd2v).vae.state_dict()
    assert all(torch.equal(a, b) for a, b in zip(load_components(replaced).vae.state_dict().values(), other.values()))
    # A VAE file is refused as model.vae refuses it, saying what --vae takes, and nothing is written.
    assert main(["convert", "to-diffusers", str(pruned), str(tmp_path / "none"), "--vae", str(whole_files["sd1"])]) != 0
    said = capsys.readouterr().err
    assert "is a single file; --vae takes a diffusers VAE folder" in said and "for Flux" not in said, said
    assert not (tmp_path / "none").exists()



def test_dbtui_convert_refuses_a_vae_whose_latents_the_unet_does_not_take(
        whole_files: dict[str, Path], tiny_sd1: Path, tiny_flux: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """--vae of a Flux model (16 latent channels) on an SD file wrote a folder that validate passed and whose run failed
    at its first step ("expected input ... to have 4 channels, but got 16"); model.vae is refused so at training."""
    import engine.convert.to_diffusers as to_diffusers

    configs = tmp_path / "configs"  # the tiny model's architecture stands for SD1.x's shipped configs, to stay fast
    configs.mkdir()
    (configs / "sd1").symlink_to(tiny_sd1)
    monkeypatch.setattr(to_diffusers, "CONFIGS", configs)
    out = tmp_path / "out"
    assert main(["convert", "to-diffusers", str(whole_files["sd1"]), str(out), "--vae", str(tiny_flux)]) == 2
    said = capsys.readouterr().err
    assert f"--vae's VAE ({tiny_flux}) makes latents of 16 channels, where Stable Diffusion 1.x/2.x's unet takes 4: " \
           "give a VAE made for Stable Diffusion 1.x/2.x" in said, said
    assert not out.exists()

def test_an_sd2_file_without_its_text_encoder_names_openclip_s_keys(tmp_path: Path) -> None:
    """A full-size SD2.x file is told by its UNet's 1024-wide cross-attention; its encoder is OpenCLIP's."""
    unet = "model.diffusion_model."
    source = tmp_path / "sd2.safetensors"
    save_file({f"{unet}input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
               f"{unet}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024),
               "first_stage_model.encoder.conv_in.weight": torch.zeros(128, 3, 3, 3)}, source)
    [problem] = model_source_problems(str(source))
    assert "has no text encoder weights (cond_stage_model.model.*): a Stable Diffusion 2.x checkpoint" in problem.message


def test_validate_and_the_wizard_s_model_step_name_what_a_ckpt_lacks(whole_files: dict[str, Path], tmp_path: Path,
                                                                     capsys) -> None:
    """`validate` read no .ckpt's keys, so a pruned .ckpt passed it and failed only at the run's conversion. A zip .ckpt
    (torch.save's format since torch 1.6) is read memory-mapped, its tensors' bytes unread; a legacy pickle cannot be
    mapped, and reading all of it is left to the wizard's model step and the run."""
    from dbtui.engine_facade import RealEngine

    weights = {k: v for k, v in load_file(whole_files["sd1"]).items() if not k.startswith("first_stage_model.")}
    source, legacy = tmp_path / "pruned.ckpt", tmp_path / "legacy.ckpt"
    torch.save({"state_dict": weights}, source)
    torch.save({"state_dict": weights}, legacy, _use_new_zipfile_serialization=False)
    assert main(["validate", "--elsewhere", str(profile_file(tmp_path, model={"pretrained": str(source)}))]) == 0
    out = capsys.readouterr().out
    assert f"model.pretrained: '{source}' {VAE}" in out and ADVICE in out
    assert model_source_problems(str(legacy)) == []
    for ckpt in (source, legacy):
        checked = RealEngine().inspect_model(str(ckpt))
        assert not checked.supported and f"'{ckpt}' {VAE}" in checked.family and ADVICE in checked.family
