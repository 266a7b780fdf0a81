"""model.tokenizer naming a folder or hub id without a tokenizer's files: transformers 5 builds an empty tokenizer from
it, with no error, and the run died later with "OverflowError … this is a bug in dbtui"."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.models.parts import ModelNotFoundError, load_clip_tokenizer


def test_a_tokenizer_folder_without_its_files_is_refused_naming_them(tiny_sd1: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")  # a folder, but no tokenizer's
    with pytest.raises(ModelNotFoundError) as refused:
        load_clip_tokenizer(tiny_sd1, "tokenizer", str(tmp_path))
    said = str(refused.value)
    assert f"model.tokenizer '{tmp_path}' holds no CLIP tokenizer" in said
    assert "neither its tokenizer/ nor its top has vocab.json or tokenizer.json" in said


@pytest.mark.parametrize("layout", ["empty", "tokenizer repo", "model repo"])
def test_a_hub_tokenizer_loads_from_either_layout_and_one_without_files_is_refused(
        layout: str, tiny_sd1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.utils import filter_repo_objects

    repo = tmp_path / "repo"
    if layout == "tokenizer repo":
        shutil.copytree(tiny_sd1 / "tokenizer", repo)
    elif layout == "model repo":
        shutil.copytree(tiny_sd1, repo)
    else:
        repo.mkdir()
        (repo / "README.md").write_text("no tokenizer here")

    def fake_snapshot_download(repo_id: str, local_files_only: bool = False, **kwargs: Any) -> str:
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        snapshot = tmp_path / "snapshot"
        snapshot.mkdir(exist_ok=True)
        files = [str(f.relative_to(repo)) for f in repo.rglob("*") if f.is_file()]
        for name in filter_repo_objects(files, allow_patterns=kwargs["allow_patterns"]):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo / name, snapshot / name)
        return str(snapshot)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", lambda *args, **kwargs: None)  # the hub answers
    if layout == "empty":
        with pytest.raises(ModelNotFoundError, match="model.tokenizer 'someone/tokenizer' holds no CLIP tokenizer"):
            load_clip_tokenizer(tiny_sd1, "tokenizer", "someone/tokenizer")
        return
    own = load_clip_tokenizer(tiny_sd1, "tokenizer")
    assert load_clip_tokenizer(tiny_sd1, "tokenizer", "someone/tokenizer")("a dog").input_ids == own("a dog").input_ids
    assert not (tmp_path / "snapshot" / "unet").exists()  # the tokenizer's files only


def test_a_local_tokenizer_folder_without_its_files_is_listed_by_validate_and_refused_before_the_run(
        tiny_sd1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`dbtui validate` passed it, and the run refused it only at the load, after its run folder was made."""
    from dbtui.cli import main

    demo = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    runs = tmp_path / "runs"
    given = [str(demo), "--set", f'model.tokenizer="{empty}"', "--set", f'saving.output_dir="{runs}"']
    assert main(["validate", "--elsewhere", *given]) == 0  # what this machine lacks is a warning: the profile may be another's
    said = capsys.readouterr().out
    assert f"model.tokenizer '{empty}' holds no CLIP tokenizer: neither its tokenizer/ nor its top has vocab.json" in said
    assert main(["run", *given]) == 2
    assert f"model.tokenizer '{empty}' holds no CLIP tokenizer" in capsys.readouterr().err
    assert not runs.exists()
    for layout in (tmp_path / "model", tmp_path / "tokenizer"):  # a model's tokenizer/ part, a tokenizer's own folder
        shutil.copytree(tiny_sd1 / "tokenizer", layout / "tokenizer" if layout.name == "model" else layout)
        assert main(["validate", "--elsewhere", str(demo), "--set", f'model.tokenizer="{layout}"']) == 0
        assert "tokenizer" not in capsys.readouterr().out.replace("tiny-demo.toml", "")


def test_an_sd1_model_as_an_sdxl_runs_tokenizer_is_refused_before_the_run(tiny_sd1: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """SDXL reads tokenizer/ and tokenizer_2/ from model.tokenizer: an SD1 model (tokenizer/ alone) passed `validate`,
    whose check looked in tokenizer/ only, and the run refused it at the load of tokenizer_2/, its run folder made."""
    from dbtui.cli import main

    demo = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"
    model = tmp_path / "sd1"
    shutil.copytree(tiny_sd1 / "tokenizer", model / "tokenizer")
    runs = tmp_path / "runs"
    given = [str(demo), "--set", 'model.pretrained="builtin:tiny-sdxl"', "--set", f'model.tokenizer="{model}"',
             "--set", f'saving.output_dir="{runs}"']
    assert main(["validate", "--elsewhere", *given]) == 0
    assert f"model.tokenizer '{model}' holds no CLIP tokenizer: neither its tokenizer_2/ nor" in capsys.readouterr().out
    assert main(["run", *given]) == 2
    assert not runs.exists()
    shutil.copytree(tiny_sd1 / "tokenizer", model / "tokenizer_2")
    assert main(["validate", "--elsewhere", *given]) == 0
    assert "holds no CLIP tokenizer" not in capsys.readouterr().out


def test_the_wizard_reads_a_cached_hub_tokenizer_whose_files_are_at_its_top(tiny_sd1: Path, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's load reads a hub tokenizer's files at the repo's top; offline, the wizard's check said it was not in
    the Hugging Face cache, looking in tokenizer/ alone."""
    from engine.dataset.tokens import load_tokenizer

    repo = tmp_path / "models--someone--tok"
    shutil.copytree(tiny_sd1 / "tokenizer", repo / "snapshots" / "abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    own = load_clip_tokenizer(tiny_sd1, "tokenizer")
    assert load_tokenizer("someone/tok")("a dog").input_ids == own("a dog").input_ids
