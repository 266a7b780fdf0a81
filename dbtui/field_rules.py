"""Which profile fields apply to a draft: LoRA options only with method = "lora", and so on.

The parameters form shows only the fields that apply. Where a value that does not apply is an
error (engine/profile/rules.py), switching it off sets the value aside in the session instead
of leaving the user a problem they can no longer see; switching back restores it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dbtui.session import Session
from engine.profile import Profile
from engine.profile.schema import SINGLE_FILE_EXPORTS


@dataclass(frozen=True)
class Rule:
    keys: tuple[str, ...]  # fields, or a whole section ("training.lora")
    control: str | tuple[str, ...]  # the field that decides, or the fields that decide together
    holds: Callable[..., bool]  # given each control's value in force (the schema's default when the draft has none)
    set_aside: bool = False  # a value here is an error while the rule does not hold

    @property
    def controls(self) -> tuple[str, ...]:
        return (self.control,) if isinstance(self.control, str) else self.control


def _is(value: str) -> Callable[[Any], bool]:
    return lambda v: v == value


def _on(value: Any) -> bool:
    return bool(value)


# Not a profile key: the family of the model the model step checked (``Session.advised_family``: a hub id not
# downloaded has its name's, as the help, the defaults and the problems panel have), for the fields one family cannot
# honour (engine/models/<family>.py ``check_profile``). While the model is unchecked, the family's fields are kept.
FAMILY = "model step's family"


def _not_flux(family: Any) -> bool:
    return family != "flux"


def _text_encoder_trains_here(family: Any, method: Any) -> bool:
    """Flux trains CLIP-L as a LoRA only (engine/models/flux.py); other families either way."""
    return family != "flux" or method == "lora"


RULES = (
    Rule(("training.lora",), "training.method", _is("lora"), set_aside=True),
    # Flux refuses min-SNR, clip_skip and a full fine-tune's text encoder; only Flux has flow options. A quantized base
    # suits any family's LoRA (the wizard offers it for Flux, parameters.py), so only the method sets it aside.
    Rule(("training.min_snr_gamma", "training.clip_skip"), FAMILY, _not_flux, set_aside=True),
    Rule(("training.train_text_encoder",), (FAMILY, "training.method"), _text_encoder_trains_here, set_aside=True),
    Rule(("training.flow",), FAMILY, _is("flux"), set_aside=True),
    Rule(("model.quantize",), "training.method", _is("lora"), set_aside=True),
    Rule(("training.text_encoder_stop_fraction",), "training.train_text_encoder", _on, set_aside=True),
    Rule(("training.lora.text_encoder_targets",), "training.train_text_encoder", _on),
    Rule(("prior.loss_weight", "prior.sample_batch_size", "prior.steps", "prior.guidance_scale"), "prior.enabled", _on),
    Rule(("dataset.buckets",), "dataset.bucketing", _on, set_aside=True),
    Rule(("optimizer.lr_warmup_steps",), "optimizer.lr_scheduler", lambda v: v != "constant", set_aside=True),
    Rule(("optimizer.lr_cycles",), "optimizer.lr_scheduler", _is("cosine_with_restarts")),
    Rule(("optimizer.lr_power",), "optimizer.lr_scheduler", _is("polynomial")),
)

CONTROLS = frozenset(control for rule in RULES for control in rule.controls)

# A list of which a family refuses some entries only (engine/models/<family>.py ``check_profile``): those leave it.
EXPORT = "saving.export"
REFUSED_EXPORTS = {"flux": SINGLE_FILE_EXPORTS}


def _governs(rule_key: str, key: str) -> bool:
    return key == rule_key or key.startswith(rule_key + ".")


def in_force(session: Session, control: str) -> Any:
    """The control's value in the draft, else the schema's default (every control sits in a section
    whose default is an instance, such as ``TrainingSection()``)."""
    if control == FAMILY:
        return session.advised_family
    value = session.get(control)
    if value is not None:
        return value
    section, name = control.split(".")
    return getattr(Profile.model_fields[section].default, name)


def _decided(session: Session, rule: Rule) -> bool:
    """Whether the rule's control is known: a family rule waits for the model step's check."""
    return FAMILY not in rule.controls or session.advised_family is not None


def applies(session: Session, key: str) -> bool:
    """Whether field ``key`` means anything with the draft's other values (a Flux-only field shows
    only once the model is known to be Flux)."""
    return all(_holds(session, rule) for rule in RULES if any(_governs(k, key) for k in rule.keys))


def _holds(session: Session, rule: Rule) -> bool:
    return rule.holds(*(in_force(session, control) for control in rule.controls))


def controls_of(values: dict[str, Any], prefix: str = "") -> set[str]:
    """The controls a partial profile (a preset) sets."""
    found = set()
    for name, value in values.items():
        key = prefix + name
        if isinstance(value, dict):
            found |= controls_of(value, key + ".")
        elif key in CONTROLS:
            found.add(key)
    return found


def settle(session: Session, changed: Iterable[str]) -> set[str]:
    """After the ``changed`` controls moved: set aside the values that stopped applying and are
    errors there, and restore those that apply again. The keys moved either way (none: the draft is as it was)."""
    changed = set(changed)
    moved: set[str] = set()
    for rule in RULES:
        if changed.isdisjoint(rule.controls) or not rule.set_aside or not _decided(session, rule):
            continue
        holds = _holds(session, rule)
        for key in rule.keys:
            value = session.get(key)
            if not holds and value is not None:
                session.aside[key] = value
                session.set(key, None)
                moved.add(key)
            elif holds and value is None and key in session.aside and applies(session, key):
                session.set(key, session.aside.pop(key))
                moved.add(key)
            elif holds and value is not None:
                session.aside.pop(key, None)  # the draft has its own value now (a preset's)
    if FAMILY in changed and session.advised_family is not None:
        moved |= _settle_exports(session)
    # A control set aside or restored moves the fields it decides (Flux sets train_text_encoder aside).
    if moved & CONTROLS - changed:
        moved |= settle(session, moved & CONTROLS)
    return moved


def _settle_exports(session: Session) -> set[str]:
    """Set aside the export formats the model's family refuses (an SDXL preset's "safetensors" under Flux), keeping the
    others, and add back those set aside that it writes. ``{EXPORT}`` where the list moved, else none."""
    refused = REFUSED_EXPORTS.get(session.advised_family or "", ())
    listed: list[str] = list(session.get(EXPORT) or [])
    aside: list[str] = session.aside.pop(EXPORT, [])
    out = [name for name in listed if name in refused]
    back = [name for name in aside if name not in refused and name not in listed]
    if out or back:
        # None where every format listed is refused: the schema's default, "diffusers", which every family writes.
        session.set(EXPORT, [name for name in listed if name not in refused] + back or None)
    if kept := list(dict.fromkeys([name for name in aside if name in refused] + out)):
        session.aside[EXPORT] = kept
    return {EXPORT} if out or back else set()


def aside_note(session: Session, moved: set[str]) -> str | None:
    """What ``settle`` just set aside, for a notification (None: nothing): a value that leaves the draft unseen would
    be missing from the saved profile and the run."""
    # One at the schema's default (a preset's clip_skip = 1, lr_warmup_steps = 0) changes nothing by leaving: not said.
    shown = [key if isinstance(session.aside[key], dict) else f"{key} = {session.aside[key]!r}"
             for key in sorted(moved - {EXPORT}) if key in session.aside and not _is_default(key, session.aside[key])]
    if EXPORT in moved and EXPORT in session.aside:
        shown.append(f"{' and '.join(map(repr, session.aside[EXPORT]))} of {EXPORT}")
    if not shown:
        return None
    return (f"Set aside, as they do not apply now: {', '.join(shown)}. They come back if you change back what ruled them "
            "out (the model or a setting).")


def _is_default(key: str, value: Any) -> bool:
    """Whether ``value`` is the schema's default for ``key`` (a field of a section, such as ``training.clip_skip``)."""
    section, _, name = key.partition(".")
    default = Profile.model_fields[section].default  # none for a section the profile must name (model)
    fields = getattr(type(default), "model_fields", {})
    return "." not in name and name in fields and getattr(default, name) == value
