"""bitsandbytes' wait for the whole GPU after each weight it steps, left out where it orders nothing
(engine/training/bnb_sync.py). A CPU has no streams, so CUDA's are played by stand-ins; on an H200
bench/bnb_wait.py found the weights bit for bit the same and the step 20 % faster without the wait."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest
import torch

from engine.support.deferred_import import load
from engine.training import bnb_sync
from engine.training.per_parameter import PerParameterOptimizer

CUDA = torch.device("cuda", 0)


@pytest.fixture(scope="module")
def bnb() -> ModuleType:
    """bitsandbytes, imported by these tests alone: its import compiles kernels (seconds), which collection would
    otherwise pay in every worker."""
    import bitsandbytes

    load(bitsandbytes)  # deferred by conftest, as in dbtui's processes: its package runs before a submodule is imported
    import bitsandbytes.optim.optimizer  # noqa: F401  (bnb.optim.optimizer below)

    return bitsandbytes


def _streams(monkeypatch: pytest.MonkeyPatch, *, default: bool) -> None:
    current, other = object(), object()
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current)
    monkeypatch.setattr(torch.cuda, "default_stream", lambda device=None: current if default else other)


def _weights() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.randn(64, 64)), torch.nn.Parameter(torch.randn(64))]


def test_the_wait_is_left_out_only_on_this_thread_for_a_bitsandbytes_optimizer_not_paged_on_cudas_default_stream(
        monkeypatch: pytest.MonkeyPatch, bnb: ModuleType) -> None:
    waited: list[torch.Tensor] = []
    monkeypatch.setattr(bnb.optim.optimizer, "sync_gpu", waited.append)
    tensor = torch.zeros(1)

    def waits(optimizer: torch.optim.Optimizer, device: torch.device = CUDA) -> bool:
        before = len(waited)
        with bnb_sync.without_per_weight_wait(optimizer, device):
            bnb.optim.optimizer.sync_gpu(tensor)
        return len(waited) > before

    adamw8bit = bnb.optim.AdamW8bit(_weights())
    _streams(monkeypatch, default=True)
    assert not waits(adamw8bit)
    bnb.optim.optimizer.sync_gpu(tensor)
    assert len(waited) == 1  # outside, it waits again
    with pytest.raises(RuntimeError), bnb_sync.without_per_weight_wait(adamw8bit, CUDA):
        raise RuntimeError("a step that fails")
    bnb.optim.optimizer.sync_gpu(tensor)
    assert len(waited) == 2  # whatever happens inside

    with bnb_sync.without_per_weight_wait(adamw8bit, CUDA):  # another thread (a paged optimizer's, say) still waits
        other = threading.Thread(target=bnb.optim.optimizer.sync_gpu, args=(tensor,))
        other.start()
        other.join()
    assert len(waited) == 3

    assert waits(bnb.optim.PagedAdamW8bit(_weights()))  # paged state moves asynchronously
    assert waits(torch.optim.AdamW(_weights()))  # not bitsandbytes'
    assert waits(adamw8bit, torch.device("cpu"))  # a CPU never waited
    monkeypatch.setattr(torch.version, "hip", "6.2")
    assert waits(adamw8bit)  # bitsandbytes keeps the wait on ROCm
    monkeypatch.setattr(torch.version, "hip", None)
    _streams(monkeypatch, default=False)  # torch on a stream of its own: bitsandbytes' kernels are on the default one
    assert waits(adamw8bit)


def test_a_bitsandbytes_that_waits_otherwise_keeps_its_wait(monkeypatch: pytest.MonkeyPatch, bnb: ModuleType) -> None:
    """Releases before 0.47 call torch.cuda.synchronize() themselves, with no sync_gpu to leave out."""
    monkeypatch.delattr(bnb.optim.optimizer, "sync_gpu")
    _streams(monkeypatch, default=True)
    with bnb_sync.without_per_weight_wait(bnb.optim.AdamW8bit(_weights()), CUDA):
        assert not hasattr(bnb.optim.optimizer, "sync_gpu")


def test_a_per_weight_step_waits_for_nothing_and_gives_the_plain_steps_weights(monkeypatch: pytest.MonkeyPatch,
                                                                                bnb: ModuleType) -> None:
    waited: list[torch.Tensor] = []
    monkeypatch.setattr(bnb.optim.optimizer, "sync_gpu", waited.append)
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
