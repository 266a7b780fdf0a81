"""The CLIP tokenizer built from the merges file shipped with dbtui is the real one."""

from __future__ import annotations

import pytest

from engine.builtin.clip_tokenizer import MERGES_FILE, OPEN_CLIP_PAD, OPENAI_PAD, clip_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return clip_tokenizer()


def test_ids_are_clips(tokenizer) -> None:
    # Ids of OpenAI CLIP's tokenizer (the one SD1.x, SD2.x and SDXL use): bos, a, photo, of, z, wx, dog, eos.
    assert tokenizer("a photo of zwx dog").input_ids == [49406, 320, 1125, 539, 89, 3561, 1929, 49407]
    assert tokenizer.tokenize("a photo of zwx dog") == ["a</w>", "photo</w>", "of</w>", "z", "wx</w>", "dog</w>"]
    assert len(tokenizer) == 49408
    assert tokenizer.model_max_length == 77
    assert tokenizer.decode(tokenizer("Hello, World").input_ids, skip_special_tokens=True) == "hello , world"


def test_padding_differs_between_openai_and_openclip(tokenizer) -> None:
    padded = tokenizer("dog", padding="max_length", max_length=77).input_ids
    assert padded[:3] == [49406, 1929, 49407] and padded[3:] == [49407] * 74 and len(padded) == 77
    open_clip = clip_tokenizer(OPEN_CLIP_PAD)  # SD2.x and SDXL's second tokenizer pad with "!" (id 0)
    assert open_clip("dog", padding="max_length", max_length=77).input_ids[3:] == [0] * 74
    assert (tokenizer.pad_token, open_clip.pad_token) == (OPENAI_PAD, "!")


def test_it_saves_and_reloads_as_a_plain_clip_tokenizer(tokenizer, tmp_path) -> None:
    from transformers import CLIPTokenizer

    clip_tokenizer(OPEN_CLIP_PAD).save_pretrained(tmp_path)
    reloaded = CLIPTokenizer.from_pretrained(tmp_path)
    assert reloaded.pad_token == "!" and reloaded.model_max_length == 77
    assert reloaded("a photo of zwx dog").input_ids == tokenizer("a photo of zwx dog").input_ids


def test_the_merges_file_and_its_licence_ship_in_the_package() -> None:
    import tomllib
    from pathlib import Path

    assert MERGES_FILE.read_bytes()[:2] == b"\x1f\x8b"  # kept gzipped
    licence = MERGES_FILE.with_name("clip_bpe_simple_vocab_16e6.LICENSE.txt").read_text()
    assert "MIT License" in licence and "OpenAI" in licence
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["engine.builtin"]
    assert {"assets/*.gz", "assets/*.txt"} <= set(patterns)
