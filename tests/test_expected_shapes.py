"""The shipped configs' kept tensor shapes (engine/convert/expected.py SHAPES_FILE), which the checks before a run read
without torch, are those their configs build: a config or key map changed without `python3
scripts/write_original_shapes.py` would have validate call whole files incomplete, or pass incomplete ones."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from engine.convert.detect import CONFIGS
from engine.convert.expected import SHAPES_FILE, built_shapes, expected_shapes


@pytest.mark.parametrize("folder", sorted(path.name for path in CONFIGS.iterdir() if path.is_dir()))
def test_each_shipped_config_keeps_the_shapes_it_builds(folder: str) -> None:
    table = CONFIGS / folder / SHAPES_FILE
    assert table.is_file(), f"run python3 scripts/write_original_shapes.py: {table} is missing"
    kept = {key: tuple(shape) for key, shape in json.loads(gzip.decompress(table.read_bytes())).items()}
    assert expected_shapes(CONFIGS / folder) == kept  # what the checks read is the table
    assert kept == built_shapes(CONFIGS / folder), f"run python3 scripts/write_original_shapes.py: {table} is out of date"


def test_a_folder_without_a_table_is_built(tmp_path: Path) -> None:
    """A user's --config folder has no table: its shapes are built from its configs."""
    import shutil

    shutil.copytree(CONFIGS / "sd1", tmp_path / "mine", ignore=shutil.ignore_patterns(SHAPES_FILE))
    assert expected_shapes(tmp_path / "mine") == expected_shapes(CONFIGS / "sd1")
