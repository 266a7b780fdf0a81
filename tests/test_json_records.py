"""The small JSON records beside files (manifests, configs) read as "never written" when damaged, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.convert.errors import ConvertError
from engine.convert.flux_components import check_components
from engine.support.json_file import read_json_object
from engine.training.class_images import MANIFEST, ClassRequest, existing_class_images, generated_folder


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", "\udcff", "null"])
def test_a_damaged_record_reads_as_empty(tmp_path: Path, text: str) -> None:
    (tmp_path / "r.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    assert read_json_object(tmp_path / "r.json") == {}
    assert read_json_object(tmp_path / "missing.json") == {}
    (tmp_path / "ok.json").write_text('{"a": 1}')
    assert read_json_object(tmp_path / "ok.json") == {"a": 1}


def test_a_class_manifest_holding_a_list_is_taken_as_no_generated_images(tmp_path: Path) -> None:
    request = ClassRequest(0, tmp_path / "class", "a dog", "", 2)
    folder = generated_folder(request.folder, {"k": 1})
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text('["0.png"]')
    assert existing_class_images(request, {"k": 1}) == ([], [])


def test_a_flux_model_index_holding_a_list_is_said_missing(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text("[]")
    with pytest.raises(ConvertError, match="model_index.json naming FluxPipeline"):
        check_components(tmp_path, "comps", [])
