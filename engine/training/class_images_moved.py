"""Class images made by a base model that is read from another place now: its folder moved (or copied keeping its
files' times), the same model. A set is named by the settings that made it, the model's path among them, so a run
naming the new place made every image again beside the set it had; it reuses that set now, and tops it up alike."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.training.class_images import (ClassRequest, generated_earlier, model_identity, newest_set_but_one_setting,
                                          settings_of)


def moved_model_sets(requests: list[ClassRequest], *, model: Any, **settings: Any) -> tuple[list[ClassRequest], list[str]]:
    """``requests``, each reusing the set made by the same model at another path where none was made with its own
    settings (``settings_of``'s, ``model`` a ``model_identity``); and a line saying each set so reused, once."""
    reusing: list[ClassRequest] = []
    said: dict[Path, str] = {}
    for request in requests:
        found = _made_elsewhere(request, settings_of(request, model=model, **settings)) if isinstance(model, dict) else None
        if found is None:
            reusing.append(request)
            continue
        gen_dir, was = found
        reusing.append(replace(request, model_was=was))
        said.setdefault(gen_dir.resolve(), f"concepts.{request.concept}.class_dir: the class images in '{gen_dir}' were "
                                           f"made by the base model at {was}, whose weight files {model['pretrained']} "
                                           "holds as they were: reused, not made again")
    return reusing, list(said.values())


def _made_elsewhere(request: ClassRequest, settings: dict[str, Any]) -> tuple[Path, str] | None:
    """(the newest set in ``request``'s class folder made with ``settings`` but the model at another path, that path).
    Its folder's name, the hash of all its settings, holds the model's weight files (names, sizes, times): another
    model at any path has other files."""
    return newest_set_but_one_setting(Path(request.folder), settings, _pretrained_of,
                                      lambda was: {**settings, "model": {**settings["model"], "pretrained": was}})


def _pretrained_of(manifest: dict[str, Any]) -> str | None:
    recorded = manifest.get("model")
    was = recorded.get("pretrained") if isinstance(recorded, dict) else None
    return was if isinstance(was, str) else None


def generated_earlier_elsewhere(folder: Path, known: dict[str, Any], model: Any) -> tuple[Path | None, int]:
    """``generated_earlier``'s set, or where none agrees with ``known`` (its "model" the profile's ``model_settings``), the
    one that does but for the model's path, made by the weight files the folder ``model`` names holds now: the set a
    run reuses (``moved_model_sets``)."""
    found = generated_earlier(folder, known)
    place = Path(model.pretrained).expanduser()
    if found[0] is not None or not isinstance(known.get("model"), dict) or not place.is_dir():
        return found
    elsewhere = {name: value for name, value in known["model"].items() if name != "pretrained"}
    return generated_earlier(folder, {**known, "model": {**elsewhere, "files": model_identity(model, place)["files"]}})
