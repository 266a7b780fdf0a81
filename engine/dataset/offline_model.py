"""A hub id the run cannot get: not in the Hugging Face cache while HF_HUB_OFFLINE=1 forbids downloading it, or while
the hub does not answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.profile.model_source import model_kind
from engine.profile.problems import Problem


def hub_ids(model: Any) -> list[tuple[str, str, str | None]]:
    """(setting, hub id, revision) of each hub id ``model`` names: model.pretrained, model.vae, model.tokenizer (the
    revision is model.pretrained's alone)."""
    named = [("model.pretrained", model.pretrained, model.revision), ("model.vae", model.vae, None),
             ("model.tokenizer", model.tokenizer, None)]
    return [(key, source, revision) for key, source, revision in named if source and model_kind(source) == "hub"]


def offline_model_problems(model: Any, run_dir: Path | None = None) -> list[Problem]:
    """A hub id in ``model`` this machine has no copy of, offline: the run started, made its folder and failed at the
    load (model.tokenizer's, read by transformers as an empty tokenizer, with an OverflowError). Online, a hub id not
    cached is downloaded by the run (a network probe here could not tell a slow hub from none), so it is said only
    offline, the cache alone deciding, as the run's own lookup does: the files the run's load reads, not the configs
    alone a memory estimate downloads (run_files_cached). ``run_dir``: the folder the run trains in, whose own
    conversion of a single file is its base (_flux_file_problems)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from engine.support.hub_snapshot import hub_offline, offline_model_advice

    if not hub_offline():
        return []
    problems = []
    for key, source, revision in hub_ids(model):
        if run_files_cached(key, source, revision, pretrained=model.pretrained):
            continue
        try:
            validate_repo_id(source)
        except HFValidationError:
            continue  # a malformed id: model_source_problems says so
        problems.append(Problem(key, offline_model_advice(source, key)))
    return problems + _flux_file_problems(model.pretrained, run_dir)


def _flux_file_problems(source: str, run_dir: Path | None) -> list[Problem]:
    """A Flux transformer file whose components (its variant's hub repository) are not cached: the run's conversion
    of it fails as a hub id not cached would. A run that converted it already (``run_dir``) resumes on its own
    conversion (engine.models.loading.resolve_model_folder's run_base), which needs no hub."""
    path = Path(source).expanduser()
    if model_kind(source) != "single-file" or not path.is_file():
        return []
    from engine.models.loading import converted_folder, run_models

    if run_dir is not None and (converted_folder(path, run_models(run_dir)) / "model_index.json").is_file():
        return []
    from engine.convert.flux_file_components import missing_components

    missing = missing_components(path)
    return [Problem("model.pretrained", missing)] if missing else []


def unreachable_model_problems(model: Any) -> list[Problem]:
    """Online, a hub id in ``model`` not in the cache where the hub does not answer (no network, a firewall, a wrong
    HF_ENDPOINT), or answers it has no such repo this machine may read (a wrong id, a private or gated repo): the run
    made its folder, started the trainer and failed at the load, the latter told as a hub that cannot be reached. Asked
    of a run about to start only (the wizard's and validate's checks ask no network), with the run's own time limit
    (HF_HUB_ETAG_TIMEOUT), once: a hub silent for one id is not asked again for the next."""
    from engine.support.hub_snapshot import NOT_ON_HUB, hub_answer, hub_offline, not_on_hub_advice, unreachable_hub_advice

    if hub_offline():
        return []  # offline_model_problems' to say
    problems: list[Problem] = []
    silence = None
    for key, source, revision in hub_ids(model):
        if run_files_cached(key, source, revision, pretrained=model.pretrained):
            continue
        answer = silence or hub_answer(source, revision)
        if answer in NOT_ON_HUB:
            problems.append(Problem(key, not_on_hub_advice(source, key, answer)))
        elif answer:
            silence = answer
            problems.append(Problem(key, unreachable_hub_advice(source, key, answer)))
    return problems


def run_files_cached(key: str, source: str, revision: str | None, *, pretrained: str | None) -> bool:
    """Whether the Hugging Face cache holds the files the run's load of the hub id ``source`` (the setting ``key``)
    reads: its weights, not only the configs a memory estimate downloads (with those alone, the load downloads).
    ``pretrained``: model.pretrained, whose family says which tokenizers model.tokenizer's load reads."""
    from engine.model_info import likely_family
    from engine.models.folder_parts import READ_PARTS
    from engine.models.loading import HUB_SKIPPED, MODEL_FILES, VAE_FILES
    from engine.models.parts import clip_tokenizer_folders, holds_clip_tokenizer, tokenizer_hub_files
    from engine.support.hub_snapshot import cached_snapshot

    if key == "model.tokenizer":
        # The files each tokenizer's load downloads, and no others: with huggingface_hub's record of the repo's files,
        # */vocab.json asked of an SDXL repo for an SD1 run its tokenizer_2/ too, which that load never downloaded.
        def read(subfolder: str) -> bool:
            folder = cached_snapshot(source, None, tokenizer_hub_files(subfolder))
            return folder is not None and holds_clip_tokenizer(folder, subfolder)

        return all(map(read, clip_tokenizer_folders(likely_family(pretrained) if pretrained else "sd")))
    if key == "model.vae":
        folder = cached_snapshot(source, None, VAE_FILES, HUB_SKIPPED)
        configs = [name for name in VAE_FILES if name.endswith("config.json")]
        return folder is not None and any((folder / name).is_file() for name in configs) \
            and _weights_cached(source, None, folder, ("", "vae"))
    folder = cached_snapshot(source, revision, MODEL_FILES, HUB_SKIPPED)
    if folder is None or not (folder / "model_index.json").is_file():
        return False
    # Each part the run reads holds its weights (without huggingface_hub's record of the repo's files, a folder of
    # configs alone is returned as the repo's). Not a part it never reads: a safety_checker/ whose weights are a .bin
    # alone (never downloaded) left a whole cached model refused with the hub out of reach, though its load worked.
    return _weights_cached(source, revision, folder, READ_PARTS)


def _weights_cached(source: str, revision: str | None, folder: Path, parts: tuple[str, ...]) -> bool:
    """Whether each of ``parts`` whose config ``folder`` holds has its weights cached: its .safetensors, else the .bin
    the run's load downloads where the repo has none (bin_weight_patterns)."""
    import fnmatch

    from engine.models.loading import HUB_SKIPPED, bin_weight_patterns
    from engine.support.hub_snapshot import cached_snapshot

    lacking = bin_weight_patterns(folder, parts)
    if not lacking:
        return True
    cached = cached_snapshot(source, revision, lacking, HUB_SKIPPED)
    if cached is None:
        return False
    there = [str(weights.relative_to(cached)) for weights in cached.rglob("*.bin")]
    return all(fnmatch.filter(there, pattern) for pattern in lacking)
