"""model.quantize = "fp8": the frozen base's block layers stored in float8 and upcast per product, on
the CPU: the layer itself, a tiny-Flux LoRA trained on it (learning, the base untouched, the fused
export made from the unrounded base, exact resume) and the meter's count of its bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.test_flux import _assert_learns, _prior_lora_profile, _trained
from tests.test_flux_meter import flux_profile, prepared, real_bytes
from tests.training_helpers import tiny_profile

CPU = torch.device("cpu")


def _layer(seed: int = 0) -> torch.nn.Linear:
    generator = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(48, 32)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(32, 48, generator=generator) * 0.01)  # as small as a transformer's
    return layer.requires_grad_(False)


def test_an_fp8_layer_computes_with_its_upcast_weight_and_keeps_only_its_bytes_for_the_backward_pass() -> None:
    from engine.models.fp8_linear import Float8Linear

    original = _layer()
    layer = Float8Linear(original, torch.float32)
    assert layer.weight.dtype == torch.uint8 and layer.weight.shape == (32, 48) and not layer.weight.requires_grad
    weight = layer.dequantized()
    error = (weight - original.weight).norm() / original.weight.norm()
    assert 0 < error < 0.05  # fp8's 3-bit mantissa, scaled: a few per cent, not a plain cast's subnormals
    x = torch.randn(5, 48, requires_grad=True)
    saved: list[torch.dtype] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        out = layer(x)
    out.square().sum().backward()
    reference = x.detach().clone().requires_grad_(True)
    torch.nn.functional.linear(reference, weight, original.bias).square().sum().backward()
    assert torch.allclose(out, torch.nn.functional.linear(x, weight, original.bias), atol=1e-6)
    assert torch.allclose(x.grad, reference.grad, atol=1e-5)
    assert saved == [torch.uint8]  # the bytes alone wait for the backward pass, no upcast weight
    stored = layer.weight.clone()
    layer.to(CPU, dtype=torch.bfloat16)  # as the trainer moves the quantized denoiser
    assert layer.weight.dtype == torch.uint8 and torch.equal(layer.weight, stored)


def test_under_autocast_an_fp8_layer_returns_and_takes_the_dtypes_of_the_layer_it_replaced() -> None:
    from engine.models.fp8_linear import Float8Linear

    original = _layer().to(torch.bfloat16)
    layer = Float8Linear(original, torch.bfloat16)
    twin = torch.nn.Linear(48, 32, dtype=torch.bfloat16).requires_grad_(False)  # the bf16 layer, with fp8's weight
    twin.weight.copy_(layer.dequantized())
    twin.bias.copy_(original.bias)
    x = torch.randn(5, 48, requires_grad=True)  # fp32, as after a LayerNorm under autocast
    reference = x.detach().clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = layer(x), twin(reference)
    assert out.dtype == expected.dtype == torch.bfloat16 and torch.equal(out, expected)
    out.float().square().sum().backward()
    expected.float().square().sum().backward()
    assert x.grad.dtype == torch.float32 and torch.equal(x.grad, reference.grad)


def test_quantizing_twice_changes_nothing_and_keeps_the_embedders_in_full_precision(tiny_flux: Path) -> None:
    from diffusers import FluxTransformer2DModel

    from engine.models.fp8_linear import Float8Linear
    from engine.models.quantize import quantize_blocks

    transformer = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    assert quantize_blocks(transformer, "fp8", compute_dtype=torch.float32, device=CPU) == 40
    assert quantize_blocks(transformer, "fp8", compute_dtype=torch.float32, device=CPU) == 0
    layers = [m for m in transformer.modules() if isinstance(m, Float8Linear)]
    assert len(layers) == 40 and all(m.weight.dtype == torch.uint8 for m in layers)
    assert transformer.x_embedder.weight.dtype == transformer.proj_out.weight.dtype == torch.float32


def _fp8_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from engine.models.fp8_linear import Float8Linear

    return {name.replace(".base_layer", ""): m.weight for name, m in model.named_modules() if isinstance(m, Float8Linear)}


def test_a_lora_on_an_fp8_base_learns_while_the_base_stays_fp8_and_unchanged(
        tmp_path: Path, tiny_flux: Path, demo_data: Path) -> None:
    from diffusers import FluxTransformer2DModel

    from engine.models.quantize import quantize_blocks

    trainer = _trained(_prior_lora_profile(tmp_path, model={"quantize": "fp8"}, saving={"export": ["diffusers"]}))
    _assert_learns(trainer, tiny_flux, demo_data)
    ups = [p for name, p in trainer.components.unet.named_parameters() if "lora_B" in name]
    assert ups and all(p.any() for p in ups)  # zero at the start: gradients reached every adapter through fp8
    fresh = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    quantize_blocks(fresh, "fp8", compute_dtype=torch.float32, device=CPU)
    expected, trained = _fp8_weights(fresh), _fp8_weights(trainer.components.unet)
    assert len(trained) == 40 and trained.keys() == expected.keys()
    for name, weight in trained.items():
        assert weight.dtype == torch.uint8 and not weight.requires_grad
        assert torch.equal(weight, expected[name]), name  # the fp8 base took no step
    # The fused pipeline is the fp32 base plus the LoRA's change, not the fp8 weights it trained on.
    base = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    fused = FluxTransformer2DModel.from_pretrained(trainer.outputs["diffusers"], subfolder="transformer")
    layer = trainer.components.unet.single_transformer_blocks[0].attn.to_q
    delta = layer.get_delta_weight("default")
    assert delta.abs().max() > 0
    assert torch.allclose(fused.single_transformer_blocks[0].attn.to_q.weight, base.single_transformer_blocks[0].attn.to_q.weight + delta)


def test_a_resumed_fp8_lora_ends_with_the_same_lora(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from engine.runs.folder import RunFolder
    from engine.runs.in_process import train
    from engine.runs.sinks import read_events
    from engine.runs.supervisor import Supervisor

    profile = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux", "quantize": "fp8"},
                           training={"method": "lora", "max_train_steps": 4, "seed": 11}, optimizer={"learning_rate": 1e-3},
                           saving={"every_n_steps": 2, "keep_last_n": 3, "export": ["lora_diffusers"]})
    whole, resumed = RunFolder(tmp_path / "whole").create(), RunFolder(tmp_path / "resumed").create()
    train(profile, whole.path, step_hooks=[(supervisor := Supervisor(whole)).on_step], trainer_hook=supervisor.attach)
    halfway = whole.checkpoints / "step-00000002"
    assert halfway.is_dir()
    supervisor = Supervisor(resumed, resume=halfway)
    assert train(profile, resumed.path, step_hooks=[supervisor.on_step], trainer_hook=supervisor.attach).step == 4
    assert [e.step for e in read_events(resumed.events) if e.kind == "step_ended"] == [3, 4]  # steps 1-2 came from the checkpoint
    a = load_file(whole.path / "outputs" / "lora" / "pytorch_lora_weights.safetensors")
    b = load_file(resumed.path / "outputs" / "lora" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def fp8_estimates(tiny_flux: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from engine.memory import estimate_peak

    tmp = tmp_path_factory.mktemp("fp8-estimates")
    return {name: estimate_peak(flux_profile(tmp, quantize=name)) for name in (None, "fp8")}


def test_the_meter_counts_an_fp8_base_as_its_bytes_on_the_gpu(tiny_flux: Path, tmp_path: Path, fp8_estimates) -> None:
    components = prepared(tiny_flux, flux_profile(tmp_path, quantize="fp8"))
    estimate = fp8_estimates["fp8"]
    assert estimate.weights == real_bytes([components.unet])
    # One byte a block weight instead of bf16's two; the rest (embedders, biases, the LoRA) as before.
    from diffusers import FluxTransformer2DModel

    from engine.models.quantize import block_linear_layers

    blocks = block_linear_layers(FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer"))
    assert fp8_estimates[None].weights - estimate.weights == sum(layer.weight.numel() for _, _, layer in blocks)


def test_the_profile_the_trainer_and_the_wizard_know_the_same_quantizations() -> None:
    from typing import get_args

    from dbtui.screens.parameters import QUANTIZE_CHOICES
    from engine.models.quantize import QUANTIZATIONS
    from engine.profile.schema import ModelSection

    literal, _ = get_args(ModelSection.model_fields["quantize"].annotation)
    assert set(get_args(literal)) == set(QUANTIZATIONS) == {value for _, value in QUANTIZE_CHOICES} - {"none"}
    assert "fp8" in QUANTIZATIONS
