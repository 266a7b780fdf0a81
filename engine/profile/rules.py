"""Cross-field rules: things each field alone cannot know. Each returns problems, never raises."""

from __future__ import annotations

from pathlib import PurePath

from engine.profile.launch_rules import launch_problems
from engine.profile.problems import Problem
from engine.profile.schema import Profile

_LORA_EXPORTS = {"lora_diffusers", "lora_kohya"}


def cross_field_problems(profile: Profile) -> list[Problem]:
    """Every cross-field rule the profile breaks."""
    problems: list[Problem] = []
    for index, concept in enumerate(profile.concepts):
        key = f"concepts.{index}"
        if profile.prior.enabled:
            if not concept.class_dir:
                problems.append(Problem(f"{key}.class_dir", "prior preservation needs a class folder for every concept"))
            if not concept.class_prompt:
                problems.append(Problem(f"{key}.class_prompt", "prior preservation needs a class prompt for every concept"))
            if concept.num_class_images < 1:
                problems.append(Problem(f"{key}.num_class_images", "prior preservation needs at least 1 class image"))
        if concept.caption_mode == "instance_prompt" and not concept.instance_prompt.strip():
            problems.append(Problem(f"{key}.instance_prompt", "the instance prompt is empty; name your subject, e.g. 'photo of zwx dog'"))
    if profile.training.lora is not None and profile.training.method != "lora":
        problems.append(Problem("training.lora", 'LoRA options are set but training.method is "full"; set method = "lora" or remove [training.lora]'))
    if profile.training.method != "lora" and _LORA_EXPORTS & set(profile.saving.export):
        problems.append(Problem("saving.export", 'LoRA exports need training.method = "lora"'))
    if profile.model.quantize and profile.training.method != "lora":
        problems.append(Problem("model.quantize", "a quantized base cannot train its own weights (4- and 8-bit weights take no "
                                                  'gradient steps); set training.method = "lora" or remove model.quantize'))
    if profile.training.method == "lora" and profile.saving.unet_half:
        problems.append(Problem("saving.unet_half", "unet_half applies to full fine-tunes; LoRA weights are small already"))
    if profile.training.text_encoder_stop_fraction < 1.0 and not profile.training.train_text_encoder:
        problems.append(Problem("training.text_encoder_stop_fraction", "only applies when training.train_text_encoder = true"))
    if profile.dataset.buckets is not None and not profile.dataset.bucketing:
        problems.append(Problem("dataset.buckets", "a bucket list is set but dataset.bucketing = false; turn bucketing on or remove the list"))
    for index, (width, height) in enumerate(profile.dataset.buckets or []):
        if width % 8 or height % 8 or width < 32 or height < 32:
            problems.append(Problem(f"dataset.buckets.{index}", f"bucket {width}x{height} must be at least 32 and a multiple of 8 on both sides"))
    if profile.optimizer.lr_warmup_steps and profile.optimizer.lr_scheduler == "constant":
        problems.append(Problem("optimizer.lr_warmup_steps", 'warm-up needs lr_scheduler = "constant_with_warmup" or another non-constant scheduler'))
    problems += _memory_cut_problems(profile)
    problems += launch_problems(profile)
    # As paths, not strings: "./data/dog/" is "data/dog". A symlink or an absolute spelling needs the disk
    # (engine.dataset.profile_paths), as a profile may be written for another machine.
    names = [PurePath(c.instance_dir) for c in profile.concepts]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(Problem(f"concepts.{index}.instance_dir", f"is concept {names.index(name)}'s instance folder too: "
                                                                      "its photos would train as two concepts; give each concept its own folder"))
    return problems


def _memory_cut_problems(profile: Profile) -> list[Problem]:
    """optimizer.fused_backward and precision.bf16_weights: what each can run with."""
    problems: list[Problem] = []
    if profile.optimizer.fused_backward:
        key = "optimizer.fused_backward"
        if profile.training.gradient_accumulation_steps > 1:
            problems.append(Problem(key, "the fused step updates each weight during the backward pass, so gradients cannot be "
                                         "accumulated; set training.gradient_accumulation_steps = 1 or fused_backward = false"))
        if profile.precision.mixed_precision == "fp16":
            problems.append(Problem(key, "fp16's loss scaling may skip a step after the fused step has moved every weight already; set "
                                         'precision.mixed_precision = "bf16" (or "no") or fused_backward = false'))
        if profile.launch.num_processes > 1:
            problems.append(Problem(key, "the fused step would update each process's weights before their gradients are "
                                         "averaged; set launch.num_processes = 1 or fused_backward = false"))
    if profile.precision.bf16_weights:
        key = "precision.bf16_weights"
        if profile.training.method != "full":
            problems.append(Problem(key, 'bf16 weights are for full fine-tunes (LoRA weights are small and train in fp32); '
                                         'set training.method = "full" or bf16_weights = false'))
        if profile.precision.mixed_precision != "bf16":
            problems.append(Problem(key, 'bf16 weights need precision.mixed_precision = "bf16"'))
    if profile.optimizer.name == "prodigy" and (profile.optimizer.fused_backward or profile.precision.bf16_weights):
        problems.append(Problem("optimizer.name", "prodigy estimates one step size from every weight at once, and fused_backward "
                                                  "and bf16_weights step one weight at a time; choose adamw, adamw8bit, lion, "
                                                  "lion8bit or adafactor"))
    return problems
