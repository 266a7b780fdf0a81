"""Flux.1's VAE, CLIP-L and T5 from the single files ComfyUI users have (issue 16): ``ae.safetensors`` in
Black Forest Labs' layout, ``clip_l.safetensors``, ``t5xxl_fp16`` / ``t5xxl_fp8_e4m3fn``, and the all-in-one
checkpoint, imported beside a BFL transformer file; files of the wrong part or size refused by name."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from textual.widgets import Button, Input

from dbtui.app import make_app
from dbtui.cli import main
from dbtui.engine_facade import ModelInfo, RealEngine
from dbtui.session import Session
from engine.convert import ConvertError, import_single_file
from engine.convert.flux_part_files import SLOTS, WrongPartFileError, load_part
from engine.convert.keymap import VAE_PREFIX, vae_to_original
from test_flux_files import BFL, to_original, write_bfl_file
from test_wizard_sdxl import SIZE, at_a_new_profiles_model_step, check_model, settle, visible
from wizard_fakes import FakeEngine

MODEL_FILES = {"vae": "diffusion_pytorch_model.safetensors", "text_encoder": "model.safetensors",
               "text_encoder_2": "model.safetensors"}


@pytest.fixture(scope="module")
def tiny_weights(tiny_flux: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The tiny Flux's transformer, VAE, CLIP-L and T5 weights, every one random (norms too), so a swapped
    or skipped tensor shows."""
    generator = torch.Generator().manual_seed(2)
    files = {"transformer": "diffusion_pytorch_model.safetensors", **MODEL_FILES}
    return {part: {k: torch.randn(v.shape, generator=generator) for k, v in load_file(tiny_flux / part / name).items()}
            for part, name in files.items()}


@pytest.fixture(scope="module")
def components(tiny_flux: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Flux without the weights of its VAE, CLIP-L and T5 (their configs kept): whatever weights the
    output has came from the files."""
    folder = tmp_path_factory.mktemp("flux-parts") / "components"

    def part_weights(where: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(where).name in MODEL_FILES and n.endswith(".safetensors")]

    shutil.copytree(tiny_flux, folder, ignore=part_weights)
    return folder


def ae_layout(vae: dict[str, torch.Tensor], tiny_flux: Path) -> dict[str, torch.Tensor]:
    """A diffusers VAE's weights in the original autoencoder's names, as ae.safetensors has them (no prefix)."""
    config = json.loads((tiny_flux / "vae" / "config.json").read_text())
    return {k.removeprefix(VAE_PREFIX): v for k, v in vae_to_original(vae, config).items()}


def clip_l_layout(clip: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 4's names, as ComfyUI's clip_l.safetensors and dbtui's folders have them, with its projection
    beside them; ``clip`` a file's weights or a transformers 5 model's (no ``text_model.``)."""
    named = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in clip.items()}
    width = named["text_model.embeddings.token_embedding.weight"].shape[1]
    return {**named, "text_projection.weight": torch.eye(width)}


def save(path: Path, weights: dict[str, torch.Tensor]) -> Path:
    save_file({k: v.contiguous() for k, v in weights.items()}, path)
    return path


def assert_same(folder: Path, part: str, expected: dict[str, torch.Tensor]) -> None:
    saved = load_file(folder / part / MODEL_FILES[part])
    assert set(saved) == set(expected), part
    for key, value in expected.items():
        assert saved[key].dtype == value.dtype and torch.equal(saved[key], value), (part, key)


def test_comfyui_part_files_import_beside_the_transformer_with_the_same_weights(
        tmp_path: Path, tiny_flux: Path, components: Path, tiny_weights: dict[str, dict[str, torch.Tensor]]) -> None:
    from diffusers import FluxPipeline

    transformer = write_bfl_file(tmp_path / "flux1-dev.safetensors", to_original(tiny_weights["transformer"]))
    ae = save(tmp_path / "ae.safetensors", ae_layout(tiny_weights["vae"], tiny_flux))
    clip = save(tmp_path / "clip_l.safetensors", clip_l_layout(tiny_weights["text_encoder"]))
    t5_fp16 = {k: v.half() for k, v in tiny_weights["text_encoder_2"].items()}  # shared.weight and encoder.*
    t5 = save(tmp_path / "t5xxl_fp16.safetensors", t5_fp16)
    out = tmp_path / "flux"
    assert main(["convert", "to-diffusers", str(transformer), str(out), "--components", str(components),
                 "--vae", str(ae), "--clip-l", str(clip), "--t5", str(t5)]) == 0

    assert_same(out, "vae", tiny_weights["vae"])
    assert_same(out, "text_encoder", tiny_weights["text_encoder"])
    assert_same(out, "text_encoder_2", t5_fp16)  # fp16 stays fp16, as a bf16 transformer stays bf16
    assert json.loads((out / "vae" / "config.json").read_text())["latent_channels"] == 16
    pipe = FluxPipeline.from_pretrained(out, torch_dtype=torch.float32)  # as the trainer loads the fp16 T5
    assert torch.equal(pipe.text_encoder_2.encoder.embed_tokens.weight, t5_fp16["shared.weight"].float())
    pipe.set_progress_bar_config(disable=True)
    image = pipe("photo of zwx disc", height=64, width=64, num_inference_steps=1, max_sequence_length=32,
                 generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()


def test_comfyuis_all_in_one_checkpoint_brings_its_parts_and_a_file_replaces_one(
        tmp_path: Path, tiny_flux: Path, components: Path, tiny_weights: dict[str, dict[str, torch.Tensor]]) -> None:
    """ComfyUI saves Flux with vae., text_encoders.clip_l.transformer. and text_encoders.t5xxl.transformer.;
    its T5 often in fp8 (widened to bf16). A --clip-l file outranks the checkpoint's own CLIP-L."""
    checkpoint = {BFL + k: v for k, v in to_original(tiny_weights["transformer"]).items()}
    checkpoint.update({"vae." + k: v for k, v in ae_layout(tiny_weights["vae"], tiny_flux).items()})
    checkpoint.update({"text_encoders.clip_l.transformer." + k: torch.zeros_like(v)
                       for k, v in clip_l_layout(tiny_weights["text_encoder"]).items()})
    checkpoint.update({"text_encoders.t5xxl.transformer." + k: v.to(torch.float8_e4m3fn)
                       for k, v in tiny_weights["text_encoder_2"].items()})
    file = save(tmp_path / "flux1-dev-fp8.safetensors", checkpoint)
    clip = save(tmp_path / "clip_l.safetensors", clip_l_layout(tiny_weights["text_encoder"]))
    out = RealEngine().import_model(str(file), tmp_path / "flux", components=str(components),
                                    part_files={"clip_l": str(clip)})

    assert_same(out, "vae", tiny_weights["vae"])
    assert_same(out, "text_encoder", tiny_weights["text_encoder"])  # the file's, not the checkpoint's zeros
    assert_same(out, "text_encoder_2", {k: v.to(torch.float8_e4m3fn).to(torch.bfloat16)
                                        for k, v in tiny_weights["text_encoder_2"].items()})
    imported = load_file(out / "transformer" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(imported[k], v) for k, v in tiny_weights["transformer"].items())


def tiny_clip(width: int) -> dict[str, torch.Tensor]:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(hidden_size=width, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
    return clip_l_layout(CLIPTextModel(config).state_dict())


def sd_vae(tiny_flux: Path) -> dict[str, torch.Tensor]:
    """The tiny Flux's VAE with Stable Diffusion's 4 latent channels, in diffusers' names."""
    from diffusers import AutoencoderKL

    config = json.loads((tiny_flux / "vae" / "config.json").read_text())
    return AutoencoderKL.from_config({**config, "latent_channels": 4}).state_dict()


@pytest.mark.parametrize(("option", "make", "words"), [
    ("vae", lambda w, _: w["text_encoder_2"],
     "part.safetensors was given as the VAE (--vae) but holds a T5 text encoder 32 wide with 2 blocks"),
    ("t5", lambda w, _: {BFL + k: v for k, v in to_original(w["transformer"]).items()},
     "holds a Flux transformer: give --t5 t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn.safetensors"),
    ("clip_l", lambda *_: tiny_clip(48),
     "holds a CLIP text encoder 48 wide with 2 layers, but the components' CLIP-L (text_encoder/config.json) is a CLIP "
     "text encoder 32 wide with 2 layers: give --clip-l clip_l.safetensors"),
    ("vae", lambda _, folder: sd_vae(folder), "holds a VAE with 4 latent channels and 2 levels, but the components'"),
    ("clip_l", lambda w, _: {k: v for k, v in clip_l_layout(w["text_encoder"]).items() if ".layers.1.mlp.fc2." not in k},
     "its weights do not fit the components' CLIP-L (text_encoder/config.json) (2 missing, e.g. encoder.layers.1.mlp"),
], ids=["t5-as-vae", "transformer-as-t5", "wider-clip-as-clip-l", "sd-vae", "incomplete-clip-l"])
def test_a_file_of_another_part_or_size_is_refused_saying_what_it_holds(
        tmp_path: Path, tiny_flux: Path, tiny_weights: dict[str, dict[str, torch.Tensor]],
        option: str, make: Any, words: str) -> None:
    from engine.convert.flux_part_files import FluxPartFiles

    transformer = write_bfl_file(tmp_path / "flux1-dev.safetensors", to_original(tiny_weights["transformer"]))
    part = save(tmp_path / "part.safetensors", make(tiny_weights, tiny_flux))
    with pytest.raises(WrongPartFileError) as error:
        import_single_file(transformer, tmp_path / "out", components=tiny_flux,
                           part_files=FluxPartFiles(**{option: part}))
    assert words in str(error.value)
    assert not (tmp_path / "out").exists()


def test_on_the_command_line_a_wrong_part_file_exits_2_naming_the_file(
        tmp_path: Path, tiny_flux: Path, tiny_weights: dict[str, dict[str, torch.Tensor]], capsys) -> None:
    transformer = write_bfl_file(tmp_path / "flux1-dev.safetensors", to_original(tiny_weights["transformer"]))
    t5 = save(tmp_path / "t5xxl_fp16.safetensors", tiny_weights["text_encoder_2"])
    assert main(["convert", "to-diffusers", str(transformer), str(tmp_path / "out"), "--components", str(tiny_flux),
                 "--clip-l", str(t5)]) == 2
    assert "t5xxl_fp16.safetensors was given as CLIP-L (--clip-l) but holds a T5" in capsys.readouterr().err


@pytest.mark.parametrize("named", ["missing", "text"])
def test_the_wizards_part_file_that_is_missing_or_no_model_is_refused_naming_it(
        named: str, tmp_path: Path, tiny_flux: Path, tiny_weights: dict[str, dict[str, torch.Tensor]]) -> None:
    """The Model step's VAE file mistyped crashed the conversion ("unexpected error (FileNotFoundError …)", as did
    `convert --vae ae.safetensors` without that file), as it counted the room the output needs; a text file reached the
    loader's words without its option. Both are now refused as the CLI's --clip-l and --t5 are."""
    transformer = write_bfl_file(tmp_path / "flux1-dev.safetensors", to_original(tiny_weights["transformer"]))
    vae = tmp_path / "ae.safetensors"
    if named == "text":
        vae.write_text("the VAE, to download\n", encoding="utf-8")
    with pytest.raises(ConvertError) as error:
        RealEngine().import_model(str(transformer), tmp_path / "out", components=str(tiny_flux),
                                  part_files={"vae": str(vae)})
    said = {"missing": f"--vae: {vae}: no such file", "text": f"--vae: {vae} is a text file, not a model"}[named]
    assert str(error.value).startswith(said), error.value
    assert not (tmp_path / "out").exists()


# -- Flux.1's real sizes, on the meta device (no memory): the configs kept in the package ----------------

def real_size_files() -> dict[str, dict[str, torch.Tensor]]:
    """Flux.1's VAE, CLIP-L and T5-XXL, and SDXL's CLIP-G, with the keys and shapes of the files ComfyUI has."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from engine.memory.flux_architecture import CLIP_L, T5_XXL, VAE

    clip_g = {**CLIP_L, "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32}
    with torch.device("meta"):
        vae = AutoencoderKL(**VAE).state_dict()
        t5 = {k: v for k, v in T5EncoderModel(T5Config(**T5_XXL)).state_dict().items() if k != "encoder.embed_tokens.weight"}
        return {"vae": {k.removeprefix(VAE_PREFIX): v for k, v in vae_to_original(vae, VAE).items()},
                "clip_l": clip_l_layout(CLIPTextModel(CLIPTextConfig(**CLIP_L)).state_dict()),
                "t5": {k: v.to(torch.float8_e4m3fn) for k, v in t5.items()},
                "clip_g": clip_l_layout(CLIPTextModel(CLIPTextConfig(**clip_g)).state_dict())}


def test_flux1s_real_part_files_fit_the_configs_kept_in_the_package_and_clip_g_is_refused() -> None:
    files = real_size_files()
    sizes = {}
    for slot in ("vae", "clip_l", "t5"):
        model = load_part(SLOTS[slot], files[slot], f"{slot}.safetensors", components=None)
        sizes[slot] = sum(p.numel() for p in model.parameters())
    # black-forest-labs/FLUX.1-dev: CLIP-L 123 M, T5-XXL's encoder 4.76 B, the VAE 84 M.
    assert sizes["clip_l"] == 123_060_480 and sizes["t5"] == 4_762_310_656 and 83_000_000 < sizes["vae"] < 85_000_000
    assert model.shared.weight.dtype == torch.bfloat16  # the T5's fp8, widened
    with pytest.raises(WrongPartFileError) as error:
        load_part(SLOTS["clip_l"], files["clip_g"], "clip_g.safetensors", components=None)
    assert str(error.value).startswith(
        "clip_g.safetensors holds a CLIP text encoder 1280 wide with 32 layers (CLIP-G, OpenCLIP ViT-bigG), but "
        "Flux.1's CLIP-L is a CLIP text encoder 768 wide with 12 layers (CLIP-L): give --clip-l clip_l.safetensors")


# -- the components when files give the parts --------------------------------------------------------

def test_with_all_three_files_the_hub_gives_only_configs_tokenizers_and_scheduler(
        tmp_path: Path, components: Path, tiny_flux: Path, tiny_weights: dict[str, dict[str, torch.Tensor]],
        monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import engine.support.hub_snapshot

    transformer = write_bfl_file(tmp_path / "flux1-dev.safetensors", to_original(tiny_weights["transformer"]))
    args = ["--vae", str(save(tmp_path / "ae.safetensors", ae_layout(tiny_weights["vae"], tiny_flux))),
            "--clip-l", str(save(tmp_path / "clip_l.safetensors", clip_l_layout(tiny_weights["text_encoder"]))),
            "--t5", str(save(tmp_path / "t5.safetensors", tiny_weights["text_encoder_2"]))]
    asked: list[tuple[str, list[str]]] = []

    def snapshot(repo: str, *, allow_patterns: list[str], **_: Any) -> Path:
        asked.append((repo, allow_patterns))
        return components

    monkeypatch.setattr(engine.support.hub_snapshot, "hub_snapshot", snapshot)
    assert main(["convert", "to-diffusers", str(transformer), str(tmp_path / "out"), *args]) == 0
    [(repo, patterns)] = asked
    assert repo == "black-forest-labs/FLUX.1-dev"
    assert {"vae/config.json", "text_encoder/config.json", "text_encoder_2/config.json", "tokenizer/*",
            "tokenizer_2/*", "scheduler/*"} <= set(patterns)
    assert not {"vae/*", "text_encoder/*", "text_encoder_2/*", "transformer/*"} & set(patterns)
    assert_same(tmp_path / "out", "vae", tiny_weights["vae"])

    monkeypatch.undo()  # offline and not cached: the message says what still comes from the hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    capsys.readouterr()
    assert main(["convert", "to-diffusers", str(transformer), str(tmp_path / "offline"), *args]) == 2
    message = capsys.readouterr().err
    assert "the tokenizers and the scheduler (a few MB) for this Flux.1 [dev] transformer come from " \
           "black-forest-labs/FLUX.1-dev" in message and "--components" in message
    # Only those few MB to download, not the whole repository but its transformer/ (T5 alone is 9.5 GB).
    said = " ".join(message.split())
    assert "`hf download black-forest-labs/FLUX.1-dev --exclude '*.safetensors' --local-dir FOLDER`" in said, message
    assert "transformer/ is not needed" not in said, message
    # Another repository may hold .bin weights, which that --exclude would download: its few files are named instead.
    other = [*args, "--components", "someone/flux-variant"]
    assert main(["convert", "to-diffusers", str(transformer), str(tmp_path / "other"), *other]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "--exclude" not in said and "someone/flux-variant's model_index.json, tokenizer/" in said, said
    # A part neither given nor in the components is named, with the file option that would give it.
    assert main(["convert", "to-diffusers", str(transformer), str(tmp_path / "c"), "--components", str(components),
                 *args[:4]]) == 2
    message = capsys.readouterr().err
    assert "lack T5 (text_encoder_2/)" in message and "--vae, --clip-l or --t5" in message


# -- the wizard ------------------------------------------------------------------------------------

FLUX_FILE = "flux1-dev.safetensors"


@dataclass
class FluxFileEngine(FakeEngine):
    """A fake engine that knows a Flux transformer file and records where its parts were asked from."""

    imports: list = field(default_factory=list)

    def inspect_model(self, source: str) -> ModelInfo:
        if source == FLUX_FILE:
            return ModelInfo(source, "single-file", "single file: Flux.1 [dev] transformer (1024 px, flow matching)",
                             None, resolution=1024, family_id="flux")
        return super().inspect_model(source)

    def import_model(self, source: str, out_dir: Path, emit=None, **flux: Any) -> Path:
        self.imports.append((source, flux))
        return Path(out_dir)


async def test_the_model_step_asks_a_flux_file_for_its_components_and_part_files() -> None:
    engine = FluxFileEngine()
    app = make_app(engine, Session(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await at_a_new_profiles_model_step(pilot)
        screen = app.screen
        await check_model(pilot, "sd15.safetensors")  # an SD file holds its own parts: not asked
        assert visible(screen, "#model-convert-row") and not visible(screen, "#model-flux-parts")
        screen.query_one("#model-convert", Button).press()
        await settle(pilot)
        assert engine.imports[-1] == ("sd15.safetensors", {})

        await check_model(pilot, FLUX_FILE)
        assert visible(screen, "#model-flux-parts") and visible(screen, "#model-convert-row")
        screen.query_one("#model-components", Input).focus()
        await pilot.press(*"models/FLUX.1-dev", "tab", *"ae.safetensors", "tab", "tab", *"t5xxl_fp16.safetensors")
        await pilot.pause()
        screen.query_one("#model-convert", Button).press()
        await settle(pilot)
        assert engine.imports[-1] == (FLUX_FILE, {"components": "models/FLUX.1-dev",
                                                  "part_files": {"vae": "ae.safetensors", "t5": "t5xxl_fp16.safetensors"}})
        assert app.session.get("model.pretrained") == "models/flux1-dev-diffusers"
        assert not visible(screen, "#model-flux-parts")
