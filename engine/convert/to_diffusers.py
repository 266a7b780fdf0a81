"""Import a single-file SD1.x/SD2.x/SDXL checkpoint into a diffusers folder, offline (a Flux.1
transformer file goes to engine/convert/flux_single_file.py).

The weights go through diffusers' own single-file converters (``from_single_file`` per
component, given the already safely-read state dict). The architecture comes from the small
diffusers configs shipped in ``configs/<family>/``, and the CLIP tokenizers are built from the
BPE merges shipped with dbtui (engine/builtin/clip_tokenizer.py), so nothing is fetched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.convert._files import Emit, Progress, atomic_dir, check_free_space, check_new_folder
from engine.convert.absent_parts import VAE, absent_parts, absent_parts_said, text_encoders
from engine.convert.detect import (
    CONFIGS,
    EMA_PREFIX,
    ZERO_SNR_KEY,
    PREDICTION_TYPES,
    ModelFamily,
    detect_family,
    has_ema,
    prediction_guessed,
    prediction_hint,
    with_prediction,
    with_text_model_prefix,
)
from engine.convert.errors import (
    ConvertError,
    IncompleteCheckpointError,
    ModelMismatchError,
    TokenizerNotFoundError,
    UnsupportedModelError,
)
from engine.convert.expected import explain_mismatch
from engine.convert.flux_part_files import FluxPartFiles
from engine.convert.flux_single_file import import_flux_transformer
from engine.convert.load_checkpoint import read_checkpoint
from engine.convert.older_readers import write_for_older_readers
from engine.convert.run_folder_hint import run_folder_hint
from engine.convert.weight_dtypes import check_float_weights
from engine.events import Warning as WarningEvent

# Raised whenever a conversion comes out otherwise, so that the folders training converted earlier are made again.
# 2: what a file predicts is read from its .yaml and metadata (an SD1.x-v file was converted as epsilon).
CONVERTER_VERSION = 2


def _tokenizer_names(family: ModelFamily) -> tuple[str, ...]:
    return ("tokenizer", "tokenizer_2") if family.xl else ("tokenizer",)


def _pad_token(family: ModelFamily, name: str) -> str:
    """OpenCLIP-trained encoders (SD2.x, SDXL's second) pad with "!", OpenAI CLIP with its end token."""
    from engine.builtin.clip_tokenizer import OPEN_CLIP_PAD, OPENAI_PAD

    return OPEN_CLIP_PAD if name == "tokenizer_2" or family.id.startswith("sd2") else OPENAI_PAD


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())


def _tokenizer_from(root: Path, name: str, family: ModelFamily, *, bare: bool) -> Any | None:
    """``root``'s tokenizer for slot ``name``: its own subfolder, else (for SDXL's second) the first
    one with OpenCLIP's padding; ``bare`` also accepts ``root`` itself as a tokenizer folder."""
    from transformers import CLIPTokenizer

    if _has_tokenizer(root / name):
        return CLIPTokenizer.from_pretrained(root / name)
    for folder in [root / "tokenizer"] + ([root] if bare else []):
        if _has_tokenizer(folder):
            # A borrowed tokenizer keeps its vocabulary; only the padding differs between the slots.
            extra = {"pad_token": _pad_token(family, name)} if name != "tokenizer" else {}
            return CLIPTokenizer.from_pretrained(folder, **extra)
    return None


def load_tokenizers(family: ModelFamily, tokenizer: str | Path | None, config: Path | None) -> list[Any]:
    """The family's CLIP tokenizers: from ``tokenizer``, else the config folder's, else built from
    the CLIP merges shipped with dbtui (the same tokenizers the hub's SD models have)."""
    from engine.builtin.clip_tokenizer import clip_tokenizer

    tokenizers = []
    for name in _tokenizer_names(family):
        found = None
        if tokenizer is not None:
            found = _tokenizer_from(Path(tokenizer), name, family, bare=True)
            if found is None:
                raise TokenizerNotFoundError(
                    f"{tokenizer} holds no CLIP tokenizer: give a folder with tokenizer.json (or vocab.json and "
                    "merges.txt), or a diffusers model folder that has a tokenizer/ subfolder; or leave --tokenizer "
                    "out to use the CLIP tokenizer that ships with dbtui"
                )
        elif config is not None:
            found = _tokenizer_from(config, name, family, bare=False)
        tokenizers.append(found if found is not None else clip_tokenizer(_pad_token(family, name)))
    return tokenizers


def _mismatch(state_dict: dict[str, Any], config: Path, family: ModelFamily, name: str, what: str,
              cause: str) -> ModelMismatchError:
    """Our account of which parts the file lacks, rather than the loader's internal advice."""
    given = config.resolve().parent != CONFIGS.resolve()  # the user's --config, not the family's shipped one
    advice = ("give as --config a diffusers model folder of the file's own architecture, or leave --config out" if given
              else "for a non-standard one, convert it with `dbtui convert to-diffusers FILE OUT --config FOLDER` "
                   "(FOLDER: a diffusers model that describes it) and train from OUT")
    message = explain_mismatch(state_dict, config, name, family.description, given) or (
        f"the {what} weights in {name} could not be loaded into a {family.description} model"
        f"{f' as --config {config} describes it' if given else ''} ({cause}); the file is damaged or of another "
        f"architecture: {advice}"
    )
    return ModelMismatchError(message)


def _scheduler(config: Path, family: ModelFamily, zero_snr: bool) -> Any:
    """The config folder's scheduler, else the family's shipped one (SDXL base's EulerDiscrete for SDXL), predicting
    what the detected family predicts."""
    import diffusers

    scheduler_dir = config if (config / "scheduler" / "scheduler_config.json").is_file() else CONFIGS / family.config_name
    scheduler_config = json.loads((scheduler_dir / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    # What the file predicts was detected from it (a marker, a sidecar, metadata, the weights); a config folder only
    # describes the architecture, and an SD2.x-v file converted with an SD2.x-base folder must still predict v.
    overrides: dict[str, Any] = {"prediction_type": family.prediction_type}
    if family.xl and zero_snr:
        overrides["rescale_betas_zero_snr"] = True
    scheduler_class = getattr(diffusers, scheduler_config["_class_name"])
    return scheduler_class.from_pretrained(scheduler_dir, subfolder="scheduler", **overrides)


def _check_vae_fits(models: dict[str, Any], family: ModelFamily, vae: Path, key: str) -> None:
    """A VAE given from elsewhere (a Flux one on an SD file) converted into a folder that validate passed and whose
    run failed at its first step with a channel-count error: refused before anything is written."""
    from engine.models.registry import family_named
    from engine.models.vae_fit import vae_misfit

    runtime = family_named("sdxl" if family.xl else "sd")
    if misfit := vae_misfit(models["vae"].config.latent_channels, models["unet"], runtime, str(vae), key):
        raise ConvertError(misfit)


def _vae_from(folder: Path) -> Any:
    """The diffusers VAE in ``folder``: a VAE's own folder, or a model's with a vae/ part (as model.vae names it)."""
    from diffusers import AutoencoderKL

    from engine.models.parts import pretrained_part

    return pretrained_part(AutoencoderKL, folder, "vae" if (folder / "vae").is_dir() else None)


def _load_components(state_dict: dict[str, Any], config: Path, family: ModelFamily, name: str, use_ema: bool,
                     progress: Progress, vae: Path | None) -> dict[str, Any]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import SingleFileComponentError, create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    def text_loader(sub: str):
        model_class = CLIPTextModelWithProjection if sub == "text_encoder_2" else CLIPTextModel
        return lambda: create_diffusers_clip_model_from_ldm(
            model_class, state_dict, config=str(config), subfolder=sub, local_files_only=True)

    # The same calls diffusers' pipeline-level from_single_file makes per component; it only takes a
    # path, and we hold a state dict that was read safely.
    loaders = [
        ("unet", "UNet", lambda: UNet2DConditionModel.from_single_file(
            state_dict, config=str(config), subfolder="unet", local_files_only=True, extract_ema=use_ema)),
        ("vae", "VAE", (lambda: _vae_from(vae)) if vae is not None else lambda: AutoencoderKL.from_single_file(
            state_dict, config=str(config), subfolder="vae", local_files_only=True)),
    ] + [(part.subfolder, part.name, text_loader(part.subfolder)) for part in text_encoders(family)]
    models = {}
    for sub, what, load in loaders:
        try:
            model = load()
        # SingleFileComponentError: none of the component's weights are where diffusers looks (a file with no VAE at
        # all is refused before, by absent_parts).
        except (ValueError, RuntimeError, KeyError, TypeError, NotImplementedError, SingleFileComponentError) as error:
            raise _mismatch(state_dict, config, family, name, what, type(error).__name__) from error
        unloaded = [n for n, p in model.named_parameters() if p.device.type == "meta"]
        if unloaded:
            raise _mismatch(state_dict, config, family, name, what, f"{len(unloaded)} weights not in the file")
        models[sub] = model
        progress.step()
    models["scheduler"] = _scheduler(config, family, zero_snr=ZERO_SNR_KEY in state_dict)
    return models


def _pipeline(family: ModelFamily, models: dict[str, Any], tokenizers: list[Any]) -> Any:
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

    if family.xl:
        return StableDiffusionXLPipeline(
            **models, tokenizer=tokenizers[0], tokenizer_2=tokenizers[1], force_zeros_for_empty_prompt=True,
            add_watermarker=False,
        )
    pipeline_class = StableDiffusionInpaintPipeline if family.inpainting else StableDiffusionPipeline
    return pipeline_class(
        **models, tokenizer=tokenizers[0], safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def _predicting(family: ModelFamily, prediction_type: str, name: str) -> ModelFamily:
    """The detected family made to predict what the user says."""
    if prediction_type not in PREDICTION_TYPES:
        raise ConvertError(f"unknown prediction type '{prediction_type}'; choose one of: {', '.join(PREDICTION_TYPES)}")
    predicting = with_prediction(family, prediction_type)
    if predicting is None:
        raise ConvertError(f"{name} is a {family.description} model, which predicts {family.prediction_type} only: "
                           "leave --prediction-type out")
    return predicting


def _prediction_warning(path: Path, family: ModelFamily, said: str | None,
                        config: str | Path | None) -> WarningEvent | None:
    """Where neither the file (its .yaml, its metadata) nor --prediction-type said what the model predicts: the
    guess from SD2.x weights, and a --config folder whose scheduler predicts the other way (not followed: a config
    folder describes its own model's architecture). The advice fits every caller: the wizard's import and training's
    own conversion have no --prediction-type."""
    other = "epsilon" if family.prediction_type == "v_prediction" else "v_prediction"
    guessed = prediction_guessed(family, said)
    folder_says = (said is None and config is not None and with_prediction(family, other) is not None
                   and _scheduler_prediction(Path(config)) == other)
    if not guessed and not folder_says:
        return None
    message = (f"{path.name}: {family.prediction_type} is a guess from its weights (SD2.x-base and SD2.x-v files look "
               "alike, and neither a same-named .yaml beside it nor its metadata says which it is)" if guessed else
               f"{path.name} is converted to predict {family.prediction_type}, as its family does where neither a "
               "same-named .yaml beside it nor its metadata says otherwise")
    if folder_says:
        return WarningEvent(message=f"{message}; the --config folder's scheduler predicts {other}, which is not "
                                    "followed (it describes that folder's model)",
                            advice=f"if {path.name} predicts {other}, convert again with --prediction-type {other}")
    return WarningEvent(message=message, advice=(
        f"if its images come out as noise or flat colour, it predicts {other}: run `dbtui convert to-diffusers {path} "
        f"OUT --prediction-type {other}` and train from OUT, or put the model's .yaml beside it as {path.stem}.yaml"))


def _scheduler_prediction(config: Path) -> str | None:
    try:
        return json.loads((config / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8")).get("prediction_type")
    except (OSError, ValueError, AttributeError):
        return None


def import_single_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    tokenizer: str | Path | None = None,
    use_ema: bool = False,
    emit: Emit | None = None,
    config: str | Path | None = None,
    components: str | Path | None = None,
    part_files: FluxPartFiles | None = None,
    prediction_type: str | None = None,
    vae: str | Path | None = None,
    before_publish: Callable[[Path], None] | None = None,
) -> Path:
    """Convert ``path`` (.safetensors or .ckpt) into the diffusers folder ``out_dir``; returns it. ``before_publish``
    is given the converted folder before it is renamed into place (see atomic_dir).

    ``vae`` is a diffusers VAE folder (a VAE's own, or a model's with a vae/ part: model.vae's) that stands in for the
    VAE of a Stable Diffusion file saved without one; a file that has its own keeps it. ``part_files.vae`` (--vae) of a
    Stable Diffusion file is such a folder or a hub id, and replaces a VAE the file holds too.

    ``prediction_type`` ("epsilon" or "v_prediction") is what the model predicts, over what the file says or its
    weights suggest (SD2.x-base and SD2.x-v files look alike).

    ``config`` is a diffusers folder describing the architecture (default: the shipped config of
    the detected family); ``tokenizer`` a tokenizer or model folder (default: the config folder's,
    else the CLIP tokenizer shipped with dbtui). A Flux.1 transformer file takes its VAE, text
    encoders and tokenizers from ``components``, a diffusers Flux folder or hub id (default: the
    original repository of its variant; see engine/convert/flux_single_file.py), and its VAE, CLIP-L
    and T5 from ``part_files`` where given.
    """
    from engine.builtin import resolve_model

    path, out_dir = Path(path), Path(out_dir)
    # A builtin: model is a model folder wherever a profile takes one (its config and tokenizer too).
    config, tokenizer = (None if place is None else resolve_model(str(place)) for place in (config, tokenizer))
    hint = run_folder_hint(path, "model") if path.is_dir() else None
    if hint:
        raise ConvertError(hint)
    if (path / "model_index.json").is_file():
        raise ConvertError(f"{path} is a diffusers model folder already: train from it as it is (model.pretrained = "
                           f"\"{path}\" in the profile); nothing to convert")
    check_new_folder(out_dir)
    checkpoint = read_checkpoint(path)
    check_float_weights(path.name, checkpoint.state_dict)
    state_dict = with_text_model_prefix(checkpoint.state_dict)
    said = prediction_hint(path, checkpoint.metadata)
    family = detect_family(state_dict, prediction_type=said)
    if not family.supported:
        raise UnsupportedModelError(f"{path.name}: {family.description}")
    if prediction_type is not None:
        family = _predicting(family, prediction_type, path.name)
    if family.flux:
        if tokenizer is not None or config is not None or use_ema:
            raise ConvertError(f"{path.name} is a Flux.1 transformer: a tokenizer, a config folder and EMA weights are "
                               "for Stable Diffusion files; leave them out (its tokenizers and the rest come from the "
                               "components)")
        return import_flux_transformer(checkpoint, family, out_dir, components=components, part_files=part_files,
                                       emit=emit, before_publish=before_publish)
    asked_vae = part_files.vae if part_files is not None else None
    if asked_vae is not None:  # --vae: the folder or hub id model.vae takes, so that a pruned file converts whole
        from engine.models.loading import vae_folder

        vae, part_files = vae_folder(str(asked_vae), "--vae"), replace(part_files, vae=None)
    # What the file lacks first: the refusal below says it holds its text encoders, which no option stands in for.
    if lacks := absent_parts_said(path.name, state_dict, family, vae_given=vae is not None):
        raise IncompleteCheckpointError(lacks)
    if components is not None or (part_files is not None and part_files.given()):
        raise ConvertError(f"{path.name} is a {family.description} checkpoint, which holds its text encoders itself: "
                           "--components, --clip-l and --t5 are for Flux transformer files")
    # model.vae's stand-in only where the file has no VAE of its own (the run reads model.vae over the folder's VAE
    # anyway); --vae over the file's own, as asked, since the folder written is the model.
    given_vae = Path(vae) if vae is not None and (asked_vae is not None or VAE in absent_parts(state_dict, family)) else None
    if use_ema and not has_ema(state_dict):
        raise ConvertError(f"{path.name} holds no EMA weights; run without --ema")

    parts = ["unet", "vae"] + [part.subfolder for part in text_encoders(family)]
    progress = Progress(emit, "convert", total=len(parts) + 1, description=f"{path.name}: {family.description}")
    warning = _prediction_warning(path, family, said, config) if prediction_type is None else None
    if warning is not None and emit is not None:
        emit(warning)
    if has_ema(state_dict) and not use_ema and emit is not None:
        emit(WarningEvent(
            message=f"{path.name} also holds EMA weights; the regular (non-EMA) weights were used",
            advice="pass --ema to use the EMA weights (often better for generating; the regular ones suit further training)",
        ))
    config_dir = Path(config) if config is not None else CONFIGS / family.config_name
    if not config_dir.is_dir():
        raise ConvertError(f"--config {config_dir} {'is a file' if config_dir.exists() else 'does not exist'}: give a "
                           f"diffusers model folder of the {family.description} family")
    missing = [sub for sub in parts if not (config_dir / sub / "config.json").is_file()]
    if missing:
        raise ConvertError(f"--config {config_dir} does not describe a {family.description} model (no config for "
                           f"{', '.join(missing)}); give a diffusers model folder of that family")
    tokenizers = load_tokenizers(family, tokenizer, Path(config) if config is not None else None)
    model_bytes = sum(v.numel() for k, v in state_dict.items() if not k.startswith(EMA_PREFIX)) * 4  # saved as fp32
    check_free_space(out_dir, model_bytes)

    models = _load_components(state_dict, config_dir, family, path.name, use_ema, progress, given_vae)
    if given_vae is not None:
        _check_vae_fits(models, family, given_vae, "--vae" if asked_vae is not None else "model.vae")
    pipe = _pipeline(family, models, tokenizers)
    with atomic_dir(out_dir, before_publish) as tmp:
        pipe.save_pretrained(tmp)
        write_for_older_readers(tmp)
    progress.step()
    progress.finish()
    return out_dir
