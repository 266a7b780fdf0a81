"""bitsandbytes' wait for the whole GPU after each weight it steps, left out where it orders nothing
(engine/training/bnb_sync.py). A CPU has no streams, so CUDA's are played by stand-ins; on an H200
bench/bnb_wait.py found the weights bit for bit the same and the step 20 % faster without the wait."""

from __future__ import annotations

import bitsandbytes as bnb
import bitsandbytes.optim.optimizer as bnb_optimizer
import pytest
import torch

from engine.training import bnb_sync
from engine.training.per_parameter import PerParameterOptimizer

CUDA = torch.device("cuda", 0)


def _streams(monkeypatch: pytest.MonkeyPatch, *, default: bool) -> None:
    current, other = object(), object()
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current)
    monkeypatch.setattr(torch.cuda, "default_stream", lambda device=None: current if default else other)


def _weights() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.randn(64, 64)), torch.nn.Parameter(torch.randn(64))]


def test_the_wait_is_left_out_only_for_a_bitsandbytes_optimizer_not_paged_on_cudas_default_stream(
        monkeypatch: pytest.MonkeyPatch) -> None:
    waits = bnb_optimizer.sync_gpu
    adamw8bit = bnb.optim.AdamW8bit(_weights())
    _streams(monkeypatch, default=True)
    with bnb_sync.without_per_weight_wait(adamw8bit, CUDA):
        assert bnb_optimizer.sync_gpu is not waits
    assert bnb_optimizer.sync_gpu is waits
    with pytest.raises(RuntimeError), bnb_sync.without_per_weight_wait(adamw8bit, CUDA):
        raise RuntimeError("a step that fails")
    assert bnb_optimizer.sync_gpu is waits  # put back whatever happens inside

    for optimizer, device in ((bnb.optim.PagedAdamW8bit(_weights()), CUDA),  # paged state moves asynchronously
                              (torch.optim.AdamW(_weights()), CUDA),  # not bitsandbytes'
                              (adamw8bit, torch.device("cpu"))):  # a CPU never waited
        with bnb_sync.without_per_weight_wait(optimizer, device):
            assert bnb_optimizer.sync_gpu is waits
    _streams(monkeypatch, default=False)  # torch on a stream of its own: bitsandbytes' kernels are on the default one
    with bnb_sync.without_per_weight_wait(adamw8bit, CUDA):
        assert bnb_optimizer.sync_gpu is waits


def test_a_per_weight_step_waits_for_nothing_and_gives_the_plain_steps_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[torch.Tensor] = []
    monkeypatch.setattr(bnb_optimizer, "sync_gpu", waited.append)
    monkeypatch.setattr(bnb_sync, "_skippable", lambda optimizer, device: not optimizer.is_paged)
    torch.manual_seed(0)
    plain_weights = _weights()
    per_weight = [torch.nn.Parameter(w.detach().clone()) for w in plain_weights]
    plain = bnb.optim.AdamW8bit(plain_weights, lr=1e-2)
    stepped = PerParameterOptimizer([{"params": per_weight}], lambda groups: bnb.optim.AdamW8bit(groups, lr=1e-2))
    for _ in range(2):
        for a, b in zip(plain_weights, per_weight):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        plain.step()
        stepped.step()
    assert len(waited) == 2 * len(plain_weights)  # the plain step waited after each weight; the per-weight steps never
    assert all(torch.equal(a, b) for a, b in zip(plain_weights, per_weight))
