"""The size a model was made for, as the model step shows it and a new profile takes it: read from its configs
(a Flux folder's VAE, as its transformer says none), and for a full-size built-in without building it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.model_info import describe_model, native_size, size_multiple


def test_a_tiny_flux_is_made_for_64_px_and_a_new_profile_trains_at_that_size(tiny_flux: Path) -> None:
    described = describe_model("builtin:tiny-flux")
    assert (described.family_id, described.resolution) == ("flux", 64)
    session = Session()
    session.set("dataset.resolution", 1024)  # taken from an SDXL checked before
    session.adopted_resolution = 1024
    session.set("model.pretrained", "builtin:tiny-flux")
    session.adopt_model(RealEngine().inspect_model("builtin:tiny-flux"))
    assert session.get("dataset.resolution") == 64


def test_a_flux_folder_whose_vae_says_no_size_is_made_for_fluxs_own(tiny_flux: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flux"
    shutil.copytree(tiny_flux, folder)  # whole: a folder without its weights is refused as a partial download
    config = folder / "vae" / "config.json"
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "sample_size"}))
    assert describe_model(str(folder)).resolution == 1024


def test_the_unet_families_keep_their_size_from_the_unet(tiny_sdxl: Path) -> None:
    assert describe_model("builtin:tiny-sdxl").resolution == 64


@pytest.mark.parametrize(("name", "family", "size"), [("builtin:flux-random", "flux", 1024),
                                                     ("builtin:sdxl-random", "sdxl", 1024),
                                                     ("builtin:sd15-random", "sd", 512),
                                                     ("builtin:medium-sd1", "sd", 256)])
def test_a_full_size_builtin_is_described_without_building_it(name: str, family: str, size: int, monkeypatch) -> None:
    """Checking builtin:flux-random in the model step built the 34 GB Flux, and a 24 GB machine killed it."""
    import engine.builtin

    def no_build(*args, **kwargs):
        raise AssertionError("built a full-size model to describe it")

    monkeypatch.setattr(engine.builtin, "_build_model", no_build)
    monkeypatch.setattr(engine.builtin, "resolve_model", no_build)
    described = describe_model(name)
    assert (described.family_id, described.resolution, described.supported) == (family, size, True)
    assert native_size(name) == size  # what validate's size warning reads
    assert not engine.builtin.built(name)


@pytest.mark.parametrize("name", ["tiny-sd1", "tiny-sd1-random", "tiny-sd2v", "tiny-sdxl", "tiny-flux"])
def test_a_tiny_builtins_known_sizes_are_what_its_built_configs_say(name: str, _isolated_cache: Path) -> None:
    """The checks of a profile take a tiny built-in's sizes from engine.builtin.TINY_SIZES, not from its folder."""
    from engine.builtin import MODELS, TINY_SIZES, resolve_model
    from engine.models.loading import native_resolution

    assert set(TINY_SIZES) == {key for key, (size, _, _) in MODELS.items() if size == "tiny"}
    folder = resolve_model(f"builtin:{name}")
    assert TINY_SIZES[name] == (native_resolution(Path(folder)), size_multiple(folder))
    assert (native_size(f"builtin:{name}"), size_multiple(f"builtin:{name}")) == TINY_SIZES[name]
    # A folder of that name (not on this machine) is no built-in: it is judged as "./name" is, not by the table.
    assert (native_size(name), size_multiple(name)) == (None, size_multiple(f"./{name}"))


def test_checking_a_profile_on_a_tiny_builtin_builds_nothing(tmp_path: Path, monkeypatch) -> None:
    """The wizard checks the draft on its UI thread at each keystroke: its first check of the demo's draft with an
    empty cache built builtin:tiny-sd1 there, and the wizard froze for seconds (30 under load)."""
    import engine.builtin
    from engine.profile import validate_data
    from engine.profile_checks import check_profile

    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path / "empty cache"))
    monkeypatch.setattr(engine.builtin, "_build_model", lambda *args: pytest.fail("built a model to check a profile"))
    profile = validate_data({"schema_version": 1, "model": {"pretrained": "builtin:tiny-sd1"}, "dataset": {"resolution": 256},
                             "concepts": [{"instance_dir": str(tmp_path), "instance_prompt": "photo of zwx disc"}]})
    errors, _, warnings = check_profile(profile, None, [])
    assert not errors
    assert [p.message for p in warnings if p.key == "dataset.resolution"] == [
        "256 px is 4× the 64 px this model was made for: each step costs far more memory and time, and its images may "
        "repeat parts of the subject; train at 64 px, or near it"]
    assert not (tmp_path / "empty cache" / "models").exists()


def test_a_misspelt_builtin_is_said_with_the_builtins_there_are() -> None:
    """A bare KeyError came first, which the model step showed as "✗ 'tiny-sdd'"."""
    from engine.builtin import UnknownBuiltinError

    with pytest.raises(UnknownBuiltinError, match="unknown built-in model 'builtin:tiny-sdd'; choose one of: .*builtin:tiny-sd"):
        describe_model("builtin:tiny-sdd")


def test_every_builtin_the_readme_names_is_one_there_is() -> None:
    """348a54e removed builtin:tiny-sd1-random, which the README names: a profile that `dbtui validate` passed
    became 'unknown built-in model'. A name the README gives users is one they may have written in a profile."""
    import re

    from engine.builtin import DATASETS, MODELS, SCORERS

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"builtin:([a-z0-9][a-z0-9-]*)", readme))
    assert "tiny-sd1-random" in named and named <= {*MODELS, *DATASETS, *SCORERS}, named - {*MODELS, *DATASETS, *SCORERS}
