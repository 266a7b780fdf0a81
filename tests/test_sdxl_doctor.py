"""The dataset doctor and the fit test on SDXL: 1024 px size advice, SDXL's tokenizers, a fit test of tiny SDXL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.dataset import check_concept, concept_settings, load_tokenizer
from engine.profile import Profile, load_profile

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sharp photos around SDXL's size: one too small for 1024 px, one large enough, one exactly a bucket."""
    folder = tmp_path_factory.mktemp("photos")
    for seed, (w, h) in enumerate([(800, 700), (1200, 1100), (1216, 832)]):
        textured(seed, (w, h)).save(folder / f"{w}x{h}.png")
    return folder


@pytest.fixture(scope="module")
def real_tokenizer_sdxl(tiny_sdxl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SDXL with SDXL's real tokenizers (CLIP's BPE; the second pads with "!", as OpenCLIP does)."""
    from engine.builtin.clip_tokenizer import OPEN_CLIP_PAD, clip_tokenizer

    folder = tmp_path_factory.mktemp("sdxl") / "model"
    shutil.copytree(tiny_sdxl, folder)
    for name, pad in (("tokenizer", None), ("tokenizer_2", OPEN_CLIP_PAD)):
        shutil.rmtree(folder / name)
        (clip_tokenizer(pad) if pad else clip_tokenizer()).save_pretrained(folder / name)
    return folder


def sdxl_profile(model: str | Path, photos: Path, **dataset) -> Profile:
    return Profile(
        model={"pretrained": str(model)},
        concepts=[{"instance_dir": str(photos), "instance_prompt": "photo of zwx dog", "class_prompt": "photo of a dog"}],
        dataset={"resolution": 1024, **dataset},
    )


def too_small(report) -> dict[str, str]:
    return {Path(f.path).name: f"{f.message} | {f.fix}" for f in report.findings if f.code == "too_small"}


def test_at_1024_px_the_doctor_names_the_images_below_it_and_the_size_to_look_for(photos: Path) -> None:
    report = check_concept(sdxl_profile("builtin:tiny-sdxl", photos), workers=1)
    assert report.resolution == 1024
    found = too_small(report)
    assert set(found) == {"800x700.png", "1216x832.png"}  # square crops of 1024 need 1024 px on both sides
    text = found["800x700.png"]
    assert "smaller than the 1024 px training size" in text and "upscaled ×1.46" in text
    assert "at least 1024 px on its shorter side" in text


def test_with_buckets_at_1024_the_advice_names_the_sdxl_bucket(photos: Path) -> None:
    # Real SDXL's 32 px bucket step (not yet downloaded: told by the name); the tiny one's UNet steps by 4 px.
    report = check_concept(sdxl_profile("stabilityai/stable-diffusion-xl-base-1.0", photos, bucketing=True), workers=1)
    assert report.image_buckets[str(photos / "1216x832.png")] == (1216, 832)  # one of SDXL's own sizes
    found = too_small(report)
    assert set(found) == {"800x700.png"}
    assert "its 1088×960 bucket" in found["800x700.png"] and "at least 1088×960 px" in found["800x700.png"]


def test_the_doctor_reads_an_sdxl_folders_own_tokenizer(photos: Path, tiny_sdxl: Path) -> None:
    from transformers import CLIPTokenizer

    tokenizer = concept_settings(sdxl_profile("builtin:tiny-sdxl", photos))["tokenizer"]
    assert tokenizer.get_vocab() == CLIPTokenizer.from_pretrained(tiny_sdxl / "tokenizer").get_vocab()
    report = check_concept(sdxl_profile("builtin:tiny-sdxl", photos), workers=1)
    # The tiny model spells letter by letter, and the doctor says why it cannot judge the identifier.
    assert "identifier_not_judged" in report.codes(report.folder)


def test_sdxls_two_tokenizers_agree_on_every_token_so_one_check_serves_both(real_tokenizer_sdxl: Path) -> None:
    from transformers import CLIPTokenizer

    first = load_tokenizer(real_tokenizer_sdxl)
    second = CLIPTokenizer.from_pretrained(real_tokenizer_sdxl / "tokenizer_2")
    assert first.pad_token != second.pad_token  # the one difference, which no check looks at
    assert first.get_vocab() == second.get_vocab() and first.model_max_length == second.model_max_length == 77
    for text in ["photo of zwx dog", "photo of ohwx person, portrait, studio light, 85mm, bokeh " * 6]:
        assert first(text, add_special_tokens=False).input_ids == second(text, add_special_tokens=False).input_ids


def test_token_and_identifier_checks_use_sdxls_tokenizer(real_tokenizer_sdxl: Path, photos: Path) -> None:
    long_prompt = "photo of sks dog, " + ", ".join(["portrait in soft window light with a shallow depth of field"] * 8)
    profile = Profile(
        model={"pretrained": str(real_tokenizer_sdxl)},
        concepts=[{"instance_dir": str(photos), "instance_prompt": long_prompt, "class_prompt": long_prompt.replace("sks ", "")}],
        dataset={"resolution": 1024},
    )
    report = check_concept(profile, workers=1)
    codes = report.codes(report.folder)
    assert {"identifier_common", "caption_too_long"} <= codes  # sks, and a prompt past CLIP's 75 tokens
    [long] = [f for f in report.findings if f.code == "caption_too_long"]
    assert "over 75" in long.message


# The demo folder holds 8 class images, so the person profile generates none.
TINY = {"sdxl-lora-12gb.toml": [], "sdxl-person.toml": ['concepts.0.class_dir="builtin:demo-class"', "concepts.0.num_class_images=8"]}


@pytest.mark.parametrize("name", list(TINY))
def test_the_fit_test_measures_each_sdxl_profile_on_tiny_sdxl(name: str, tmp_path: Path) -> None:
    from engine.runs.fit import fit_test

    # The shipped profile as it is (optimizer, precision, LoRA or full, prior preservation), on the tiny
    # SDXL and the demo images at the tiny model's size.
    profile = load_profile(ROOT / "profiles" / name, [
        'model.pretrained="builtin:tiny-sdxl"', 'concepts.0.instance_dir="builtin:demo-instance"',
        "dataset.resolution=64", f'saving.output_dir="{tmp_path}"', *TINY[name],
    ])
    result = fit_test(profile, steps=2, work_dir=tmp_path)
    assert (result.steps, result.device) == (2, "cpu")
    # The LoRA profile sets its steps; the person profile leaves 100 per instance image (the demo has 6).
    assert result.total_steps == (1000 if "lora" in name else 600)
    assert result.s_per_step > 0 and result.eta_s > result.setup_s
