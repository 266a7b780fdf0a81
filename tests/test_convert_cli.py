"""``dbtui convert`` from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from convert_helpers import assert_same_weights, load_components, random_sd1  # noqa: F401
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dbtui.cli import main


@pytest.mark.parametrize("command", [[], ["to-diffusers"], ["to-single-file"], ["lora-to-kohya"]])
def test_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["convert", *command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert {
        (): "to-single-file",
        ("to-diffusers",): "--tokenizer",
        ("to-single-file",): "--half",
        ("lora-to-kohya",): "kohya",
    }[tuple(command)] in text


def test_to_single_file_and_back(random_sd1: Path, tmp_path: Path, capsys) -> None:
    profile = tmp_path / "zwx.toml"
    profile.write_text('name = "zwx"\n')
    out = tmp_path / "zwx.ckpt"
    assert main(["convert", "to-single-file", str(random_sd1), str(out), "--half", "--base-model", "tiny",
                 "--profile", str(profile)]) == 0
    printed = capsys.readouterr().out
    assert "4/4" in printed and f"wrote {out}" in printed
    written = out.read_bytes()
    assert main(["convert", "to-single-file", str(random_sd1), str(out)]) == 2
    assert "already exists and is kept" in capsys.readouterr().err and out.read_bytes() == written
    assert main(["convert", "to-single-file", str(random_sd1), str(tmp_path / "zwx.bin")]) == 2
    assert "name the file .safetensors or .ckpt, or give --format" in capsys.readouterr().err
    assert not (tmp_path / "zwx.bin").exists()
    mismatched = tmp_path / "zwx.safetensors"
    assert main(["convert", "to-single-file", str(random_sd1), str(mismatched), "--format", "ckpt"]) == 2
    assert "the name says safetensors, --format says ckpt; name it zwx.ckpt" in capsys.readouterr().err
    assert not mismatched.exists()
    data = torch.load(out, weights_only=True)  # the format follows the extension
    assert data["dbtui_metadata"]["dbtui.profile"] == 'name = "zwx"\n'
    assert data["state_dict"]["model.diffusion_model.out.2.weight"].dtype == torch.float16

    back = tmp_path / "back"
    assert main(["convert", "to-diffusers", str(out), str(back), "--config", str(tmp_path / "nope")]) == 2
    assert f"--config {tmp_path / 'nope'} does not exist: give a diffusers model folder" in capsys.readouterr().err
    assert main(["convert", "to-diffusers", str(out), str(back), "--config", str(random_sd1)]) == 0
    assert "Stable Diffusion 1.x" in capsys.readouterr().out
    assert_same_weights(load_components(random_sd1), load_components(back), half=True)


def test_lora_to_kohya(tmp_path: Path) -> None:
    lora = tmp_path / "pytorch_lora_weights.safetensors"
    module = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64), f"{module}.lora_B.weight": torch.randn(64, 4)}, lora)
    out = tmp_path / "kohya.safetensors"
    assert main(["convert", "lora-to-kohya", str(tmp_path), str(out)]) == 0
    weights = load_file(out)
    assert torch.equal(weights["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"],
                       load_file(lora)[f"{module}.lora_A.weight"])
    with safe_open(str(out), framework="pt") as file:
        assert file.metadata()["ss_network_module"] == "networks.lora"
    assert main(["convert", "lora-to-kohya", str(tmp_path), str(out)]) == 2
    assert main(["convert", "lora-to-kohya", str(tmp_path), str(out), "--overwrite"]) == 0
    before = lora.read_bytes()
    for source in (lora, tmp_path):  # the input file itself, or the LoRA file of the input folder
        assert main(["convert", "lora-to-kohya", str(source), str(lora), "--overwrite"]) == 2
    assert lora.read_bytes() == before

    # WebUIs open a .pt with torch.load, and list no file without .safetensors ("outdir/" wrote a file "outdir").
    for name in ("mylora.pt", "outdir/"):
        assert main(["convert", "lora-to-kohya", str(tmp_path), str(tmp_path / "x") + "/" + name]) == 2
    assert not (tmp_path / "x").exists()


def test_an_output_inside_the_input_is_refused_even_with_overwrite(random_sd1: Path, tmp_path: Path, capsys) -> None:
    """It replaced the model's own UNet, and the next conversion of that folder failed as a bug."""
    unet = next((random_sd1 / "unet").glob("*.safetensors"))
    before = unet.read_bytes()
    assert main(["convert", "to-single-file", str(random_sd1), str(unet), "--overwrite"]) == 2
    assert f"is {random_sd1}'s own unet/, which is being converted" in capsys.readouterr().err
    assert unet.read_bytes() == before
    index = (random_sd1 / "model_index.json").read_bytes()
    assert main(["convert", "to-single-file", str(random_sd1), str(random_sd1 / "model_index.json"), "--format",
                 "safetensors", "--overwrite"]) == 2
    assert "own model_index.json" in capsys.readouterr().err and (random_sd1 / "model_index.json").read_bytes() == index
    assert main(["convert", "to-single-file", str(random_sd1), str(random_sd1 / "tokenizer" / "m.safetensors")]) == 2
    assert "own tokenizer/" in capsys.readouterr().err


def test_lora_to_diffusers_takes_a_folder_name_and_a_recorded_profile_must_be_toml(random_sd1: Path, tmp_path: Path, capsys) -> None:
    assert main(["convert", "lora-to-diffusers", str(tmp_path / "in.safetensors"), str(tmp_path / "x.safetensors")]) == 2
    assert "a diffusers LoRA is a folder (holding pytorch_lora_weights.safetensors); give a folder name, e.g." in capsys.readouterr().err
    notes = tmp_path / "notes.md"
    notes.write_text("# My run\n\nTrained on my dog.\n")
    assert main(["convert", "to-single-file", str(random_sd1), str(tmp_path / "m.safetensors"), "--profile", str(notes)]) == 2
    # It said only "TOML syntax error", as of a profile.
    assert "notes.md:3: not a profile (a TOML file): TOML syntax error" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
    (tmp_path / "u16.toml").write_bytes("name = 'x'".encode("utf-16"))
    assert main(["convert", "to-single-file", str(random_sd1), str(tmp_path / "m.safetensors"), "--profile", str(tmp_path / "u16.toml")]) == 2
    assert "saved as UTF-16" in capsys.readouterr().err


def test_errors_are_one_line_messages(tmp_path: Path, capsys) -> None:
    assert main(["convert", "to-diffusers", str(tmp_path / "missing.ckpt"), str(tmp_path / "out")]) == 2
    assert "missing.ckpt: no such file" in capsys.readouterr().err
    assert main(["convert", "to-single-file", str(tmp_path), str(tmp_path / "x.safetensors")]) == 2
    assert "not a diffusers model folder" in capsys.readouterr().err
    assert main(["convert", "to-single-file", str(tmp_path / "nope"), str(tmp_path / "x.safetensors")]) == 2
    assert "nope does not exist: give the diffusers model folder" in capsys.readouterr().err
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_index.json").write_text("{}")
    assert main(["convert", "lora-to-kohya", str(model), str(tmp_path / "k.safetensors")]) == 2
    assert "is a whole diffusers model, not a LoRA" in capsys.readouterr().err
    taken = tmp_path / "taken"
    (taken / "unet").mkdir(parents=True)
    assert main(["convert", "to-diffusers", str(tmp_path / "missing.ckpt"), str(taken)]) == 2
    captured = capsys.readouterr()
    assert "already exists and is not empty" in captured.err and "reading" not in captured.out  # asked before any work
    (tmp_path / "file").write_text("mine")  # it said "already exists and is not empty", as of a folder
    assert main(["convert", "to-diffusers", str(tmp_path / "missing.ckpt"), str(tmp_path / "file")]) == 2
    assert "file is a file, not a folder: the output is a folder" in capsys.readouterr().err



def test_a_run_folder_or_a_checkpoint_given_to_convert_says_what_to_give_instead(tmp_path: Path, capsys) -> None:
    run = tmp_path / "runs" / "mine"
    checkpoint = run / "checkpoints" / "step-00000010"
    (checkpoint / "lora").mkdir(parents=True)
    (checkpoint / "manifest.json").write_text("{}")
    (checkpoint / "lora" / "unet.safetensors").write_bytes(b"")
    out = str(tmp_path / "k.safetensors")
    assert main(["convert", "lora-to-kohya", str(run), out]) == 2
    assert f"is a dbtui run folder, not a LoRA: the LoRA it finished with is in {run / 'outputs/lora'}" in capsys.readouterr().err
    assert main(["convert", "lora-to-kohya", str(checkpoint / "lora" / "unet.safetensors"), out]) == 2
    assert f"`dbtui export {run} --step 10` writes its LoRA into {run / 'exports/step-10'}" in capsys.readouterr().err
    assert main(["convert", "to-single-file", str(run), out]) == 2
    assert f"the model it finished with is in {run / 'outputs/diffusers'}" in capsys.readouterr().err
    assert main(["convert", "to-diffusers", str(run), str(tmp_path / "model")]) == 2
    assert f"the model it finished with is in {run / 'outputs/diffusers'}" in capsys.readouterr().err
    # saving.export without "diffusers" writes no outputs/diffusers: its single file is the model it finished with
    (run / "outputs").mkdir()
    for name in ("mine.previous.safetensors", "mine-lora-kohya.safetensors", "mine.safetensors"):
        (run / "outputs" / name).write_bytes(b"")
    assert main(["convert", "to-diffusers", str(run), str(tmp_path / "model")]) == 2
    assert f"the model it finished with is in {run / 'outputs/mine.safetensors'}," in capsys.readouterr().err
    # A LoRA run's saving.export of LoRA formats alone writes no model at all: outputs/diffusers was named
    for name in ("mine.previous.safetensors", "mine.safetensors"):
        (run / "outputs" / name).unlink()
    (run / "outputs" / "lora").mkdir()
    assert main(["convert", "to-single-file", str(run), str(tmp_path / "model.safetensors")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"it trained a LoRA, in {run / 'outputs/lora'}, and wrote no model" in err and "outputs/diffusers" not in err


def test_convert_command_keeps_help_fast() -> None:
    import subprocess
    import sys

    code = ("import sys; from dbtui.cli import build_parser; import engine.convert; build_parser(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'textual', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


def test_the_family_choices_are_the_converters_own() -> None:
    """--family's choices were spelled out again beside the converter's KOHYA_FAMILIES: one added to the converter
    alone would be refused by the parser. Both read engine/kohya_families.py, which imports nothing."""
    import engine.convert.lora_convert as converter
    from dbtui.cli import build_parser
    from engine.kohya_families import KOHYA_FAMILIES

    convert = next(a for a in build_parser()._subparsers._group_actions[0].choices["convert"]._actions
                   if isinstance(a, argparse._SubParsersAction))
    [family] = [a for a in convert.choices["lora-to-kohya"]._actions if "--family" in a.option_strings]
    assert family.choices is KOHYA_FAMILIES and converter.KOHYA_FAMILIES is KOHYA_FAMILIES


def test_an_output_that_cannot_be_written_is_refused_before_any_conversion_work(random_sd1: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import os

    (tmp_path / "taken.safetensors").mkdir()
    assert main(["convert", "to-single-file", str(random_sd1), str(tmp_path / "taken.safetensors")]) == 2
    captured = capsys.readouterr()
    assert "is a folder; give the name of the file to write" in captured.err and "1/4" not in captured.out
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "pytorch_lora_weights.safetensors").write_bytes(b"")
    assert main(["convert", "lora-to-diffusers", str(lora), str(tmp_path / "out")]) == 2
    assert "is already a diffusers LoRA folder" in capsys.readouterr().err
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # a read-only disk (root passes chmod)
    assert main(["convert", "to-single-file", str(random_sd1), str(tmp_path / "m.safetensors")]) == 2
    captured = capsys.readouterr()
    assert f"cannot write to {tmp_path} (read-only, or not yours)" in captured.err and "1/4" not in captured.out
    assert main(["convert", "to-diffusers", str(tmp_path / "in.safetensors"), str(tmp_path / "new" / "model")]) == 2
    captured = capsys.readouterr()
    assert f"cannot write to {tmp_path} (read-only, or not yours)" in captured.err and "reading" not in captured.out
    assert not (tmp_path / "new").exists()  # nothing made for an output that cannot be written


def test_a_tilde_in_any_path_is_the_home_folder(random_sd1: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """`--config=~/m` was not found, and '~/t.safetensors' made a folder named ~ in the current one."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    (home / "model").symlink_to(random_sd1)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    assert main(["convert", "to-single-file", "~/model", "~/t.safetensors"]) == 0
    assert main(["convert", "to-diffusers", "~/t.safetensors", "~/back", "--config=~/model", "--tokenizer=~/model"]) == 0
    assert (home / "t.safetensors").is_file() and (home / "back" / "model_index.json").is_file()
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["convert", "to-diffusers", "~nosuchuser/x.safetensors", "out"],
    ["convert", "to-diffusers", "model.safetensors", "out", "--vae", "~nosuchuser/vae"],
    ["convert", "to-diffusers", "model.safetensors", "out", "--components", "~nosuchuser/flux"],
    ["dataset", "prepare", "photos", "out", "--bucketing", "--model", "~nosuchuser/sdxl"],
    ["dataset", "check", "photos", "--model", "~nosuchuser/sdxl"],
], ids=["convert input", "convert --vae", "convert --components", "prepare --model", "check --model"])
def test_a_tilde_of_no_user_here_is_refused_as_the_profile_refuses_it(args: list[str], tmp_path: Path, capsys,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """convert had its own user_path (pathlib's expanduser, which raises for '~nosuchuser/…'): a RuntimeError's
    traceback. Taking the CLI's, its input was said not found, but --vae (and dataset's --model) reached the engine's
    pathlib expanduser: "unexpected error (RuntimeError: Could not determine home directory.)". Each is now refused
    before any work, in the profile's words."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    said = capsys.readouterr().err
    assert "~nosuchuser/" in said and "starts with '~nosuchuser', which names no user here; write the path out" in said
    assert list(tmp_path.iterdir()) == []


def test_a_file_named_with_a_tilde_is_taken_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'~old.toml' in the working folder, which the shell too leaves as it is: no user named 'old.toml' is looked for."""
    from dbtui.cli.common import user_file, user_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "~old.toml").touch()
    assert user_path("~old.toml") == "~old.toml"
    assert user_file("~old.toml") == Path("~old.toml")


def test_a_wrong_kind_of_input_is_named_with_the_command_it_needs(random_sd1: Path, tmp_path: Path, capsys) -> None:
    model_file = tmp_path / "model.safetensors"
    assert main(["convert", "to-single-file", str(random_sd1), str(model_file)]) == 0
    capsys.readouterr()
    assert main(["convert", "lora-to-kohya", str(model_file), str(tmp_path / "k.safetensors")]) == 2
    printed = capsys.readouterr()
    assert "is a full model checkpoint (Stable Diffusion 1.x" in printed.err and "started" not in printed.out
    assert main(["convert", "lora-to-diffusers", str(model_file), str(tmp_path / "d")]) == 2
    assert "is a full model checkpoint (Stable Diffusion 1.x" in capsys.readouterr().err  # was "not a kohya … LoRA"
    assert main(["convert", "to-diffusers", str(random_sd1), str(tmp_path / "out")]) == 2
    assert "is a diffusers model folder already: train from it as it is" in capsys.readouterr().err
    lora = tmp_path / "lora"
    lora.mkdir()
    module = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64), f"{module}.lora_B.weight": torch.randn(64, 4)},
              lora / "pytorch_lora_weights.safetensors")
    assert main(["convert", "to-single-file", str(lora), str(tmp_path / "l.safetensors")]) == 2
    assert f"is a LoRA, not a whole model: `dbtui convert lora-to-kohya {lora}" in capsys.readouterr().err
    # It was told "Stable Diffusion LoRAs in kohya format load as they are".
    assert main(["convert", "lora-to-diffusers", str(lora / "pytorch_lora_weights.safetensors"), str(tmp_path / "d")]) == 2
    assert "is already a diffusers-format Stable Diffusion LoRA: load_lora_weights loads it" in capsys.readouterr().err
    # The UNet's file was "one component in diffusers format"; the VAE's, "not a Stable Diffusion checkpoint".
    for part in ("unet", "vae"):
        assert main(["convert", "to-diffusers", str(random_sd1 / part / "diffusion_pytorch_model.safetensors"),
                     str(tmp_path / "out")]) == 2
        assert "one component in diffusers format, not a single-file checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "says"), [([], "Flux.1"), (["lora-to-kohya"], "examples:"),
                                               (["lora-to-diffusers"], "examples:")])
def test_help_names_flux_and_gives_examples(command: list[str], says: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["convert", *command, "--help"])
    assert says in capsys.readouterr().out


def test_a_refused_lora_shows_no_conversion_line(tmp_path: Path, capsys) -> None:
    """lora-to-kohya announced "[convert] started X → Y" before refusing the file; lora-to-diffusers does not."""
    kohya = tmp_path / "kohya.safetensors"
    save_file({"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 4)}, kohya)
    flux = tmp_path / "flux.safetensors"  # a transformer's LoRA beside a part a Flux LoRA has not
    save_file({"transformer.x_embedder.lora_A.weight": torch.zeros(2, 4), "vae.x.lora_A.weight": torch.zeros(2, 4)}, flux)
    refused = [(kohya, "already in kohya format"), (flux, "has LoRA weights for vae")]
    # Refusals of the adapter config, or of a module, came after the line (and "1/2").
    sd_module, flux_block = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k", "transformer.transformer_blocks.0.attn"
    for name, modules, config, says in (
        ("sd-dora", {sd_module: 4}, {"unet.r": 4, "unet.use_dora": True}, "DoRA, which kohya files cannot hold; keep the diffusers file"),
        ("sd-alphas", {sd_module: 4}, {"unet.r": 4, "unet.lora_alpha": 8, "unet.alpha_pattern": {"to_q": 2}}, "alpha_pattern"),
        ("flux-dora", {"transformer.x_embedder": 4}, {"transformer.r": 4, "transformer.use_dora": True}, "DoRA"),
        ("flux-scales", {f"{flux_block}.to_q": 2, f"{flux_block}.to_k": 4},
         {"transformer.r": 4, "transformer.lora_alpha": 8, "transformer.rank_pattern": {"to_q": 2}}, "different scales"),
        ("flux-module", {"transformer.pos_embed": 4}, {}, "has no place in the kohya/ComfyUI layout"),
    ):
        weights = {}
        for module, rank in modules.items():
            weights.update({f"{module}.lora_A.weight": torch.zeros(rank, 8), f"{module}.lora_B.weight": torch.zeros(8, rank)})
        save_file(weights, tmp_path / f"{name}.safetensors", metadata={"lora_adapter_metadata": json.dumps(config)})
        refused.append((tmp_path / f"{name}.safetensors", says))
    for source, says in refused:
        assert main(["convert", "lora-to-kohya", str(source), str(tmp_path / "out.safetensors")]) == 2
        printed = capsys.readouterr()
        assert says in printed.err and "→" not in printed.out and "started" not in printed.out


def test_a_run_and_its_outputs_folder_are_answered_with_where_the_lora_is(tmp_path: Path, capsys) -> None:
    run = tmp_path / "runs" / "zwx"
    (run / "checkpoints").mkdir(parents=True)
    (run / "events.jsonl").write_text("")
    (run / "outputs" / "lora").mkdir(parents=True)
    module = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64), f"{module}.lora_B.weight": torch.randn(64, 4)},
              run / "outputs" / "lora" / "pytorch_lora_weights.safetensors")
    assert main(["convert", "lora-to-diffusers", str(run), str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err  # was "is a folder; give the checkpoint file"
    assert f"{run} is a dbtui run folder" in err and str(run / "outputs" / "lora") in err and "dbtui export" in err
    adapter = run / "checkpoints" / "step-00000002" / "lora" / "transformer.safetensors"  # peft's names, no prefix
    adapter.parent.mkdir(parents=True)
    (adapter.parent.parent / "manifest.json").write_text("{}")
    save_file({"transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(2, 4)}, adapter)
    assert main(["convert", "lora-to-diffusers", str(adapter), str(tmp_path / "d")]) == 2
    assert f"training checkpoint, not a LoRA: `dbtui export {run} --step 2`" in capsys.readouterr().err
    assert main(["convert", "lora-to-diffusers", str(run / "outputs"), str(tmp_path / "d")]) == 2
    assert f"its LoRA is in {run / 'outputs' / 'lora'}, in diffusers format already" in capsys.readouterr().err
    # lora-to-kohya said ".../outputs/pytorch_lora_weights.safetensors: no such file".
    assert main(["convert", "lora-to-kohya", str(run / "outputs"), str(tmp_path / "k.safetensors")]) == 2
    assert f"holds no pytorch_lora_weights.safetensors: the LoRA is in {run / 'outputs' / 'lora'}" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["convert", "lora-to-kohya", str(tmp_path / "empty"), str(tmp_path / "k.safetensors")]) == 2
    assert "holds no pytorch_lora_weights.safetensors: give a diffusers LoRA folder" in capsys.readouterr().err


def test_a_lora_beside_a_checkpoints_folder_that_is_no_runs_converts(tmp_path: Path, capsys) -> None:
    """ComfyUI's models/ holds checkpoints/ (full models) and LoRAs: it was refused as "a dbtui run folder"."""
    models = tmp_path / "ComfyUI" / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "sd15.safetensors").write_bytes(b"")
    module = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64), f"{module}.lora_B.weight": torch.randn(64, 4)},
              models / "zwx.safetensors")
    assert main(["convert", "lora-to-kohya", str(models / "zwx.safetensors"), str(tmp_path / "k.safetensors")]) == 0
    assert (tmp_path / "k.safetensors").is_file()
    assert main(["convert", "lora-to-diffusers", str(models / "zwx.safetensors"), str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "is already a diffusers-format Stable Diffusion LoRA" in err and "run folder" not in err


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as file:
        return file.metadata()


def test_lora_to_kohya_takes_the_family_from_the_run_or_the_option_and_says_when_it_guesses(tmp_path: Path, tiny_sd2v,
                                                                                           capsys) -> None:
    """An SD2 LoRA whose layers read no text width (a resnet's conv alone) was filed under SD1 without a word."""
    import json

    from engine.runs.base_identity import base_model_record

    lora = tmp_path / "outputs" / "lora"
    lora.mkdir(parents=True)
    module = "unet.mid_block.resnets.0.conv1"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64, 3, 3), f"{module}.lora_B.weight": torch.randn(64, 4, 1, 1)},
              lora / "pytorch_lora_weights.safetensors")
    out = tmp_path / "k.safetensors"
    assert main(["convert", "lora-to-kohya", str(lora), str(out)]) == 0
    assert _metadata(out)["ss_base_model_version"] == "sd_v1"
    assert "is filed under SD1" in capsys.readouterr().err  # a guess, said as one
    assert main(["convert", "lora-to-kohya", str(lora), str(out), "--overwrite", "--family", "sd2"]) == 0
    assert (_metadata(out)["ss_v2"], _metadata(out)["ss_v_parameterization"]) == ("True", "False")

    record = tmp_path / "outputs" / "base_model.json"
    written = base_model_record(str(tiny_sd2v), tiny_sd2v)
    assert written["family"] == "sd2-v"
    for said in (written, {"pretrained": str(tiny_sd2v)}):  # a record of before it held the family: the model's own
        record.write_text(json.dumps(said))
        assert main(["convert", "lora-to-kohya", str(lora / "pytorch_lora_weights.safetensors"), str(out), "--overwrite"]) == 0
        metadata = _metadata(out)
        assert (metadata["ss_base_model_version"], metadata["ss_v_parameterization"]) == ("sd_v2", "True")
        assert "filed under SD1" not in capsys.readouterr().err


@pytest.mark.parametrize("where", ["mine.safetensors", "loras/mine.safetensors", "lora/mine.safetensors"])
def test_lora_to_kohya_reads_no_record_that_is_not_the_loras_own(where: str, tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    """A loose LoRA file took its family from base_model.json in its grandparent folder (the working folder, say),
    another run's record: an SD1 LoRA was filed under SDXL without a word. Only RUN/…/lora's own record is read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base_model.json").write_text(json.dumps({"pretrained": "x", "family": "sdxl"}))
    weights = Path(where)
    weights.parent.mkdir(exist_ok=True)
    module = "unet.mid_block.resnets.0.conv1"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64, 3, 3), f"{module}.lora_B.weight": torch.randn(64, 4, 1, 1)},
              weights)
    assert main(["convert", "lora-to-kohya", where, "k.safetensors"]) == 0
    assert _metadata(tmp_path / "k.safetensors")["ss_base_model_version"] == "sd_v1"
    assert "is filed under SD1" in capsys.readouterr().err


def test_lora_to_kohya_of_a_flux_lora_refuses_a_family(tmp_path: Path, capsys) -> None:
    """--family sdxl on a Flux LoRA was taken in silence: the file was written in Flux's layout all the same."""
    module = "transformer.transformer_blocks.0.attn.to_q"
    lora, out = tmp_path / "flux.safetensors", tmp_path / "k.safetensors"
    save_file({f"{module}.lora_A.weight": torch.randn(4, 64), f"{module}.lora_B.weight": torch.randn(64, 4)}, lora)
    assert main(["convert", "lora-to-kohya", str(lora), str(out), "--family", "sdxl"]) == 2
    err = capsys.readouterr().err
    assert "is a Flux LoRA" in err and "convert it without --family" in err
    assert not out.exists()
