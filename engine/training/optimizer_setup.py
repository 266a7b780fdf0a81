"""The trainer's optimizer and what is counted with it: steps per epoch, the run's length, the learning-rate schedule,
and the models prepared by accelerate with it (``Trainer.setup``'s last part)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.data.batches import epoch_batches, optimizer_steps, process_batches, unreachable_batch_size
from engine.data.trained_images import image_record
from engine.training.optim import build_lr_scheduler, build_step_optimizer, run_learning_rate, warmup_warning
from engine.training.run_total import run_total
from engine.training.trainable import trained_text_encoders

if TYPE_CHECKING:
    from engine.training.trainer import Trainer


def prepare_optimizer(trainer: Trainer) -> None:
    """Build the optimizer over the trained weights, count the run's steps, build the learning-rate schedule, and
    prepare the models with accelerate (DDP, FSDP); each is set on ``trainer``."""
    profile = trainer.profile
    accelerator = trainer.accelerator
    lr = run_learning_rate(profile, accelerator.num_processes)
    groups = [{"params": trainer.unet_params, "lr": lr}]
    if trainer.text_params:
        groups.append({"params": trainer.text_params, "lr": lr})
    # bf16 weights round with their own generator, seeded alike on every process so that the
    # copies of the weights stay equal; its state is saved with the optimizer's.
    rounding = torch.Generator(trainer.device).manual_seed(profile.training.seed) if trainer.bf16_weights else None
    optimizer = build_step_optimizer(groups, profile.optimizer, lr, per_weight=trainer.fused_backward or trainer.bf16_weights, rounding=rounding)
    if trainer.fused_backward:
        optimizer.step_in_backward(profile.optimizer.max_grad_norm)
    with_classes = profile.prior.enabled
    batches = process_batches(epoch_batches(trainer.examples, profile.training.train_batch_size, profile.training.seed, 0, with_classes),
                              accelerator.process_index, accelerator.num_processes)
    accum = profile.training.gradient_accumulation_steps
    trainer.steps_per_epoch = max(1, len(optimizer_steps(batches, accum)) if trainer.epoch_leftovers else len(batches) // accum)
    for warning in (unreachable_batch_size(batches, profile.training.train_batch_size), trainer.texts.cut_warning(trainer.examples)):
        if warning:
            trainer.emit(warning)
    # A checkpoint records them, and the captions the concepts read: the main process alone saves and tells a resume's.
    trainer.image_record = image_record(trainer.examples, profile.concepts, profile.dataset.caption_extension) \
        if accelerator.is_main_process else None
    trainer.instance_images = sum(not example.is_class for example in trainer.examples)
    trainer.total_steps = run_total(profile, trainer.instance_images, trainer.steps_per_epoch, trainer.kept_total, trainer.emit)
    trainer.lr_scheduler = build_lr_scheduler(optimizer, profile.optimizer, trainer.total_steps)
    if short_run := warmup_warning(profile.optimizer, trainer.total_steps):
        trainer.emit(short_run)
    if trainer.text_params:
        # Only the trained encoders are prepared (DDP refuses a model with nothing to train), so
        # only they get checkpoint files; a frozen one (Flux's T5) is used as it is.
        trained = trained_text_encoders(trainer.components.family, profile.training)
        trainer.text_encoders = list(trainer.components.text_encoders)
        trainer.unet, *wrapped, trainer.optimizer = accelerator.prepare(
            trainer.components.unet, *(trainer.text_encoders[i] for i in trained), optimizer)
        for index, model in zip(trained, wrapped):
            trainer.text_encoders[index] = model
        # The forward must go through the prepared (DDP) wrappers, or their gradients are never
        # averaged across processes and each process's copy drifts apart.
        trainer.texts.text_encoders = trainer.text_encoders
    else:
        trainer.unet, trainer.optimizer = accelerator.prepare(trainer.components.unet, optimizer)
        # Frozen ones are cached, and stay the components' own: loaded only if something needs them.
        trainer.text_encoders = list(trainer.components.text_encoders) if profile.training.train_text_encoder else []
        if accelerator.distributed_type == "FSDP":
            # FSDP puts sharded weights in the model's place; clipping must see those.
            trainer.unet_params = [p for p in trainer.unet.parameters() if p.requires_grad]
    trainer.train_text_encoder = bool(trainer.text_params)
