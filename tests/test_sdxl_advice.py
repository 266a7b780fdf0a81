"""SDXL where users decide: example profiles, presets, hardware advice, the 1024 px bucket list, bench rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbtui.cli import main
from dbtui.presets import PRESET_NAMES, PRESETS
from dbtui.session import Session
from engine.data.buckets import standard_buckets
from engine.hardware.machine import Gpu, Hardware, verdict
from engine.model_info import likely_family
from engine.profile import load_profile
from tests.bench_helpers import bench_module

ROOT = Path(__file__).parents[1]
SDXL_PROFILES = [ROOT / "profiles" / "sdxl-person.toml", ROOT / "profiles" / "sdxl-lora-12gb.toml"]


def gpu(name: str, mib: float, bf16: bool = True) -> Hardware:
    return Hardware(gpus=[Gpu(0, name, mib, None, "8.6" if bf16 else "7.5", bf16)])


# -- example profiles ----------------------------------------------------------------------


def test_the_sdxl_person_profile_is_a_full_1024_px_dreambooth_with_prior_preservation() -> None:
    profile = load_profile(ROOT / "profiles" / "sdxl-person.toml")
    assert profile.model.pretrained == "stabilityai/stable-diffusion-xl-base-1.0"
    assert (profile.training.method, profile.dataset.resolution, profile.prior.enabled) == ("full", 1024, True)
    assert profile.concepts[0].class_dir and profile.concepts[0].num_class_images >= 100
    assert (profile.optimizer.name, profile.precision.mixed_precision) == ("adafactor", "bf16")
    assert profile.precision.gradient_checkpointing and profile.dataset.cache_latents
    assert "sdxl-vae-fp16-fix" in (ROOT / "profiles" / "sdxl-person.toml").read_text()  # the VAE note


def test_the_sdxl_lora_profile_keeps_what_makes_it_fit_12_gb() -> None:
    profile = load_profile(ROOT / "profiles" / "sdxl-lora-12gb.toml")
    assert profile.model.pretrained == "stabilityai/stable-diffusion-xl-base-1.0"
    assert (profile.training.method, profile.dataset.resolution) == ("lora", 1024)
    assert profile.optimizer.name in ("adamw8bit", "adafactor") and 5e-5 <= profile.optimizer.learning_rate <= 2e-4
    assert profile.precision.gradient_checkpointing and profile.dataset.cache_latents
    assert not profile.training.train_text_encoder
    assert {"lora_diffusers", "lora_kohya"} <= set(profile.saving.export)


# -- presets -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("path", [ROOT / "profiles" / "sd15-person.toml", *SDXL_PROFILES], ids=lambda p: Path(p).name)
def test_every_preset_applied_to_a_shipped_profile_leaves_it_valid(preset: str, path: Path) -> None:
    session = Session.from_file(path)
    session.merge(PRESETS[preset])
    profile, problems = session.validate()
    # Turning prior preservation on asks for the class folder and prompt that only the user can give.
    allowed = {"concepts.0.class_dir", "concepts.0.class_prompt"} if preset == "person" else set()
    assert {p.key for p in problems} <= allowed, [f"{p.key}: {p.message}" for p in problems]
    assert preset in PRESET_NAMES
    if preset.startswith("sdxl-"):
        assert profile.dataset.resolution == 1024 and profile.precision.mixed_precision == "bf16"


# -- hardware advice -----------------------------------------------------------------------


SD_ANSWERS = [
    (gpu("GTX 1650", 5120), "LoRA training fits; full fine-tuning does not.", "lora"),
    (gpu("RTX 3060", 12288), "full fine-tune with 8-bit Adam, bf16 weights, the optimizer step fused into the backward pass, "
                             "gradient checkpointing and cached latents.", "full-8bit"),
    (gpu("RTX A4000", 16384), "full fine-tune; training the text encoder too needs 17.4 GB by the memory meter.", "full"),
    (gpu("A100", 40960), "full fine-tune with text-encoder training.", "full-text-encoder"),
]


@pytest.mark.parametrize(("hw", "ending", "preset"), SD_ANSWERS, ids=[a[2] for a in SD_ANSWERS])
def test_the_sd_answers_stay_the_default(hw: Hardware, ending: str, preset: str) -> None:
    sentence, chosen = verdict(hw)
    assert (sentence.split(": ", 1)[1], chosen) == (ending, preset)
    assert verdict(hw, "sd") == (sentence, chosen)


SDXL_TIERS = [  # (card, MiB as the card reports it, words that must be in the advice, preset)
    ("RTX 2060", 6144, ["too little even for a LoRA", "7.6 GB by the memory meter"], "sdxl-lora"),
    ("RTX 3070", 8192, ["a LoRA fits, tightly", "a full fine-tune needs 14.5 GB by the memory meter"], "sdxl-lora"),
    ("RTX 4070", 12282, ["a LoRA fits;", "a full fine-tune needs 14.5 GB by the memory meter"], "sdxl-lora"),
    ("RTX 4080", 16376, ["a full fine-tune fits", "Adafactor", "text encoders too needs 18.2 GB by the memory meter"],
     "sdxl-full"),
    ("RTX 4090", 24564, ["a full fine-tune fits", "Adafactor", "with room to train the text encoders too"], "sdxl-full"),
    ("H100", 81559, ["a full fine-tune fits (", "), with room to train the text encoders too."], "sdxl-full"),
]


@pytest.mark.parametrize(("name", "mib", "words", "preset"), SDXL_TIERS, ids=[t[0] for t in SDXL_TIERS])
def test_sdxl_advice_follows_the_published_anchors(name: str, mib: float, words: list[str], preset: str) -> None:
    sentence, chosen = verdict(gpu(name, mib), "sdxl")
    assert sentence.startswith(f"{name} with ") and "SDXL at 1024 px" in sentence
    assert all(word in sentence for word in words), sentence
    assert chosen == preset and "no bf16" not in sentence


def test_sdxl_advice_without_a_gpu_or_without_bf16() -> None:
    sentence, preset = verdict(Hardware(), "sdxl")
    assert "No NVIDIA GPU" in sentence and "8 GB" in sentence and preset == "cpu-demo"
    sentence, preset = verdict(gpu("RTX 2080 Ti", 11264, bf16=False), "sdxl")
    assert "a LoRA fits;" in sentence and "no bf16" in sentence and preset == "sdxl-lora"
    with pytest.raises(ValueError, match="sd3"):  # Flux has advice of its own (tests/test_flux_wizard.py)
        verdict(Hardware(), "sd3")


CARDS_GB = (4, 5, 6, 8, 10, 11, 12, 16, 20, 22, 24, 32, 40, 48, 80)


@pytest.mark.parametrize("family", ["sd", "sdxl"])
@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "no-bf16"])
def test_the_advice_recommends_the_largest_preset_the_meters_table_fits(family: str, bf16: bool) -> None:
    """The advice said "a full fine-tune needs a 24 GB card" above the table's "sdxl-full 14.5 GB … 16 GB ✓" (and
    "text-encoder training is tight" on 20 GB beside full-text-encoder's 17.4 GB), and "LoRA training fits" on a 4 GB
    card the table says the LoRA misses."""
    from engine.hardware.machine import FAMILY_PRESETS
    from engine.memory.preset_table import load_preset_estimates

    table = load_preset_estimates()
    for card in CARDS_GB:
        sentence, preset = verdict(gpu("GPU", card * 1024 - 10, bf16), family)
        fitting = [name for name in FAMILY_PRESETS[family] if table[name].need(bf16).fits(card)]
        if not fitting:
            assert "too little even for a LoRA" in sentence and preset == FAMILY_PRESETS[family][0], (card, sentence)
        else:
            assert preset == fitting[-1] and "too little" not in sentence, (card, bf16, sentence)


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_the_advice_for_a_gpu_without_bf16_never_promises_bf16(family: str) -> None:
    """"full fine-tune with 8-bit Adam, bf16 weights, the optimizer step fused…" was followed by "This GPU has no bf16"."""
    for card in CARDS_GB:
        sentence, _ = verdict(gpu("GPU", card * 1024 - 10, bf16=False), family)
        assert not any(words in sentence for words in ("bf16 weights", "fused", ", bf16")), sentence


def test_the_family_of_a_model_is_found_without_downloading(tmp_path: Path, tiny_sd1: Path, tiny_sdxl: Path) -> None:
    import torch
    from safetensors.torch import save_file

    assert (likely_family("builtin:tiny-sdxl"), likely_family(str(tiny_sdxl)), likely_family(str(tiny_sd1))) == ("sdxl", "sdxl", "sd")
    assert likely_family("stabilityai/stable-diffusion-xl-base-1.0") == "sdxl"
    assert likely_family("stable-diffusion-v1-5/stable-diffusion-v1-5") == "sd"
    # A single file's keys outrank its name.
    save_file({"conditioner.embedders.0.transformer.text_model.x": torch.zeros(1)}, tmp_path / "mine.safetensors")
    save_file({"cond_stage_model.transformer.text_model.x": torch.zeros(1),
               "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, tmp_path / "not-really-XL.safetensors")
    assert likely_family(str(tmp_path / "mine.safetensors")) == "sdxl"
    assert likely_family(str(tmp_path / "not-really-XL.safetensors")) == "sd"
    assert likely_family(str(tmp_path / "juggernautXL_v9.ckpt")) == "sdxl"  # a name is all a .ckpt gives cheaply
    assert [likely_family(n) for n in ("animagineXLV3", "sdxlTurbo", "someone/xlarge-sd15", "pixlart")] == ["sdxl", "sdxl", "sd", "sd"]


def test_a_unet_only_sdxl_file_is_told_sdxl_by_its_keys(tmp_path: Path, tiny_sdxl: Path, tiny_sd1: Path) -> None:
    """A UNet-only SDXL file (no conditioner.embedders) was called "sd" with certainty, so `dbtui hardware` and the
    checks gave SD advice for it; its UNet's label_emb (SDXL's pooled-text and size embedding) says SDXL. (`dbtui
    hardware --profile` now refuses it as `validate` does: no VAE, no text encoders; the wizard's advice reads this.)"""
    from safetensors.torch import load_file, save_file

    from engine.convert import export_single_file
    from engine.model_info import advice_family, family_from_files

    unet = "model.diffusion_model."
    whole = {name: load_file(export_single_file(folder, tmp_path / f"{name}-whole.safetensors"))
             for name, folder in (("sdxl", tiny_sdxl), ("sd1", tiny_sd1))}
    xl, bare, sd = tmp_path / "my-unet.safetensors", tmp_path / "comfy-unet.safetensors", tmp_path / "sd-unet.safetensors"
    save_file({k: v for k, v in whole["sdxl"].items() if k.startswith(unet)}, xl)
    # ComfyUI's models/unet/ files: without the model.diffusion_model. prefix.
    save_file({k.removeprefix(unet): v for k, v in whole["sdxl"].items() if k.startswith(unet)}, bare)
    save_file({k: v for k, v in whole["sd1"].items() if k.startswith(unet)}, sd)
    assert [likely_family(str(path)) for path in (xl, bare, sd)] == ["sdxl", "sdxl", "sd"]
    assert advice_family(str(xl)) == family_from_files(str(xl)) == "sdxl"  # read from its files, not guessed


def test_dbtui_hardware_gives_the_advice_for_a_family_or_a_profiles_model(tmp_path: Path, capsys) -> None:
    assert main(["hardware", "--json", "--output-dir", str(tmp_path), "--profile", str(SDXL_PROFILES[0])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["family"] == "sdxl" and "SDXL" in report["verdict"]  # on this machine or one with a GPU
    assert main(["hardware", "--json", "--output-dir", str(tmp_path), "--family", "sd"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["family"] == "sd" and "SDXL" not in report["verdict"]


# -- the bucket list at 1024 -------------------------------------------------------------------

# SDXL's training list (Podell et al. 2023, appendix), landscape half; the portrait half mirrors it.
SDXL_LANDSCAPE = {
    (1024, 1024), (1024, 960), (1088, 960), (1088, 896), (1152, 896), (1152, 832), (1216, 832), (1280, 768),
    (1344, 768), (1344, 704), (1408, 704), (1472, 704), (1536, 640), (1600, 640), (1664, 576), (1728, 576),
    (1792, 576), (1856, 512), (1920, 512), (1984, 512), (2048, 512),
}
# The sizes Stability AI recommends for SDXL (the biggest area at each width).
SDXL_RECOMMENDED = {(1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640)}


def test_the_1024_bucket_list_is_sdxls_own_up_to_the_aspect_limit() -> None:
    buckets = set(standard_buckets(1024, multiple=64))
    sdxl = SDXL_LANDSCAPE | {(h, w) for w, h in SDXL_LANDSCAPE}
    assert buckets <= sdxl
    assert SDXL_RECOMMENDED | {(h, w) for w, h in SDXL_RECOMMENDED} <= buckets
    assert {(w, h) for w, h in buckets if w >= h} == {
        (1024, 1024), (1088, 960), (1152, 896), (1216, 832), (1280, 768), (1344, 768), (1408, 704), (1472, 704),
        (1536, 640), (1600, 640),
    }
    assert all(w * h <= 1024 * 1024 and w % 64 == 0 == h % 64 for w, h in buckets)


# -- bench rows ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite():
    yield from bench_module("suite")


@pytest.fixture(scope="module")
def bench_train():
    yield from bench_module("bench_train")


def test_the_suite_lists_sdxl_full_and_lora_rows_that_bench_train_accepts(suite, bench_train) -> None:
    rows = suite.configs_for("sdxl")
    assert rows is suite.configs_for("tiny-sdxl") and suite.configs_for("sd15") is suite.CONFIGS
    assert {"sdxl-full-adafactor", "sdxl-lora-12gb"} <= set(rows)
    methods = set()
    for name, args in rows.items():
        parsed = bench_train.parse_args(["--model", "sdxl", *args])
        methods.add(parsed.method)
        assert parsed.precision == "bf16", name
    assert methods == {"full", "lora"}
    assert bench_train.MODELS["sdxl"] == ("builtin:sdxl-random", 1024)
    with pytest.raises(SystemExit):
        suite.main(["--model", "sdxl", "--only", "lora-8gb"])  # an SD1.5 row on the SDXL model


def test_the_random_sdxl_has_sdxl_bases_real_sizes() -> None:
    import torch

    from engine.builtin.clip_tokenizer import clip_tokenizer
    from engine.builtin.sdxl_random import build_models

    with torch.device("meta"):  # no memory: only the shapes
        models = build_models(clip_tokenizer())
    counts = {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()}
    # The parameter counts of stabilityai/stable-diffusion-xl-base-1.0.
    assert counts == {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840}
    unet = models["unet"].config
    assert (unet.cross_attention_dim, unet.addition_embed_type, unet.sample_size) == (2048, "text_time", 128)
    assert models["text_encoder_2"].config.projection_dim == 1280
    assert models["text_encoder"].config.vocab_size == 49408
