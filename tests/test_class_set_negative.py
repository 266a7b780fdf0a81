"""Flux reads no negative prompt: a run gives "" for it (class_generation.run_class_images), so two concepts sharing a
class folder and class prompt that differ only in class_negative_prompt are one set, made once to the most either wants.
class_sharers counted them apart: `dbtui dataset check --profile` said '4 to generate' and '6 to generate'."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.dataset.profile_settings import class_sharers, shared_class_set
from engine.profile import load_profile


def _profile(tmp_path: Path, model: str, negatives: tuple[str, str]) -> Path:
    concepts = ""
    for index, (name, negative, count) in enumerate(zip(("dog", "cat"), negatives, (4, 6), strict=True)):
        (tmp_path / name).mkdir()
        concepts += (f'[[concepts]]\ninstance_dir = "{tmp_path / name}"\ninstance_prompt = "photo of zwx{index} {name}"\n'
                     f'class_dir = "{tmp_path / "class"}"\nclass_prompt = "photo of an animal"\n'
                     f'class_negative_prompt = "{negative}"\nnum_class_images = {count}\n')
    path = tmp_path / "p.toml"
    path.write_text(f'[model]\npretrained = "builtin:{model}"\n{concepts}[prior]\nenabled = true\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(("model", "negatives", "shared"), [
    ("tiny-flux", ("blurry", "ugly"), True),  # read by none: one set
    ("tiny-sd1", ("blurry", "ugly"), False),  # read: two sets, each made as its concept wants
    ("tiny-sd1", ("blurry", "blurry"), True),
])
def test_a_negative_prompt_the_family_does_not_read_makes_no_set_of_its_own(tmp_path: Path, request, model: str,
                                                                            negatives: tuple[str, str],
                                                                            shared: bool) -> None:
    request.getfixturevalue(model.replace("-", "_"))  # built in the test's own cache
    profile = load_profile(_profile(tmp_path, model, negatives))
    assert [class_sharers(profile, index) for index in (0, 1)] == [(0, 1) if shared else ()] * 2
    assert shared_class_set(profile, 0) == (((0, 1), 6) if shared else None)


def test_a_flux_hub_model_in_the_cache_is_told_by_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FLUX.1-dev as most users name it, downloaded by an earlier run: describe_model leaves a hub id's family to the
    run, so the check counted the two negatives as two sets (4 and 6 to generate) where the run makes one of 6."""
    from huggingface_hub import constants

    commit = "0" * 40
    snapshot = tmp_path / "hub" / "models--someone--flux-model" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text('{"_class_name": "FluxPipeline"}', encoding="utf-8")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(commit, encoding="utf-8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _profile(tmp_path, "tiny-flux", ("blurry", "ugly"))
    path.write_text(path.read_text(encoding="utf-8").replace("builtin:tiny-flux", "someone/flux-model"), encoding="utf-8")
    assert shared_class_set(load_profile(path), 0) == ((0, 1), 6)
