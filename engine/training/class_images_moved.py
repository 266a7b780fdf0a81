"""Class images an earlier set holds though its settings differ from a run's only in what makes no other images: the
base model read from another place now or copied since (its folder moved or copied, a single file moved: the same
weights), a negative prompt the family does not read, or "" encoded where the model conditions on zeros now (as every
set was made before dbtui followed that). A set is named by all its settings, so such a run made every image again
beside it; it reuses the newest such set now, and tops it up alike. One search for any of these, alone or together."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.support.generated_set import DIGEST, MANIFEST, generated_folder, recorded_settings
from engine.support.json_file import read_json_object
from engine.training.class_images import (NEGATIVE_EMBEDS, ClassRequest, generated_earlier, newest_sets, record_digest,
                                          settings_of)
from engine.training.model_weights import WeightDigests, described_before_samples, model_settings, same_weights


def reused_sets(requests: list[ClassRequest], *, model: Any, any_negative: bool, weights: WeightDigests | None,
                **settings: Any) -> tuple[list[ClassRequest], list[str]]:
    """``requests``, each made into the request of the newest set reusable for it where none was made with its own
    settings (``settings_of``'s, ``model`` a ``model_identity``; ``any_negative``: the family reads no negative prompt;
    ``weights`` hash the model's files where their description alone does not tell); and a line saying each set
    reused for a model elsewhere, once."""
    reusing: list[ClassRequest] = []
    said: dict[Path, str] = {}
    for request in requests:
        found = _reusable(request, model, any_negative, weights, settings)
        reusing.append(request if found is None else found[1])
        if found is None or found[1].model_was is None or described_before_samples(found[1].model_was, model):
            continue  # its own set, as it was named before samples: nothing to tell
        gen_dir, reused = found
        said.setdefault(gen_dir.resolve(), f"concepts.{request.concept}.class_dir: the class images in '{gen_dir}' were "
                                           f"{_made_by(reused.model_was or {}, model)}: reused, not made again")
    return reusing, list(said.values())


def _made_by(was: dict[str, Any], model: dict[str, Any]) -> str:
    """Which model made a set reused for ``model`` (``model_identity``), as ``was`` records it, and how it is the same."""
    if was.get("pretrained") == model["pretrained"]:
        return (f"made by the base model at {model['pretrained']} before its weight files were written again with the "
                "same bytes (their content hashes agree)")
    how = "as they were" if was.get("files") == model["files"] else "byte for byte (their content hashes agree)"
    return f"made by the base model at {was.get('pretrained')}, whose weight files {model['pretrained']} holds {how}"


def _reusable(request: ClassRequest, model: Any, any_negative: bool, weights: WeightDigests | None,
              settings: dict[str, Any]) -> tuple[Path, ClassRequest] | None:
    wanted = settings_of(request, model=model, **settings)
    if not Path(request.folder).is_dir() or read_json_object(generated_folder(request.folder, wanted) / MANIFEST):
        return None
    for gen_dir, manifest in newest_sets(Path(request.folder)):
        recorded = recorded_settings(manifest)
        if generated_folder(request.folder, recorded) != gen_dir or not isinstance(recorded.get("negative_prompt"), str):
            continue  # not a set as dbtui names one: written or changed by hand
        reused = replace(request, negative_prompt=recorded["negative_prompt"], zero_negative=NEGATIVE_EMBEDS in recorded,
                         model_was=None if recorded.get("model") == model else recorded.get("model"))
        # Everything else as wanted: the set's folder is named by them.
        if settings_of(reused, model=model, **settings) != recorded or not _same_negative(reused, request, any_negative):
            continue
        if reused.model_was is None:
            return gen_dir, reused
        if not isinstance(model, dict) or not isinstance(reused.model_was, dict):
            continue
        if described_before_samples(reused.model_was, model) or (weights is not None and same_weights(
                reused.model_was, manifest.get(DIGEST), model, weights,
                lambda name, digest: record_digest(gen_dir, name, digest))):
            return gen_dir, reused
    return None


def _same_negative(reused: ClassRequest, request: ClassRequest, any_negative: bool) -> bool:
    """Whether the set's negative prompt makes the images the request's would: the same, one the family does not
    read, or "" encoded where the model conditions on zeros for none now."""
    if reused.zero_negative == request.zero_negative:
        return any_negative or reused.negative_prompt == request.negative_prompt
    return request.zero_negative and reused.negative_prompt == ""


def generated_earlier_elsewhere(folder: Path, known: dict[str, Any], model: Any,
                                here: tuple[dict[str, Any], WeightDigests] | None) -> tuple[Path | None, int]:
    """The set a run on the model ``model`` names would reuse (``reused_sets``) of those that agree with ``known`` (its
    "model" the profile's ``model_settings``): the newest made by the model's files as they are now, else the newest
    made by the weights they hold, read from elsewhere or with other file times (the same files, or ones whose content
    hashes alike). ``here``: ``weights_here(model)``, made once for every search on that model, which then hashes it once;
    None, a model not on this machine as a path (a hub id), is found by its settings alone."""
    if here is None or not isinstance(known.get("model"), dict):
        return generated_earlier(folder, known)
    identity, weights = here
    # Its files too: a model replaced in place has the settings of its old set, which a run does not reuse.
    found = generated_earlier(folder, {**known, "model": identity})
    if found[0] is not None:
        return found
    elsewhere = {name: value for name, value in model_settings(model).items() if name != "pretrained"}
    return generated_earlier(folder, {**known, "model": elsewhere}, also=lambda manifest: isinstance(
        manifest.get("model"), dict) and same_weights(manifest["model"], manifest.get(DIGEST), identity, weights))
