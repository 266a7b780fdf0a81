"""A model's architecture for the meter: its family and how to build its parts from configs, with no weights.

From a diffusers folder's configs, a hub id's configs (a few JSON files, from the Hugging Face
cache or downloaded), a single file's detected family (the configs dbtui ships for conversion),
or builders of their own: the built-in random models, and Flux.1 (whose gated repositories the
meter does not ask). ``build`` is called under a ``FakeTensorMode``, so even Flux's 12 B
parameters take no memory.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import DbtuiError
from engine.models.family import Family


class ArchitectureUnavailableError(DbtuiError):
    """The model's configs cannot be found, so its memory cannot be estimated."""


class HubConfigsAbsentError(ArchitectureUnavailableError):
    """A hub id's configs are neither cached nor downloadable here (no word from the hub that it does not exist)."""


@dataclass
class Parts:
    unet: Any
    vae: Any
    text_encoders: list[Any]
    scheduler: Any


@dataclass(frozen=True)
class Architecture:
    label: str  # what the model is, for people
    family: Family
    build: Callable[[], Parts]
    note: str = ""  # what the estimate must say of it: a guessed architecture says so (engine/memory/absent_model.py)
    guessed: bool = False  # guessed from the name of a model not on this machine: the verdicts say so too


def _text_encoder(folder: Path) -> Any:
    """A text encoder of the class its config names (CLIPTextModel, CLIPTextModelWithProjection, …)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    kind = getattr(transformers, (config.architectures or ["CLIPTextModel"])[0])
    return kind(config)


def _diffusers_part(folder: Path, name: str) -> Any:
    """Part ``name`` of a diffusers folder, of the class its model_index.json names, built from its config."""
    import diffusers

    from engine.models.registry import read_model_index

    kind = getattr(diffusers, read_model_index(folder)[name][1])
    return kind.from_config(kind.load_config(folder, subfolder=name))


def _scheduler(folder: Path, family: Family) -> Any:
    """The training schedule as the family loads it: flow matching's own, or the folder's settings in a DDPMScheduler."""
    if family.id == "flux":
        from diffusers import FlowMatchEulerDiscreteScheduler

        return FlowMatchEulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler")
    from engine.models.parts import load_scheduler

    return load_scheduler(folder)


def _configs_there(folder: Path, parts: list[str]) -> None:
    """Refuse a partial copy of a model folder by the parts it lacks: diffusers' own error named no part."""
    wanted = [f"{part}/config.json" for part in parts] + ["scheduler/scheduler_config.json"]
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        raise ArchitectureUnavailableError(
            f"'{folder}' lacks {', '.join(missing)}, which its model_index.json lists: copy "
            f"{'that part' if len(missing) == 1 else 'those parts'} from where the model came from (a partial download "
            "or copy leaves parts out), or give a complete model folder or a hub id")


def _vae(folder: Path) -> Any:
    """The VAE of the config.json in ``folder``, an AutoencoderKL as the trainer's load_vae loads model.vae."""
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(AutoencoderKL.load_config(folder))


def _vae_for(folder: Path, denoiser: Any, family: Family) -> Any:
    """model.vae's VAE (config in ``folder``), refused where its latents are not what ``denoiser`` takes: a Flux model
    given an SD or SDXL VAE (4 channels, not 16) failed the estimate as a bug in dbtui, and would fail the run."""
    from engine.models.vae_fit import vae_misfit

    vae = _vae(folder)
    if misfit := vae_misfit(vae.config.latent_channels, denoiser, family, str(folder)):
        raise ArchitectureUnavailableError(misfit)
    return vae


def with_vae(arch: Architecture, vae: Path | None) -> Architecture:
    """``arch`` with the VAE of the config in ``vae`` (model.vae's, engine/memory/vae_source.py) in place of its own."""
    if vae is None:
        return arch
    own, family = arch.build, arch.family

    def build() -> Parts:
        parts = own()
        return dataclasses.replace(parts, vae=_vae_for(vae, parts.unet, family))

    return dataclasses.replace(arch, build=build)


def from_folder(folder: Path, label: str | None = None, *, vae: Path | None = None) -> Architecture:
    """The architecture a diffusers folder's configs describe (its weights are never read); ``vae``: the folder of
    model.vae's config, whose VAE replaces the folder's own (which need not be there then, as in training)."""
    from engine.models.registry import family_of

    folder = Path(folder)
    family = family_of(folder)

    def build() -> Parts:
        _configs_there(folder, [family.denoiser_name, *([] if vae else ["vae"]), *family.text_encoder_names])
        denoiser = _diffusers_part(folder, family.denoiser_name)  # a UNet, or Flux's transformer
        return Parts(
            unet=denoiser,
            vae=_vae_for(vae, denoiser, family) if vae else _diffusers_part(folder, "vae"),
            text_encoders=[_text_encoder(folder / name) for name in family.text_encoder_names],
            scheduler=_scheduler(folder, family),
        )

    return Architecture(label or f"{family.label} ({folder.name})", family, build)


def _sd15_random() -> Architecture:
    from engine.models.registry import family_named

    def build() -> Parts:
        import torch

        from engine.builtin.tiny_model import build_pipeline

        with torch.random.fork_rng():  # the builder seeds torch's global generator
            pipe = build_pipeline("sd15")
        return Parts(pipe.unet, pipe.vae, [pipe.text_encoder], pipe.scheduler)

    return Architecture("SD1.5 architecture (builtin:sd15-random)", family_named("sd"), build)


def _sdxl_random() -> Architecture:
    from engine.models.registry import family_named

    def build() -> Parts:
        from diffusers import DDPMScheduler

        from engine.builtin.clip_tokenizer import clip_tokenizer
        from engine.builtin.sdxl_random import build_models

        models = build_models(clip_tokenizer())
        return Parts(models["unet"], models["vae"], [models["text_encoder"], models["text_encoder_2"]], DDPMScheduler())

    return Architecture("SDXL base architecture (builtin:sdxl-random)", family_named("sdxl"), build)


def _flux(variant: str) -> Callable[[], Architecture]:
    def make() -> Architecture:
        from engine.memory.flux_architecture import flux_architecture

        return flux_architecture(variant)

    return make


# The real-size built-ins are built from their own builders: saving them first would write GBs.
# Flux.1's hub repositories are gated, so their configs are kept in engine/memory/flux_architecture.py.
BUILDERS: dict[str, Callable[[], Architecture]] = {
    "builtin:sd15-random": _sd15_random, "builtin:sdxl-random": _sdxl_random, "builtin:flux-random": _flux("dev"),
    "black-forest-labs/FLUX.1-dev": _flux("dev"), "black-forest-labs/FLUX.1-schnell": _flux("schnell"),
}


# Base models whose configs dbtui ships (engine/convert/configs), so a profile naming them is estimated offline.
KNOWN_HUB_CONFIGS = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "sd1", "runwayml/stable-diffusion-v1-5": "sd1",
    "CompVis/stable-diffusion-v1-4": "sd1", "stabilityai/stable-diffusion-2-1-base": "sd2",
    "stabilityai/stable-diffusion-2-1": "sd2-v", "stabilityai/stable-diffusion-xl-base-1.0": "sdxl",
}


def _hub_configs(name: str, revision: str | None) -> Path:
    from engine.support.hub_snapshot import (NOT_ON_HUB, HubUnavailable, download_command, hub_snapshot, not_on_hub_advice,
                                             relative_folder_hint)

    patterns = ["model_index.json", "*/config.json", "scheduler/scheduler_config.json"]
    try:
        return hub_snapshot(name, revision=revision, allow_patterns=patterns)
    except HubUnavailable as unavailable:  # not cached, offline, unknown id: the advice below covers each
        if unavailable.cause == "HFValidationError":  # "my models/sd15": a folder not here, no id to download
            raise ArchitectureUnavailableError(
                f"'{name}' is not on this machine, nor a hub id: give a diffusers folder, a .safetensors/.ckpt file, "
                f"or a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5.{relative_folder_hint(name)}") from None
        if unavailable.cause in NOT_ON_HUB:  # a download elsewhere is refused the same way: say why
            raise ArchitectureUnavailableError(not_on_hub_advice(name, "model.pretrained", unavailable.cause)) from None
    raise HubConfigsAbsentError(
        f"the configs of '{name}' are neither in the Hugging Face cache nor downloadable here; "
        f"download the model (`{download_command(name)}`) and give FOLDER instead.{relative_folder_hint(name)}"
    )


def _single_file(path: Path) -> Architecture:
    from engine.convert import checkpoint_family
    from engine.convert.checkpoint_header import header_checkpoint
    from engine.convert.to_diffusers import CONFIGS

    detected = checkpoint_family(header_checkpoint(path))  # an SD2.x-v file's .yaml says so: 768 px configs, not 512
    if not detected.supported:
        raise ArchitectureUnavailableError(f"{path.name}: {detected.description}")
    if detected.flux:
        # A Flux file holds the transformer alone: the whole model is FLUX.1's published one (flux_architecture.py).
        return _flux(detected.id.removeprefix("flux-"))()
    return from_folder(CONFIGS / detected.config_name, f"{detected.description} ({path.name})")


def architecture_of(source: str, revision: str | None = None, *, vae: Path | None = None) -> Architecture:
    """The architecture ``model.pretrained`` names: built-in, folder, single file or hub id; ``vae``: the folder of
    model.vae's config (engine/memory/vae_source.py), whose VAE replaces the model's own."""
    from engine.builtin import resolve_model
    from engine.profile.model_source import model_kind

    if source in BUILDERS:
        return with_vae(BUILDERS[source](), vae)
    kind = model_kind(source)
    if kind == "builtin":
        return from_folder(Path(resolve_model(source)), source, vae=vae)  # the small built-ins build in seconds
    from engine.dataset.profile_paths import is_on_no_machine, model_source_problems
    from engine.memory.absent_model import absent_architecture, is_absent

    # No machine has a web address or a Windows path: validate's words, not an estimate on the architecture its name
    # suggests.
    if is_on_no_machine(source) and (refused := model_source_problems(source)):
        raise ArchitectureUnavailableError(refused[0].message)
    if is_absent(source):  # a profile written for the machine to rent: estimated before the model is there
        return with_vae(absent_architecture(source), vae)
    if kind == "single-file":
        return with_vae(_single_file(Path(source).expanduser()), vae)
    if kind == "diffusers":
        folder = Path(source).expanduser()
        if not (folder / "model_index.json").is_file():
            raise ArchitectureUnavailableError(f"'{folder}' is not a diffusers model folder (no model_index.json)")
        return from_folder(folder, vae=vae)
    try:
        folder = _hub_configs(source, revision)
    except ArchitectureUnavailableError as unavailable:
        if source not in KNOWN_HUB_CONFIGS:
            from engine.memory.absent_model import guessed_family
            from engine.support.hub_snapshot import is_hub_id

            # "models/flux" reads as a hub id as well as a folder not here, "data/models/flux" as a folder only: guessed
            # from its name, as `dbtui hardware --profile` guesses it, where the hub did not say it has no such model.
            if (isinstance(unavailable, HubConfigsAbsentError) or not is_hub_id(source)) and guessed_family(source):
                return with_vae(absent_architecture(source, relative=True), vae)
            raise
        from engine.convert.to_diffusers import CONFIGS

        # Offline and not cached: the shipped profiles' base models have the same configs the converter keeps.
        return from_folder(CONFIGS / KNOWN_HUB_CONFIGS[source], f"{source} (its published architecture)", vae=vae)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    return from_folder(folder, f"{index.get('_class_name', 'model')} ({source})", vae=vae)
