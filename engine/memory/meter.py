"""``estimate_peak``: the peak GPU memory of a profile's training step, computed on any machine.

The model is built from its configs on fake tensors (no memory, no weights read), set up by the
trainer's own ``prepare_models``, and one real forward and backward pass runs on inputs of the
step's shape while ``LiveBytes`` counts every allocation. Weights and gradients are summed from
the tensors themselves, the optimizer's state from the trainable shapes
(engine/memory/optimizer_state.py). The peak is the larger of two moments of a steady-state
step: the backward pass (weights, optimizer state, and what the pass holds, gradients included)
and the optimizer's update (weights, state, every gradient and the update's temporaries). With
``optimizer.fused_backward`` each weight steps, and its gradient is freed, inside the backward
pass, so the update's temporaries join that moment instead. The caching pass before the first
step (the VAE and the text encoders on the GPU while the caches fill, engine/memory/caching.py) is
reported beside the step (``MemoryEstimate.caching``): with Flux's T5-XXL it is close to the step.
So is the sampling moment between steps (previews and scoring rounds: the denoiser, the VAE back
on the GPU and the optimizer's state, engine/memory/sampling.py; ``MemoryEstimate.sampling``).
The VAE encodes the dataset's largest picture whole, at its size read from the headers where the folders
can be read (engine/memory/pictures.py). ``launch.sharding`` splits weights, gradients and optimizer
state among the processes as FSDP or DeepSpeed do (engine/memory/sharding.py).

Not counted: class-image generation (a phase of its own, before the steps), cuDNN and cuBLAS
workspaces, and DDP's communication buffers beyond its gradient buckets.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.memory.architecture import Architecture, architecture_of, from_folder
from engine.memory.caching import measure_caching
from engine.memory.estimate import GIB, MemoryEstimate
from engine.memory.fake_models import PreparedModel, build_fake_model
from engine.memory.inputs import as_metered, as_trained_in
from engine.memory.live_bytes import storage_bytes
from engine.memory.optimizer_state import ParamShape, starts_at_zero, state_bytes, update_temporaries
from engine.memory.pictures import largest_encode
from engine.memory.sampling import measure_sampling, samples_between_steps
from engine.memory.sharding import StepParts, shard
from engine.memory.step import StepShape, cached_text, largest_bucket, measure_step
from engine.memory.vae_source import NOT_HERE_NOTE, vae_config_folder

# Trainer._sources writes cached latents and text embeddings to the run's cache folder on disk and
# each step reads its batch back: nothing cached stays on the GPU.
def caches_note(profile: Any) -> str | None:
    """What the run caches on disk rather than holding on the GPU: latents unless dataset.cache_latents is off, text
    embeddings unless the text encoders train (their outputs change every step)."""
    cached = [name for name, on in (("latents", profile.dataset.cache_latents),
                                    ("text embeddings", not profile.training.train_text_encoder)) if on]
    return f"cached {' and '.join(cached)} live on disk (RUN/cache), not on the GPU" if cached else None
CACHING_NOTE = "while the caches fill, before the first step, the text encoders and the VAE are on the GPU"
SAMPLING_NOTE = "while previews or scoring images are generated, the VAE is back on the GPU beside the denoiser"
# The parts of an estimate, in the order ``estimate_peak`` measures them (its ``measuring``).
METER_PARTS = ("the model's parts", "the caching pass", "the previews", "a training step")


def _size(count: int) -> str:
    """Bytes as a note says them: GB, or MB below one, where two decimals of GB would read as equal."""
    return f"{count / GIB:.2f} GB" if count >= GIB else f"{count / 2**20:.0f} MB"


def _architecture(source: Architecture | str | Path | None, profile: Any) -> Architecture:
    if isinstance(source, Architecture):
        return source
    if isinstance(source, Path):
        return from_folder(source)
    vae = vae_config_folder(profile.model.vae) if profile.model.vae else None
    arch = architecture_of(source or profile.model.pretrained, profile.model.revision, vae=vae)
    if profile.model.vae and vae is None:
        arch = dataclasses.replace(arch, note="; ".join(filter(None, [arch.note, NOT_HERE_NOTE.format(vae=profile.model.vae)])))
    return arch


def trained_shapes(model: PreparedModel, *, stepped_in_fp32: bool = False) -> list[ParamShape]:
    """The trained tensors as the optimizer sees them: LoRA's B matrices start at zero, and bf16
    weights are stepped through fp32 copies, so their state is fp32."""
    names = {id(p): name for m in [model.components.unet, *model.components.text_encoders] for name, p in m.named_parameters()}
    return [ParamShape(tuple(p.shape), 4 if stepped_in_fp32 else p.element_size(), starts_at_zero(names.get(id(p), "")))
            for p in model.trainable]


def _optimizer(model: PreparedModel, profile: Any, *, bf16_weights: bool) -> tuple[int, int]:
    """(state bytes, the update's temporaries)."""
    name = profile.optimizer.name
    shapes = trained_shapes(model, stepped_in_fp32=bf16_weights)
    state = state_bytes(name, shapes, beta1=profile.optimizer.beta1)
    temporaries = update_temporaries(name, shapes)
    if bf16_weights:
        # Each bf16 weight steps through an fp32 copy of itself and of its gradient, and the
        # stochastic rounding draws one int32 per value.
        temporaries += 3 * max((p.numel * 4 for p in shapes), default=0)
    return state, temporaries


def gpu_precision(requested: str) -> str | None:
    """The precision this machine's CUDA GPU trains ``requested`` at (the trainer's ``effective_precision``); None
    without one, where the estimate is for a GPU elsewhere: ``estimate_peak``'s ``precision``."""
    from engine.training.precision import effective_precision

    return effective_precision(requested)[0] if torch.cuda.is_available() else None


def estimate_peak(profile: Any, *, architecture: Architecture | str | Path | None = None, precision: str | None = None,
                  read_pictures: bool = True, measuring: Callable[[str], None] | None = None) -> MemoryEstimate:
    """Peak GPU memory of one training step of ``profile``, on any machine, in about half a minute for SD1.5.

    ``architecture``: an ``Architecture``, a diffusers folder, or a ``model.pretrained`` value (by
    default the profile's own). ``precision``: the mixed precision the machine will really train at
    (``gpu_precision``: fp16 on a GPU without bf16, with fp32 weights and no fused
    step); by default the profile's, as a GPU with bf16 trains it. ``read_pictures``: False to assume
    camera photos rather than read the dataset's picture sizes (engine/memory/pictures.py). ``measuring``: told each
    part as it starts (``METER_PARTS``), each seconds long, so that a caller can say what the wait is.
    """
    said = measuring or (lambda part: None)
    from torch._subclasses.fake_tensor import FakeTensorMode

    from engine.data.examples import bucket_list
    from engine.training.precision import bf16_weights_in_force, fused_backward_in_force, maths_name

    started = time.perf_counter()
    profile = as_metered(profile)
    notes = [note for note in (caches_note(profile),) if note]
    if precision is not None and precision != profile.precision.mixed_precision:
        notes.append(f"estimated as this machine trains it, in {maths_name(precision)} rather than the profile's "
                     f"{maths_name(profile.precision.mixed_precision)}")
        profile = as_trained_in(profile, precision)
    arch = _architecture(architecture, profile)
    if arch.note:
        notes.insert(0, arch.note)
    precision = profile.precision.mixed_precision
    bf16_weights = bf16_weights_in_force(profile.precision.bf16_weights, precision)[0]
    fused = fused_backward_in_force(profile.optimizer.fused_backward, precision)[0]
    if profile.precision.attention == "xformers":
        notes.append("xformers attention is measured as SDPA: neither keeps an attention matrix")
    training = profile.training
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    said(METER_PARTS[0])
    model = build_fake_model(arch, profile, mode, trained_dtype=torch.bfloat16 if bf16_weights else torch.float32)
    with mode, warnings.catch_warnings():
        # The CPU's fused-norm check meets a bf16 weight and fp32 input, which autocast casts on a GPU: not the user's.
        warnings.filterwarnings("ignore", message="Mismatch dtype between input and weight")
        components = model.components
        components.family.check_profile(profile, components.size_multiple)  # as the trainer does: a size Flux cannot take is said, not a shape error
        buckets = bucket_list(profile.dataset.resolution, profile.dataset.bucketing, profile.dataset.buckets, components.size_multiple)
        width, height = largest_bucket(buckets)
        encode = largest_encode(profile, buckets, components.vae_scale_factor, (width, height), read_pictures=read_pictures)
        if encode.note:
            notes.append(encode.note)
        shape = StepShape(batch=training.train_batch_size * (2 if profile.prior.enabled else 1), instances=training.train_batch_size,
                          height=height, width=width, encode_height=encode.height, encode_width=encode.width)
        weights = storage_bytes([t for m in model.on_device(profile) for t in [*m.parameters(), *m.buffers()]])
        trained = storage_bytes(model.trainable)
        state, temporaries = _optimizer(model, profile, bf16_weights=bf16_weights)
        accumulated = 0
        if training.gradient_accumulation_steps > 1:
            # From the second micro-batch on, the gradients summed so far are alive through the step.
            for param in model.trainable:
                param.grad = torch.zeros_like(param)
            accumulated = storage_bytes([p.grad for p in model.trainable])
        said(METER_PARTS[1])
        caching = measure_caching(model, profile, shape)
        # Encoded once (outside any count): the previews' prompts, and the step's cached captions.
        text = cached_text(model, training.clip_skip)
        said(METER_PARTS[2])
        sampling = measure_sampling(model, profile, text)
        said(METER_PARTS[3])
        step = measure_step(model, profile, shape, None if training.train_text_encoder else text, free_gradients=fused)
    parts = StepParts(weights=weights, state=state, gradients=step.gradients, gradients_at_peak=step.gradients_at_peak,
                      accumulated=accumulated, held=step.peak - step.gradients_at_peak, copies=step.weight_copies_at_peak,
                      temporaries=temporaries,
                      # DDP keeps its own bucket copy of every gradient (accelerate leaves gradient_as_bucket_view off).
                      bucket_copy=step.gradients if profile.launch.num_processes > 1 else 0)
    if profile.launch.sharding != "none":
        parts, sharding_note = shard(parts, profile, model.components.unet, trained)
        notes.append(sharding_note)
    base = parts.weights + parts.state + parts.bucket_copy
    backward = base + parts.accumulated + parts.held + parts.gradients_at_peak + (parts.temporaries if fused else 0)
    update = 0 if fused else base + parts.gradients + parts.temporaries
    caching_bytes = caching.weights + caching.encoding if caching is not None else 0
    if caching_bytes > max(backward, update):
        notes.append(f"{CACHING_NOTE}: {_size(caching_bytes)} allocated, more than the training step's {_size(max(backward, update))}")
    sampling_bytes = 0
    if sampling is not None:
        # Between steps the optimizer's state (and DDP's buckets) stay; after the last step they are freed.
        kept = parts.state + parts.bucket_copy if samples_between_steps(profile) else 0
        sampling_bytes = sampling.weights + kept + sampling.generation
        if sampling_bytes > max(backward, update):
            notes.append(f"{SAMPLING_NOTE}: {_size(sampling_bytes)} allocated, more than the training step's "
                         f"{_size(max(backward, update))}")
    if backward >= update:
        phase, gradients = "backward", parts.accumulated + parts.gradients_at_peak + parts.bucket_copy
        activations, copies = backward - base - parts.accumulated - parts.gradients_at_peak, parts.copies
    else:
        phase, gradients, activations, copies = "optimizer step", parts.gradients + parts.bucket_copy, parts.temporaries, 0
    return MemoryEstimate(
        weights=parts.weights, gradients=gradients, optimizer_state=parts.state, activations=activations, caches=0,
        autocast_weight_copies=copies, peak_phase=phase, model=arch.label, batch=shape.batch, height=height, width=width,
        seconds=time.perf_counter() - started, notes=tuple(notes), caching=caching_bytes, sampling=sampling_bytes,
        caching_text=caching is not None and caching.text,
        guessed_architecture=arch.guessed, nf4_saving=model.nf4_saving,
    )
