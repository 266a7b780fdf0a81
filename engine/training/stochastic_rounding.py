"""Writing fp32 values into bf16 weights with stochastic rounding.

Round-to-nearest loses every update smaller than half a bf16 step (2^-8 of the weight): at a
fine-tuning learning rate most updates are that small, so bf16 weights would barely move.
Rounding up or down at random, in proportion to the distance to each neighbour, keeps every
update on average, which is what lets the weights live in bf16 with no fp32 master copy.
"""

from __future__ import annotations

import torch

# bf16 is the upper half of an fp32's bits: this mask keeps it and clears the lower half.
_UPPER_HALF = -(1 << 16)  # 0xFFFF0000 as a signed int32


def stochastic_round_(target: torch.Tensor, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Write fp32 ``source`` into bf16 ``target``, rounding at random with the odds of the distances.

    Hand-written because torch has no public op for it. Adding a uniform random 16-bit number to
    the fp32 bits carries into the kept upper half with probability (dropped lower half) / 2^16,
    exactly the fraction of the way to the next bf16 number; truncating then rounds up that
    often and down otherwise, for either sign (the bits are sign and magnitude). The draws come
    from ``generator``, so the same generator state gives the same weights.
    """
    bits = source.detach().float().contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, bits.shape, dtype=torch.int32, device=bits.device, generator=generator)
    rounded = noise.add_(bits).bitwise_and_(_UPPER_HALF)
    # The lower half is zero now, so this conversion to bf16 is exact.
    return target.copy_(rounded.view(torch.float32))
