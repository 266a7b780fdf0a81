"""What to turn on or down when a profile needs more GPU memory than the card has: from its own
settings, most effective first. Said when a run runs out of memory, and when the meter finds no
card size that holds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.memory.estimate import ALLOCATOR_SLACK, MemoryEstimate

# The estimate's parts (MemoryEstimate) a saver can shrink; "lora" is the LoRA's own weights, inside "weights";
# "step_weights" is "weights" at the steps only (cached latents take the VAE off the GPU, and the previews bring it
# back); "per_image" is the activations that grow with the images of a pass (all but autocast's weight copies, which
# do not); "previews" is what the sampling moment (MemoryEstimate.sampling) holds beyond the step's weights and
# optimizer state: the VAE back on the GPU and one generation; and "nf4" is what NF4 takes off "weights"
# (MemoryEstimate.nf4_saving), taken whole.
_ALL = frozenset({"weights", "gradients", "optimizer_state", "activations", "caches", "previews"})
# What is on the GPU at a step's peak, and at the sampling moment (the step's gradients, activations and caches are
# gone by then).
IN_STEP = frozenset({"weights", "step_weights", "lora", "nf4", "gradients", "optimizer_state", "activations", "per_image",
                      "caches"})
AT_SAMPLING = frozenset({"weights", "lora", "nf4", "optimizer_state", "previews"})
# fp32 weights per byte of optimizer state (engine/memory/optimizer_state.py): the LoRA's size read from its state, as
# its gradients may not be alive at the peak. Adafactor's factored state says nothing of it.
_WEIGHTS_PER_STATE_BYTE = {"adamw": 0.5, "adamw8bit": 2.0, "lion": 1.0, "lion8bit": 4.0, "prodigy": 1.0}


@dataclass(frozen=True)
class Saver:
    """A setting to write, the parts of the meter's estimate it can shrink, and the share of each it takes away: known
    where the setting scales them (a quarter of the pixels, half the images, half the rank), None where the meter does
    not say (gradient checkpointing keeps some activations): then at most all of them."""

    tip: str
    shrinks: frozenset[str]
    share: float | None = None
    # Savers of one group cannot all be followed (the fused step needs gradient_accumulation_steps = 1, a smaller batch
    # raises it; bf16 weights are for full fine-tunes, not a LoRA: validate refuses each two): said as alternatives.
    rival: str | None = None


def memory_advice(profile: Any, bf16: bool = True) -> str:
    """The savers this profile does not use yet, as settings to write; one sentence when it uses them all. ``bf16``:
    whether the card has it."""
    return advice_text(savers(profile, bf16))


def advice_text(found: list[Saver]) -> str:
    """Savers as settings to write; one sentence when there are none."""
    return joined([(saver, saver.tip) for saver in found]) or "this setup is already as lean as dbtui can make it: use a GPU with more memory"


def joined(said: list[tuple[Saver, str]]) -> str:
    """The savers' words, "; " between them; those of one rival group as one choice where the first of them stands:
    "either A, or instead B"."""
    entries: list[list[str]] = []
    groups: dict[str, list[str]] = {}
    for saver, words in said:
        if saver.rival in groups:
            groups[saver.rival].append(words)
            continue
        entries.append([words])
        if saver.rival:
            groups[saver.rival] = entries[-1]
    return "; ".join(f"either {', or instead '.join(entry)}" if len(entry) > 1 else entry[0] for entry in entries)


def fit_savers(profile: Any, estimate: MemoryEstimate, card: int, bf16: bool = True) -> list[Saver] | None:
    """The savers that shrink what misses a card of ``card`` bytes: the step's where the steps miss it, those that
    shrink the sampling moment where the previews do, less those that could take away only a sliver of the excess
    (``_enough``). None where even all of them, each part they shrink taken whole, leave one of those too large: no
    setting helps, only a larger card. ``bf16``: whether the card has it."""
    step_savers = savers(profile, bf16)
    sampling_savers = [saver for saver in [*step_savers, *_preview_savers(profile)] if saver.shrinks & AT_SAMPLING]
    steps_over, previews_over = estimate.card_need - card, estimate.sampling_card_need - card
    steps = _enough(step_savers, steps_over, profile, estimate, IN_STEP) if steps_over > 0 else []
    previews = (_enough(sampling_savers, previews_over, profile, estimate, AT_SAMPLING, estimate.sampling)
                if previews_over > 0 else [])
    if steps is None or previews is None:
        return None
    return steps + [saver for saver in previews if saver not in steps]


# A saver that, its parts taken whole, takes away less than this share of what misses the card is not offered: a
# LoRA rank cut (the LoRA is megabytes) beside a resolution cut read as if either would do.
NEGLIGIBLE_SHARE = 0.1


def _enough(found: list[Saver], over: int, profile: Any, estimate: MemoryEstimate, present: frozenset[str],
            most: int | None = None) -> list[Saver] | None:
    """Those of ``found`` that matter to ``over`` bytes too many (of the parts ``present``, at most ``most`` bytes
    in all); all of them where those alone do not cover it, and None where not even all of them do."""

    def saved(chosen: list[Saver]) -> float:
        taken = most_saved(chosen, profile, estimate, present)
        return (taken if most is None else min(most, taken)) * (1 + ALLOCATOR_SLACK)

    if saved(found) < over:
        return None
    matter = [saver for saver in found if saved([saver]) * (saver.share or 1) >= over * NEGLIGIBLE_SHARE]
    return matter if saved(matter) >= over else found


def most_saved(found: list[Saver], profile: Any, estimate: MemoryEstimate, present: frozenset[str] = IN_STEP) -> int:
    """Bytes that all of ``found`` together could take away at most of the parts ``present`` (the step's, or the
    sampling moment's): the parts they shrink, each counted once, whole."""
    parts = frozenset().union(*(saver.shrinks for saver in found)) & present
    ratio = _WEIGHTS_PER_STATE_BYTE.get(profile.optimizer.name)
    lora = max(estimate.gradients, int(estimate.optimizer_state * ratio)) if ratio else estimate.weights
    previews = max(0, estimate.sampling - estimate.weights - estimate.optimizer_state)  # at most: the VAE is in it too
    sizes = {"weights": estimate.weights, "step_weights": estimate.weights, "gradients": estimate.gradients,
             "optimizer_state": estimate.optimizer_state, "activations": estimate.activations, "caches": estimate.caches,
             "per_image": estimate.activations - estimate.autocast_weight_copies, "lora": lora, "previews": previews,
             "nf4": estimate.nf4_saving}
    # The LoRA's weights are inside "weights", "step_weights" is "weights", "per_image" is inside "activations": each
    # counted once.
    inside = {"lora": {"weights", "step_weights"}, "nf4": {"weights", "step_weights"}, "step_weights": {"weights"},
              "per_image": {"activations"}}
    return sum(sizes[part] for part in parts if not inside.get(part, set()) & parts)


def _preview_savers(profile: Any) -> list[Saver]:
    """Fewer images a pipeline call: the previews' and scoring's own saver, which no step setting is."""
    fewer = [f"{key} = {count // 2}" for key, count in (("sampling.num_images", profile.sampling.num_images),
             ("evaluation.images_per_prompt", profile.evaluation.images_per_prompt if profile.evaluation.enabled else 0))
             if count > 1]
    return [Saver(f"generate fewer images at once ({', '.join(fewer)})", frozenset({"previews"}))] if fewer else []


# What a resolution above it is told to lower to: SD1.5's size, and the Flux and SDXL presets' smallest.
LOWER_RESOLUTION = 512


def savers(profile: Any, bf16: bool = True) -> list[Saver]:
    """The savers this profile does not use yet, most effective first; for a card without bf16 (``bf16`` False: a T4)
    none that needs it, which it trains without (bf16 weights, the fused step: refused under fp16)."""
    from engine.model_info import likely_family

    found: list[Saver] = []

    def add(tip: str, *shrinks: str, share: float | None = None, rival: str | None = None) -> None:
        found.append(Saver(tip, frozenset(shrinks), share, rival))

    # Flux's frozen 12B transformer is most of its memory (23 GB in bf16): a quantized base is the saver that counts.
    flux = likely_family(profile.model.pretrained) == "flux"
    quantize = _nf4_tip(profile.model.quantize)
    if flux and profile.training.method == "lora" and quantize:
        add(quantize, "nf4", share=1.0)
    if not profile.precision.gradient_checkpointing:
        add("turn on gradient checkpointing (precision.gradient_checkpointing = true)", "activations")
    if profile.precision.mixed_precision == "no":
        add(f"use mixed precision (precision.mixed_precision = {_half_precision(profile, flux, bf16)})", "weights",
            "activations", "caches", "previews")
    if profile.optimizer.name in ("adamw", "lion"):
        # 8 bits for each of fp32's 32: the state's block-wise scales are a sliver beside it.
        add(f"use the 8-bit optimizer (optimizer.name = \"{profile.optimizer.name}8bit\")", "optimizer_state", share=0.75)
    # The profile rules let bf16 weights train only in bf16, and refuse the fused step under fp16: the tip says so.
    in_bf16 = "" if profile.precision.mixed_precision == "bf16" else "precision.mixed_precision = \"bf16\", "
    if profile.training.method == "full":
        if bf16 and not profile.precision.bf16_weights:
            add(f"keep the weights in bf16, with no fp32 copy ({in_bf16}precision.bf16_weights = true, on Ampere and newer)",
                "weights", "gradients", "optimizer_state", "activations", rival="method")
        # Refused under fp16 only: a card without bf16 fuses it in fp32.
        if not profile.optimizer.fused_backward and (bf16 or profile.precision.mixed_precision == "no"):
            unscaled = in_bf16 if profile.precision.mixed_precision == "fp16" else ""
            # Without bf16 the mixed precision offered is fp16, which refuses the fused step: the two are not both taken.
            kept = "" if bf16 else "; it needs bf16 or fp32, so keep precision.mixed_precision = \"no\" with it"
            add("fuse the optimizer step into the backward pass, so no full set of gradients exists "
                f"({unscaled}optimizer.fused_backward = true, with gradient_accumulation_steps = 1{kept})", "gradients",
                share=1.0, rival="accumulation")
    if profile.training.train_text_encoder:
        add("stop training the text encoder (training.train_text_encoder = false)", *_ALL)
    if not profile.dataset.cache_latents:
        add("cache latents (dataset.cache_latents = true)", "step_weights", "activations")
    if profile.prior.enabled:
        # Each step's pass takes the class images beside the instance images: twice the images.
        add("turn off prior preservation (prior.enabled = false)", "per_image", share=0.5)
    if profile.training.train_batch_size > 1:
        smaller = max(1, profile.training.train_batch_size // 2)
        add(f"lower training.train_batch_size to {smaller} and raise gradient_accumulation_steps to match", "per_image",
            share=1 - smaller / profile.training.train_batch_size, rival="accumulation")
    if profile.training.method == "full":
        add("train a LoRA on a quantized base (training.method = \"lora\", model.quantize = \"nf4\")"
            if flux else "train a LoRA (training.method = \"lora\"), which needs far less", *_ALL, rival="method")
    else:
        if not flux and quantize:
            add(quantize, "nf4", share=1.0)
        if profile.training.lora is not None and profile.training.lora.rank > 8:
            add(f"lower the LoRA rank (training.lora.rank = {profile.training.lora.rank // 2})", "lora", "gradients", "optimizer_state",
                share=0.5)
    if profile.dataset.resolution > LOWER_RESOLUTION:
        # The pictures' pixels, which the per-image activations and the previews' latents grow with.
        add(f"lower dataset.resolution to {LOWER_RESOLUTION}", "per_image", "caches", "previews",
            share=1 - (LOWER_RESOLUTION / profile.dataset.resolution) ** 2)
    return found


def _half_precision(profile: Any, flux: bool, bf16: bool) -> str:
    """The mixed precision an fp32 profile is told of. Flux in fp16 overflows to NaN (Flux.profile_warnings), and the
    profile rules refuse the fused step under fp16, which a full fine-tune is offered or uses: bf16 alone for those where
    the card has it. A full fine-tune already fused on a card without bf16 is told that fp16 needs it unfused."""
    if flux or (bf16 and profile.training.method == "full"):
        return "\"bf16\", on Ampere and newer"
    if profile.training.method == "full" and profile.optimizer.fused_backward:
        return "\"fp16\", with optimizer.fused_backward = false: fp16 refuses the fused step"
    return "\"fp16\", or \"bf16\" on Ampere and newer" if bf16 else "\"fp16\""


def _nf4_tip(quantize: str | None) -> str | None:
    """NF4 for a base loaded whole, or in 8 bits (int8 or fp8: NF4 halves those again); None where it is NF4."""
    if quantize == "nf4":
        return None
    if quantize:
        return f"load the frozen base in 4 bits (model.quantize = \"nf4\" rather than \"{quantize}\": half its weights' memory)"
    return "load the frozen base quantized (model.quantize = \"nf4\": a quarter of its weights' memory)"
