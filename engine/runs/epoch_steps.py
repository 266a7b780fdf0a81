"""The steps an epoch of a profile's instance images makes now, counted before the model loads: a resume told a number
of epochs, with images added or taken away since its checkpoint, is checked against this count (the checkpoint's own
record of an epoch's steps counted the images it had)."""

from __future__ import annotations

from pathlib import Path

from engine.errors import DbtuiError
from engine.profile import Profile


def steps_per_epoch_now(profile: Profile, leftovers: bool) -> int | None:
    """The optimizer steps of one epoch of ``profile``'s instance images as the trainer counts them (buckets, batches,
    processes, accumulation; ``leftovers``: each epoch's leftover micro-batches make a last, shorter step); None where
    the images cannot be read (the trainer says what is wrong with them)."""
    from engine.builtin import resolve_dir
    from engine.data.batches import epoch_batches, optimizer_steps, process_batches
    from engine.data.examples import bucket_list, build_examples
    from engine.model_info import size_multiple

    dataset, training = profile.dataset, profile.training
    try:
        buckets = bucket_list(dataset.resolution, dataset.bucketing, dataset.buckets,
                              size_multiple(profile.model.pretrained))
        examples = build_examples(profile, [Path(resolve_dir(concept.instance_dir)) for concept in profile.concepts], {},
                                  buckets)
    except (DbtuiError, OSError):
        return None
    # Class images ride along in a batch and never add one: the count is the instance images' alone.
    batches = process_batches(epoch_batches(examples, training.train_batch_size, training.seed, 0, False), 0,
                              profile.launch.num_processes)
    accum = training.gradient_accumulation_steps
    return max(1, len(optimizer_steps(batches, accum)) if leftovers else len(batches) // accum)
