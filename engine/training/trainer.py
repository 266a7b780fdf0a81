"""The DreamBooth trainer: setup → class images → caching → steps → samples → outputs.

The loop reads as setup, then one ``_optimizer_step`` per step, then hooks. All state a
checkpoint needs is on the instance (models, optimizer, LR scheduler, generator, step), and
the batch order is a pure function of (seed, epoch, step), so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
import gc
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.builtin import concept_folders
from engine.errors import DbtuiError
from engine.training.accelerator import end_training
from engine.training.class_generation import run_class_images
from engine.training.cpu_threads import limit_cpu_threads
from engine.training.distributed import main_process_says
from engine.training.run_total import KeptTotal
from engine.data.batches import Batch, epoch_batches, optimizer_steps, process_batches
from engine.data.buckets import resolution_warnings
from engine.data.encoders import LatentSource, TextSource
from engine.data.examples import Example, bucket_list, build_examples
from engine.data.images import list_images, unused_instance_images
from engine.data.unread_captions import unread_captions_warning
from engine.events import Event, PhaseFinished, PhaseStarted, RunStarted, Warning
from engine.models.family import Components
from engine.models.loading import load_components, resolve_model_folder, run_models
from engine.profile import Profile, dumps_profile
from engine.profile.section import MAX_SEED
from engine.training.preview_rounds import PreviewRounds, generation_prompts
from engine.training.optimizer_setup import prepare_optimizer
from engine.training.start_warnings import run_start_problems
from engine.training.steps import batch_loss, optimizer_step
from engine.training.text_encoders_on_demand import TextEncodersOnDemand
from engine.training.preview_schedule import preview_scheduled
from engine.training.text_encoder_stop import text_encoder_trains_at
from engine.training.trainable import (check_lora_targets_of, load_dtypes, prepare_denoiser, prepare_text_encoders,
                                       prepare_vae, trained_text_encoders)
from engine.training.metrics import StepMeter, flat_config, versions
from engine.training.watchdogs import SkippedSteps
from engine.training.precision import (bf16_weights_in_force, configure_gpu_maths, effective_precision,
                                       fused_backward_in_force, weight_dtype, without_conv_benchmark)

StepHook = Callable[["Trainer", int], None]


class StoppedInSetup(Exception):
    """A stop (Ctrl-C, SIGTERM, ``dbtui stop``) came before the first step: the run ends "stopped" at step 0.
    Not an error: what setup made (class images, caches) is kept, and a resume goes on from there."""


class PastTheEndError(DbtuiError):
    """A resumed run whose profile ends before the step its checkpoint reached."""


@dataclass
class RunResult:
    status: str  # "finished", "stopped", or "export failed" (on the processes but the main, whose export failed)
    step: int
    total_steps: int
    outputs: dict[str, str] = field(default_factory=dict)


def cached_parts(components: Components, *, latents_cached: bool, text_cached: bool) -> list[torch.nn.Module]:
    """The models whose every output is cached, so they can leave the GPU: the VAE once latents
    are cached, and every loaded text encoder of the family (SDXL has two) once embeddings are."""
    return ([components.vae] if latents_cached else []) + (components.text_encoder_parts.loaded() if text_cached else [])


class Trainer:
    """Trains one profile into ``run_dir``; reports only through ``emit``."""

    def __init__(
        self,
        profile: Profile,
        run_dir: Path,
        *,
        emit: Callable[[Event], None] | None = None,
        cancel: threading.Event | None = None,
        step_hooks: list[StepHook] | None = None,
        epoch_leftovers: bool = True,
    ):
        self.profile = profile
        # False only to resume a checkpoint of a version that dropped each epoch's leftovers (checkpoints.py).
        self.epoch_leftovers = epoch_leftovers
        self.kept_total: KeptTotal | None = None  # a resume's, set before setup (engine/training/run_total.py)
        self.run_dir = Path(run_dir)
        self._emit = emit or (lambda event: None)
        self.cancel = cancel or threading.Event()
        self.step_hooks = list(step_hooks or [])
        self.global_step = 0
        self.total_steps = 0
        self.last_loss = float("nan")
        self.smoothed_loss: float | None = None  # the step meter's, which a checkpoint records and a resume goes on from
        self.started = time.time()
        self.rounds = PreviewRounds(self)

    # -- reporting -----------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if self.accelerator.is_main_process:
            self._emit(event)

    @contextlib.contextmanager
    def phase(self, name: str, description: str = "", total: int | None = None):
        started = time.perf_counter()
        self.emit(PhaseStarted(phase=name, total=total, description=description))
        yield
        self.emit(PhaseFinished(phase=name, seconds=time.perf_counter() - started))

    # -- setup ---------------------------------------------------------------------
    def setup(self) -> None:
        """Everything before the first step: accelerator, models, class images, caches, optimizer."""
        from accelerate.utils import set_seed

        from engine.training.accelerator import make_accelerator

        profile = self.profile
        precision, precision_warning = effective_precision(profile.precision.mixed_precision)
        self.precision = precision  # what this machine gives: a CPU or a GPU without bf16 gives less than asked
        self.accelerator = make_accelerator(profile, precision, self.run_dir)
        if self.accelerator.device.type == "cuda":
            configure_gpu_maths(profile.precision.tf32)
        if precision_warning:
            self.emit(Warning(message=precision_warning, advice="set precision.mixed_precision = \"no\" to silence this"))
        set_seed((profile.training.seed + self.accelerator.process_index) % (MAX_SEED + 1))
        self.device = self.accelerator.device
        self.dtype = weight_dtype(precision)
        self.bf16_weights, bf16_warning = bf16_weights_in_force(profile.precision.bf16_weights, precision)
        if bf16_warning:
            self.emit(Warning(message=bf16_warning, advice="set precision.bf16_weights = false to silence this"))
        self.fused_backward, fused_warning = fused_backward_in_force(profile.optimizer.fused_backward, precision)
        if fused_warning:
            self.emit(Warning(message=fused_warning, advice='set precision.mixed_precision = "no" to keep the fused step, or optimizer.fused_backward = false'))
        self.generator = torch.Generator("cpu").manual_seed(profile.training.seed * 1000 + self.accelerator.process_index)

        # Built-in assets and single-file conversions are made once, by the main process.
        with self.accelerator.main_process_first():
            self.instance_dirs, self.class_dirs = concept_folders(profile)
        self._check_images()
        with self.phase("load_model", profile.model.pretrained):
            with self.accelerator.main_process_first():
                self.model_folder = folder = resolve_model_folder(
                    profile.model.pretrained, revision=profile.model.revision, work_dir=run_models(self.run_dir), emit=self.emit,
                    tokenizer=profile.model.tokenizer, vae=profile.model.vae, run_base=True)
            self.trained_dtype = trained_dtype = torch.bfloat16 if self.bf16_weights else torch.float32
            self.components: Components = load_components(folder, vae=profile.model.vae, tokenizer=profile.model.tokenizer,
                                                          dtypes=load_dtypes(profile, self.dtype, trained_dtype))
            # Settings the family cannot honour are refused now, before class images or caching.
            self.components.family.check_profile(profile, self.components.size_multiple)
            check_lora_targets_of(self.components, profile)
            for key, message in self.components.family.profile_warnings(profile, precision) + resolution_warnings(profile.dataset, self.components.size_multiple):
                self.emit(Warning(message=f"{key}: {message}"))
        limit_cpu_threads(self.device.type, self.components.unet)
        self.objective = self.components.family.objective(self.components.noise_scheduler, profile.training)
        self.buckets = bucket_list(profile.dataset.resolution, profile.dataset.bucketing, profile.dataset.buckets, self.components.size_multiple)
        class_images = run_class_images(self) if profile.prior.enabled else {}
        if class_images is None:
            raise StoppedInSetup()  # the class images are incomplete: reading them would call that a lost disk
        self.examples: list[Example] = build_examples(profile, self.instance_dirs, class_images, self.buckets)
        if self.accelerator.is_main_process:
            self._say_unused_instance_images()
        # The caches fill before the denoiser comes to the device, so that moment holds only the encoders.
        # Frozen text encoders come only if a caption is not cached yet (``_sources``).
        prepare_vae(self.components, self.device, self.dtype)
        if profile.training.train_text_encoder:
            prepare_text_encoders(self.components, profile, self.device, self.dtype, trained_dtype=trained_dtype)
        self._sources()
        self.unet_params, self.text_params = prepare_denoiser(self.components, profile, self.device, self.dtype,
                                                              trained_dtype=trained_dtype)
        prepare_optimizer(self)
        if self.accelerator.log_with:
            self.accelerator.init_trackers(profile.name, config=flat_config(profile.model_dump(mode="json")))

    def _check_images(self) -> None:
        """Every training image decoded before the model loads (minutes of a rented card for SDXL), by one process a
        machine while the others wait; those this run decoded before are not decoded again (``DecodedRecord``)."""
        from engine.data.decoded_record import DecodedRecord
        from engine.data.decoding import check_training_images

        self.decoded = DecodedRecord.of_run(self.run_dir, writes=self.accelerator.is_local_main_process)
        with self.accelerator.local_main_process_first():
            if self.accelerator.is_local_main_process:
                check_training_images(self.profile, self.instance_dirs, self.class_dirs, self.emit, record=self.decoded,
                                      should_stop=self.cancel.is_set)
        if main_process_says(self.accelerator, self.cancel.is_set()):
            raise StoppedInSetup()  # before the model loads

    def _say_unused_instance_images(self) -> None:
        """Each instance folder's sub-folders' images, which the run leaves out: a phone's 2023/holiday/ went untrained
        without a word where `dataset check` warned of it. The runs' folder (`validate` warns of one inside an
        instance folder) and this run's own (saving.output_dir at the instance folder; its previews on a resume) are
        dbtui's, not the user's photos. And the caption files of another extension beside those it reads."""
        concept_dirs = (*self.instance_dirs, *(folder for folder in self.class_dirs if folder), self.run_dir,
                        self.run_dir.parent)
        for index, folder in enumerate(self.instance_dirs):
            said = unused_instance_images(folder, concept_dirs)
            if said:
                self.emit(Warning(message=f"concepts.{index}.instance_dir: {said}"))
            # a.caption beside a.txt: `dataset check` names each, while the run left it untrained without a word.
            unread = unread_captions_warning(list_images(folder), self.profile.dataset.caption_extension,
                                             self.profile.concepts[index].caption_mode)
            if unread:
                self.emit(Warning(message=f"concepts.{index}.instance_dir: {unread}"))

    def half_precision(self) -> contextlib.AbstractContextManager:
        """Autocast to the weight dtype for inference (samples, class images); off when weights are fp32. Its cache
        would hold a copy of every trained fp32 weight through a generation (the sdxl-full preset's previews: 18.5 GB
        on the card with it, 13.3 without); each denoiser call casts them again instead, a small part of its time."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32, cache_enabled=False)

    def _sources(self) -> None:
        """Latents and text embeddings, cached in RUN/cache/ when caching: one process per machine encodes and writes
        what is missing while the others wait, then they all read. Frozen text encoders load only while a caption is
        missing (``TextEncodersOnDemand``), and not once the run is stopped: a stop in the caching pass ends it there."""
        from engine.data.disk_cache import DiskStore
        from engine.data.part_fingerprints import FingerprintBook

        profile = self.profile
        components = self.components
        accelerator = self.accelerator
        cache = self.run_dir / "cache"
        writes = accelerator.is_local_main_process
        self.latents = LatentSource(
            components.vae, self.examples, device=self.device, dtype=components.vae.dtype,
            cache=profile.dataset.cache_latents, hflip=profile.dataset.hflip, store=DiskStore(cache / "latents", writes=writes),
            decoded=self.decoded,
        )
        cache_text = not profile.training.train_text_encoder
        book = FingerprintBook(cache / "fingerprints.json", writes=writes)
        on_demand = TextEncodersOnDemand(components, profile, device=self.device, dtype=self.dtype,
                                         trained_dtype=self.trained_dtype, phase=self.phase)
        self.texts = TextSource(components.family, components.tokenizers, components.text_encoder_parts, device=self.device,
                                clip_skip=profile.training.clip_skip, cache=cache_text, store=DiskStore(cache / "text", writes=writes),
                                fingerprints=lambda: on_demand.fingerprints(book))
        with accelerator.local_main_process_first(), without_conv_benchmark():
            if profile.dataset.cache_latents or writes:  # uncached, one process a machine decodes each picture once
                self.latents.fill(self.emit, self.cancel.is_set)
            if cache_text and not self.cancel.is_set():
                on_demand.fill(self.texts, [e.caption for e in self.examples] + generation_prompts(profile))
        if cache_text:
            on_demand.release(self.texts)
        if main_process_says(accelerator, self.cancel.is_set()):
            raise StoppedInSetup()  # not after loading the text encoders (Flux's T5: 9.5 GB) and the denoiser
        if self.device.type == "cuda":
            # The cached parts leave the GPU; previews bring the VAE back for a moment (prompts come cached).
            for part in cached_parts(components, latents_cached=profile.dataset.cache_latents, text_cached=cache_text):
                part.to("cpu")
            gc.collect()  # what holds the dropped encoders in reference cycles goes before their memory is handed back
            torch.cuda.empty_cache()

    # -- the loop ------------------------------------------------------------------
    def batches_for(self, epoch: int) -> list[Batch]:
        profile = self.profile
        batches = epoch_batches(self.examples, profile.training.train_batch_size, profile.training.seed, epoch, profile.prior.enabled)
        return process_batches(batches, self.accelerator.process_index, self.accelerator.num_processes)

    def train(self) -> RunResult:
        """Run the steps from ``global_step`` to the end, or until cancelled."""
        from engine.hardware.machine import probe

        profile = self.profile
        accum = profile.training.gradient_accumulation_steps
        if self.global_step > self.total_steps:  # else marked finished at once, never to resume (see engine/runs/launcher.py)
            raise PastTheEndError(f"the checkpoint is at step {self.global_step} and this profile's run is {self.total_steps} "
                                  "steps: raise training.max_train_steps or num_train_epochs to train on, or export the "
                                  f"checkpoint: `dbtui export {shlex.quote(str(self.run_dir))} --step {self.global_step}`")
        if self.accelerator.is_main_process:  # the only one that reports: the others need not probe
            self.emit(RunStarted(
                run_dir=str(self.run_dir), profile=profile.model_dump(mode="json"), hardware=probe(self.run_dir).to_dict(),
                versions=versions(), total_steps=self.total_steps, resumed_from_step=self.global_step,
                num_processes=self.accelerator.num_processes, rotation_logged=True,
            ))
            for problem in run_start_problems(profile):
                self.emit(Warning(message=f"{problem.key} {problem.message}"))
        self.rounds.begin(self.global_step)  # the base round: where prompt fidelity starts and class drift is measured from
        meter, skips = StepMeter(self.total_steps, self.global_step, self.smoothed_loss), SkippedSteps()
        # A resume trains the rest; one from a checkpoint of the last step (its final export failed) only exports.
        span = (f"{self.total_steps} steps" if not self.global_step else "no steps left to train: exporting"
                if self.global_step == self.total_steps else f"steps {self.global_step + 1}-{self.total_steps} of {self.total_steps}")
        self.emit(PhaseStarted(phase="training", total=self.total_steps, description=span))
        # Each stop is the main process's word (distributed.py): every process ends at the same step.
        while self.global_step < self.total_steps and not main_process_says(self.accelerator, self.cancel.is_set()):
            epoch, offset = divmod(self.global_step, self.steps_per_epoch)
            for micro_batches in optimizer_steps(self.batches_for(epoch), accum)[offset:self.steps_per_epoch]:
                lr = self.lr_scheduler.get_last_lr()[0]  # the rate this step trains at; the step moves it on
                loss = self._optimizer_step(micro_batches)
                self.last_loss = loss
                self.global_step += 1
                skipped = self.accelerator.optimizer_step_was_skipped
                self.emit(meter.step_event(self.global_step, epoch, loss, lr, self.device, skipped=skipped))
                self.smoothed_loss = meter.smoothed
                if warning := skips.after(self.global_step, skipped):
                    self.emit(warning)
                if self.accelerator.trackers:
                    self.accelerator.log({"loss": loss, "lr": lr}, step=self.global_step)
                self.after_step(self.global_step)
                if self.global_step >= self.total_steps or main_process_says(self.accelerator, self.cancel.is_set()):
                    break
        status = "finished" if self.global_step >= self.total_steps else "stopped"
        # Said in the log: `dbtui save` and the dashboard read from it that a stopped run writes no final export.
        self.emit(PhaseFinished(phase="training", seconds=meter.elapsed(), stopped=status == "stopped"))
        return RunResult(status, self.global_step, self.total_steps)

    def after_step(self, step: int) -> None:
        profile = self.profile
        if self.train_text_encoder and not text_encoder_trains_at(step + 1, profile.training.text_encoder_stop_fraction, self.total_steps):
            self.stop_text_encoder()
        if preview_scheduled(step, self.total_steps, profile.sampling.every_n_steps, profile.saving.every_n_steps):
            self.sample(step)
        for hook in self.step_hooks:
            hook(self, step)

    def release_training_state(self) -> None:
        """After the last step, free what only further steps need, for the final samples and exports:
        the optimizer's state (AdamW: two fp32 copies of every trained weight) and the cached latents."""
        self.optimizer.state.clear()
        self.latents.release()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @property
    def trained_text_encoders(self) -> list[Any]:
        """The (prepared) text encoders that train when the text encoder does."""
        return [self.text_encoders[i] for i in trained_text_encoders(self.components.family, self.profile.training)]

    def stop_text_encoder(self) -> None:
        """Freeze the text encoder for the rest of the run (its optimizer state stays)."""
        for param in self.text_params:
            param.requires_grad_(False)
            param.grad = None
        self.train_text_encoder = False
        for text_encoder in self.texts.text_encoders:
            text_encoder.eval()

    def _optimizer_step(self, micro_batches: list[Batch]) -> float:
        """One optimizer step over ``micro_batches``; the mean loss (engine/training/steps.py)."""
        return optimizer_step(self, micro_batches)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Instance loss + prior_loss_weight × class loss for one batch (engine/training/steps.py)."""
        return batch_loss(self, batch)

    # -- samples and outputs ---------------------------------------------------------
    def sample(self, step: int) -> list[Path]:
        """Preview images for the sample prompts into samples/step-XXXXXX/, then the round's scores."""
        return self.rounds.sample(step)

    def save_outputs(self) -> dict[str, str]:
        from engine.training.distributed import whole_model
        from engine.training.outputs import save_outputs

        self.accelerator.wait_for_everyone()
        unet = whole_model(self.accelerator, self.unet)  # under FSDP every process gives its shard
        if not self.accelerator.is_main_process:
            return {}
        # None: frozen, read from the base model if an export needs them.
        text_encoders = [self.accelerator.unwrap_model(m) for m in self.text_encoders] or None
        if self.bf16_weights:
            # Exports are fp32 pipelines like every other run's (a bf16 weight widens exactly); the
            # optimizer's state is gone by now, which leaves room for the wider weights.
            for model in [unet, *(text_encoders or [])] if self.text_params else [unet]:
                model.float()
        outputs = save_outputs(self.profile, self.components, unet, text_encoders, self.run_dir / "outputs", self.emit)
        (self.run_dir / "outputs" / "profile.toml").write_text(dumps_profile(self.profile), encoding="utf-8")
        return outputs

    def end(self) -> None:
        """Trackers finish; under several processes the process group is torn down.

        A group goes only when nothing holds it, so the DDP wrappers go first (ours and the
        accelerator's). A group still alive at interpreter exit keeps its gloo threads, and one
        of them freeing a collective's tensors there aborts the process."""
        accelerator = self.accelerator
        self.unet = accelerator.unwrap_model(self.unet)
        self.text_encoders = [accelerator.unwrap_model(m) for m in self.text_encoders]
        if self.text_encoders:
            self.texts.text_encoders = self.text_encoders
        end_training(accelerator)
