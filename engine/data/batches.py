"""The order of training batches: a pure function of (seed, epoch), so resume is exact.

Each batch holds instance images of one concept and one bucket; with prior preservation it
carries class images of the same concept. Concepts take turns, so a concept with few images
is not crowded out by one with many. With several processes each takes every N-th batch.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from engine.data.examples import Example
from engine.events import Warning


@dataclass(frozen=True)
class Batch:
    instance: tuple[int, ...]  # indexes into the example list
    classes: tuple[int, ...] = ()


def _chunks(indexes: list[int], examples: list[Example], size: int, rng: random.Random) -> list[tuple[int, ...]]:
    by_bucket: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in indexes:
        by_bucket[examples[i].bucket].append(i)
    chunks = []
    for bucket in sorted(by_bucket):
        group = by_bucket[bucket]
        chunks += [tuple(group[i : i + size]) for i in range(0, len(group), size)]
    rng.shuffle(chunks)
    return chunks


def epoch_batches(examples: list[Example], batch_size: int, seed: int, epoch: int, with_classes: bool) -> list[Batch]:
    """Every batch of one epoch, in order."""
    rng = random.Random(f"{seed}:{epoch}")
    concepts = sorted({e.concept for e in examples if not e.is_class})
    streams: dict[int, list[tuple[int, ...]]] = {}
    class_streams: dict[int, list[tuple[int, ...]]] = {}
    for concept in concepts:
        own = [i for i, e in enumerate(examples) if e.concept == concept and not e.is_class]
        rng.shuffle(own)
        streams[concept] = _chunks(own, examples, batch_size, rng)
        classes = [i for i, e in enumerate(examples) if e.concept == concept and e.is_class]
        rng.shuffle(classes)
        class_streams[concept] = _chunks(classes, examples, batch_size, rng) if with_classes else []
    longest = max(len(s) for s in streams.values())
    batches = []
    class_pos = dict.fromkeys(concepts, 0)
    for turn in range(longest):
        for concept in concepts:
            stream = streams[concept]
            instance = stream[turn % len(stream)]
            classes: tuple[int, ...] = ()
            if class_streams[concept]:
                pool = class_streams[concept]
                classes = pool[class_pos[concept] % len(pool)]
                class_pos[concept] += 1
            batches.append(Batch(instance, classes))
    return batches


def unreachable_batch_size(batches: list[Batch], batch_size: int) -> Warning | None:
    """A warning when no batch holds ``batch_size`` images: a batch takes one concept's images of one bucket."""
    largest = max((len(batch.instance) for batch in batches), default=0)
    if largest >= batch_size:
        return None
    return Warning(message=f"training.train_batch_size is {batch_size}, but no batch can hold more than {largest} images: "
                           "a batch takes one concept's images of one bucket",
                   advice=f"set train_batch_size = {largest} (scale_lr multiplies by the setting, not by the images)")


def process_batches(batches: list[Batch], process_index: int, num_processes: int) -> list[Batch]:
    """This process's share; every process gets the same count so they stay in step. An epoch of fewer batches
    than processes is repeated until each has one: a process with none skipped the gradient all-reduce that the
    others waited in, and the run crashed at its first step."""
    if batches and len(batches) < num_processes:
        batches = [batches[i % len(batches)] for i in range(num_processes)]
    usable = len(batches) - len(batches) % num_processes
    return batches[process_index:usable:num_processes] if usable else batches[:1]


def optimizer_steps(batches: list[Batch], accumulation: int) -> list[list[Batch]]:
    """The micro-batches of each optimizer step: ``accumulation`` at a time, and the epoch's leftover as one
    shorter last step, so that every image trains each epoch (the loss is averaged over the step's own count)."""
    return [batches[first : first + accumulation] for first in range(0, len(batches), accumulation)]


def default_total_steps(profile: Any, instance_images: int, steps_per_epoch: int) -> int:
    """max_train_steps, else epochs × steps per epoch, else the guide's 100 × instance images."""
    if profile.training.max_train_steps:
        return profile.training.max_train_steps
    if profile.training.num_train_epochs:
        return profile.training.num_train_epochs * steps_per_epoch
    return 100 * instance_images
