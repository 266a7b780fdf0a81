"""On a GPU: where one full fine-tuning step of SD1.5's UNet spends memory and time, part by part.

    python bench/step_parts.py

SD1.5's random-weight UNet (builtin:sd15-random), batch 2 (an instance and a class image), 512 px.

**Memory**: fp32 weights under fp16 autocast, forward and backward, with and without gradient
checkpointing, three ways: the backward pass inside autocast with its cache of weight copies (as
dbtui trained before), outside it with the cache, and outside without the cache (as the trainer runs
now: engine/training/steps.py, engine/training/accelerator.py). GB above the weights: after the
forward pass, the step's peak, the gradients.

**Time**: forward and backward, then the optimizer step, ms each (median of 5 after 3 warm-ups):
fp32 weights with one 8-bit AdamW over all of them; one per weight after the backward pass; one per
weight fused into it (optimizer.fused_backward); then bf16 weights with stochastic rounding
(precision.bf16_weights) after and inside the backward pass: the memory savers' costs apart.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GIB = 2**30
WARM, TIMED = 3, 5


def inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device="cuda").manual_seed(0)
    latents = torch.randn(2, 4, 64, 64, device="cuda", generator=generator)
    text = torch.randn(2, 77, 768, device="cuda", generator=generator)
    return latents, torch.tensor([10, 500], device="cuda"), text


def memory_row(unet: Any, checkpointing: bool, backward_inside: bool, cache: bool) -> str:
    model = copy.deepcopy(unet).cuda().train()
    if checkpointing:
        model.enable_gradient_checkpointing()
    latents, timesteps, text = inputs()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    autocast = torch.autocast("cuda", dtype=torch.float16, cache_enabled=cache)
    with autocast:
        loss = model(latents, timesteps, text).sample.float().pow(2).mean()
        after_forward = torch.cuda.memory_allocated() - base
        if backward_inside:
            loss.backward()
    if not backward_inside:
        loss.backward()
    peak = torch.cuda.max_memory_allocated() - base
    gradients = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    del model, loss
    torch.cuda.empty_cache()
    how = f"{'inside' if backward_inside else 'outside'} autocast, cache {'on' if cache else 'off'}"
    return (f"| {'yes' if checkpointing else 'no'} | {how} | {base / GIB:.2f} | {after_forward / GIB:.2f} | "
            f"{peak / GIB:.2f} | {gradients / GIB:.2f} |")


Setup = Callable[[], tuple[Any, torch.dtype, torch.optim.Optimizer]]


def time_row(label: str, setup: Setup) -> str:
    model, dtype, optimizer = setup()
    model.enable_gradient_checkpointing()
    model.train()
    latents, timesteps, text = inputs()
    passes, steps = [], []
    for i in range(WARM + TIMED):
        torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype, cache_enabled=False):
            loss = model(latents, timesteps, text).sample.float().pow(2).mean()
        loss.backward()
        torch.cuda.synchronize()
        stepped = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if i >= WARM:
            passes.append(stepped - started)
            steps.append(time.perf_counter() - stepped)
    del model, optimizer
    torch.cuda.empty_cache()
    forward_backward, step = statistics.median(passes) * 1000, statistics.median(steps) * 1000
    return f"| {label} | {forward_backward:.0f} | {step:.0f} | {forward_backward + step:.0f} |"


def setups(unet: Any) -> dict[str, Setup]:
    import bitsandbytes as bnb

    from engine.training.per_parameter import PerParameterOptimizer

    def all_at_once() -> tuple[Any, torch.dtype, torch.optim.Optimizer]:
        model = copy.deepcopy(unet).cuda()
        return model, torch.bfloat16, bnb.optim.AdamW8bit(model.parameters(), lr=1e-6)

    def per_weight(fused: bool, bf16_weights: bool) -> Setup:
        def make() -> tuple[Any, torch.dtype, torch.optim.Optimizer]:
            model = copy.deepcopy(unet).to("cuda", torch.bfloat16 if bf16_weights else torch.float32)
            rounding = torch.Generator(device="cuda").manual_seed(0) if bf16_weights else None
            optimizer = PerParameterOptimizer([{"params": list(model.parameters())}],
                                              lambda groups: bnb.optim.AdamW8bit(groups, lr=1e-6), rounding=rounding)
            if fused:
                optimizer.step_in_backward(0.0)
            return model, torch.bfloat16, optimizer
        return make

    return {
        "fp32 weights, one 8-bit AdamW": all_at_once,
        "fp32 weights, one per weight after the backward pass": per_weight(False, False),
        "fp32 weights, one per weight fused into the backward pass": per_weight(True, False),
        "bf16 weights, one per weight after the backward pass": per_weight(False, True),
        "bf16 weights, one per weight fused into the backward pass (the savers)": per_weight(True, True),
    }


def main() -> int:
    if not torch.cuda.is_available():
        print("bench/step_parts.py needs a CUDA GPU", file=sys.stderr)
        return 2
    from engine.builtin import resolve_model
    from engine.models.parts import load_unet

    unet = load_unet(Path(resolve_model("builtin:sd15-random")))
    print("| checkpointing | backward pass | weights GB | after forward GB | peak GB | gradients GB |")
    print("|---|---|---|---|---|---|", flush=True)
    for checkpointing in (True, False):
        for backward_inside, cache in ((True, True), (False, True), (False, False)):
            print(memory_row(unet, checkpointing, backward_inside, cache), flush=True)
    print("\n| bf16 autocast, checkpointing, 8-bit AdamW | forward + backward ms | step ms | total ms |")
    print("|---|---|---|---|", flush=True)
    for label, setup in setups(unet).items():
        print(time_row(label, setup), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
