"""Presets: partial profiles merged into the draft. Values follow the hardware verdict's tiers
and the usual DreamBooth advice (person/object: prior preservation; style: no class images).

The wizard offers each model family its own (``presets_for``), and cpu-demo in the demo alone. The
SD presets keep the draft's resolution; the SDXL ones set SDXL's 1024 px and bf16 (on a GPU
without bf16 the trainer falls back to fp16 and keeps the VAE in fp32, since SDXL's VAE
overflows in fp16). profiles/sdxl-*.toml explain the same choices. The Flux ones train a LoRA on a
quantized base; profiles/flux-lora-*.toml explain them. A tier preset applied after another puts
back what the first set and it does not (``preset_values``).

Each full fine-tune preset fits the smallest card of its tier by the memory meter (bench/memory.py
--presets stores the estimates; ``dbtui hardware`` shows them): where it would not, it takes the
memory savers, which need bf16. The optimizer step fused into the backward pass (no full set of
gradients) needs gradient accumulation off; bf16 weights (no fp32 copy) only where a tier needs
them, since stochastically rounded updates are noisier. Every tier preset sets both savers, on or
off, so that applying one after another leaves none behind that the next cannot run with. A GPU
without bf16 trains these in fp16 without the savers; the hardware advice then recommends a
preset that fits that way.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from dbtui.session import Session


def _flux_lora(resolution: int) -> dict[str, Any]:
    """A Flux.1 LoRA preset on an NF4 base at ``resolution``; SD settings Flux refuses are cleared."""
    return {
        "model": {"quantize": "nf4"},
        "dataset": {"resolution": resolution, "cache_latents": True},
        "training": {"method": "lora", "lora": {"rank": 16, "alpha": 16.0}, "train_text_encoder": False, "clip_skip": 1,
                     "min_snr_gamma": None, "flow": {"timestep_sampling": "logit_normal", "guidance": 1.0}},
        "optimizer": {"name": "adamw8bit", "learning_rate": 1e-4, "lr_scheduler": "constant", "lr_warmup_steps": 0,
                      "fused_backward": False},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": True, "bf16_weights": False},
        "saving": {"export": ["lora_diffusers", "lora_kohya"], "unet_half": False},
    }


PRESETS: dict[str, dict[str, Any]] = {
    "cpu-demo": {
        "model": {"quantize": None},
        "dataset": {"resolution": 64}, "training": {"method": "full", "lora": None, "max_train_steps": 600},
        "precision": {"mixed_precision": "no", "gradient_checkpointing": False, "bf16_weights": False},
        "optimizer": {"name": "adamw", "fused_backward": False}, "saving": {"export": ["diffusers"]},
    },
    "lora": {
        "training": {"method": "lora", "lora": {"rank": 16, "alpha": 16.0}, "train_text_encoder": False},
        # 8-bit Adam like profiles/sd15-lora-8gb.toml: the tier under 8 GB takes every memory saver.
        "optimizer": {"name": "adamw8bit", "learning_rate": 1e-4, "fused_backward": False},
        "precision": {"mixed_precision": "fp16", "gradient_checkpointing": True, "bf16_weights": False},
        # kohya too, as profiles/sd15-lora-8gb.toml: ComfyUI and the WebUIs load that one, not the diffusers file.
        "dataset": {"cache_latents": True}, "saving": {"export": ["lora_diffusers", "lora_kohya"], "unet_half": False},
    },
    # 8 GB: in fp16 with fp32 weights this needs about 9.9 GB on the card; bf16 weights and the fused
    # step bring it to about 5.2 GB.
    "full-8bit": {
        "model": {"quantize": None},
        "training": {"method": "full", "lora": None, "train_text_encoder": False, "gradient_accumulation_steps": 1},
        "optimizer": {"name": "adamw8bit", "learning_rate": 2e-6, "fused_backward": True},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": True, "bf16_weights": True},
        "dataset": {"cache_latents": True}, "saving": {"export": ["diffusers"]},
    },
    # 16 GB: AdamW's fp32 state with a full set of gradients (fp16, no fused step) needs about 15.1 GB on the card;
    # the fused step frees the gradients (12.1 GB).
    "full": {
        "model": {"quantize": None},
        "training": {"method": "full", "lora": None, "train_text_encoder": False, "gradient_accumulation_steps": 1},
        "optimizer": {"name": "adamw", "learning_rate": 2e-6, "fused_backward": True},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": True, "bf16_weights": False},
        "saving": {"export": ["diffusers"]},
    },
    "full-text-encoder": {
        "model": {"quantize": None},
        "training": {"method": "full", "lora": None, "train_text_encoder": True},
        "optimizer": {"name": "adamw", "learning_rate": 1e-6, "fused_backward": False},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": False, "bf16_weights": False},
        "saving": {"export": ["diffusers"]},
    },
    "sdxl-lora": {
        "dataset": {"resolution": 1024, "cache_latents": True},
        "training": {"method": "lora", "lora": {"rank": 16, "alpha": 16.0}, "train_text_encoder": False},
        "optimizer": {"name": "adamw8bit", "learning_rate": 1e-4, "lr_scheduler": "constant", "lr_warmup_steps": 0,
                      "fused_backward": False},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": True, "bf16_weights": False},
        "saving": {"export": ["lora_diffusers", "lora_kohya"], "unet_half": False},
    },
    "sdxl-full": {
        "model": {"quantize": None},
        "dataset": {"resolution": 1024, "cache_latents": True},
        "training": {"method": "full", "lora": None, "train_text_encoder": False, "gradient_accumulation_steps": 1},
        # Adafactor keeps factored second moments and no first moment: far less memory than AdamW's two
        # full-size states. With the 2.6 B-parameter UNet's fp32 gradients as well (fp16, no fused step) the meter
        # says 23.4 GB on the card; the fused step frees them: 14.5 GB.
        "optimizer": {"name": "adafactor", "learning_rate": 1e-6, "lr_scheduler": "constant_with_warmup", "lr_warmup_steps": 100,
                      "fused_backward": True},
        "precision": {"mixed_precision": "bf16", "gradient_checkpointing": True, "bf16_weights": False},
        "saving": {"export": ["diffusers", "safetensors"], "unet_half": True},
    },
    # Flux.1 LoRA on a frozen NF4 base (6 GB instead of bf16's 22 GB). The meter, at batch 1 on FLUX.1-dev:
    # the steps need 9.2 GB on the card at 512 px (10.8 GB with prior preservation) and 12.4 GB at 1024 px
    # (17.2 GB). Before the first step the prompts are cached with T5-XXL (9 GB in bf16) on the GPU, before
    # the transformer comes: 11.0 GB for that moment at either size. So the 512 px one fits a 12 GB card and
    # the 1024 px one 16 GB (24 GB with prior preservation). At 1024 px an int8 base needs 18.3 GB, an fp8
    # one 16.0 GB, a bf16 one 28.1 GB.
    # SD settings that Flux refuses (engine/models/flux.py) are cleared.
    "flux-lora-16gb": _flux_lora(512),
    "flux-lora-24gb": _flux_lora(1024),
    "person": {"prior": {"enabled": True, "loss_weight": 1.0}, "dataset": {"hflip": False}},
    "style": {"prior": {"enabled": False}, "dataset": {"hflip": True}},
}

# Added to any other preset: what is trained (a person with class images, a style without); the
# others each set how to train for a tier of cards, and bench/memory.py --presets measures them.
MODIFIERS = ("person", "style")
TIER_PRESETS = tuple(name for name in PRESETS if name not in MODIFIERS)
DEMO_ONLY = "cpu-demo"  # 64 px, 600 steps, fp32: right for the demo's tiny model alone


def presets_for(family_id: str | None, demo: bool = False) -> list[str]:
    """The presets that suit a model of ``family_id`` (None: not checked yet): the family's own tier presets,
    those its hardware advice recommends from (engine.hardware.machine.FAMILY_PRESETS; SD1.5's and SDXL's while the
    family is unknown), cpu-demo in the ``demo`` session alone, and the modifiers."""
    from engine.hardware.machine import FAMILY_PRESETS

    families = [family_id] if family_id in FAMILY_PRESETS else ["sd", "sdxl"]
    tiers = {name for family in families for name in FAMILY_PRESETS[family]} | ({DEMO_ONLY} if demo else set())
    return [name for name in PRESETS if name in tiers or name in MODIFIERS]


def preset_values(session: Session, name: str) -> dict[str, Any]:
    """What applying preset ``name`` merges into the draft. For a tier preset, also the draft's own values
    back for the settings the tier preset applied before it set and this one does not, where the user left
    them as that preset put them: one tier preset after another then leaves the draft as the second alone
    would (cpu-demo's 600 steps, sdxl-full's warm-up and 1024 px stayed behind)."""
    from engine.profile import merged_tables

    preset = PRESETS[name]
    if name not in TIER_PRESETS:
        return preset
    untouched = {key: before for key, (before, put) in session.preset_left.items() if _as_left(session, key) == put}
    draft = Session(data=copy.deepcopy(session.data))  # the draft as it was before those settings were put
    draft.merge(_nested(untouched))
    owned = _flat(preset)
    session.preset_left = {key: (draft.get(key), value) for key, value in owned.items()}
    back = {key: before for key, before in untouched.items() if key not in owned}
    for key, before in untouched.items():
        if key in session.aside and session.get(key) is None:
            # The preset's value, set aside, gives way: the new preset's own, or the draft's own, which goes back aside
            # in its place, for settle to restore where its rule holds again (the demo's 60-step warm-up under the
            # cosine put back): merged into the draft beside a constant schedule the user chose, it was an error.
            del session.aside[key]
            if key in back and back.pop(key) is not None:
                session.aside[key] = before
    return merged_tables(_nested(back), preset)


def _as_left(session: Session, key: str) -> Any:
    """``key``'s value in the draft, or the one set aside while it does not apply: a preset's lr_warmup_steps = 0 under
    its own constant schedule is set aside, and read as the user's change it was kept when the next preset put back
    a warm-up schedule (the demo's cosine came back with no warm-up instead of its 60 steps)."""
    value = session.get(key)
    return session.aside.get(key) if value is None else value


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A partial profile's settings by dotted key."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)
    return nested


def advice_family_of(family_id: str | None, pretrained: str | None, resolution: int | None = None) -> str:
    """The hardware advice's family (engine.hardware.machine.FAMILIES) for a model of ``family_id`` (None: not checked
    yet, advised as SD1.5): an SD model ``pretrained`` that is SD2.x is advised by the presets' figures on SD2.1-base,
    and an SD draft trained above 512 px (``resolution``; the SD presets keep it) by their figures at the smallest size
    measured at or above it (``sized_family``)."""
    from engine.hardware.machine import FAMILIES, sized_family
    from engine.model_info import advice_family

    advice = advice_family(pretrained) if family_id == "sd" and pretrained else family_id
    return sized_family(advice, resolution) if advice in FAMILIES else "sd"


def guessed_note(session: Session) -> str | None:
    """Where the presets' family is ``Session.guessed_family``, the sentence that says it was guessed from the model's
    name, as ``dbtui hardware --profile`` says it; None where the model's files gave it."""
    if session.family_id is not None or session.guessed_family is None:
        return None
    from dbtui.family_guess_words import guessed_from_name

    source = session.get("model.pretrained")
    return guessed_from_name(source, advice_family_of(session.guessed_family, source))


def recommended_preset(hardware: Any, family_id: str | None, demo: bool = False, pretrained: str | None = None,
                       prior: bool = True, resolution: int | None = None) -> str | None:
    """The preset the hardware advice (engine.hardware.machine.verdict) recommends on ``hardware`` for a model of
    ``family_id`` (``advice_family_of``) trained with prior preservation or without (``prior``) at ``resolution``,
    where the wizard offers it for that model; None where even the family's smallest does not fit the card (`dbtui
    hardware` says "none"): an 8 GB card was pre-selected flux-lora-16gb, which needs 11 GB."""
    from engine.hardware.machine import too_small, verdict

    family = advice_family_of(family_id, pretrained, resolution)
    _, preset = verdict(hardware, family, prior)
    if too_small(hardware, preset, family, prior) or _unmeasured(family, resolution) is not None:
        return None
    return preset if preset in presets_for(family_id, demo) else None


def no_preset_note(hardware: Any, family_id: str | None, pretrained: str | None = None, prior: bool = True,
                   resolution: int | None = None) -> str | None:
    """Where no preset of the model's family fits the card, the sentence that says so with the hardware advice's own
    (what needs how much, what to train here instead), or where the draft trains above every size the presets were
    measured at; None where one fits, or without a GPU."""
    from engine.hardware.machine import too_small, unmeasured_text, verdict

    family = advice_family_of(family_id, pretrained, resolution)
    if hardware.gpus and (largest := _unmeasured(family, resolution)) is not None:
        # A smaller size's figures would pick a preset the draft's size may not fit: none is pre-selected.
        said = unmeasured_text(largest, resolution)
        return (f"{said[:1].upper()}{said[1:]}, so none is picked for this card: save the profile and run "
                "`dbtui fit PROFILE` for its own need.")
    sentence, preset = verdict(hardware, family, prior)
    return f"No preset fits this card for this model. {sentence}" if too_small(hardware, preset, family, prior) else None


def _unmeasured(family: str, resolution: int | None) -> int | None:
    from engine.hardware.machine import unmeasured_size

    return unmeasured_size(family, resolution)


def preset_choices(session: Session) -> list[tuple[str, str]]:
    """(label, name) of each preset the wizard offers for the draft's model, labelled by the cards the advice picks it
    for by this model's figures (SD2's differ from SD1.5's) and as the draft trains, with prior preservation or
    without: judged with it always, a Flux profile without it heard "(18 GB and up)" where `dbtui hardware --profile`
    recommends it for 16 GB."""
    family = advice_family_of(session.advised_family, session.get("model.pretrained"), session.trains_at)
    return [(preset_label(name, family, session.trains_prior), name) for name in presets_for(session.advised_family,
                                                                                            session.demo)]


# What each preset is; ``preset_label`` adds the cards it is the advice's pick for. Short: the Parameters step shows the
# whole label in its closed dropdown, 73 columns at 80 (tests/test_wizard_80x24.py).
PRESET_NAMES = {
    "cpu-demo": "CPU demo (tiny model, fp32)",
    "lora": "LoRA",
    "full-8bit": "Full, 8-bit Adam, bf16 weights",
    "full": "Full fine-tune",
    "full-text-encoder": "Full + text encoder",
    "sdxl-lora": "SDXL LoRA, 1024 px",
    "sdxl-full": "SDXL full, Adafactor, 1024 px",
    "flux-lora-16gb": "Flux LoRA, NF4 base, 512 px",
    "flux-lora-24gb": "Flux LoRA, NF4 base, 1024 px",
    "person": "Person / object DreamBooth (prior preservation)",
    "style": "Style / native fine-tune (no class images)",
}
_LARGEST_CARD_GB = 200  # past every preset's need: the cards are scanned up to the family's largest preset


def preset_label(name: str, family: str = "sd", prior: bool = True) -> str:
    """``name``'s label with the cards (whole GB) the hardware advice for ``family`` picks it for, with bf16 and, where
    they differ, without it (the bf16 presets then train in fp16, with no fused step): "Full fine-tune (13–17 GB; 16–17
    GB without bf16)". Derived from the advice, hence from the meter's stored rows of that family: a hand-written
    "(18 GB and up)" told an SD2 user that full-text-encoder fits a 20 GB card, where SD2's rows say 20.7 GB. A preset
    of another family is labelled by its own (SD1.5's and SDXL's are offered while the model is not checked). ``prior``:
    the advice judges the presets with prior preservation, or as a profile without it trains them."""
    from engine.hardware.machine import FAMILY_PRESETS

    if name not in FAMILY_PRESETS.get(family, ()):
        family = next((own for own, names in FAMILY_PRESETS.items() if name in names), family)
    spans = [_cards_span(_picks(family, bf16, prior).get(name)) for bf16 in (True, False)]
    parts = [spans[0]] + ([f"{spans[1]} without bf16"] if spans[1] != spans[0] else [])
    cards = "; ".join(part for part in parts if part)
    return f"{PRESET_NAMES[name]} ({cards})" if cards else PRESET_NAMES[name]


def _cards_span(cards: tuple[int, int | None] | None) -> str:
    if cards is None:
        return ""
    low, high = cards
    return f"{low} GB and up" if high is None else f"{low} GB" if low == high else f"{low}–{high} GB"


@functools.lru_cache(maxsize=None)
def _picks(family: str, bf16: bool, prior: bool = True) -> dict[str, tuple[int, int | None]]:
    """preset → (the smallest card, the largest; None: any larger) the advice for ``family`` recommends it on."""
    from engine.hardware.machine import FAMILY_PRESETS, card_hardware, too_small, verdict

    picks: dict[str, tuple[int, int | None]] = {}
    for card in range(1, _LARGEST_CARD_GB + 1):
        machine = card_hardware(card, bf16)
        preset = verdict(machine, family, prior)[1]
        if too_small(machine, preset, family, prior):
            continue
        picks[preset] = (picks.get(preset, (card, card))[0], card)
        if preset == FAMILY_PRESETS[family][-1]:  # the largest: picked on every larger card
            picks[preset] = (picks[preset][0], None)
            break
    return picks
