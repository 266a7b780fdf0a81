"""The diffusers folders dbtui writes load on the oldest stack pyproject allows (transformers 4.50) with the same
text encoder weights and tokenizer ids as on this one: transformers 5 writes tokenizer.json alone, and 4.x's
CLIPTokenizer, the class model_index.json names, failed with a TypeError for want of vocab.json and merges.txt."""

from __future__ import annotations

from pathlib import Path

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.convert.older_readers import write_for_older_readers

BASES = ("tiny_sd1", "tiny_sdxl")


def _same_on_both_stacks(stacks_probed: Path, name: str) -> dict[str, str]:
    """Asserts the probe's dumps of ``name`` agree; returns the old stack's tokenizer classes."""
    dumps = {}
    for stack in ("new", "old"):
        error = stacks_probed / name / f"{stack}.safetensors.error"
        if error.exists():
            pytest.fail(f"loading {name} on the {stack} stack failed:\n{error.read_text(encoding='utf-8')}")
        dumps[stack] = load_file(stacks_probed / name / f"{stack}.safetensors")
    old, new = dumps["old"], dumps["new"]
    assert sorted(old) == sorted(new)
    assert [key for key in new if not torch.equal(old[key], new[key])] == []
    with safe_open(str(stacks_probed / name / "old.safetensors"), framework="pt") as file:
        return file.metadata()


@pytest.mark.slow
@pytest.mark.parametrize("base", BASES)
def test_a_runs_pipeline_loads_identically_on_the_oldest_declared_stack(base: str, stacks_probed: Path) -> None:
    classes = _same_on_both_stacks(stacks_probed, base)
    assert set(classes.values()) == {"CLIPTokenizer"} and len(classes) == (2 if base == "tiny_sdxl" else 1)
    assert (stacks_probed / base / "out" / "tokenizer" / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\n")


@pytest.mark.slow
def test_the_builtin_flux_loads_identically_on_the_oldest_declared_stack(stacks_probed: Path) -> None:
    # Its CLIP tokenizer is the real one (48894 merges); its T5 tokenizer is named by its fast class for 4.x, which
    # has no SentencePiece model to build the slow one from.
    assert _same_on_both_stacks(stacks_probed, "tiny_flux") == {"tokenizer": "CLIPTokenizer", "tokenizer_2": "T5TokenizerFast"}


def test_extra_special_tokens_are_listed_as_4x_reads_them_and_linked_files_are_left_alone(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, T5TokenizerFast

    from engine.builtin.tiny_flux import t5_tokenizer

    extras = ["<extra_id_0>", "<extra_id_1>"]
    T5TokenizerFast(tokenizer_object=t5_tokenizer().backend_tokenizer, pad_token="<pad>", eos_token="</s>",
                    unk_token="<unk>", extra_ids=2, additional_special_tokens=extras).save_pretrained(tmp_path / "t5")
    before = AutoTokenizer.from_pretrained(tmp_path / "t5")
    config = tmp_path / "t5" / "tokenizer_config.json"
    os.link(config, tmp_path / "linked.json")
    write_for_older_readers(tmp_path / "t5")
    written = json.loads(config.read_text(encoding="utf-8"))
    # 4.x took a list here for a {name: token} dict and failed: AttributeError: 'list' object has no attribute 'keys'
    assert "extra_special_tokens" not in written and written["additional_special_tokens"] == extras
    assert "extra_special_tokens" in json.loads((tmp_path / "linked.json").read_text(encoding="utf-8"))
    after = AutoTokenizer.from_pretrained(tmp_path / "t5")
    assert after.all_special_tokens == before.all_special_tokens
    assert after("a <extra_id_1> b").input_ids == before("a <extra_id_1> b").input_ids
