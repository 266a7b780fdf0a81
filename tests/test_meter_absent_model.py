"""The memory meter on a profile written for the machine to rent, whose model is not on this one: estimated on the
published architecture of the family its name says, and said so; `dbtui hardware --profile` says its guess too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.memory.architecture import ArchitectureUnavailableError, architecture_of
from tests.training_helpers import tiny_profile

NOTE = "'{}' does not exist on this machine: estimated as {}'s published architecture (guessed from its name;"


def _denoiser_size(source: str) -> float:
    architecture = architecture_of(source)
    with torch.device("meta"):
        parts = architecture.build()
    return sum(p.numel() for p in parts.unet.parameters())


@pytest.mark.parametrize(("source", "family", "who", "size"), [
    ("/workspace/models/juggernautXL_v9.safetensors", "sdxl", "SDXL base", 2.57e9),
    ("/nonexistent/sdxl-model", "sdxl", "SDXL base", 2.57e9),
    ("/workspace/sd15-finetune", "sd", "SD1.5", 0.86e9),
    ("/workspace/models/flux1-schnell-fp8.safetensors", "flux", "FLUX.1 [schnell]", 11.9e9),
    # FluxGym's folder, or a folder of Flux runs, does not make the model in it a Flux.
    ("/workspace/fluxgym/models/juggernautXL_v9.safetensors", "sdxl", "SDXL base", 2.57e9),
    ("/workspace/flux-runs/v1-5-pruned-emaonly.safetensors", "sd", "SD1.5", 0.86e9),
])
def test_a_model_absent_here_is_estimated_as_the_published_architecture_its_name_says(
        source: str, family: str, who: str, size: float) -> None:
    """It said "not available (…: no such file)", or of a folder that does not exist "is not a diffusers model folder"."""
    architecture = architecture_of(source)
    assert architecture.family.id == family
    assert architecture.note.startswith(NOTE.format(source, who)) and "--set 'model.pretrained=" in architecture.note
    assert f"{Path(source).name}, not on this machine" in architecture.label
    assert _denoiser_size(source) == pytest.approx(size, rel=0.02)


def test_an_absent_model_whose_name_says_no_family_is_said_to_be_absent_with_how_to_estimate_it() -> None:
    with pytest.raises(ArchitectureUnavailableError) as raised:
        architecture_of("/data/models/my-finetune")
    message = str(raised.value)
    assert message.startswith("'/data/models/my-finetune' does not exist on this machine and its name does not say")
    assert "--set 'model.pretrained=\"stabilityai/stable-diffusion-xl-base-1.0\"'" in message
    assert "model_index.json" not in message


def test_a_folder_that_is_here_but_no_diffusers_model_is_still_said_so(tmp_path: Path) -> None:
    with pytest.raises(ArchitectureUnavailableError, match="is not a diffusers model folder"):
        architecture_of(str(tmp_path))


def test_fit_estimate_only_of_a_profile_for_another_machine_estimates_and_says_the_guess(
        tmp_path: Path, tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Model and images absent: the estimate is made (rc 0), on the guessed architecture (here the tiny model stands
    for SD1.5's configs, to stay fast), with the note first."""
    import engine.convert.to_diffusers as to_diffusers
    from dbtui.cli import main
    from engine.profile import save_profile

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "sd1").symlink_to(tiny_sd1)
    monkeypatch.setattr(to_diffusers, "CONFIGS", configs)
    profile = tiny_profile(tmp_path, model={"pretrained": "/workspace/models/sd15-person.safetensors"},
                           concepts=[{"instance_dir": "/workspace/photos", "instance_prompt": "photo of zwx dog"}])
    path = save_profile(profile, tmp_path / "rented.toml")
    assert main(["fit", str(path), "--estimate-only"]) == 0
    out = capsys.readouterr().out
    assert "not available" not in out
    assert "SD1.5's published architecture (sd15-person.safetensors, not on this machine)" in out
    assert "  note: " + NOTE.format("/workspace/models/sd15-person.safetensors", "SD1.5") in out
    assert "fits 8 GB" in out and "(on an architecture guessed from the model's name: see the first note)" in out
    assert "the pictures of '/workspace/photos' are not read here" in out


@pytest.mark.parametrize(("pretrained", "family", "said"), [
    ("/data/juggernautXL_v9.safetensors", "sdxl", "it is not on this machine, so its family, SDXL, is guessed from its name"),
    ("/data/models/my-finetune", "sd", "its name says neither SDXL nor Flux nor SD2, so this advice is for SD1.x, by "
                                       "SD1.5's figures; for SD2.x ask with --family sd2"),
    ("/data/models/sd21-person", "sd2", "it is not on this machine, so its family, SD2.x, is guessed from its name"),
    # A name that says SD1 was told it said "neither SDXL nor Flux nor SD2" and to ask for SD2 with --family sd2.
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "sd", "nor a hub model downloaded here, so its family, SD1.x, is "
                                                          "guessed from its name"),
    ("/data/models/sd15-person.safetensors", "sd", "its family, SD1.x, is guessed from its name"),
])
def test_hardware_profile_says_the_family_was_guessed_from_the_name(
        tmp_path: Path, pretrained: str, family: str, said: str, capsys) -> None:
    """With a model not here and a name without XL or flux, it gave SD advice silently."""
    from dbtui.cli import main
    from engine.profile import save_profile

    path = save_profile(tiny_profile(tmp_path, model={"pretrained": pretrained}), tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == family and said in data["family_note"]
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path)]) == 0
    assert said.split(",")[0] in " ".join(capsys.readouterr().out.split())


def test_hardware_profile_of_a_model_here_says_no_guess(tmp_path: Path, tiny_sd1: Path, capsys) -> None:
    from dbtui.cli import main
    from engine.profile import save_profile

    path = save_profile(tiny_profile(tmp_path, model={"pretrained": str(tiny_sd1)}), tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["family_note"] is None


@pytest.mark.parametrize(("pretrained", "resolution", "noted"), [("stable-diffusion-v1-5/stable-diffusion-v1-5", 1280, True),
                                                                  ("stabilityai/stable-diffusion-2-1", 1280, True),
                                                                  ("stable-diffusion-v1-5/stable-diffusion-v1-5", 512, False),
                                                                  ("stable-diffusion-v1-5/stable-diffusion-v1-5", 1024, False),
                                                                  ("stabilityai/stable-diffusion-2-1", 768, False),
                                                                  ("stabilityai/stable-diffusion-2-1", 1024, False),
                                                                  ("stabilityai/stable-diffusion-xl-base-1.0", 768, False)])
def test_hardware_profile_of_an_sd_model_larger_than_the_figures_says_so(
        tmp_path: Path, pretrained: str, resolution: int, noted: bool, capsys) -> None:
    """An SD2.1 profile at 768 px heard "full fine-tune with text-encoder training" for a 20 GB card, by SD1.5's 17.4 GB
    at 512 px (the SD presets keep the profile's size; the meter says 23.9 GB for it), without a word on the size. An
    SD profile is judged by the presets' figures at the smallest size measured at or above its own, 768 or 1024 px
    (tests/test_sd_size_preset_pick.py): the note stays for a size above them all."""
    from dbtui.cli import main
    from engine.profile import save_profile

    profile = tiny_profile(tmp_path, model={"pretrained": pretrained}, dataset={"resolution": resolution})
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path), "--card", "20", "--json"]) == 0
    note = json.loads(capsys.readouterr().out)["family_note"] or ""
    assert (f"{resolution} px" in note and f"`dbtui fit {path} --estimate-only --card 20`" in note) is noted, note


@pytest.mark.parametrize(("source", "family"), [
    ("/workspace/fluxgym/models/juggernautXL_v9.safetensors", "sdxl"),
    ("/workspace/flux-runs/my-finetune", "sd"),
    ("/workspace/XL-models/v1-5-pruned.safetensors", "sd"),
    ("/workspace/models/flux1-dev-fp8.safetensors", "flux"),
    ("someorg/FLUX-thing", "flux"),
    ("fluxorg/juggernautXL_v9", "sdxl"),
])
def test_the_family_is_guessed_from_the_models_own_name_not_its_folders(source: str, family: str) -> None:
    """A "flux" anywhere in the path made an SDXL model in /workspace/fluxgym/models a FLUX.1 estimate."""
    from engine.model_info import likely_family

    assert likely_family(source) == family


@pytest.mark.parametrize("name", [
    "flux2-dev.safetensors", "FLUX.2-dev", "flux1-fill-dev.safetensors", "flux1-depth-dev", "flux1-canny-dev.safetensors",
    "flux1-redux-dev.safetensors", "chroma-unlocked-v35.safetensors", "sd_xl_refiner_1.0.safetensors",
    "SSD-1B.safetensors", "PixArt-Sigma-XL-2-1024-MS", "t5xxl_fp16.safetensors", "clip_l.safetensors",
    "sdxl_vae.safetensors", "my_sdxl_lora.safetensors"])
def test_an_absent_model_whose_name_is_no_base_model_dbtui_trains_is_not_guessed(name: str) -> None:
    """FLUX.2 was estimated as FLUX.1 [dev], the refiner and t5xxl as SDXL base, SSD-1B as SD1.5."""
    with pytest.raises(ArchitectureUnavailableError) as raised:
        architecture_of(f"/workspace/models/{name}")
    assert "names no base model dbtui trains" in str(raised.value)
    assert "--set 'model.pretrained=\"stabilityai/stable-diffusion-xl-base-1.0\"'" in str(raised.value)


@pytest.mark.parametrize(("name", "family"), [
    ("realvisxlV40_v40LightningBakedvae.safetensors", "sdxl"), ("sd-v1-5-baked-vae.safetensors", "sd"),
    ("floralXL.safetensors", "sdxl"), ("flux1-dev-fp8.safetensors", "flux")])
def test_base_models_whose_names_hold_such_a_word_are_still_guessed(name: str, family: str) -> None:
    assert architecture_of(f"/workspace/models/{name}").family.id == family


def test_an_absent_model_whose_folder_is_here_is_said_to_be_a_path_to_check(tmp_path: Path) -> None:
    """A typo (".safetensor", "models" for "Models") was told only "juggernautXL_v9.safetensor, not on this machine"."""
    source = str(tmp_path / "juggernautXL_v9.safetensor")
    architecture = architecture_of(source)
    assert architecture.guessed and architecture.family.id == "sdxl"
    assert architecture.note.startswith(f"'{source}' does not exist on this machine (check the path: its folder "
                                        f"'{tmp_path}' is here): estimated as SDXL base's published architecture")
    assert "check the path" not in architecture_of("/workspace/nowhere/juggernautXL_v9.safetensors").note


@pytest.mark.parametrize(("part", "config"), [("vae", "config.json"), ("text_encoder", "config.json"),
                                              ("scheduler", "scheduler_config.json")])
def test_a_model_folder_copied_without_a_part_is_refused_by_the_part_it_lacks(part: str, config: str, tmp_path: Path,
                                                                              tiny_sd1: Path) -> None:
    """`dbtui fit --estimate-only` crashed with diffusers' "no file named config.json found in directory FOLDER"."""
    import shutil

    from engine.memory import estimate_peak

    folder = tmp_path / "my model"
    shutil.copytree(tiny_sd1, folder)
    shutil.rmtree(folder / part)
    with pytest.raises(ArchitectureUnavailableError, match=rf"lacks {part}/{config}, which its model_index.json"):
        estimate_peak(tiny_profile(tmp_path, model={"pretrained": str(folder)}))


def test_a_model_folder_without_a_vae_is_estimated_with_model_vae(tmp_path: Path, tiny_sd1: Path) -> None:
    """A folder without vae/ and model.vae naming one trains (the run loads that VAE alone), but the meter said to copy
    the folder's vae/ part."""
    import shutil

    from engine.memory import estimate_peak

    folder = tmp_path / "no vae"
    shutil.copytree(tiny_sd1, folder)
    shutil.rmtree(folder / "vae")
    for vae in (tiny_sd1, tiny_sd1 / "vae"):  # a model with a vae/ part, or a VAE folder
        profile = tiny_profile(tmp_path, model={"pretrained": str(folder), "vae": str(vae)})
        assert estimate_peak(profile).run_need == estimate_peak(tiny_profile(tmp_path, model={"pretrained": str(tiny_sd1)})).run_need
    single = tmp_path / "vae-ft-mse-840000-ema-pruned.safetensors"
    single.write_bytes(b"")
    with pytest.raises(ArchitectureUnavailableError, match="is a single file; model.vae takes a diffusers VAE folder"):
        estimate_peak(tiny_profile(tmp_path, model={"pretrained": str(folder), "vae": str(single)}))


def test_a_relative_folder_read_as_a_hub_id_is_said_where_it_is_read_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fit --estimate-only` of `model.pretrained = "models/sd15"` from another folder only said to download
    `hf download models/sd15`, a hub id that is no one's, where `dbtui run` says where a relative folder is read. (A
    name that says its family, as "models/sd15" does, is now estimated on that family's architecture, both readings
    said: test_a_relative_name_neither_here_nor_cached_is_read_both_ways_by_fit_and_hardware.)"""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArchitectureUnavailableError) as raised:
        architecture_of("models/mine")
    assert f"If 'models/mine' is a folder, it is read from the folder dbtui runs in ({tmp_path})" in str(raised.value)


def test_a_name_that_is_no_hub_id_is_not_given_a_download_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """`my models/sd15` (a folder not here) was told to `hf download my models/sd15 --local-dir FOLDER`. (A name that
    says its family is now estimated on it: test_a_relative_folder_that_can_be_no_hub_id_is_estimated_on_its_guessed_family_too.)"""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArchitectureUnavailableError) as raised:
        architecture_of("my models/mine")
    assert "hf download" not in str(raised.value) and "is not on this machine, nor a hub id" in str(raised.value)


def test_hardware_s_size_note_names_each_card_once_in_the_order_asked(tmp_path: Path, capsys) -> None:
    """`dbtui hardware --profile P --card T4 --card T4` told the user to run `dbtui fit P --estimate-only --card T4
    --card T4`: each card asked is named once, in the order given."""
    from dbtui.cli import main
    from engine.profile import save_profile

    profile = tiny_profile(tmp_path, model={"pretrained": "stable-diffusion-v1-5/stable-diffusion-v1-5"},
                           dataset={"resolution": 1280})  # above every size measured: the note
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path), "--json",
                 "--card", "T4", "--card", "20", "--card", "T4"]) == 0
    note = json.loads(capsys.readouterr().out)["family_note"]
    assert f"`dbtui fit {path} --estimate-only --card T4 --card 20`" in note, note


def test_a_relative_name_neither_here_nor_cached_is_read_both_ways_by_fit_and_hardware(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """"models/flux", a folder not here or a hub id not downloaded: `dbtui hardware --profile` guessed Flux from its
    name, `dbtui fit` read it as a hub id alone and said "not available"."""
    from dbtui.cli import main
    from engine.profile import save_profile

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # not cached, and no hub to ask
    monkeypatch.chdir(tmp_path)
    guessed = architecture_of("models/sd15-person")
    assert guessed.family.id == "sd" and guessed.note.startswith(
        f"'models/sd15-person' is neither a folder here (read from {tmp_path}) nor a hub model downloaded here")
    with pytest.raises(ArchitectureUnavailableError, match="neither in the Hugging Face cache"):
        architecture_of("models/mine")  # a name that says no family: the error, as before
    path = save_profile(tiny_profile(tmp_path, model={"pretrained": "models/sd15-person"}), tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path), "--json"]) == 0
    note = json.loads(capsys.readouterr().out)["family_note"]
    assert f"it is neither a folder here (read from {tmp_path}) nor a hub model downloaded here" in note


@pytest.mark.parametrize("source", ["data/models/sd15-base", "my models/sd15-base"])
def test_a_relative_folder_that_can_be_no_hub_id_is_estimated_on_its_guessed_family_too(
        source: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """"data/models/sd15-base", a relative folder not here that no hub id can be: `dbtui hardware --profile` guessed
    SD1.x and said it was "neither a folder here nor a hub model downloaded here", while `dbtui fit` said only "memory
    estimate: not available ('data/models/sd15-base' is not on this machine, nor a hub id …)"."""
    from dbtui.cli import main
    from engine.profile import save_profile

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    guessed = architecture_of(source)
    assert guessed.family.id == "sd" and guessed.note.startswith(
        f"'{source}' is not a folder here (read from {tmp_path}): estimated as SD1.5's published architecture"), guessed.note
    assert "hf download" not in guessed.note
    with pytest.raises(ArchitectureUnavailableError, match="nor a hub id"):
        architecture_of("data/models/mine")  # a name that says no family: the error, as before
    path = save_profile(tiny_profile(tmp_path, model={"pretrained": source}), tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path), "--json"]) == 0
    note = json.loads(capsys.readouterr().out)["family_note"]
    assert f"it is not a folder here (read from {tmp_path}), so its family, SD1.x, is guessed" in note, note
