"""The memory meter's estimate as JSON, and as an exit status: for scripts that choose a card to rent
(``dbtui fit --json``, and the figures of ``dbtui hardware --json``'s presets)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.memory.estimate import MemoryEstimate

EXIT_FITS, EXIT_MISSES, EXIT_NO_ESTIMATE = 0, 1, 2


@dataclass(frozen=True)
class Judged:
    """The estimate made for this machine (at precision ``here``), each card to judge with the precision it trains
    at, and the estimate of each such precision that could be made."""

    estimate: MemoryEstimate
    here: str
    judged: list[tuple[float, str]]
    estimates: dict[str, MemoryEstimate]

    def fits(self, card: float, precision: str) -> bool | None:
        """Whether ``card`` holds the run as it trains it; None where that precision's estimate could not be made."""
        return self.estimates[precision].fits(card) if precision in self.estimates else None

    def cards_fit(self) -> bool | None:
        """Whether every card judged holds the run: False where one misses it, else None where one has no estimate (a
        T4's fp16 estimate that failed was counted as missing it, exit 1 rather than 2)."""
        verdicts = [self.fits(card, precision) for card, precision in self.judged]
        return False if False in verdicts else None if None in verdicts else True


def need_json(need: MemoryEstimate) -> dict[str, float]:
    """What a card must hold, in GB: run_card_gb (the whole run, what "fits" judges), card_gb (the steps alone)."""
    from engine.memory.estimate import GIB

    return {"run_card_gb": round(need.run_need / GIB, 2), "card_gb": round(need.card_need / GIB, 2),
            "peak_gb": round(need.peak_allocated / GIB, 2), "caching_card_gb": round(need.caching_card_need / GIB, 2),
            "sampling_card_gb": round(need.sampling_card_need / GIB, 2)}


def card_key(card: float) -> str:
    return getattr(card, "key", f"{card:g}")


def exit_status(made: Judged | None, asked: bool) -> int:
    """0 where every card ``asked`` about (--card) holds the run, 1 where one does not, 2 without an estimate (for one
    of them, where the others hold it). Without --card, 0: the default sizes are a view, not a question."""
    if made is None:
        return EXIT_NO_ESTIMATE
    fit = made.cards_fit() if asked else True
    return EXIT_FITS if fit else EXIT_MISSES if fit is False else EXIT_NO_ESTIMATE


def estimate_json(made: Judged | None, asked: bool) -> int:
    """Print ``made`` as one JSON object (nothing where there is no estimate: its reason went to stderr), and return
    the exit status."""
    from dbtui.cli.cards import card_mark
    from engine.memory.estimate import GIB

    if made is None:
        return exit_status(made, asked)
    estimate = made.estimate
    verdicts = {}
    for card, precision in made.judged:
        need = made.estimates.get(precision)
        verdicts[card_key(card)] = {
            "verdict": card_mark(card, need, None if precision == made.here else precision == "bf16") if need else
            f"no estimate in {precision}", "fits": made.fits(card, precision), "precision": precision,
            "run_card_gb": round(need.run_need / GIB, 2) if need else None}
    parts = ("weights", "gradients", "optimizer_state", "activations", "caches")
    print(json.dumps({
        **need_json(estimate), "precision": made.here, "model": estimate.model, "resolution": [estimate.width, estimate.height],
        "batch": estimate.batch, "peak_phase": estimate.peak_phase,
        "parts_gb": {part: round(getattr(estimate, part) / GIB, 2) for part in parts},
        "fits": {card_key(card): made.fits(card, precision) for card, precision in made.judged},
        "cards_asked_fit": made.cards_fit() if asked else None,
        "card_verdicts": verdicts, "guessed_architecture": estimate.guessed_architecture, "notes": list(estimate.notes),
    }, indent=2))
    return exit_status(made, asked)
