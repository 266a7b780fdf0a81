"""What a run trains, in one line, from its run_started event: the model's family, the method, the base weights and
the maths in force, e.g. "Flux.1 LoRA r16 · NF4 base · fp32 (CPU)". Plain data in, no torch: the dashboard and the
plain output of ``dbtui run`` show it, and ``dbtui attach`` may follow a run from another machine."""

from __future__ import annotations

from typing import Any, Mapping

from engine.profile.precision_names import maths_name


def run_summary(profile: Mapping[str, Any], hardware: Mapping[str, Any]) -> str:
    """The line for a run of ``profile`` (the event's dump of it) on ``hardware`` (the event's probe of the machine);
    empty for an event that names no model."""
    from engine.model_info import family_words

    model, training = profile.get("model") or {}, profile.get("training") or {}
    if not model.get("pretrained"):
        return ""
    try:
        family = family_words(str(model["pretrained"]))  # as the Model step names it
    except KeyError:  # a built-in name this version does not know
        family = "the model"
    if training.get("method") == "lora":
        from engine.profile.training_sections import LoraSection

        method = f"LoRA r{(training.get('lora') or {}).get('rank') or LoraSection().rank}"  # no [training.lora]: its defaults
    else:
        method = "full fine-tune"
    parts = [f"{family} {method}"]
    quantize = model.get("quantize")
    if quantize:
        parts.append(f"{'NF4' if quantize == 'nf4' else quantize} base")
    parts.append(_maths(str((profile.get("precision") or {}).get("mixed_precision", "no")), hardware))
    return " · ".join(parts)


def _maths(requested: str, hardware: Mapping[str, Any]) -> str:
    """The precision the trainer uses on that machine (engine/training/precision.py effective_precision): a CPU trains
    in fp32, a GPU without bf16 in fp16."""
    gpus = hardware.get("gpus") or []
    if not gpus:
        return "fp32 (CPU)"
    gpu = gpus[0]
    maths = "fp16" if requested == "bf16" and not gpu.get("bf16") else maths_name(requested)
    return f"{maths} ({gpu.get('name') or 'GPU'})"
