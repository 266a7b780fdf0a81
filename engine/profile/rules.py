"""Cross-field rules: things each field alone cannot know. Each returns problems, never raises.

Each rule is a small function of its own so that a profile checked with its bad keys set aside (io.validate_data
validates the rest to report these rules too) leaves out just the rules that read one: those would judge the
stand-in default, not what the user wrote (method = "Full" set aside reads as "lora", and unet_half then
"applies to full fine-tunes")."""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import partial
from pathlib import PurePath
from typing import Any, cast

from pydantic import BaseModel

from engine.profile.launch_rules import machine_problems, sharding_problems
from engine.profile.problems import Problem
from engine.profile.schema import Profile, concept_label
from engine.profile.text_characters import blank

_LORA_EXPORTS = {"lora_diffusers", "lora_kohya"}


def cross_field_problems(profile: Profile, unknown: Collection[str] = ()) -> list[Problem]:
    """Every cross-field rule the profile breaks, but for rules that read a key in ``unknown`` (dotted, e.g.
    training.method) or below one (training): their values are stand-ins for the user's, set aside as wrong."""
    seen = cast(Profile, _Reading(profile, "", tuple(unknown))) if unknown else profile
    problems: list[Problem] = []
    for rule in _RULES:
        problems += _told(partial(rule, seen))
    return problems


def _told(rule: Callable[[], list[Problem]]) -> list[Problem]:
    """The rule's problems, or none when it reads a key set aside."""
    try:
        return rule()
    except _ReadsUnknown:
        return []


class _ReadsUnknown(Exception):
    """A rule read a key that was set aside."""


class _Reading:
    """A profile or section as the rules read it: a key in ``unknown``, or below one, raises _ReadsUnknown."""

    def __init__(self, model: BaseModel, path: str, unknown: tuple[str, ...]) -> None:
        self._model, self._path, self._unknown = model, path, unknown

    def __getattr__(self, name: str) -> Any:
        path = f"{self._path}.{name}" if self._path else name
        if any(path == key or path.startswith(key + ".") for key in self._unknown):
            raise _ReadsUnknown(path)
        return _read(getattr(self._model, name), path, self._unknown)


def _read(value: Any, path: str, unknown: tuple[str, ...]) -> Any:
    if isinstance(value, BaseModel):
        return _Reading(value, path, unknown)
    if isinstance(value, list) and any(isinstance(item, BaseModel) for item in value):  # the concepts: concepts.N.key
        return [_read(item, f"{path}.{index}", unknown) for index, item in enumerate(value)]
    return value


def _concept_problems(profile: Profile) -> list[Problem]:
    """Each concept's rules one by one: a key set aside in one concept, or prior.enabled, leaves the rest told."""
    problems: list[Problem] = []
    for index in range(len(profile.concepts)):
        problems += _told(partial(_concept_prior, profile, index)) + _told(partial(_concept_prompt, profile, index))
    return problems


def _concept_prior(profile: Profile, index: int) -> list[Problem]:
    if not profile.prior.enabled:
        return []
    concept, key = profile.concepts[index], f"concepts.{index}"
    problems: list[Problem] = []
    if not concept.class_dir:
        problems.append(Problem(f"{key}.class_dir", "prior preservation needs a class folder for every concept"))
    if blank(concept.class_prompt or ""):  # blanks alone would generate unconditioned images
        problems.append(Problem(f"{key}.class_prompt", "prior preservation needs a class prompt for every concept"))
    if concept.num_class_images < 1:
        problems.append(Problem(f"{key}.num_class_images", "prior preservation needs at least 1 class image"))
    return problems


def _concept_prompt(profile: Profile, index: int) -> list[Problem]:
    concept = profile.concepts[index]
    if concept.caption_mode == "instance_prompt" and blank(concept.instance_prompt):
        # A style has no subject to name: its captions are its prompts (profiles/sd15-style-native.toml).
        return [Problem(f"concepts.{index}.instance_prompt", "the instance prompt is empty; name your subject, e.g. "
                        "'photo of zwx dog', or, for a style with no identifier, set caption_mode = \"caption_file\" "
                        f"with a {profile.dataset.caption_extension} caption beside each image")]
    return []


def _lora_options(profile: Profile) -> list[Problem]:
    if profile.training.lora is not None and profile.training.method != "lora":
        return [Problem("training.lora", 'LoRA options are set but training.method is "full"; set method = "lora" or remove [training.lora]')]
    return []


def _lora_exports(profile: Profile) -> list[Problem]:
    if profile.training.method != "lora" and _LORA_EXPORTS & set(profile.saving.export):
        return [Problem("saving.export", 'LoRA exports need training.method = "lora"')]
    return []


def _quantized_base(profile: Profile) -> list[Problem]:
    if profile.model.quantize and profile.training.method != "lora":
        return [Problem("model.quantize", "a quantized base cannot train its own weights (4- and 8-bit weights take no "
                                          'gradient steps); set training.method = "lora" or remove model.quantize')]
    return []


def _unet_half(profile: Profile) -> list[Problem]:
    if profile.training.method == "lora" and profile.saving.unet_half:
        return [Problem("saving.unet_half", "unet_half applies to full fine-tunes; LoRA weights are small already")]
    return []


def _text_encoder_stop(profile: Profile) -> list[Problem]:
    if profile.training.text_encoder_stop_fraction < 1.0 and not profile.training.train_text_encoder:
        return [Problem("training.text_encoder_stop_fraction", "only applies when training.train_text_encoder = true")]
    return []


def _bucket_problems(profile: Profile) -> list[Problem]:
    problems: list[Problem] = []
    if profile.dataset.buckets is not None and not profile.dataset.bucketing:
        problems.append(Problem("dataset.buckets", "a bucket list is set but dataset.bucketing = false; turn bucketing on or remove the list"))
    for index, (width, height) in enumerate(profile.dataset.buckets or []):
        if width % 8 or height % 8 or width < 32 or height < 32:
            problems.append(Problem(f"dataset.buckets.{index}", f"bucket {width}x{height} must be at least 32 and a multiple of 8 on both sides"))
    return problems


def _warmup(profile: Profile) -> list[Problem]:
    if profile.optimizer.lr_warmup_steps and profile.optimizer.lr_scheduler == "constant":
        return [Problem("optimizer.lr_warmup_steps", 'warm-up needs lr_scheduler = "constant_with_warmup" or another non-constant scheduler')]
    return []


def _shared_instance_dirs(profile: Profile) -> list[Problem]:
    # As paths, not strings: "./data/dog/" is "data/dog". A symlink or an absolute spelling needs the disk
    # (engine.dataset.profile_paths), as a profile may be written for another machine.
    problems: list[Problem] = []
    names = [PurePath(c.instance_dir) for c in profile.concepts]
    for index, name in enumerate(names):
        if name in names[:index]:
            earlier = concept_label(names.index(name))
            problems.append(Problem(f"concepts.{index}.instance_dir", f"is the instance folder of {earlier} too: its photos "
                                                                      "would train as two concepts; give each concept its own folder"))
    return problems


def _fused_backward(profile: Profile) -> list[Problem]:
    if not profile.optimizer.fused_backward:
        return []
    key = "optimizer.fused_backward"
    problems: list[Problem] = []
    if profile.training.gradient_accumulation_steps > 1:
        problems.append(Problem(key, "the fused step updates each weight during the backward pass, so gradients cannot be "
                                     "accumulated; set training.gradient_accumulation_steps = 1 or fused_backward = false"))
    if profile.precision.mixed_precision == "fp16":
        problems.append(Problem(key, "fp16's loss scaling may skip a step after the fused step has moved every weight already; set "
                                     'precision.mixed_precision = "bf16" (or "no") or fused_backward = false'))
    if profile.launch.num_processes > 1:
        problems.append(Problem(key, "the fused step would update each process's weights before their gradients are "
                                     "averaged; set launch.num_processes = 1 or fused_backward = false"))
    return problems


def _bf16_weights_method(profile: Profile) -> list[Problem]:
    if profile.precision.bf16_weights and profile.training.method != "full":
        return [Problem("precision.bf16_weights", 'bf16 weights are for full fine-tunes (LoRA weights are small and train in fp32); '
                                                  'set training.method = "full" or bf16_weights = false')]
    return []


def _bf16_weights_precision(profile: Profile) -> list[Problem]:
    if profile.precision.bf16_weights and profile.precision.mixed_precision != "bf16":
        return [Problem("precision.bf16_weights", 'bf16 weights need precision.mixed_precision = "bf16"')]
    return []


def _prodigy(profile: Profile) -> list[Problem]:
    if profile.optimizer.name == "prodigy" and (profile.optimizer.fused_backward or profile.precision.bf16_weights):
        return [Problem("optimizer.name", "prodigy estimates one step size from every weight at once, and fused_backward "
                                          "and bf16_weights step one weight at a time; choose adamw, adamw8bit, lion, "
                                          "lion8bit or adafactor")]
    return []


# In the order their problems are told.
_RULES: tuple[Callable[[Profile], list[Problem]], ...] = (
    _concept_problems, _lora_options, _lora_exports, _quantized_base, _unet_half, _text_encoder_stop, _bucket_problems,
    _warmup, _fused_backward, _bf16_weights_method, _bf16_weights_precision, _prodigy, machine_problems, sharding_problems,
    _shared_instance_dirs,
)
