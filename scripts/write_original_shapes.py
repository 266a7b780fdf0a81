"""Write each shipped conversion config's original-layout tensor shapes (engine/convert/expected.py SHAPES_FILE), which
the checks before a run compare a single file's header with. Run after changing a config or the key map:
`python3 scripts/write_original_shapes.py`; tests/test_expected_shapes.py fails while one is out of date."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.convert.expected import SHAPES_FILE, built_shapes  # noqa: E402
from engine.convert.to_diffusers import CONFIGS  # noqa: E402


def shapes_table(config_dir: Path) -> bytes:
    """``built_shapes(config_dir)`` as SHAPES_FILE holds it; mtime 0, so that an unchanged table writes the same bytes."""
    shapes = {key: list(shape) for key, shape in built_shapes(config_dir).items()}
    return gzip.compress(json.dumps(shapes, separators=(",", ":")).encode(), mtime=0)


if __name__ == "__main__":
    for folder in sorted(path for path in CONFIGS.iterdir() if path.is_dir()):
        (folder / SHAPES_FILE).write_bytes(shapes_table(folder))
        print(folder / SHAPES_FILE)
