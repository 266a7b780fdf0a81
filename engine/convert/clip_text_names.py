"""CLIPTextModel weights in the diffusers folders dbtui writes, under their published names.

transformers 5 flattened CLIPTextModel (no ``text_model`` submodule), so its ``save_pretrained`` writes
``embeddings.…`` where every published checkpoint and transformers 4 have ``text_model.embeddings.…``.
transformers 5 reads both; transformers 4 (kohya sd-scripts, older diffusers setups) finds none of the
flattened names and runs a randomly initialised text encoder, with only a warning. Every writer of a
diffusers folder calls it after saving, through ``older_readers.write_for_older_readers``. CLIPTextModelWithProjection (SDXL's
second encoder) still nests ``text_model`` and is left as it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PREFIX = "text_model."
FLATTENED = "CLIPTextModel"
INDEX = "model.safetensors.index.json"


def publish_clip_text_names(folder: Path) -> None:
    """Rename in place the flattened CLIPTextModel weights of ``folder``: a model folder or a pipeline's (its parts
    one level down). Files are replaced, never written into: a part may be hard-linked from another folder."""
    folder = Path(folder)
    for config in [folder / "config.json", *sorted(folder.glob("*/config.json"))]:
        if config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("architectures") == [FLATTENED]:
            _prefix_model(config.parent)


def _prefix_model(model_dir: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as file:
            if all(key.startswith(PREFIX) for key in file.keys()):
                continue  # published already: not read for nothing
            metadata = file.metadata()
            weights = {key: file.get_tensor(key) for key in file.keys()}
        renamed = {_published(key): value for key, value in weights.items()}
        del weights
        tmp = path.with_name(path.name + ".renaming")
        save_file(renamed, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    index = model_dir / INDEX
    if index.is_file():
        content = json.loads(index.read_text(encoding="utf-8"))
        content["weight_map"] = {_published(key): file for key, file in content["weight_map"].items()}
        tmp = index.with_name(index.name + ".renaming")
        tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, index)


def _published(key: str) -> str:
    return key if key.startswith(PREFIX) else PREFIX + key
