"""CUDA's autocast, on CPU tensors: what a step run on a GPU would keep, and in which dtype.

The meter runs on CPU (fake) tensors, so it autocasts with ``torch.autocast("cpu")``. CPU
autocast's half-precision list matches CUDA's (convolutions, matrix products, linear, SDPA), and
it keeps the same cache of half-precision weight copies. Its fp32 list does not: on CUDA, group
and layer norms, softmax, exp, pow and sums run in fp32, so their outputs (which the next
operation saves for the backward pass) are fp32 there but half precision on the CPU.

While ``cuda_autocast`` is active, CUDA's rule for those operations is registered on the CPU
autocast dispatch key, as CUDA's own kernels are (aten/src/ATen/autocast_mode.cpp): at that
layer it applies to the forward pass and to the recomputation gradient checkpointing does in the
backward pass alike. The registration is process-wide while it lasts, so CPU autocast in another
thread at the same time would follow CUDA's lists too. Hand-written: torch has no CPU autocast
with CUDA's lists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._pytree import tree_map

HALF = (torch.float16, torch.bfloat16)
KEY = "AutocastCPU"

# CUDA's "fp32" policy: half-precision inputs are cast to fp32 first.
CAST_TO_FP32 = (
    "layer_norm", "group_norm", "exp", "log", "log1p", "expm1", "rsqrt", "reciprocal", "pow.Tensor_Scalar",
    "pow.Tensor_Tensor", "softplus", "logsumexp", "cosine_similarity", "frobenius_norm.dim",
)
# CUDA's "fp32_set_opt_dtype" policy: computed and returned in fp32 when no dtype is asked for.
ACCUMULATE_IN_FP32 = ("softmax.int", "log_softmax.int", "sum", "sum.dim_IntList", "cumsum", "prod", "prod.dim_int")


def _op(name: str) -> Any:
    base, _, overload = name.partition(".")
    return getattr(getattr(torch.ops.aten, base), overload or "default")


def _without_autocast() -> Any:
    return torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU))


def _cast_to_fp32(op: Any) -> Callable[..., Any]:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = tree_map(lambda v: v.float() if isinstance(v, torch.Tensor) and v.dtype in HALF else v, (args, kwargs))
        with _without_autocast():
            return op(*args, **kwargs)

    return kernel


def _accumulate_in_fp32(op: Any) -> Callable[..., Any]:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dtype") is None and args[0].dtype in HALF:
            kwargs = {**kwargs, "dtype": torch.float32}
        with _without_autocast():
            return op(*args, **kwargs)

    return kernel


@contextlib.contextmanager
def _cuda_rules() -> Iterator[None]:
    library = torch.library.Library("aten", "IMPL")
    try:
        for names, policy in ((CAST_TO_FP32, _cast_to_fp32), (ACCUMULATE_IN_FP32, _accumulate_in_fp32)):
            for name in names:
                if not torch._C._dispatch_has_kernel_for_dispatch_key(f"aten::{name}", KEY):  # CPU's own rule stands
                    library.impl(name, policy(_op(name)), KEY)
        yield
    finally:
        library._destroy()


@contextlib.contextmanager
def cuda_autocast(dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` with CUDA's rules, on CPU tensors; ``None``: no autocast (fp32 training).

    Without autocast's cache of weight copies, as the trainer autocasts (``Trainer.half_precision``).
    """
    if dtype is None:
        yield
        return
    with _cuda_rules(), torch.autocast("cpu", dtype=dtype, cache_enabled=False):
        yield


@contextlib.contextmanager
def cuda_autocast_rules(dtype: torch.dtype | None) -> Iterator[None]:
    """CUDA's rules for autocast to ``dtype`` without autocast itself: around a backward pass run
    outside autocast, whose gradient checkpointing autocasts again as it recomputes."""
    if dtype is None:
        yield
        return
    with _cuda_rules():
        yield
