"""One optimizer per trained weight, stepped one weight at a time: the base of two memory cuts.

- **Fused into the backward pass** (``optimizer.fused_backward``): each weight steps from its
  gradient hook as soon as its gradient is complete, and the gradient is freed there, so a whole
  set of gradients never exists. A full set of gradients never exists to take one norm of
  either: with ``max_grad_norm`` > 0 each weight's gradient is clipped to that norm on its own.
- **bf16 weights** (``precision.bf16_weights``): each step runs on a transient fp32 copy of one
  weight and its gradient, with the optimizer's state in fp32, and writes the result back with
  stochastic rounding, so the model never has an fp32 master copy. Only one weight's fp32 copy
  exists at a time.

Every optimizer here updates each weight from that weight alone (AdamW, Lion, Adafactor and
their 8-bit forms), so the maths equals one optimizer over all weights. Prodigy estimates one
step size from every weight together; the profile refuses it with these options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import torch

from engine.training.bnb_sync import without_per_weight_wait
from engine.training.stochastic_rounding import stochastic_round_

MakeOptimizer = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]


class _EachState(MutableMapping):
    """``state`` as one mapping over the per-weight optimizers' own states (read afresh each time:
    loading a checkpoint replaces them), so that len() counts and clear() frees all of it."""

    def __init__(self, owner: PerParameterOptimizer):
        self._owner = owner

    def _states(self) -> Iterator[MutableMapping]:
        return (inner.state for inner in self._owner.optimizers)

    def __getitem__(self, key: Any) -> Any:
        for state in self._states():
            if key in state:
                return state[key]
        raise KeyError(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("each weight's optimizer keeps its own state")

    def __delitem__(self, key: Any) -> None:
        for state in self._states():
            if key in state:
                del state[key]
                return
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        for state in self._states():
            yield from list(state)

    def __len__(self) -> int:
        return sum(len(state) for state in self._states())

    def clear(self) -> None:
        for state in self._states():
            state.clear()


class PerParameterOptimizer(torch.optim.Optimizer):
    """``make``'s optimizer once per weight of ``groups``.

    ``param_groups`` are the per-weight optimizers' own groups, so an LR scheduler built on this
    optimizer sets every weight's learning rate. ``rounding``: the generator of the stochastic
    rounding when the weights are bf16 (None: the weights are stepped in their own dtype).
    """

    def __init__(self, groups: list[dict[str, Any]], make: MakeOptimizer, *, rounding: torch.Generator | None = None):
        self.params: list[torch.nn.Parameter] = [p for group in groups for p in group["params"]]
        super().__init__(self.params, defaults={})
        self.rounding = rounding
        self.in_backward = False
        self.optimizers: list[torch.optim.Optimizer] = []
        self._index: dict[torch.nn.Parameter, int] = {}
        for group in groups:
            for param in group["params"]:
                # bf16 weights step through an fp32 stand-in that holds the weight's copy only while it
                # steps (empty otherwise), so the optimizer's state is made and kept in fp32.
                stepped = torch.nn.Parameter(torch.empty(0, device=param.device)) if rounding is not None else param
                self._index[param] = len(self.optimizers)
                self.optimizers.append(make([{**group, "params": [stepped]}]))
        if self.optimizers:  # the rate the polynomial schedule decays from is read here (diffusers' get_scheduler)
            self.defaults = dict(self.optimizers[0].defaults)
        self._link()

    def _link(self) -> None:
        self.param_groups = [inner.param_groups[0] for inner in self.optimizers]
        self.state = _EachState(self)

    # -- stepping ------------------------------------------------------------------------------
    def step_parameter(self, param: torch.nn.Parameter) -> None:
        """Update ``param`` from its gradient (which stays; the caller frees it)."""
        inner = self.optimizers[self._index[param]]
        if self.rounding is None:
            with without_per_weight_wait(inner, param.device):
                inner.step()
            return
        [working] = inner.param_groups[0]["params"]
        working.data = param.detach().float()
        working.grad = param.grad.float()
        with without_per_weight_wait(inner, param.device):
            inner.step()
        stochastic_round_(param.data, working.data, self.rounding)
        working.grad = None
        working.data = torch.empty(0, device=param.device)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        """Step every weight that has a gradient; nothing when the weights stepped in the backward pass."""
        if self.in_backward:
            return
        for param in self.params:
            if param.grad is not None:
                self.step_parameter(param)

    def step_in_backward(self, max_grad_norm: float) -> None:
        """From now on each weight steps from its post-accumulate-grad hook and frees its gradient at once.

        ``max_grad_norm`` > 0 clips each weight's gradient to that norm on its own.
        """
        self.in_backward = True

        @torch.no_grad()
        def hook(param: torch.Tensor) -> None:
            if max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_([param], max_grad_norm)
            self.step_parameter(param)
            param.grad = None

        for param in self.params:
            param.register_post_accumulate_grad_hook(hook)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"per_parameter": [inner.state_dict() for inner in self.optimizers]}
        if self.rounding is not None:
            state["rounding_generator"] = self.rounding.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["per_parameter"]
        if len(saved) != len(self.optimizers):
            raise ValueError(f"the saved optimizer state has {len(saved)} weights, this model trains {len(self.optimizers)}")
        for inner, inner_state in zip(self.optimizers, saved):
            inner.load_state_dict(inner_state)
        if self.rounding is not None:
            # accelerate moves every tensor of the state to the device; a generator state is a CPU tensor.
            self.rounding.set_state(state_dict["rounding_generator"].cpu())
        self._link()  # loading gave each optimizer new group dicts
