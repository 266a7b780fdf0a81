"""The savers that would let a profile fit a card, each with what it takes away by the meter's own parts, those that
close the gap alone first: a Flux LoRA at 1024 px with prior preservation, 1.2 GB over a 16 GB card, was told to
lower its LoRA rank (0.2 GB) first, and neither the 512 px that takes 7 GB nor prior preservation's 4.8 GB."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.memory.estimate import ALLOCATOR_SLACK, GIB, MemoryEstimate
from engine.memory.savers import AT_SAMPLING, IN_STEP, Saver, fit_savers, joined, most_saved


@dataclass(frozen=True)
class Cut:
    """A saver, the bytes it takes away on the card at the moment that needs the most (or, where it takes nothing
    there, at the other that misses the card: ``at`` names it), whether the meter's parts say how much (else: at most
    that), whether alone it brings every moment that misses the card under it, and the moment whose gap its known
    figure closes where it closes that one alone ("the steps", with the previews still over the card)."""

    saver: Saver
    saved: int
    known: bool
    enough: bool
    at: str = ""
    closes: str = ""


def fit_cuts(profile: Any, estimate: MemoryEstimate, card: int, bf16: bool = True) -> list[Cut] | None:
    """``fit_savers`` for a card of ``card`` bytes as cuts, those known to close the gap alone first, then those known
    to close the gap where they are said, then by what they take away; None where no setting helps. An "up to" figure is
    a bound: checkpointing's "up to 1.3 GB" stood above the fused step's measured 3.3 GB that closed the steps' gap."""
    found = fit_savers(profile, estimate, card, bf16)
    if found is None:
        return None
    # The moments: (their name, the parts on the GPU then, at most how much of them, the bytes over the card).
    moments = [("the steps", IN_STEP, None, estimate.card_need - card),
               ("the previews", AT_SAMPLING, estimate.sampling, estimate.sampling_card_need - card)]
    largest = moments[1] if estimate.sampling_card_need > estimate.card_need else moments[0]  # the need the advice names
    missing = [moment for moment in moments if moment[3] > 0]

    def saved(saver: Saver, moment: tuple) -> int:
        _, present, most, _ = moment
        taken = most_saved([saver], profile, estimate, present) * (saver.share or 1)
        return int((taken if most is None else min(most, taken)) * (1 + ALLOCATOR_SLACK))

    def cut(saver: Saver) -> Cut:
        enough = saver.share is not None and all(saved(saver, moment) >= moment[3] for moment in missing)
        # A previews' saver where the steps miss the card too takes nothing from the steps: said at the previews.
        said_at = next((moment for moment in [largest, *missing] if saved(saver, moment)), largest)
        closes = saver.share is not None and said_at[3] > 0 and saved(saver, said_at) >= said_at[3]
        return Cut(saver, saved(saver, said_at), saver.share is not None, enough,
                   "" if said_at is largest else f" at {said_at[0]}", said_at[0] if closes and not enough else "")

    return sorted(map(cut, found), key=lambda cut: (not cut.enough, not cut.closes, -cut.saved))


def cuts_text(cuts: list[Cut], card_gb: float) -> str:
    """The cuts as settings to write, each with what it saves; where none is known to close the gap alone, that said."""
    said = joined([(cut.saver, f"{cut.saver.tip}, {'about' if cut.known else 'up to'} {cut.saved / GIB:.1f} GB less{cut.at}"
                                f"{_enough_mark(cut)}") for cut in cuts])
    if any(cut.enough for cut in cuts):
        return said
    # One choice (a lone saver, or rivals that cannot be followed together): "take several" had nothing to take, and
    # sdxl-person.toml on a T4 was told so of the LoRA that `dbtui hardware` shows fitting it.
    if len({cut.saver.rival or cut.saver.tip for cut in cuts}) == 1:
        if all(cut.known for cut in cuts):  # the meter's own figure falls short: not "not known"
            return f"{said}; by the estimate {'that' if len(cuts) == 1 else 'each'} alone leaves it over {card_gb:g} GB: it needs a larger card"
        which = "it" if len(cuts) == 1 else "the one you choose"
        return (f"{said}; whether that alone brings it under {card_gb:g} GB is not known: set {which} and estimate "
                "again (dbtui fit PROFILE --estimate-only --set …)")
    return f"{said}; no one of these alone is known to bring it under {card_gb:g} GB: take several"


def _enough_mark(cut: Cut) -> str:
    if cut.enough:
        return " (enough on its own)"
    return f" (enough for {cut.closes})" if cut.closes else ""
