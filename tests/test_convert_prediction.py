"""What a converted model predicts (epsilon or v): detected from the file, never taken from a --config folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from convert_helpers import random_sd1, random_sd2v  # noqa: F401

from engine.convert import export_single_file, import_single_file


def _prediction(folder: Path) -> str:
    return json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["prediction_type"]


def _predicting(model: Path, folder: Path, prediction_type: str) -> Path:
    """A copy of ``model`` whose scheduler predicts ``prediction_type``."""
    shutil.copytree(model, folder)
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "prediction_type": prediction_type}))
    return folder


def test_a_config_folder_does_not_decide_what_the_file_predicts(random_sd2v: Path, tmp_path: Path) -> None:
    """An SD2.x-v file converted with an epsilon --config was said to be v and written as epsilon (and the reverse)."""
    v_file = export_single_file(random_sd2v, tmp_path / "v.safetensors")  # with its v .yaml
    epsilon_config = _predicting(random_sd2v, tmp_path / "epsilon-config", "epsilon")
    assert _prediction(import_single_file(v_file, tmp_path / "v", config=epsilon_config)) == "v_prediction"

    epsilon_file = export_single_file(epsilon_config, tmp_path / "e.safetensors")
    assert not (tmp_path / "e.yaml").exists()
    assert _prediction(import_single_file(epsilon_file, tmp_path / "e", config=random_sd2v)) == "epsilon"


def test_a_v_prediction_sd1_export_reads_back_as_v(random_sd1: Path, tmp_path: Path) -> None:
    """dbtui's own v-prediction SD1.x export (its metadata says so) came back as an epsilon model."""
    events = []
    for name in ("m.safetensors", "m.ckpt"):
        epsilon_config = _predicting(random_sd1, tmp_path / f"e-{name}", "epsilon")  # tiny: a config is needed
        exported = export_single_file(_predicting(random_sd1, tmp_path / f"v-{name}", "v_prediction"), tmp_path / name,
                                      fmt=name.split(".")[1], emit=events.append)
        folder = import_single_file(exported, tmp_path / f"back-{name}", config=epsilon_config, emit=events.append)
        assert _prediction(folder) == "v_prediction", name
    assert any("1.x, v-prediction" in getattr(event, "description", "") for event in events)


def test_a_guess_from_the_weights_is_said_and_prediction_type_settles_it(random_sd2v: Path, tmp_path: Path,
                                                                          capsys) -> None:
    """An SD2.x file that does not say what it predicts was guessed silently, and the guess could not be overridden."""
    from safetensors.torch import load_file, save_file

    from dbtui.cli import main
    from engine.convert import ConvertError
    from engine.events import PhaseStarted, Warning as WarningEvent

    export_single_file(random_sd2v, tmp_path / "m.safetensors")
    bare = tmp_path / "bare.safetensors"  # no .yaml beside it, no metadata
    save_file(load_file(tmp_path / "m.safetensors"), bare)
    events = []
    guessed = import_single_file(bare, tmp_path / "guessed", config=random_sd2v, emit=events.append)
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    # After its PhaseStarted: the Model step keeps it on screen; a warning before is a wait for another conversion's.
    assert isinstance(events[0], PhaseStarted)
    assert [w.message for w in warnings] == [f"bare.safetensors: {_prediction(guessed)} is a guess from its weights "
                                             "(SD2.x-base and SD2.x-v files look alike, and neither a same-named .yaml "
                                             "beside it nor its metadata says which it is)"]
    # Said by the wizard's import and training's own conversion too, which have no --prediction-type to add.
    assert f"dbtui convert to-diffusers {bare} OUT --prediction-type" in warnings[0].advice
    assert "train from OUT" in warnings[0].advice and "bare.yaml" in warnings[0].advice

    assert main(["convert", "to-diffusers", str(bare), str(tmp_path / "e"), "--config", str(random_sd2v),
                 "--prediction-type", "epsilon"]) == 0
    printed = capsys.readouterr().out
    assert "2.x base (512 px, epsilon)" in printed and "a guess" not in printed
    assert _prediction(tmp_path / "e") == "epsilon"
    events.clear()  # the user's word is over the file's too
    said = import_single_file(tmp_path / "m.safetensors", tmp_path / "said", config=random_sd2v,
                              prediction_type="epsilon", emit=events.append)
    assert _prediction(said) == "epsilon" and not [e for e in events if isinstance(e, WarningEvent)]
    with pytest.raises(ConvertError, match="unknown prediction type 'v'"):
        import_single_file(bare, tmp_path / "x", config=random_sd2v, prediction_type="v")


def test_prediction_type_applies_where_the_family_has_both() -> None:
    from engine.convert.detect import FLUX_DEV, SD1, SD1_INPAINT, SDXL, with_prediction

    assert with_prediction(SD1, "v_prediction").id == "sd1-v"
    assert with_prediction(SDXL, "v_prediction").id == "sdxl-v"
    assert with_prediction(SD1_INPAINT, "v_prediction") is None and with_prediction(FLUX_DEV, "epsilon") is None


def test_help_says_where_the_prediction_type_comes_from(capsys) -> None:
    from dbtui.cli import main

    with pytest.raises(SystemExit):
        main(["convert", "to-diffusers", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--prediction-type {epsilon,v_prediction}" in text and "a same-named .yaml beside the file" in text


def test_a_config_folder_that_predicts_otherwise_than_an_undecided_file_is_said(random_sd1: Path,  # noqa: F811
                                                                                 tmp_path: Path) -> None:
    """Nothing said what an SD1.x file predicts, and the --config folder's v_prediction was overridden silently."""
    from safetensors.torch import load_file, save_file

    from engine.events import Warning as WarningEvent

    bare = tmp_path / "bare.safetensors"  # no .yaml, no metadata: SD1.x's epsilon, by default
    save_file(load_file(export_single_file(random_sd1, tmp_path / "m.safetensors")), bare)
    events = []
    folder = import_single_file(bare, tmp_path / "out", config=_predicting(random_sd1, tmp_path / "v", "v_prediction"),
                                emit=events.append)
    assert _prediction(folder) == "epsilon"
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 1 and "--config folder's scheduler predicts v_prediction" in warnings[0].message
    assert warnings[0].advice == "if bare.safetensors predicts v_prediction, convert again with --prediction-type v_prediction"
    events.clear()  # the file's own word, or a folder that agrees, leaves nothing to say
    import_single_file(tmp_path / "m.safetensors", tmp_path / "said", config=tmp_path / "v", emit=events.append)
    import_single_file(bare, tmp_path / "agrees", config=random_sd1, emit=events.append)
    assert not [e for e in events if isinstance(e, WarningEvent)]
