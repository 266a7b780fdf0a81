"""The memory meter on Flux: the transformer's weights as the profile stores them (bf16, NF4, int8, fp8),
LoRA-only gradients and optimizer state, the caching pass with T5 (not the transformer) on the GPU, and Flux.1's real
configs built offline."""

from __future__ import annotations

import re

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.memory import estimate_peak
from engine.memory.caching import CachingMeasure
from engine.memory.estimate import GIB, MemoryEstimate
from engine.memory.live_bytes import storage_bytes
from tests.training_helpers import tiny_profile

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_flux(_isolated_cache: Path) -> Path:
    from engine.builtin import resolve_model

    return Path(resolve_model("builtin:tiny-flux"))


def flux_profile(tmp_path: Path, **model: Any) -> Any:
    """A tiny-Flux LoRA as a GPU trains it: bf16, cached latents and text, AdamW (its state is easy to count)."""
    return tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux", **model}, training={"method": "lora"},
                        precision={"mixed_precision": "bf16", "gradient_checkpointing": True}, dataset={"cache_latents": True})


def real_bytes(modules: list[torch.nn.Module]) -> int:
    """Bytes of every tensor the modules hold, bitsandbytes' quantization states included."""
    tensors: list[torch.Tensor] = []
    for module in modules:
        tensors += [*module.parameters(), *module.buffers()]
        for layer in module.modules():
            weight = getattr(layer, "weight", None)
            state = getattr(weight, "quant_state", None)
            if state is not None:
                tensors += [state.absmax, state.code, state.offset, state.state2.absmax, state.state2.code]
            if getattr(weight, "SCB", None) is not None:
                tensors.append(weight.SCB)
    return storage_bytes(tensors)


def prepared(tiny_flux: Path, profile: Any) -> Any:
    """The tiny Flux loaded for real and set up by the trainer's own code, in bf16 on the CPU."""
    from engine.models.loading import load_components
    from engine.training.trainable import prepare_models

    components = load_components(tiny_flux)
    prepare_models(components, profile, CPU, torch.bfloat16)
    return components


@pytest.fixture(scope="module")
def prepared_nf4(tiny_flux: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny Flux on an NF4 base, prepared once for the three tests that read its sizes (none changes it)."""
    return prepared(tiny_flux, flux_profile(tmp_path_factory.mktemp("flux-nf4"), quantize="nf4"))


HEAVY = CachingMeasure(weights=20 * GIB, encoding=GIB)  # as T5-XXL beside a 12 B transformer


@pytest.fixture(scope="module")
def measured(tiny_flux: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Estimates of the tiny-Flux LoRA on a bf16 and an NF4 base with the caching pass measured and then
    left out, then on the NF4 base with a caching pass as heavy as Flux.1's."""
    from engine.memory import meter
    from engine.memory.caching import measure_caching
    from engine.memory.step import measure_step

    tmp = tmp_path_factory.mktemp("flux-estimates")
    caching: dict[str, CachingMeasure] = {}
    steps: dict[str, Any] = {}
    estimates: dict[str, MemoryEstimate] = {}
    with pytest.MonkeyPatch.context() as patch:
        for name, model in {"bf16": {}, "nf4": {"quantize": "nf4"}}.items():
            patch.setattr(meter, "measure_caching", lambda *args, name=name: caching.setdefault(name, measure_caching(*args)) and None)
            patch.setattr(meter, "measure_step", lambda *args, name=name, **kwargs: steps.setdefault(name, measure_step(*args, **kwargs)))
            estimates[name] = estimate_peak(flux_profile(tmp, **model))
        patch.setattr(meter, "measure_caching", lambda *args: HEAVY)
        # The NF4 estimate's own step (~1.5 s of fake-tensor dispatch to measure again): the profile is the same, and
        # only its caching pass, not measured, differs.
        patch.setattr(meter, "measure_step", lambda *args, **kwargs: steps["nf4"])
        estimates["heavy caching"] = estimate_peak(flux_profile(tmp, quantize="nf4"))
    return {"estimates": estimates, "caching": caching}


@pytest.mark.parametrize("kind", ["nf4", "int8", "fp8"])
def test_a_stand_in_holds_the_bytes_bitsandbytes_stores(tiny_flux: Path, kind: str) -> None:
    from diffusers import FluxTransformer2DModel

    from engine.memory.quantized_layers import stand_in_quantized
    from engine.models.quantize import quantize_blocks

    real = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    assert quantize_blocks(real, kind, compute_dtype=torch.bfloat16, device=CPU) == 40
    standing = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    assert stand_in_quantized(standing, kind, compute_dtype=torch.bfloat16) == 40
    for model in (real, standing):  # the layers quantize_blocks leaves alone take the weight dtype
        for name, param in model.named_parameters():
            if param.is_floating_point():
                param.data = param.data.to(torch.bfloat16)
    assert real_bytes([standing]) == real_bytes([real])


@pytest.mark.parametrize("quantize", [None, "nf4"])
def test_the_weights_on_the_gpu_are_the_prepared_transformers_own(tiny_flux: Path, tmp_path: Path, measured, quantize,
                                                                   prepared_nf4) -> None:
    estimate = measured["estimates"][quantize or "bf16"]
    assert estimate.peak_phase == "backward"
    components = prepared_nf4 if quantize == "nf4" else prepared(tiny_flux, flux_profile(tmp_path, quantize=quantize))
    # Latents and prompts are cached: the VAE, CLIP-L and T5 have left the GPU.
    assert estimate.weights == real_bytes([components.unet])


def test_nf4_takes_far_less_than_bf16(measured) -> None:
    estimates = measured["estimates"]
    assert estimates["nf4"].weights < 0.6 * estimates["bf16"].weights
    # The caching pass holds no transformer, so how its base is stored does not change it.
    assert measured["caching"]["nf4"].weights == measured["caching"]["bf16"].weights


def test_only_the_lora_has_gradients_and_optimizer_state(prepared_nf4, measured) -> None:
    from engine.memory.optimizer_state import ParamShape, state_bytes

    components = prepared_nf4
    lora = [p for name, p in components.unet.named_parameters() if p.requires_grad]
    assert lora and all(".lora_" in name for name, p in components.unet.named_parameters() if p.requires_grad)
    lora_bytes = sum(p.numel() * 4 for p in lora)
    for estimate in (measured["estimates"][name] for name in ("bf16", "nf4")):
        assert estimate.gradients <= lora_bytes  # at the peak: none yet, or some of the LoRA's
        assert estimate.optimizer_state == state_bytes("adamw", [ParamShape(tuple(p.shape), 4) for p in lora])


def test_the_caching_pass_holds_the_encoders_not_the_transformer_and_is_the_peak_when_it_outweighs_the_step(
        prepared_nf4, measured) -> None:
    caching = measured["caching"]["nf4"]
    components = prepared_nf4
    assert caching.weights == real_bytes([components.vae, *components.text_encoders])
    assert caching.encoding > 0
    step = measured["estimates"]["nf4"]
    assert step.caching == 0  # set aside by the fixture
    estimate = measured["estimates"]["heavy caching"]
    assert estimate.caching == 21 * GIB and estimate.peak_allocated == step.peak_allocated  # beside the step, not in it
    assert estimate.run_need == estimate.caching_card_need > estimate.card_need
    # The tiny step is megabytes: a note says it in MB, where "0.02 GB" would read as the caching figure's equal.
    assert any(re.search(r"21\.00 GB allocated, more than the training step's \d+ MB", note) for note in estimate.notes)
    assert any(line.startswith("caching pass") for line in estimate.breakdown_lines())


@pytest.mark.parametrize(("hub_id", "guidance"), [("black-forest-labs/FLUX.1-dev", True),
                                                   ("black-forest-labs/FLUX.1-schnell", False)])
def test_flux_1_is_built_at_its_real_size_offline(hub_id: str, guidance: bool) -> None:
    from engine.memory.architecture import architecture_of

    architecture = architecture_of(hub_id)
    assert architecture.family.id == "flux"
    with torch.device("meta"):
        parts = architecture.build()
    billions = {name: sum(p.numel() for p in model.parameters()) / 1e9
                for name, model in {"transformer": parts.unet, "t5": parts.text_encoders[1], "clip": parts.text_encoders[0]}.items()}
    assert 11.8 < billions["transformer"] < 12.0  # "12 B"
    assert 4.7 < billions["t5"] < 4.8 and 0.12 < billions["clip"] < 0.13
    assert (parts.unet.config.guidance_embeds, parts.vae.config.latent_channels) == (guidance, 16)
    assert parts.scheduler.config.use_dynamic_shifting == guidance  # [dev] shifts by image size, [schnell] does not


def test_the_estimate_with_previews_prints_no_library_warning(tiny_flux: Path, tmp_path: Path) -> None:
    """On fake CPU tensors the sampling pass meets torch's fused-norm dtype check: it is not the user's to see."""
    import warnings

    profile = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"}, training={"method": "lora"},
                           precision={"mixed_precision": "bf16"}, dataset={"cache_latents": True}, sampling={"num_images": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        estimate = estimate_peak(profile)
    assert estimate.sampling > 0
