"""A diffusers folder that lacks a part training reads (a partial download or copy) is refused before any part loads,
by name, where the model is checked: `dbtui validate`, `dbtui run`, the wizard's model step and the load itself. A
Flux folder without T5's tokenizer files was trained on captions read as unknown tokens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.models.flux import Flux
from engine.models.parts import ModelNotFoundError


def _without(model: Path, tmp_path: Path, part: str) -> Path:
    folder = tmp_path / f"without-{part.replace('/', '-')}"
    shutil.copytree(model, folder)
    target = folder / part
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    return folder


def test_a_flux_folder_without_t5_tokenizer_files_is_refused_not_read_as_an_empty_vocabulary(tiny_flux: Path,
                                                                                            tmp_path: Path) -> None:
    # tokenizer_config.json alone: transformers would build a T5 tokenizer of 4 tokens, and say nothing.
    folder = _without(tiny_flux, tmp_path, "tokenizer_2/tokenizer.json")
    with pytest.raises(ModelNotFoundError, match=r"no T5 tokenizer in .*tokenizer_2.*spiece\.model nor tokenizer\.json"):
        Flux().load(folder, vae=None, tokenizer=None)
