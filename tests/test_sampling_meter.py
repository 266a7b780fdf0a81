"""The memory meter's sampling moment (engine/memory/sampling.py) on the micro SD model, and the preview
decode it counts (engine/training/sampling.py ``decode_previews``): one image at a time, large ones in tiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.memory import estimate_peak
from engine.memory.estimate import GIB, MemoryEstimate
from engine.memory.live_bytes import storage_bytes
from engine.memory.sampling import SamplingMeasure
from tests.test_memory_meter import _allocator_peak, micro, micro_profile, prepared  # noqa: F401  (micro: a fixture)

PREVIEWS = {"sampling": {"num_images": 2, "steps": 1, "guidance_scale": 7.5}}
# The estimates whose step-dependent figures (peak_allocated) the tests read.
STEP_READ = ("previews", "neither")
HEAVY = SamplingMeasure(weights=20 * GIB, generation=GIB, images=2, guided=True)  # far above the micro step


def _bytes(modules: list[torch.nn.Module]) -> int:
    return storage_bytes([t for m in modules for t in [*m.parameters(), *m.buffers()]])


@pytest.fixture(scope="module")
def measured(micro: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: F811
    """Estimates of the micro LoRA with previews (their sampling measures kept), without, and with a heavy sampling moment."""
    from engine.memory import meter
    from engine.memory.sampling import measure_sampling
    from engine.memory.step import StepMeasure, measure_step

    tmp = tmp_path_factory.mktemp("sampling-estimates")
    settings = {
        "previews": PREVIEWS,
        "previews at the end only": {**PREVIEWS, "saving": {"every_n_steps": None}},
        "scoring only": {"evaluation": {"enabled": True, "images_per_prompt": 3}, "sampling": {"guidance_scale": 1.0}},
        "neither": {},
        "full fp32": {**PREVIEWS, "training": {"method": "full"}, "precision": {"mixed_precision": "no"}},
    }
    samplings: dict[str, SamplingMeasure | None] = {}
    estimates: dict[str, MemoryEstimate] = {}
    steps: dict[str, StepMeasure] = {}
    with pytest.MonkeyPatch.context() as patch:
        for name, extra in settings.items():
            def recording(*args: Any, name: str = name) -> SamplingMeasure | None:
                samplings[name] = measure_sampling(*args)
                return samplings[name]

            def recording_step(*args: Any, name: str = name, **kwargs: Any) -> StepMeasure:
                steps[name] = measure_step(*args, **kwargs)
                return steps[name]

            patch.setattr(meter, "measure_sampling", recording)
            # The step (the meter's slow part) is measured only where a test reads what it decides: the others' sampling
            # figures are measured before it and never read it; they take the previews' step, measured first.
            patch.setattr(meter, "measure_step", recording_step if name in STEP_READ else lambda *args, **kwargs: steps["previews"])
            method = extra.get("training", {"method": "lora"})
            estimates[name] = estimate_peak(micro_profile(micro, tmp, **{**extra, "training": method}))
        # The previews' profile again, its step not measured twice. That a sampling pass leaves the step's measure alone
        # is checked on the previews' estimate against the one without.
        patch.setattr(meter, "measure_step", lambda *args, **kwargs: steps["previews"])
        patch.setattr(meter, "measure_sampling", lambda *args: HEAVY)
        estimates["heavy"] = estimate_peak(micro_profile(micro, tmp, training={"method": "lora"}, **PREVIEWS))
    return {"estimates": estimates, "sampling": samplings}


def test_the_sampling_pass_holds_the_denoiser_the_vae_and_the_optimizer_state(micro: Path, tmp_path: Path, measured) -> None:  # noqa: F811
    components, adapter = prepared(micro, micro_profile(micro, tmp_path, training={"method": "lora"}))
    sampling = measured["sampling"]["previews"]
    # The fp16 UNet with its fp32 LoRA, and the fp32 VAE (fp16 would overflow); the prompts are cached: no text encoder.
    assert sampling.weights == _bytes([components.unet, components.vae])
    assert components.vae.dtype == torch.float32 and sampling.weights > _bytes([components.unet])
    estimate = measured["estimates"]["previews"]
    assert estimate.optimizer_state == sum(8 * p.numel() + 4 for p in adapter)
    assert estimate.sampling == sampling.weights + estimate.optimizer_state + sampling.generation
    assert sampling.generation > 0 and (sampling.images, sampling.guided) == (2, True)
    assert estimate.peak_allocated == measured["estimates"]["neither"].peak_allocated  # beside the step, not in it


def test_previews_only_after_the_last_step_come_after_the_optimizer_state_is_freed(measured) -> None:
    sampling = measured["sampling"]["previews at the end only"]
    assert measured["estimates"]["previews at the end only"].sampling == sampling.weights + sampling.generation


def test_a_profile_that_neither_samples_nor_scores_has_no_sampling_pass(measured) -> None:
    estimate = measured["estimates"]["neither"]
    assert measured["sampling"]["neither"] is None and estimate.sampling == estimate.sampling_card_need == 0
    assert not any(line.startswith("sampling pass") for line in estimate.breakdown_lines())


def test_scoring_rounds_alone_count_at_their_images_per_prompt_and_unguided_below_a_scale_of_one(measured) -> None:
    sampling = measured["sampling"]["scoring only"]
    assert (sampling.images, sampling.guided) == (3, False)
    assert measured["estimates"]["scoring only"].sampling > 0


def test_run_need_is_the_sampling_pass_when_it_outweighs_the_step(measured) -> None:
    step, estimate = measured["estimates"]["previews"], measured["estimates"]["heavy"]
    assert estimate.sampling == 21 * GIB + step.optimizer_state and estimate.peak_allocated == step.peak_allocated
    assert estimate.run_need == estimate.sampling_card_need > max(estimate.card_need, estimate.caching_card_need)
    assert any("more than the training step" in note for note in estimate.notes)
    assert any(line.startswith("sampling pass") for line in estimate.breakdown_lines())
    assert MemoryEstimate.from_dict(estimate.to_dict()) == estimate


def test_the_generation_matches_the_cpu_allocator_on_the_trainers_own_previews(micro: Path, tmp_path: Path, measured) -> None:  # noqa: F811
    """In fp32, a full fine-tune's previews (one sampling step, two images, guided) as the meter counts them."""
    from engine.training.trainer import Trainer

    trainer = Trainer(micro_profile(micro, tmp_path, training={"method": "full"}, precision={"mixed_precision": "no"}, **PREVIEWS),
                      tmp_path / "run")
    trainer.setup()
    trainer.sample(1)  # the first round fills kernels' one-time caches
    measured_bytes = _allocator_peak(lambda: trainer.sample(2))
    # The pipeline's own small tensors (guidance's concatenations, the scheduler's step, the images
    # as the image processor hands them over) are not counted: within 10 % on this micro model.
    assert measured["sampling"]["full fp32"].generation == pytest.approx(measured_bytes, rel=0.10)


def _vae(block_out_channels: tuple[int, ...]) -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    levels = len(block_out_channels)
    return AutoencoderKL(block_out_channels=block_out_channels, down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels, latent_channels=4, layers_per_block=1,
                         norm_num_groups=4, sample_size=64).eval()


def test_previews_up_to_the_tile_size_decode_whole_one_at_a_time() -> None:
    from engine.training.sampling import DECODE_TILE_PIXELS, decode_previews

    vae = _vae((4, 4))
    latents = torch.randn(4, 4, DECODE_TILE_PIXELS // 2, 8)
    decoded: list[tuple[int, ...]] = []
    hook = vae.decoder.register_forward_hook(lambda module, args, out: decoded.append(tuple(args[0].shape)))
    with torch.no_grad():
        previews = decode_previews(vae, latents)
        hook.remove()
        batched = vae.decode(latents, return_dict=False)[0]
    assert decoded == [(1, 4, DECODE_TILE_PIXELS // 2, 8)] * 4  # whole images, never a batch of them
    # The decoder sees each image alone either way: only the batched kernels' rounding differs.
    torch.testing.assert_close(previews, batched, rtol=0, atol=1e-4)  # an 8-bit level is 8e-3 of the [-1, 1] range


def test_the_meter_counts_one_decoded_preview_at_512_px_however_many_there_are() -> None:
    """SD1.5's four previews at 512 px decoded as one batch held 3 GB where one takes 0.75: the LoRA preset's run need
    was its previews' (4.5 GB), not its step's. One at a time, more previews add only their pixels."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from dbtui.presets import PRESETS
    from engine.memory.architecture import architecture_of
    from engine.memory.fake_models import build_fake_model
    from engine.memory.preset_table import SD15, preset_profile
    from engine.memory.sampling import measure_sampling

    one = preset_profile(PRESETS["lora"], SD15, resolution=512, prior=False)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    model = build_fake_model(architecture_of(SD15, None), one, mode, trained_dtype=torch.float32)
    generation = {}
    for count in (1, 4):
        profile = one.model_copy(update={"sampling": one.sampling.model_copy(update={"num_images": count})})
        with mode:
            generation[count] = measure_sampling(model, profile).generation
    pixels = 4 * 3 * 512 * 512 * 4  # four fp32 images: the decoded list and its concatenation hold them twice
    assert generation[1] > 0.5 * GIB and generation[1] <= generation[4] <= generation[1] + 2 * pixels


def test_larger_previews_decode_one_image_at_a_time_in_blended_tiles() -> None:
    from engine.training.sampling import DECODE_TILE_PIXELS, decode_previews

    vae = _vae((4,))  # no downsampling: a latent is a pixel, so a large image stays cheap on a CPU
    # 8 latents wide: still one column of tiles, two per image; the mid block's attention over every latent made 32 cost
    # ten times the CPU, while the check is on the tiles and their blend along the height.
    latents = torch.randn(2, 4, DECODE_TILE_PIXELS + 64, 8)
    decoded: list[tuple[int, ...]] = []
    hook = vae.decoder.register_forward_hook(lambda module, args, out: decoded.append(tuple(args[0].shape)))
    with torch.no_grad():
        tiled = decode_previews(vae, latents)
        hook.remove()
        whole = vae.decode(latents, return_dict=False)[0]
    assert tiled.shape == whole.shape == (2, 3, DECODE_TILE_PIXELS + 64, 8)
    assert all(shape[0] == 1 and max(shape[-2:]) <= DECODE_TILE_PIXELS for shape in decoded) and len(decoded) == 4
    # Tiles see less context near their edges; blended, the image stays close to the whole decode.
    assert (tiled - whole).abs().mean() < 0.1 * whole.abs().mean()
    # The VAE is left as it was: the next decode (the caching pass's encode, a smaller preview) is whole.
    assert (vae.use_slicing, vae.use_tiling, vae.tile_sample_min_size) == (False, False, 64)


@pytest.mark.parametrize("height", [16, "tiles"])
def test_the_decode_counted_from_its_first_image_is_the_decode_of_every_image(height: int | str) -> None:
    """The meter traces one preview's decode, its tiles' seams unblended, and counts the others' (engine/memory/sampling.py
    ``decode_peak``): the bytes are those of decoding them all, whole one at a time and in tiles, blended."""
    from engine.memory.live_bytes import LiveBytes
    from engine.memory.sampling import decode_peak
    from engine.training.sampling import DECODE_TILE_PIXELS, decode_previews

    vae = _vae((4,))  # no downsampling: a latent is a pixel (as in the tiles' test above)
    rows = DECODE_TILE_PIXELS + 64 if height == "tiles" else int(height)
    for count in (1, 2, 3):
        latents = torch.randn(count, 4, rows, 8)
        with torch.no_grad():
            with LiveBytes() as every:
                decode_previews(vae, latents)
            with LiveBytes() as first:
                counted = decode_peak(first, vae, latents)
        assert counted == every.peak > 0, (height, count)
    assert "blend_v" not in vars(vae) and "blend_h" not in vars(vae)  # the VAE blends its tiles again


def test_the_meter_decodes_through_the_previews_own_decode(micro: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    """So that it counts what previews do, tiles and all: in the VAE's dtype, latents of the resolution."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from engine.memory.architecture import from_folder
    from engine.memory.fake_models import build_fake_model
    from engine.memory.sampling import measure_sampling
    from engine.training import sampling

    calls: list[tuple[Any, tuple[int, ...], torch.dtype]] = []
    decode = sampling.decode_previews
    monkeypatch.setattr(sampling, "decode_previews", lambda vae, latents: calls.append((vae, tuple(latents.shape), latents.dtype))
                        or decode(vae, latents))
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    profile = micro_profile(micro, tmp_path, training={"method": "lora"}, sampling={"num_images": 3})
    model = build_fake_model(from_folder(micro), profile, mode, trained_dtype=torch.float32)
    with mode:
        assert measure_sampling(model, profile) is not None
    # The first of the call's images (the others are counted from it, as above); fp16 training: the VAE stays fp32.
    assert calls == [(model.components.vae, (1, 4, 16, 16), torch.float32)]


def test_an_estimate_encodes_the_prompts_once_for_the_previews_and_the_step(micro: Path, tmp_path: Path,  # noqa: F811
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Once for the caching pass (counted) and once for the rest: the previews' guidance, their prompts and the
    step's cached captions were each encoded again, seconds apiece with Flux's T5-XXL."""
    from engine.memory import caching, meter, sampling, step

    calls: list[int] = []

    def counted(model: Any, clip_skip: int) -> Any:
        calls.append(clip_skip)
        return step.cached_text(model, clip_skip)

    for module in (meter, sampling, caching):
        monkeypatch.setattr(module, "cached_text", counted)
    parts: list[str] = []
    estimate = estimate_peak(micro_profile(micro, tmp_path, training={"method": "lora"}, **PREVIEWS), measuring=parts.append)
    assert estimate.sampling and estimate.caching  # the previews measured, and the caching pass (its text moment too)
    assert len(calls) == 2
    # Each part was said as it started, for `dbtui fit` to show what the wait is (dbtui/cli/meter_status.py).
    assert parts == list(meter.METER_PARTS) == ["the model's parts", "the caching pass", "the previews", "a training step"]
