"""On a GPU: the 8-bit optimizer's step without bitsandbytes' wait after each weight gives the same weights.

    python bench/bnb_wait.py

engine/training/bnb_sync.py leaves out the ``torch.cuda.synchronize()`` that bitsandbytes runs after
every weight it steps. This steps SD1.5's random-weight UNet (bf16 weights, AdamW8bit, one optimizer
per weight as optimizer.fused_backward and precision.bf16_weights use) three times on the same
gradients with the wait and without it, and prints whether every weight came out bit for bit the
same, with each way's time for one step of every weight. The speed of whole training steps is
bench/memory.py --measure's row 2 (SD1.5 full + savers).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STEPS = 3


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stepped(unet_state: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], wait: bool) -> tuple[dict[str, torch.Tensor], float]:
    """The weights after STEPS per-weight steps from ``unet_state`` on ``grads``, and seconds per step."""
    from engine.training import per_parameter
    from engine.training.optim import build_optimizer
    from engine.training.per_parameter import PerParameterOptimizer

    params = {name: torch.nn.Parameter(value.clone()) for name, value in unet_state.items()}
    settings = type("Settings", (), {"beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-2, "eps": 1e-8})()
    device = next(iter(unet_state.values())).device
    rounding = torch.Generator(device=device).manual_seed(0)
    optimizer = PerParameterOptimizer([{"params": list(params.values())}],
                                      lambda groups: build_optimizer("adamw8bit", groups, settings, 1e-4), rounding=rounding)
    original = per_parameter.without_per_weight_wait
    if wait:
        per_parameter.without_per_weight_wait = lambda *_: contextlib.nullcontext()
    try:
        started = 0.0
        for step in range(STEPS):
            if step == 1:  # the first step also makes the optimizer's state
                synchronize(device)
                started = time.perf_counter()
            for name, param in params.items():
                param.grad = grads[name]
                optimizer.step_parameter(param)
                param.grad = None
        synchronize(device)
        seconds = (time.perf_counter() - started) / (STEPS - 1)
    finally:
        per_parameter.without_per_weight_wait = original
    return {name: param.detach() for name, param in params.items()}, seconds


def main() -> int:
    if not torch.cuda.is_available():
        print("bench/bnb_wait.py needs a CUDA GPU", file=sys.stderr)
        return 2
    from engine.builtin import resolve_model
    from engine.models.parts import load_unet

    unet = load_unet(Path(resolve_model("builtin:sd15-random")))
    state = {name: value.to("cuda", torch.bfloat16) for name, value in unet.state_dict().items()}
    generator = torch.Generator(device="cuda").manual_seed(1)
    grads = {name: torch.randn(value.shape, generator=generator, device="cuda", dtype=torch.bfloat16) * 1e-3
             for name, value in state.items()}
    import bitsandbytes.optim.optimizer as bnb_optimizer

    waits = {"count": 0}
    sync_gpu = bnb_optimizer.sync_gpu

    def counted(tensor: torch.Tensor) -> None:
        waits["count"] += 1
        sync_gpu(tensor)

    bnb_optimizer.sync_gpu = counted
    with_wait, slow = stepped(state, grads, wait=True)
    waited = waits["count"]
    waits["count"] = 0
    without_wait, fast = stepped(state, grads, wait=False)
    same = all(torch.equal(with_wait[name], without_wait[name]) for name in state)
    print(f"bnb wait: {len(state)} weights; one step of every weight {slow * 1000:.0f} ms with bitsandbytes' wait "
          f"({waited} waits), {fast * 1000:.0f} ms without ({waits['count']} waits); "
          f"weights after {STEPS} steps {'bit for bit the same' if same else 'DIFFER'}")
    return 0 if same and waits["count"] == 0 < waited else 1


if __name__ == "__main__":
    sys.exit(main())
