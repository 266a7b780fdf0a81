"""A small model trained on a CPU runs on one torch thread (the tiny demo: 65 s against 197 s with a thread per core,
measured under load), unless the user set a thread count; real models and GPUs keep torch's default."""

from __future__ import annotations

import pytest
import torch

from engine.training.cpu_threads import SMALL_MODEL_WEIGHTS, limit_cpu_threads, one_thread_fits


@pytest.mark.parametrize(("device", "weights", "environ", "one"), [
    ("cpu", 1_543_012, {}, True),  # builtin:tiny-sd1's UNet
    ("cpu", 1_543_012, {"OMP_NUM_THREADS": ""}, True),  # set empty: no count chosen
    ("cpu", 1_543_012, {"OMP_NUM_THREADS": "2"}, False),
    ("cpu", 1_543_012, {"MKL_NUM_THREADS": "4"}, False),
    ("cpu", 859_520_964, {}, False),  # SD1.5's UNet
    ("cpu", SMALL_MODEL_WEIGHTS, {}, False),
    ("cuda", 1_543_012, {}, False),
])
def test_one_thread_for_a_small_model_on_a_cpu_where_no_count_was_chosen(device: str, weights: int, environ: dict[str, str],
                                                                          one: bool) -> None:
    assert one_thread_fits(device, weights, environ) is one


def test_limit_sets_torch_to_one_thread_for_a_small_cpu_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        limit_cpu_threads("cpu", torch.nn.Linear(8, 8))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        limit_cpu_threads("cuda", torch.nn.Linear(8, 8))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
