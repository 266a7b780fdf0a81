"""The scorer models (CLIP, DINO): loaded for one round, then released, so training keeps the memory."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import DbtuiError

OFFLINE_ADVICE = (
    "run once with network access so the scorer is kept in the Hugging Face cache, or set "
    "evaluation.clip_model / evaluation.dino_model to local folders (builtin:tiny-clip and builtin:tiny-dino "
    "need no download), or set evaluation.enabled = false"
)


def offline_advice(name: str) -> str:
    """What to do about the scorer ``name``, neither cached nor downloadable now: with HF_HUB_OFFLINE set, a run with
    network access downloads nothing either, so the command that does (as ``validate`` says it)."""
    from engine.evaluation.prompt_problems import scorer_download_advice
    from engine.support.hub_snapshot import hub_offline

    if not hub_offline():
        return OFFLINE_ADVICE
    # The keys a folder is given in, as OFFLINE_ADVICE names them: "give a folder of it" said not where.
    return (f"HF_HUB_OFFLINE forbids downloading it: {scorer_download_advice(name)}, named in evaluation.clip_model / "
            "evaluation.dino_model (builtin:tiny-clip and builtin:tiny-dino need no download); or set "
            "evaluation.enabled = false")


class ScorersUnavailableError(DbtuiError):
    """A scorer model could not be loaded (offline and not cached, a wrong folder): scoring is skipped."""

    def __init__(self, message: str, advice: str = OFFLINE_ADVICE):
        super().__init__(message)
        self.advice = advice


@functools.lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    """Whether the hub's host answers within seconds. Checked by hand because the hub client retries
    an unreachable host for about a minute per file before it gives up; the run should not wait."""
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    from engine.support.hub_snapshot import hub_offline

    if hub_offline():
        return False
    url = urlsplit(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)), timeout=3):
            return True
    except OSError:
        return False


def _load(loader: Any, name: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` from the cache first (no network wait when it is there), then the hub."""
    from engine.builtin import resolve_scorer
    from engine.evaluation.prompt_problems import missing_scorer_folder

    missing = missing_scorer_folder(name)
    if missing:
        raise ScorersUnavailableError(f"cannot load the scorer '{name}': {missing}",
                                      advice="name a transformers CLIP or DINO model folder, or a hub id")
    source = os.path.expanduser(resolve_scorer(name))  # from_pretrained would take '~/models/clip' for a hub id
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except _damaged_weights() as error:
        # It escaped as a bug of dbtui and failed the run: a scorer that cannot be loaded only skips scoring.
        raise _unreadable_weights(name, error) from error
    except (OSError, ValueError) as cached_error:
        if os.path.isdir(source):
            raise ScorersUnavailableError(f"cannot load the scorer '{name}': the folder holds no usable model ({cached_error})",
                                          advice="name a transformers CLIP or DINO model folder, or a hub id") from cached_error
        if not _hub_reachable():
            raise ScorersUnavailableError(f"cannot load the scorer '{name}': offline, and not in the Hugging Face cache",
                                          offline_advice(name)) from cached_error
    try:
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        raise ScorersUnavailableError(f"cannot load the scorer '{name}' (offline and not cached?): {error}") from error


def _damaged_weights() -> tuple[type[BaseException], ...]:
    """What reading a weights file cut short raises: safetensors' own error, torch.load's for a .bin, pickle's."""
    import pickle

    from safetensors import SafetensorError

    return SafetensorError, RuntimeError, EOFError, pickle.UnpicklingError


def _unreadable_weights(name: str, error: BaseException) -> ScorersUnavailableError:
    """The scorer's weights read but do not fit its config.json (an edited config, another model's weights), or
    cannot be read at all: each sends the user after the file at fault."""
    text = str(error)
    if isinstance(error, RuntimeError) and ("size mismatch" in text or "ignore_mismatched_sizes" in text):
        # transformers' own text offers a from_pretrained argument the user cannot pass; its lines name the sizes.
        sizes = [line.strip() for line in text.splitlines() if line.strip().startswith("size mismatch")]
        return ScorersUnavailableError(
            f"cannot load the scorer '{name}': its config.json does not fit its weights (the sizes it gives differ "
            f"from those the weights were saved with{': ' + '; '.join(sizes) if sizes else ''})",
            advice="put back the config.json that came with these weights (copy or download the scorer again), "
                   "or name another model folder or hub id")
    return ScorersUnavailableError(f"cannot load the scorer '{name}': its weights cannot be read, damaged or cut short "
                                   f"({error})", advice="download or copy the scorer again, or name another model "
                                   "folder or hub id")


# The DINO model types whose model's last_hidden_state[:, 0] is the CLS token after the final layer norm.
DINO_CLASSES = {"vit": "ViTModel", "dinov2": "Dinov2Model", "dinov2_with_registers": "Dinov2WithRegistersModel"}


# The profile's setting of each scorer, the model types it takes, and what it should name instead.
CLIP = ("evaluation.clip_model", {"clip": "CLIPModel"}, "a CLIP model (openai/clip-vit-base-patch32, builtin:tiny-clip)")
DINO = ("evaluation.dino_model", DINO_CLASSES, "a DINO model (facebook/dino-vits16, facebook/dinov2-small, builtin:tiny-dino)")


def _model_class(name: str, setting: str, classes: dict[str, str], wanted: str) -> tuple[Any, dict[str, Any]]:
    """The transformers class that loads the scorer ``name`` (the profile's ``setting``) and its arguments, from its
    config alone; refused when the config is of another kind of model.

    transformers loads a checkpoint of another kind (a CLIP folder as a ViT) with random weights and only
    a log line: the best step would then be chosen from noise, so the model type is checked first.
    """
    import transformers

    model_type = getattr(_load(transformers.AutoConfig, name), "model_type", None)
    if model_type not in classes:
        raise ScorersUnavailableError(
            f"cannot use '{name}' as {setting}: it is a {model_type or 'unknown'} model, not one of "
            f"{', '.join(sorted(classes))}", advice=_advice(setting, wanted))
    # ViT's pooling head is untrained in DINO checkpoints; the score reads the CLS token instead.
    kwargs = {"add_pooling_layer": False} if model_type == "vit" else {}
    return getattr(transformers, classes[model_type]), kwargs


def _advice(setting: str, wanted: str) -> str:
    return f"set {setting} to {wanted}, or set evaluation.enabled = false"


def _load_model(name: str, setting: str, classes: dict[str, str], wanted: str) -> Any:
    """The scorer model ``name``, refused unless every weight is in the checkpoint (any left unset is random)."""
    model_class, kwargs = _model_class(name, setting, classes, wanted)
    model, info = _load(model_class, name, output_loading_info=True, **kwargs)
    if info["missing_keys"]:
        raise ScorersUnavailableError(
            f"cannot use '{name}' as {setting}: its checkpoint lacks {len(info['missing_keys'])} of the model's weights "
            f"(e.g. {sorted(info['missing_keys'])[0]})", advice=_advice(setting, wanted))
    return model


# The files from_pretrained reads a PyTorch model's weights from (one file, or an index of shards).
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def _check_weights(name: str) -> None:
    """Raises ScorersUnavailableError where the scorer ``name``'s weights are neither there nor to be downloaded: its
    config, tokenizer and processors can be cached without them (a download cut short). Only whether a file exists."""
    from huggingface_hub import try_to_load_from_cache

    from engine.builtin import resolve_scorer

    source = os.path.expanduser(resolve_scorer(name))
    if os.path.isdir(source):
        if not any(os.path.isfile(os.path.join(source, weights)) for weights in WEIGHTS):
            raise ScorersUnavailableError(f"cannot load the scorer '{name}': the folder holds no model weights (none of "
                                          f"{', '.join(WEIGHTS)})", advice="name a transformers CLIP or DINO model folder, or a hub id")
        return
    try:
        cached = any(isinstance(try_to_load_from_cache(source, weights), str) for weights in WEIGHTS)
    except ValueError:  # not a hub id; its config loaded, so from_pretrained reads it otherwise and will say so
        return
    if not cached and not _hub_reachable():
        raise ScorersUnavailableError(f"cannot load the scorer '{name}': offline, and its weights are not in the Hugging Face "
                                      "cache (its other files are)", offline_advice(name))


@dataclass(frozen=True)
class SmallParts:
    """The scorers' tokenizer and image processors, as ``check_scorers`` read them."""

    clip_tokenizer: Any
    clip_images: Any
    dino_images: Any


def check_scorers(clip_model: str, dino_model: str) -> SmallParts:
    """Raises ScorersUnavailableError where ``loaded_scorers`` would for want of the scorers' files (a folder that is not
    there, offline and not cached, weights missing) or for a model of the wrong kind, reading their small files only
    and whether their weights are there (``_check_weights``). A round generates its images before it scores them:
    minutes of SDXL or Flux work that a scorer failing then wasted, and for the base round, the record that it was
    scored. Returns what it read, for the round's ``loaded_scorers``: CLIP's tokenizer alone took 0.6 s to read."""
    from transformers import AutoImageProcessor

    _model_class(clip_model, *CLIP)
    _model_class(dino_model, *DINO)
    _check_weights(clip_model)
    _check_weights(dino_model)
    return SmallParts(clip_tokenizer=_clip_tokenizer(clip_model), clip_images=_load(AutoImageProcessor, clip_model),
                      dino_images=_load(AutoImageProcessor, dino_model))


def _clip_tokenizer(name: str) -> Any:
    """CLIP's tokenizer, read once a process while its files stay as they are: transformers parses a tokenizer.json
    several times a read (0.6 s of CPU for CLIP's 3.6 MB one), and every scoring round asked for it again. Read afresh
    where its files cannot be found to tell (a hub id not in the cache)."""
    from transformers import AutoTokenizer

    files = _tokenizer_files(name)
    return _load(AutoTokenizer, name) if files is None else _kept_tokenizer(name, files)


@functools.lru_cache(maxsize=2)
def _kept_tokenizer(name: str, files: tuple[tuple[str, int, int], ...]) -> Any:
    """``name``'s tokenizer as read when its folder held ``files`` (another state of the folder reads it again)."""
    from transformers import AutoTokenizer

    return _load(AutoTokenizer, name)


def _tokenizer_files(name: str) -> tuple[tuple[str, int, int], ...] | None:
    """The path, size and change time of each file in the scorer's folder, or in its hub snapshot where the cache
    holds it (the snapshot's path names its revision); None where neither is on this machine."""
    from engine.builtin import resolve_scorer

    folder = Path(os.path.expanduser(resolve_scorer(name)))
    if not folder.is_dir():
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(name, "tokenizer_config.json")
        except ValueError:  # no hub id either (HFValidationError): _load says why it cannot be read
            return None
        if not isinstance(cached, str):
            return None
        folder = Path(cached).parent
    try:
        stats = [(path, path.stat()) for path in folder.iterdir() if path.is_file()]
    except OSError:
        return None
    return tuple(sorted((str(path), stat.st_size, stat.st_mtime_ns) for path, stat in stats))


@dataclass
class Scorers:
    clip: Any
    clip_images: Any  # CLIP's image processor
    clip_tokenizer: Any
    dino: Any
    dino_images: Any  # DINO's image processor
    device: torch.device

    @torch.no_grad()
    def dino_features(self, images: list[Any]) -> torch.Tensor:
        """DINO's CLS token (after the final layer norm), the embedding the paper's DINO score compares."""
        pixels = self.dino_images(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return self.dino(pixel_values=pixels).last_hidden_state[:, 0].float().cpu()

    @torch.no_grad()
    def clip_image_features(self, images: list[Any]) -> torch.Tensor:
        pixels = self.clip_images(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return _projected(self.clip.get_image_features(pixel_values=pixels))

    @torch.no_grad()
    def clip_text_features(self, texts: list[str]) -> torch.Tensor:
        tokens = self.clip_tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        return _projected(self.clip.get_text_features(**tokens))


def _projected(output: Any) -> torch.Tensor:
    # transformers 5 returns the projected embedding as the output's pooler_output; 4.x returned the tensor.
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return tensor.float().cpu()


@contextlib.contextmanager
def loaded_scorers(clip_model: str, dino_model: str, device: torch.device, checked: SmallParts | None = None) -> Iterator[Scorers]:
    """CLIP and DINO on ``device`` for one round, with the small parts its ``check_scorers`` read (``checked``) or read
    here; afterwards they are deleted and the GPU cache emptied.

    Raises ScorersUnavailableError when either cannot be loaded.
    """
    from transformers import AutoImageProcessor

    scorers = Scorers(
        clip=_load_model(clip_model, *CLIP).to(device).eval(),
        clip_images=checked.clip_images if checked else _load(AutoImageProcessor, clip_model),
        clip_tokenizer=checked.clip_tokenizer if checked else _clip_tokenizer(clip_model),
        dino=_load_model(dino_model, *DINO).to(device).eval(),
        dino_images=checked.dino_images if checked else _load(AutoImageProcessor, dino_model),
        device=device,
    )
    try:
        yield scorers
    finally:
        scorers.clip = scorers.dino = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
