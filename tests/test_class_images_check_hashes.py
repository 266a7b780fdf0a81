"""`dbtui dataset check --profile` and the wizard's Dataset check on a copy of the model whose class images several
concepts find: the model's weights hashed once for all of them, not once a concept (minutes for a model of gigabytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main
from engine.profile.io import save_profile
from engine.training import model_weights, weight_hashing
from tests.test_class_images_copied import _copied, _run
from tests.test_class_images_moved import _profile, _sets, made  # noqa: F401  (made: the fixture)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The places whose weights were hashed, in order."""
    places: list[Path] = []
    digest = weight_hashing.digest
    monkeypatch.setattr(model_weights, "digest", lambda source, *a, **k: places.append(source) or digest(source, *a, **k))
    return places


def _two_concepts_on_a_copy(tmp_path: Path, tiny_sd1: Path, shared: bool) -> tuple[Path, list[Path]]:
    """A profile on a `cp -r` copy of the model that made the class images of its two concepts, in one class folder
    (``shared``) or one each: (its file, the sets)."""
    _copied(tiny_sd1, tmp_path / "m0")
    (tmp_path / "a").mkdir()
    for place in [tmp_path / "a"] if shared else [tmp_path / "a", tmp_path]:
        _run(place, tmp_path / "m0")
    copy = _copied(tmp_path / "m0", tmp_path / "m1")
    profile = _profile(tmp_path / "a", copy, concepts=2)[0]
    if not shared:
        first = profile.concepts[0].model_copy(update={"class_dir": str(tmp_path / "class")})
        profile = profile.model_copy(update={"concepts": [first, profile.concepts[1]]})
    return save_profile(profile, tmp_path / "p.toml"), [*_sets(tmp_path), *_sets(tmp_path / "a")]


@pytest.mark.parametrize("shared", [True, False])
def test_the_cli_check_hashes_the_copied_model_once_for_every_concept(tmp_path: Path, tiny_sd1: Path, made: list[int],
                                                                       hashed: list[Path], shared: bool,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    profile, sets = _two_concepts_on_a_copy(tmp_path, tiny_sd1, shared)
    hashed.clear()
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert hashed == [tmp_path / "m1"]
    # Each concept's set named (its name may wrap: its hash alone), none to generate.
    assert out.count("2 generated earlier in") == 2 and out.count("0 to generate") == 2
    assert all(found.name.removeprefix("generated-") in out for found in sets) and len(sets) == (1 if shared else 2)


def test_the_wizards_checks_of_each_concept_hash_the_copied_model_once(tmp_path: Path, tiny_sd1: Path, made: list[int],
                                                                       hashed: list[Path]) -> None:
    from dbtui.engine_facade import RealEngine
    from engine.profile import load_profile

    profile = load_profile(_two_concepts_on_a_copy(tmp_path, tiny_sd1, shared=False)[0])
    hashed.clear()
    engine = RealEngine()
    reports = [engine.check_dataset(profile, index) for index in (0, 1, 0)]
    assert hashed == [tmp_path / "m1"]
    assert [report.summary.class_images_generated for report in reports] == [2, 2, 2]
