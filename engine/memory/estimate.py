"""What the memory meter reports: one training step's peak GPU memory, broken down, and which cards it fits.

No torch here: the CLI, the wizard and ``engine.runs.fit`` read estimates without importing it.
Sizes are bytes; "GB" in what people read means GiB (2**30 bytes), as cards are sold and
``nvidia-smi`` counts them: an "8 GB" card has 8 GiB.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

GIB = 2**30
# The CUDA driver context, cuBLAS and cuDNN handles and the kernels they load (lazily, as torch
# does by default since CUDA 11.7): about 0.5-1 GB measured by others on recent cards. It is
# outside torch's allocator, so torch.cuda.max_memory_allocated never shows it, but the card must
# hold it. The middle of that range, until a GPU of our own measures it.
CUDA_CONTEXT_BYTES = int(0.75 * GIB)
# The caching allocator reserves more than it hands out (block rounding, fragmentation); 10 % is
# the usual gap between max_memory_reserved and max_memory_allocated in training. Used only to
# say whether a card fits, never in the breakdown.
ALLOCATOR_SLACK = 0.10
CARD_SIZES_GB = (8, 12, 16, 24)


def gb_beside(size: int, cards: Iterable[float] = ()) -> str:
    """``size`` bytes in GB as read beside ``cards`` (GB, to 0.1 as cards are given): to 0.1, or to 0.01 rounded up
    where 0.1 would read as no more than a card it misses: "12.3 GB … fits 12.3 GB ✗" of a 12.31 GB need."""
    gb = size / GIB
    if any(size > card * GIB and float(f"{gb:.1f}") <= card for card in cards):
        return f"{math.ceil(gb * 100) / 100:.2f}"
    return f"{gb:.1f}"


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak GPU memory of one steady-state training step (the optimizer's state already exists).

    The five parts add up to ``peak_allocated``, what ``torch.cuda.max_memory_allocated`` reports
    for the same profile. ``activations`` is everything the step holds for a while besides
    gradients: tensors saved for the backward pass, the half-precision copies autocast makes of
    fp32 weights (``autocast_weight_copies``, a part of it), and, when the peak is the optimizer's
    update, that update's temporaries.
    """

    weights: int  # every weight on the device: the denoiser, and encoders or VAE that stay there
    gradients: int  # gradients alive at the peak (with DDP's bucket copy when several processes train)
    optimizer_state: int
    activations: int
    caches: int  # cached latents and text embeddings, which stay on the device
    autocast_weight_copies: int  # part of activations
    peak_phase: str  # "backward" or "optimizer step": where the peak falls
    model: str  # what was measured, in words
    batch: int  # images per UNet pass (twice the batch size with prior preservation)
    height: int
    width: int
    seconds: float  # how long the meter took
    notes: tuple[str, ...] = field(default_factory=tuple)
    cuda_context: int = CUDA_CONTEXT_BYTES
    # Allocated at the caching pass before the first step, when the VAE and the text encoders are on the
    # GPU while the caches fill (engine/memory/caching.py); 0 when nothing is cached. Not part of the step's peak.
    caching: int = 0
    caching_text: bool = False  # that pass's peak is the text encoders' moment (T5-XXL), whatever dataset.resolution
    # Allocated while previews or scoring images are generated (engine/memory/sampling.py): the denoiser,
    # the VAE back on the GPU, the optimizer's state, one generation. 0 when the run neither samples nor scores.
    sampling: int = 0
    # Made on a family's published architecture guessed from the name of a model not on this machine.
    guessed_architecture: bool = False
    # Part of weights: what model.quantize = "nf4" would take off them, the layers it quantizes as held now less as
    # NF4 stores them (a LoRA's base not in NF4 yet; 0 otherwise). The LoRA, embeddings and norms stay as they are.
    nf4_saving: int = 0

    @property
    def peak_allocated(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.activations + self.caches

    @property
    def card_need(self) -> int:
        """What a card must have: the peak with the allocator's slack, plus the CUDA context."""
        return int(self.peak_allocated * (1 + ALLOCATOR_SLACK)) + self.cuda_context

    @property
    def caching_card_need(self) -> int:
        """What a card must have for the caching pass (0 when nothing is cached)."""
        return int(self.caching * (1 + ALLOCATOR_SLACK)) + self.cuda_context if self.caching else 0

    @property
    def sampling_card_need(self) -> int:
        """What a card must have while previews are generated (0 when the run neither samples nor scores)."""
        return int(self.sampling * (1 + ALLOCATOR_SLACK)) + self.cuda_context if self.sampling else 0

    @property
    def run_need(self) -> int:
        """What a card must have for the whole run: the step, the caching pass or the sampling moment, the largest."""
        return max(self.card_need, self.caching_card_need, self.sampling_card_need)

    def fits(self, card_gb: float) -> bool:
        """Whether the whole run fits: the step, and the caching and sampling passes around it."""
        return self.run_need <= card_gb * GIB

    def fit_line(self, cards: tuple[float, ...] = CARD_SIZES_GB) -> str:
        """``fits 8 GB ✗ · 12 GB ✓ · 16 GB ✓ · 24 GB ✓``."""
        return "fits " + " · ".join(f"{card:g} GB {'✓' if self.fits(card) else '✗'}" for card in cards)

    def breakdown_lines(self) -> list[str]:
        """The parts, one per line, for people."""

        def gb(size: int) -> str:
            return f"{size / GIB:6.2f} GB"

        copies = f" (autocast copies of weights {self.autocast_weight_copies / GIB:.2f} GB)" if self.autocast_weight_copies else ""
        return [
            f"weights          {gb(self.weights)}",
            f"gradients        {gb(self.gradients)}",
            f"optimizer state  {gb(self.optimizer_state)}",
            f"activations      {gb(self.activations)}{copies}",
            f"caches           {gb(self.caches)}",
            f"peak allocated   {gb(self.peak_allocated)}  at the {self.peak_phase}",
            f"+ CUDA context   {gb(self.cuda_context)}  and {ALLOCATOR_SLACK:.0%} allocator slack: "
            f"{self.card_need / GIB:.2f} GB on the card",
            *([f"caching pass     {gb(self.caching)}  before the first step, the encoders on the GPU: "
               f"{self.caching_card_need / GIB:.2f} GB on the card"] if self.caching else []),
            *([f"sampling pass    {gb(self.sampling)}  previews and scoring, the VAE back on the GPU: "
               f"{self.sampling_card_need / GIB:.2f} GB on the card"] if self.sampling else []),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryEstimate:
        return cls(**{**data, "notes": tuple(data.get("notes", ()))})
