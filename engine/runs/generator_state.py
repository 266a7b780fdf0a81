"""The trainer's noise generator as accelerate checkpoints it: one state per process, in one file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the launcher lists checkpoints in the UI's process, which must not load torch
    import torch


class GeneratorState:
    """Lets accelerate checkpoint the trainer's noise generator, one state per process.

    accelerate writes a registered object from the main process only and every process reads
    that one file, so the state holds every process's generator (each draws its own noise,
    timesteps and crops); each process takes its own back on resume.
    """

    def __init__(self, generator: torch.Generator, accelerator: Any):
        self.generator = generator
        self.accelerator = accelerator

    def state_dict(self) -> dict[str, Any]:
        from accelerate.utils import gather_object

        state = self.generator.get_state()
        # Every process calls this (only the main one writes the file), so gathering is safe.
        states = gather_object([state]) if self.accelerator.num_processes > 1 else [state]
        return {"states": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        states = state.get("states") or [state["state"]]  # "state": checkpoints made before per-process states
        index = self.accelerator.process_index
        # With another number of processes the run cannot continue exactly anyway: keep this
        # process's own seeding rather than give two processes one noise stream.
        if len(states) == self.accelerator.num_processes:
            self.generator.set_state(states[index])
