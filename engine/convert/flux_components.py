"""The *components* of a Flux transformer file: a diffusers Flux folder or hub id whose parts go with it.

A transformer file holds the transformer alone. The VAE, CLIP-L and T5 come from the components unless
single files replace them (engine/convert/flux_part_files.py); the tokenizers, the scheduler and
``model_index.json`` always do. A hub id is read from the Hugging Face cache, else downloaded without its
transformer, and without the weights of the parts that files replace (their configs, a few KB, still
come: they describe the architecture the files are read into).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path

from engine.convert.errors import ConvertError
from engine.support.json_file import read_json_object

REPOSITORIES = {"flux-dev": "black-forest-labs/FLUX.1-dev", "flux-schnell": "black-forest-labs/FLUX.1-schnell"}
# What the components give, as people call each part.
PARTS = {
    "vae": "the VAE (vae/)",
    "text_encoder": "CLIP-L (text_encoder/)",
    "text_encoder_2": "T5 (text_encoder_2/)",
    "tokenizer": "CLIP-L's tokenizer (tokenizer/)",
    "tokenizer_2": "T5's tokenizer (tokenizer_2/)",
    "scheduler": "the scheduler (scheduler/)",
}
MODELS = ("vae", "text_encoder", "text_encoder_2")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
PART_FILE_OPTIONS = "--vae, --clip-l or --t5"


def needed_parts(replaced: Collection[str]) -> list[str]:
    """The components' subfolders still needed when the parts in ``replaced`` (subfolders) come from files."""
    return [part for part in PARTS if part not in replaced]


def download_patterns(replaced: Collection[str]) -> list[str]:
    """What to fetch of a hub repository: all but the transformer's weights and the replaced parts' weights."""
    return ["model_index.json", "transformer/config.json",
            *(f"{part}/config.json" if part in replaced else f"{part}/*" for part in PARTS)]


def _needs_in_words(parts: list[str]) -> str:
    models = [PARTS[p].split(" (")[0] for p in parts if p in MODELS]
    return ", ".join(models + ["the tokenizers and the scheduler"] if models else ["the tokenizers and the scheduler (a few MB)"])


def _is_component(folder: Path, part: str) -> bool:
    """Whether ``folder/part`` holds what that part needs: a config and weights, or tokenizer or scheduler files."""
    sub = folder / part
    if part in MODELS:
        return (sub / "config.json").is_file() and any(f.name.endswith(WEIGHT_SUFFIXES) for f in sub.iterdir())
    if part == "scheduler":
        return (sub / "scheduler_config.json").is_file()
    return sub.is_dir() and any(sub.iterdir())


def check_components(folder: Path, source: str, parts: list[str]) -> None:
    """Raise, naming every missing one, unless ``folder`` is a diffusers Flux folder with ``parts``."""
    index = read_json_object(folder / "model_index.json")
    missing = [] if index.get("_class_name") == "FluxPipeline" else ["model_index.json naming FluxPipeline"]
    missing += [PARTS[part] for part in parts if not _is_component(folder, part)]
    if missing:
        files = (f", or give the missing VAE, CLIP-L or T5 as a file ({PART_FILE_OPTIONS})"
                 if any(part in MODELS and not _is_component(folder, part) for part in parts) else "")
        raise ConvertError(
            f"the components {source} lack {', '.join(missing)}. A Flux transformer file needs them from a diffusers "
            f"Flux folder or hub id: give --components with one that has them (e.g. {REPOSITORIES['flux-dev']}){files}"
        )


def resolve_components(components: str | Path, variant: str, replaced: Collection[str] = ()) -> Path:
    """A local folder for ``components``: the folder itself, or a hub repository (cached, else downloaded
    without its transformer and the weights of the ``replaced`` parts), or a ``builtin:`` model's, built on first use
    as a profile's would be; ``variant`` is "[dev]" or "[schnell]"."""
    from engine.builtin import resolve_model

    path = Path(resolve_model(str(components))).expanduser()
    if path.is_dir():
        return path
    repo = str(components)
    if path.exists() or repo.count("/") != 1:
        raise ConvertError(f"components '{components}' is neither a folder nor a hub id (owner/name): give a diffusers "
                           "Flux folder or hub id")
    from engine.support.hub_snapshot import LOGIN_COMMAND, HubUnavailable, hub_snapshot

    try:
        return hub_snapshot(repo, allow_patterns=download_patterns(replaced))
    except HubUnavailable as unavailable:
        cause = unavailable.cause
    needed = needed_parts(replaced)
    needs = _needs_in_words(needed)
    # In Black Forest Labs' repositories every weight file is a part's (or a whole model's, at the top), and each a
    # .safetensors: with every model part from files, what remains is a few MB. One --exclude, as `hf` reads a repeated
    # --include differently across huggingface_hub's versions. Another repository may hold .bin or other weights,
    # which that --exclude would download: its few MB are named instead.
    small = not set(needed) & set(MODELS)
    fetch = (f"run `hf download {repo} --exclude '*.safetensors' --local-dir FOLDER` where there is internet (the "
             "configs, tokenizers and scheduler: a few MB)" if small and repo in REPOSITORIES.values() else
             f"download, where there is internet, {repo}'s model_index.json, tokenizer/, tokenizer_2/, scheduler/ and "
             "each part's config.json into a FOLDER of the same layout (a few MB; no weight file is needed)" if small
             else f"download {repo} where there is internet (its transformer/ is not needed)")
    advice = (f"{fetch}, copy the folder here, convert with `dbtui convert to-diffusers FILE OUT --components FOLDER` "
              "and train from OUT")
    if cause == "offline":
        raise ConvertError(f"{needs} for this Flux.1 {variant} transformer come from {repo}, which is not in the Hugging "
                           f"Face cache, and HF_HUB_OFFLINE=1 forbids downloading it; {advice}")
    if cause == "GatedRepoError":
        raise ConvertError(f"{repo} is gated: accept its licence on https://huggingface.co/{repo} and log in "
                           f"(`{LOGIN_COMMAND}`), then run this again; or {advice}")
    raise ConvertError(f"{needs} for this transformer come from {repo}, which could not be downloaded ({cause}); {advice}")


def transformer_base_config(folder: Path) -> dict:
    """The components' transformer config (its rotary axes and variant), or {} when they have none."""
    return read_json_object(folder / "transformer" / "config.json")


def _link_or_copy(source: str, target: str) -> None:
    """A hard link where the file system allows one (T5 alone is 9.5 GB), else a copy. Only to one's own
    files: the output's files get the usual permissions (engine/convert/_files.py), and a link shares them.
    Like the Hugging Face cache's links, a linked file must be replaced, never written into."""
    real = os.path.realpath(source)
    if hasattr(os, "geteuid") and os.stat(real).st_uid == os.geteuid():
        try:
            os.link(real, target)
            return
        except OSError:  # another disk, or a file system without links
            pass
    shutil.copy2(source, target)


def copy_bytes(folder: Path, parts: list[str], out_parent: Path) -> int:
    """What copying ``parts`` of the components takes on the output's disk: nothing where they can be hard-linked."""
    total = sum(f.stat().st_size for part in parts for f in (folder / part).rglob("*") if f.is_file())
    same_disk = os.stat(folder.resolve()).st_dev == os.stat(out_parent).st_dev
    return 0 if same_disk else total


def copy_components(folder: Path, parts: list[str], out: Path) -> None:
    """``parts`` of the components and their model_index.json into the output folder ``out``."""
    for part in parts:
        shutil.copytree(folder / part, out / part, copy_function=_link_or_copy)
    shutil.copyfile(folder / "model_index.json", out / "model_index.json")
