"""`dbtui hardware` (and `dbtui --version`) in a pipe, and `dbtui hardware` in a narrow terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.memory.preset_table import load_preset_estimates
from tests.runs_helpers import ROOT, env


@pytest.mark.parametrize("json", [False, True], ids=["table", "json"])
def test_a_closed_output_pipe_ends_dbtui_hardware_with_status_0(json: bool, tmp_path: Path) -> None:
    """`dbtui hardware | head -1` exited 1 (Rich's own broken-pipe handler), and failed a `set -o pipefail` script."""
    read, write = os.pipe()
    os.close(read)  # every write fails, as after `head -1` exits
    command = [sys.executable, "-m", "dbtui", "hardware", "--output-dir", str(tmp_path), *(["--json"] if json else [])]
    try:
        result = subprocess.run(command, cwd=ROOT, env=env(), stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Broken pipe" not in result.stderr


def test_below_80_columns_the_preset_table_keeps_each_size_and_card_whole(tmp_path: Path, monkeypatch, capsys) -> None:
    """At 60 columns it printed `flux-lora-16gb (5…  11…`; at 40 `s…  7…`: the names and the sizes gone; at 30 "fits 8 GB"
    apart from its ✗."""
    table = load_preset_estimates()
    for columns in ("30", "40", "60"):
        monkeypatch.setenv("COLUMNS", columns)
        assert main(["hardware", "--family", "flux", "--output-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert all(len(line) <= int(columns) for line in out.splitlines()), out
        for name in ("flux-lora-16gb", "flux-lora-24gb"):
            need = table[name].need()
            assert f"{need.run_need / 2**30:.1f} GB" in out, out
            marks = need.fit_line().removeprefix("fits ").split(" · ")
            assert all(mark in out for mark in marks), out
        assert "…" not in out.split("whole run")[1], out  # the probe's table above may shorten a long disk path


def test_each_card_asked_about_gets_its_own_recommended_preset(tmp_path: Path, monkeypatch, capsys) -> None:
    """With no GPU here (before renting), `--card 8 --card 24` judged the table by those cards, but the advice stayed
    "No NVIDIA GPU found" with the CPU demo: nothing said which preset to pick on the card to rent."""
    import json

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--family", "sdxl", "--card", "24", "--card", "8", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    small, large = out.index("--card 8:"), out.index("--card 24:")
    assert small < large, out
    assert "Recommended preset for it: " in out[small:large] and "(sdxl-lora)" in out[small:large], out
    assert "(sdxl-full)" in out[large:].split("GPU memory by the memory meter")[0], out

    assert main(["hardware", "--family", "sd", "--card", "12", "--json", "--output-dir", str(tmp_path)]) == 0
    by_card = json.loads(capsys.readouterr().out)["card_verdicts"]
    assert by_card["12"]["preset"] == "full-8bit" and by_card["12"]["verdict"].startswith("A card with 12 GB"), by_card
    assert main(["hardware", "--family", "sd", "--json", "--output-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["card_verdicts"] == {}


def test_a_card_too_small_for_every_preset_is_recommended_none(tmp_path: Path, monkeypatch, capsys) -> None:
    """`--card 4` said "too little even for a LoRA" and then "Recommended preset for it: LoRA (lora)"."""
    import json

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["hardware", "--family", "sd", "--card", "2", "--card", "12", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    small, large = out.index("--card 2:"), out.index("--card 12:")
    assert "too little even for a LoRA" in out[small:large], out
    assert "Recommended preset for it: none, as even the smallest, LoRA" in out[small:large], out
    assert "none" not in out[large:].split("GPU memory by the memory meter")[0], out
    assert main(["hardware", "--family", "flux", "--card", "8", "--card", "24", "--json", "--output-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["card_verdicts"]["8"]["fits"] is False and report["card_verdicts"]["24"]["fits"] is True, report
    assert report["preset"] == "cpu-demo" and report["preset_fits"] is True  # no GPU here: the CPU demo runs


def test_the_wizard_recommends_no_preset_on_a_gpu_too_small_for_all(monkeypatch) -> None:
    """The hardware step said "too little even for a LoRA" then "Recommended preset: LoRA"."""
    import engine.hardware.machine
    from dbtui.engine_facade import RealEngine
    from engine.hardware.machine import Gpu, Hardware

    for gb, fits in ((2, False), (12, True)):
        machine = Hardware(gpus=[Gpu(0, "Small", gb * 1024, gb * 1024, "7.5", False)])
        monkeypatch.setattr(engine.hardware.machine, "probe", lambda path, machine=machine: machine)
        assert RealEngine().probe_hardware(".").fits is fits, gb


async def test_the_hardware_step_says_none_fits_where_the_report_says_so() -> None:
    from textual.widgets import Static

    from dbtui.app import make_app
    from dbtui.engine_facade import HardwareReport
    from dbtui.session import Session
    from engine.hardware.machine import Gpu, Hardware
    from wizard_fakes import FakeEngine
    from wizard_steps import settle

    class SmallGpu(FakeEngine):
        def probe_hardware(self, path: str) -> HardwareReport:
            machine = Hardware(gpus=[Gpu(0, "Small", 2048, 2048, "7.5", False)])
            return HardwareReport(machine, "Small with 2 GB: too little even for a LoRA.", "lora", fits=False)

    app = make_app(SmallGpu(), Session(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("d")
        await settle(pilot)
        said = str(app.screen.query_one("#hw-verdict", Static).render())
        assert "Recommended preset: none, as even the smallest, LoRA" in said, said


async def test_the_hardware_step_on_a_cpu_machine_recommends_the_cpu_demo_in_the_demo_alone() -> None:
    """A new profile's hardware step recommended "CPU demo (tiny model, fp32)", which its Parameters never offers (the
    demo's alone), and said to try `dbtui demo` beside its own "Use the demo" button."""
    from textual.widgets import Static

    from dbtui.app import make_app
    from dbtui.session import Session
    from wizard_fakes import FakeEngine
    from wizard_steps import settle

    for key, demo in (("n", False), ("d", True)):
        app = make_app(FakeEngine(), Session(), image_renderer="none")
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press(key)
            await settle(pilot)
            said = " ".join(str(app.screen.query_one("#hw-verdict", Static).render()).split())
            assert said.startswith("No NVIDIA GPU found: training real models here would take days.") and "dbtui demo" not in said
            assert ("Recommended preset: CPU demo" in said) is demo, said
            assert ("No preset to recommend for training here: make the profile here and train it on a machine with an "
                    "NVIDIA GPU (a rented one)" in said) is not demo, said
            assert app.screen.query_one("#hw-demo").display is not demo


def test_the_estimates_table_marks_no_preset_on_a_gpu_too_small_for_all(tmp_path: Path, monkeypatch, capsys) -> None:
    """The table marked lora ◂, the preset to pick, under "Recommended preset: none"."""
    import engine.hardware.machine
    from engine.hardware.machine import Gpu, Hardware

    monkeypatch.setenv("COLUMNS", "200")
    for gb, marked in ((2, False), (6, True)):
        machine = Hardware(gpus=[Gpu(0, "Small", gb * 1024, gb * 1024, "7.5", False)])
        monkeypatch.setattr(engine.hardware.machine, "probe", lambda path, machine=machine: machine)
        assert main(["hardware", "--family", "sd", "--output-dir", str(tmp_path)]) == 0
        assert ("◂" in capsys.readouterr().out.split("GPU memory by the memory meter")[1]) is marked, gb


@pytest.mark.parametrize("family", ["sd", "sd2", "sdxl", "flux"])
@pytest.mark.parametrize("bf16", [True, False])
def test_the_recommended_presets_label_names_the_card_it_is_recommended_for(family: str, bf16: bool) -> None:
    """On a 16 GB card the advice said "Recommended preset for it: SDXL full fine-tune, 1024 px, Adafactor (24 GB and
    up)", and the wizard pre-selected it under that label: the label said the card was too small for it. So did
    "Full fine-tune, 8-bit Adam, bf16 weights (8–12 GB)" on a 6 GB card, and on a 16 GB card without bf16 (a T4,
    a V100) "SDXL LoRA (8–12 GB)" was recommended beside "SDXL full (16 GB and up)", which does not fit it there. For SD2.x a 20 GB card was recommended "Full fine-tune (13–17 GB; …)": the labels gave
    SD1.5's cards."""
    import re

    from dbtui.presets import preset_label
    from engine.hardware.machine import Gpu, Hardware, too_small, verdict

    for card in range(4, 81):
        machine = Hardware(gpus=[Gpu(0, "GPU", card * 1024, None, "8.0" if bf16 else "7.5", bf16)], bitsandbytes=True)
        preset = verdict(machine, family)[1]
        if too_small(machine, preset, family):
            continue
        label = preset_label(preset, family)
        sizes = r"(\d+)(?:–(\d+))? GB( and up)?"
        found = re.search(rf"\({sizes}(?:; {sizes} without bf16)?\)$", label)
        assert found, label
        low, high, and_up = found.groups()[:3] if bf16 or not found.group(4) else found.groups()[3:]
        assert int(low) <= card and (and_up or card <= int(high or low)), (card, label)


def test_a_closed_output_pipe_ends_dbtui_version_with_status_0() -> None:
    """`dbtui --version | head -1` ended on a BrokenPipeError traceback (status 120, or 1 unbuffered)."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "dbtui", "--version"], cwd=ROOT, env=env(), stdout=write,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Broken pipe" not in result.stderr


def test_hardware_with_a_profile_measures_free_disk_where_its_runs_go(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui hardware --profile P` measured the free disk of the folder it ran in, not saving.output_dir, where the
    profile's runs (checkpoints of gigabytes) are written; --output-dir still decides where given."""
    import json

    runs = tmp_path / "big-disk" / "runs"
    runs.mkdir(parents=True)
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "photos"\n'
                       f'instance_prompt = "photo of zwx dog"\n[saving]\noutput_dir = "{runs}"\n', encoding="utf-8")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["hardware", "--profile", str(profile), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["disk_path"] == str(runs)
    assert main(["hardware", "--profile", str(profile), "--json", "--output-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["disk_path"] == str(tmp_path)
    assert main(["hardware", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["disk_path"] == str(here)


def test_off_a_terminal_no_line_ends_in_spaces(tmp_path: Path, capsys) -> None:
    """`dbtui hardware > hw.txt`: Rich padded the tables' lines to their width, which a script grepping for
    'xformers +no$' or diffing two machines' outputs met."""
    assert main(["hardware", "--card", "24", "--output-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith(("GPU ", "xformers ", "lora "))], lines  # the tables are there
    assert [line for line in lines if line != line.rstrip()] == []


@pytest.mark.parametrize("given", ["option", "profile"])
def test_an_output_folder_that_is_a_file_is_refused_not_measured(given: str, tmp_path: Path, capsys) -> None:
    """`dbtui hardware --output-dir my.toml` printed "Disk 60.1 GB free at /home/me/my.toml" and exited 0, where
    `validate` and `run` refuse that saving.output_dir: no run can be written there."""
    from tests.training_helpers import tiny_profile
    from engine.profile import save_profile

    in_the_way = tmp_path / "runs.txt"
    in_the_way.write_text("notes")
    profile = tmp_path / "p.toml"
    save_profile(tiny_profile(tmp_path, saving={"output_dir": str(in_the_way)}), profile)
    args = ["--output-dir", str(in_the_way)] if given == "option" else ["--profile", str(profile)]
    assert main(["hardware", *args]) == 2
    captured = capsys.readouterr()
    assert "free at" not in captured.out
    said = "--output-dir" if given == "option" else "saving.output_dir"
    assert f"{said} '{in_the_way}' is a file, not a folder: give another folder for the run folders" in captured.err


def test_an_output_folder_under_a_file_is_refused_not_measured(tmp_path: Path, capsys) -> None:
    """`dbtui hardware --output-dir my.toml/runs` printed "Disk 60 GB free at .../my.toml" and exited 0 (the nearest
    folder that exists is measured, and that was the file), where `validate` refuses that saving.output_dir."""
    in_the_way = tmp_path / "my.toml"
    in_the_way.write_text("notes")
    assert main(["hardware", "--output-dir", str(in_the_way / "runs")]) == 2
    captured = capsys.readouterr()
    assert "free at" not in captured.out
    assert f"--output-dir '{in_the_way / 'runs'}' cannot be made, as '{in_the_way}' is a file, not a folder" in captured.err


@pytest.mark.parametrize("below", ["", "/runs"])
def test_validate_hardware_and_the_wizard_say_a_file_in_the_way_alike(below: str, tmp_path: Path, capsys) -> None:
    """`validate` said "give another folder for the run folders, or move that file away", `dbtui hardware` and the
    wizard "give that folder (it may not exist yet)" of the same file: one text now, which each names as it is given."""
    from tests.training_helpers import tiny_profile
    from dbtui.output_disk import output_dir_is_file
    from engine.profile import save_profile

    in_the_way = tmp_path / "my.toml"
    in_the_way.write_text("notes")
    output_dir = f"{in_the_way}{below}"
    save_profile(tiny_profile(tmp_path, saving={"output_dir": output_dir}), profile := tmp_path / "p.toml")
    text = output_dir_is_file(output_dir, "saving.output_dir")  # the wizard's Disk line
    assert text is not None and text.endswith("give another folder for the run folders (it is made if missing), or "
                                              "move that file away"), text
    main(["validate", "--elsewhere", str(profile)])
    validate = " ".join(capsys.readouterr().out.split())
    assert main(["hardware", "--output-dir", output_dir]) == 2
    hardware = " ".join(capsys.readouterr().err.split())
    words = text.removeprefix("saving.output_dir ")
    assert words in validate and f"--output-dir {words}" in hardware, (words, validate, hardware)


@pytest.mark.parametrize(("keys", "guessed", "refused"), [
    (["first_stage_model.encoder.conv_in.weight"], True, True),  # a VAE on its own
    (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"], True, True),  # a LoRA
    # SD1.x without its text encoder
    (["model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.encoder.conv_in.weight"], False, True),
    # Flux LoRAs in ComfyUI's layout name double_blocks as the transformer does; a Flux transformer in ComfyUI's layout.
    (["diffusion_model.double_blocks.0.img_attn.proj.lora_A.weight", "diffusion_model.single_blocks.0.linear1.lora_B.weight"],
     True, True),
    (["diffusion_model.double_blocks.0.img_attn.proj.lora_down.weight"], True, True),
    (["model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale"], False, False),
    (["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"], True, True),  # SD3, under SD's prefix
])
def test_hardware_advice_for_a_file_that_is_no_sd_model_says_its_family_is_a_guess(
        keys: list[str], guessed: bool, refused: bool, tmp_path: Path, capsys) -> None:
    """A VAE or a LoRA file as model.pretrained was taken for SD1.x by its files: `dbtui hardware --profile` gave SD1.5's
    figures as that model's, without the sentence that says they are a guess. The wizard's Hardware step says that
    sentence; `dbtui hardware` refuses a file that `validate` refuses (no base model) and advises none for it."""
    import torch
    from safetensors.torch import save_file

    from dbtui.family_guess_words import guessed_from_name

    model = tmp_path / "model.safetensors"
    save_file({key: torch.zeros(4, 4) for key in keys}, model)
    profile = tmp_path / "p.toml"
    profile.write_text(f'[model]\npretrained = "{model}"\n[[concepts]]\ninstance_dir = "photos"\n'
                       'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
    assert ("its files do not say its family" in (guessed_from_name(str(model), "sd") or "")) is guessed
    assert main(["hardware", "--profile", str(profile), "--output-dir", str(tmp_path)]) == (2 if refused else 0)
    out = capsys.readouterr().out
    assert ("GPU memory by the memory meter" in out) is not refused, out
    assert "its files do not say its family" not in " ".join(out.split())


def _profile_and_validate_words(tmp_path: Path, pretrained: str, capsys) -> tuple[Path, list[str]]:
    """A profile training ``pretrained``, and what `dbtui validate` says of its model (one line)."""
    profile = tmp_path / "p.toml"
    profile.write_text(f"[model]\npretrained = '{pretrained}'\n[[concepts]]\ninstance_dir = \"photos\"\n"
                       'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
    main(["validate", str(profile)])
    validate = [line.strip() for line in capsys.readouterr().err.splitlines() if "model.pretrained:" in line]
    assert len(validate) == 1, validate
    return profile, validate


@pytest.mark.parametrize("model", ["damaged file", "folder without unet", "not on this machine"])
def test_hardware_says_a_model_that_cannot_load_as_validate_does_and_advises_no_preset_for_it(
        model: str, tmp_path: Path, request: pytest.FixtureRequest, capsys) -> None:
    """A profile naming broken.safetensors (random bytes), or a model folder copied without unet/: `validate` said what
    is wrong with it, `dbtui hardware --profile` advised SD1.5's presets for it as a model "whose files do not say its
    family" (or as the SD1.x its folder is) and exited 0. Now it gives the machine's facts, validate's words and
    status 2, with no preset in --json either. A path not on this machine is still advised by its name's family: the
    profile is for the machine to rent."""
    import json
    import shutil

    if model == "damaged file":
        path = tmp_path / "broken.safetensors"
        path.write_bytes(bytes(range(256)) * 16)
    elif model == "folder without unet":
        path = tmp_path / "model"
        shutil.copytree(request.getfixturevalue("tiny_sd1"), path, ignore=shutil.ignore_patterns("unet"))
    else:
        path = tmp_path / "rented" / "juggernautXL_v9.safetensors"
    profile, validate = _profile_and_validate_words(tmp_path, str(path), capsys)
    refused = model != "not on this machine"

    assert main(["hardware", "--profile", str(profile), "--output-dir", str(tmp_path)]) == (2 if refused else 0)
    captured = capsys.readouterr()
    assert "GPU " in captured.out and "RAM " in captured.out, captured.out  # the machine's facts either way
    assert ("GPU memory by the memory meter" in captured.out) is not refused, captured.out
    assert (validate[0] in captured.err) is refused, captured.err

    assert main(["hardware", "--profile", str(profile), "--json", "--output-dir", str(tmp_path)]) == (2 if refused else 0)
    report = json.loads(capsys.readouterr().out)
    assert report["disk_path"] == str(tmp_path) and "ram_total_mb" in report
    assert report["model_problems"] == (validate if refused else [])
    assert (report["preset"], report["presets"]) == (None, {}) if refused else report["family"] == "sdxl"
    if refused:  # the keys a script reads are those of a report that advises (cmd_hardware.NO_ADVICE lists them again)
        assert main(["hardware", "--family", "sd", "--json", "--output-dir", str(tmp_path)]) == 0
        assert report.keys() == json.loads(capsys.readouterr().out).keys()


@pytest.mark.parametrize("address", ["https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0",
                                     "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/"
                                     "sd_xl_base_1.0.safetensors",
                                     "C:\\models\\sdxl_base.safetensors", "D:/sd/sdxl_base.ckpt"],
                         ids=["page", "file link", "windows path", "windows path with /"])
def test_hardware_and_fit_say_a_web_address_or_windows_path_as_validate_does_and_advise_nothing(address: str, tmp_path: Path, capsys) -> None:
    """SDXL's hub page pasted as model.pretrained: `validate` refused it, but `dbtui hardware --profile` advised SDXL's
    presets by its name, as for a path on the machine to rent, and exited 0; `dbtui fit --estimate-only` estimated it
    as SDXL's published architecture. So too a path on Windows ('C:\\models\\sdxl_base.safetensors'), which no Linux
    machine to rent has either. Both now say validate's words, with status 2."""
    import json

    profile, validate = _profile_and_validate_words(tmp_path, address, capsys)

    assert main(["hardware", "--profile", str(profile), "--output-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "GPU memory by the memory meter" not in captured.out and "SDXL" not in captured.out, captured.out
    assert validate[0] in captured.err, captured.err
    assert main(["hardware", "--profile", str(profile), "--json", "--output-dir", str(tmp_path)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert (report["model_problems"], report["family"], report["preset"], report["presets"]) == (validate, None, None, {})

    assert main(["fit", str(profile), "--estimate-only"]) == 2
    out = capsys.readouterr().out
    assert f"not available ({validate[0].split('model.pretrained: ', 1)[1]})" in out, out
    assert "fits" not in out and "published architecture" not in out, out


@pytest.mark.parametrize(("address", "said"), [
    ("https://huggingface.co/o/n/resolve/main/sd_xl_base_1.0.safetensors",
     "is a file's web address on the Hugging Face hub, which dbtui does not download: download it onto this machine "
     "(`hf download o/n sd_xl_base_1.0.safetensors --local-dir FOLDER`) and give its path, FOLDER/sd_xl_base_1.0.safetensors"),
    ("https://civitai.com/api/download/models/1?type=Model&format=SafeTensor",
     "is a web address, which dbtui does not download: download the file onto this machine (`wget --content-disposition "
     "'https://civitai.com/api/download/models/1?type=Model&format=SafeTensor'`) and give its path; if civitai refuses "
     "it, add &token=YOUR_TOKEN to the link, with an API key made in your civitai account settings"),
    ("https://huggingface.co/o/n/resolve/fp16/model_index.json",
     "is the web address of one file of the hub model o/n, which dbtui reads whole: give its hub id, o/n, with "
     'model.revision = "fp16"')],
    ids=["hub file", "civitai", "hub config"])
def test_a_files_web_address_is_said_to_be_one_with_how_to_download_it(address: str, said: str, tmp_path: Path,
                                                                        capsys) -> None:
    """A hub file's download link was "does not exist on this machine", a civitai one "not on this machine, nor a hub id":
    true, but neither said it is a web address dbtui does not download, nor what to do. A link to a model's config was
    then told to download that one file, no model to train: it is told the hub id. `dbtui hardware` says the same."""
    profile = tmp_path / "p.toml"
    profile.write_text(f"[model]\npretrained = '{address}'\n[[concepts]]\ninstance_dir = \"photos\"\n"
                       'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
    main(["validate", str(profile)])
    assert f"'{address}' {said}" in " ".join(capsys.readouterr().err.split())
    assert main(["hardware", "--profile", str(profile), "--output-dir", str(tmp_path)]) == 2
    assert f"'{address}' {said}" in " ".join(capsys.readouterr().err.split())


def test_a_relative_folder_not_here_is_still_advised_by_its_name(tmp_path: Path, monkeypatch, capsys) -> None:
    """A profile for the machine to rent names its folder there, relative to where dbtui runs: no web address or Windows
    path, so it is advised by its name's family, as before."""
    import json

    monkeypatch.chdir(tmp_path)
    Path("p.toml").write_text("[model]\npretrained = 'models/my-sdxl'\n[[concepts]]\ninstance_dir = \"photos\"\n"
                              'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
    assert main(["hardware", "--profile", "p.toml", "--json", "--output-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["model_problems"], report["family"]) == ([], "sdxl")


@pytest.mark.parametrize("json_out", [False, True], ids=["table", "json"])
def test_the_probe_is_said_on_stderr_before_it_and_the_report_stays_alone_on_stdout(
        json_out: bool, tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui hardware` printed nothing for seconds (importing torch to ask CUDA), then the whole table at once."""
    import json

    import engine.hardware.machine
    from engine.hardware.machine import Hardware

    seen = []  # what was printed when the probe began

    def probe(path):
        seen.append(capsys.readouterr())
        return Hardware(gpus=[])

    monkeypatch.setattr(engine.hardware.machine, "probe", probe)
    assert main(["hardware", "--family", "sd", "--output-dir", str(tmp_path), *(["--json"] if json_out else [])]) == 0
    captured = capsys.readouterr()
    assert seen[0].out == "" and seen[0].err == "probing this machine's GPUs, libraries, RAM and disk …\n", seen
    assert captured.err == "", captured.err
    if json_out:
        assert json.loads(captured.out)["family"] == "sd"  # the JSON alone, as scripts read it
    else:
        assert captured.out.startswith("GPU "), captured.out


def test_with_a_profile_the_probe_is_said_before_the_models_checks(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui hardware --profile` checked the profile's model (a second of imports) before it said anything."""
    import engine.hardware.machine
    import engine.model_problems
    from engine.hardware.machine import Hardware
    from engine.profile import save_profile
    from tests.training_helpers import tiny_profile

    done = []
    checks = engine.model_problems.model_load_problems
    monkeypatch.setattr(engine.hardware.machine, "probe",
                        lambda path: done.append(capsys.readouterr().err) or Hardware(gpus=[]))
    monkeypatch.setattr(engine.model_problems, "model_load_problems",
                        lambda model: done.append("checked") or checks(model))
    path = save_profile(tiny_profile(tmp_path), tmp_path / "p.toml")
    assert main(["hardware", "--profile", str(path), "--output-dir", str(tmp_path)]) == 0
    assert done == ["probing this machine's GPUs, libraries, RAM and disk …\n", "checked"], done


def test_the_output_dir_given_with_a_tilde_is_measured_in_the_home_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui hardware --output-dir=~/runs` (a ~ the shell leaves after `=` and in quotes) measured the free disk of the
    folder dbtui ran in, the nearest that exists of a relative path '~/runs': on a rented GPU often another disk than
    the home folder's."""
    import json

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (home / "runs").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    assert main(["hardware", "--family", "sd", "--json", "--output-dir=~/runs"]) == 0
    assert json.loads(capsys.readouterr().out)["disk_path"] == str(home / "runs")
