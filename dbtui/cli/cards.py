"""``--card``: the cards `dbtui fit` and `dbtui hardware` judge a profile's memory against: a card read from its size
or its name, the cards judged by, a card's mark beside an estimate, and the precision a card trains at."""

from __future__ import annotations

import argparse
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.memory.estimate import MemoryEstimate

CARD_HELP = ("a card to judge the memory estimates against, by its size in GB or its name, e.g. --card 40 --card H100 "
             "--card 'RTX 4090' --card A100-40GB (repeat for several; replaces the default 8, 12, 16 and 24)")


# Above any one card (the largest carry 288 GB): a larger size is a typo (1e20, a size in MB) or a model number
# not in the name table (GTX 1650, GTX 960, which 1024 let through as 960 GB).
MAX_CARD_GB = 320


class Card(float):
    """A card's memory in GB, whether it has bf16 (a card named from before Ampere, a T4, has not), and the names it
    was asked by ("V100 16GB", "16"): a V100 and a 16 GB card with bf16 are two cards of one size."""

    bf16: bool = True
    names: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return ", ".join(self.names) or f"{self:g}"

    @property
    def key(self) -> str:
        """Its JSON key: the size, and where it has no bf16, that too."""
        return f"{self:g}" if self.bf16 else f"{self:g} no bf16"


def card_size(text: str) -> Card:
    """An argparse ``type``: a card's memory in GB (GiB, as cards are sold), a finite number above 0 and at most
    ``MAX_CARD_GB``; "80GB", "80 GiB" and "24G" in any case read as 80 and 24, a card's name ("H100") as its memory
    (engine.hardware.card_names). Rounded to 0.1 GB, as the verdicts print sizes: two that print alike are one card."""
    from engine.hardware.card_names import UnknownCardError, card_gb_by_name, has_bf16, is_card_name

    number = re.sub(r"\s*(gib|gb|g)$", "", text.strip(), flags=re.IGNORECASE)
    named = False
    try:
        if is_card_name(text):
            raise ValueError(text)  # "4090" is a card, not 4090 GB
        value = float(number)
    except ValueError:
        named = True
        try:
            value = card_gb_by_name(text)
        except UnknownCardError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    if not math.isfinite(value) or round(value, 1) <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a card size: give its memory in GB, above 0, e.g. 24 or 80")
    if value > MAX_CARD_GB:
        raise argparse.ArgumentTypeError(f"{text} is not a card size: give its memory in GB, at most {MAX_CARD_GB}, "
                                         "e.g. 24 or 80, or a card's name with its size, e.g. 'GTX 1650 4GB'")
    card = Card(round(value, 1))
    card.bf16 = has_bf16(text)
    card.names = (text.strip() if named else f"{card:g}",)
    return card


def cards_asked(asked: list[Card] | None) -> tuple[float, ...]:
    """The cards to judge by: those asked for, smallest first, one a size and bf16 (its names joined), else the default
    sizes. Equal as floats, a V100 16GB and a 16 GB card were one, judged and labelled as whichever came first."""
    from engine.memory.estimate import CARD_SIZES_GB

    if not asked:
        return CARD_SIZES_GB
    cards: dict[tuple[float, bool], Card] = {}
    for card in asked:
        same = cards.setdefault((float(card), card.bf16), card)
        # A name is read in any case (card_names): `--card T4 --card t4` is one card named once, not "T4, t4".
        if same is not card and _spelled(card.names[0]) not in map(_spelled, same.names):
            merged = Card(same)
            merged.bf16, merged.names = same.bf16, same.names + card.names
            cards[(float(card), card.bf16)] = merged
    return tuple(cards[key] for key in sorted(cards, key=lambda key: (key[0], not key[1])))


def _spelled(name: str) -> str:
    return " ".join(name.split()).casefold()


def card_mark(card: float, need: MemoryEstimate, own_bf16: bool | None = None) -> str:
    """"16 GB ✓" ("RTX 4090 (24 GB) ✓" for a card asked by name): whether the estimate ``need`` fits ``card``; where
    the card trains otherwise than the estimate beside its mark (``own_bf16``: a T4 has no bf16), its own need too:
    "T4 (no bf16): 23.4 GB ✗"."""
    from engine.memory.estimate import gb_beside

    fit = "✓" if need.fits(card) else "✗"
    if own_bf16 is None:
        # A card asked by name keeps it ("T4 (15 GB) ✓"): trained at the estimate's own precision, it read "15 GB ✓".
        named = [name for name in getattr(card, "names", ()) if name != f"{card:g}"]
        return f"{', '.join(named)} ({card:g} GB) {fit}" if named else f"{card:g} GB {fit}"
    return f"{getattr(card, 'label', f'{card:g}')} ({'bf16' if own_bf16 else 'no bf16'}): {gb_beside(need.run_need, (card,))} GB {fit}"


def trained_in(card: float, requested: str, here: str) -> str:
    """The mixed precision ``card`` trains a profile asking for ``requested`` at, as the trainer chooses it
    (engine.training.precision.effective_precision): bf16 falls back to fp16 on a card without it. A default size,
    named by no one, is judged as ``here``, the precision of the estimate made for this machine."""
    if not isinstance(card, Card):
        return here
    return "fp16" if requested == "bf16" and not card.bf16 else requested
