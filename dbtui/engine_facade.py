"""The one place the UI calls the engine: a Protocol, and the real implementation.

Screens and workers only talk to an ``Engine``; UI tests inject a fake one. Every method may
block (workers call them) and every engine import is lazy, so the first screen never waits
for torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.events import Emit, Event

if TYPE_CHECKING:
    from engine.dataset.autocaption import AutocaptionResult
    from engine.dataset.profile_settings import KnownHashes
    from engine.memory.estimate import MemoryEstimate
    from engine.model_import import ConversionTarget
    from engine.profile import Profile



_IMPORT_LOCK = threading.Lock()


def _transformers_loaded() -> None:
    """Resolve transformers' lazy module in one thread at a time: two workers doing it at once
    (the token check and the doctor) fail with "cannot import name 'CLIPTokenizer'"."""
    with _IMPORT_LOCK:
        from transformers import CLIPTokenizer  # noqa: F401


@dataclass(frozen=True)
class HardwareReport:
    hardware: Any  # engine.hardware.machine.Hardware
    sentence: str
    preset: str  # "cpu-demo", "lora", "full-8bit", "full", "full-text-encoder"
    fits: bool = True  # False: the GPU is too small for even this, the family's smallest preset


@dataclass(frozen=True)
class ModelInfo:
    source: str
    kind: str  # "builtin", "diffusers", "single-file", "hub"
    family: str  # what the model is, in words
    folder: str | None  # the diffusers folder the profile can use; None until converted
    supported: bool = True
    resolution: int | None = None  # the image size the model was made for, when known
    family_id: str | None = None  # the family that trains it ("sd", "sdxl"); None when unknown or untrainable


@dataclass(frozen=True)
class RunSummary:
    path: Path
    status: str  # engine.runs.folder.run_status: "running", "finished", "stopped", "failed", "crashed"…
    step: int
    total_steps: int
    best_step: int | None = None  # the step to keep by [evaluation]'s scores (engine/evaluation/best.py)
    resumes_from: int | None = None  # where an unfinished run resumes from (0: the start); None: not said (its checkpoints gone)
    paused: bool = False  # a running run's trainer stopped by a signal (engine.runs.paused): alive, training nothing


class Engine(Protocol):
    def probe_hardware(self, path: str) -> HardwareReport: ...
    def inspect_model(self, source: str, *, vae: str | None = None, tokenizer: str | None = None) -> ModelInfo: ...
    def conversion_target(self, source: str, components: str | None = None, part_files: dict[str, str] | None = None,
                          into: Path | None = None) -> ConversionTarget:
        """Where to convert a single file: models/STEM-diffusers, or a free -2, -3… beside it, or the folder that holds
        its conversion (with import_model's Flux parts) already (``holds_it``); ``into``: whether that folder does.
        ``source``: the draft's model.pretrained, as written ("$MODELS/x.safetensors"), as for inspect_model."""
    def import_model(self, source: str, out_dir: Path, emit: Emit | None = None, components: str | None = None,
                     part_files: dict[str, str] | None = None, vae: str | None = None) -> Path:
        """A single file into the diffusers folder ``out_dir`` (one that holds its conversion already is used as it
        is); for a Flux transformer file, ``components`` (a folder or hub id) and ``part_files``
        ({"vae"|"clip_l"|"t5": file}) say where its other parts come from; ``vae`` (model.vae) stands in for the VAE
        a Stable Diffusion file lacks."""
    def check_dataset(self, profile: Profile, concept: int, emit: Emit | None = None) -> Any: ...
    def prepare_dataset(self, profile: Profile, concept: int, emit: Emit | None = None) -> Any:
        """The concept's images prepared into a folder beside its own (``engine.dataset.folder_beside``): a PrepareResult.
        A concept on copies dbtui prepared has its originals prepared again into the same folder."""
    def caption_store(self, folder: str, extension: str) -> Any: ...
    def autocaption(self, folder: str, extension: str, emit: Emit | None = None) -> AutocaptionResult:
        """Captions for the folder's images without one; what was written, kept and could not be captioned."""
    def identifier_tokens(self, model: str, identifier: str) -> list[str] | None:
        """The identifier's tokens; None when the model's tokenizer cannot judge words (the tiny demo's)."""
    def fit_test(self, profile: Profile, steps: int, emit: Emit | None = None, price_per_hour: float | None = None,
                 stop: Callable[[], bool] | None = None) -> Any:
        """A FitResult (engine.runs.fit); None when ``stop()`` turned true first, its trainer ended."""
    def estimate_memory(self, profile: Profile, stop: Callable[[], bool] | None = None) -> MemoryEstimate | None:
        """The memory meter's estimate (engine.memory); None when ``stop()`` turned true first."""
    def start_run(self, profile: Profile, resume: str | None = None,
                  waiting: Callable[[Path], None] | None = None) -> Path:
        """The run's folder, its trainer started. ``waiting``: told that folder once, where another launch into it
        holds it and this one waits (minutes at most, engine.runs.launch_lock.LAUNCH_WAIT_S)."""
    def follow_run(self, folder: Path, stop: Callable[[], bool]) -> Iterator[Event]: ...
    def control(self, folder: Path, what: str) -> None: ...
    def list_runs(self, output_dir: str, on_skip: Callable[[str], None] | None = None) -> list[RunSummary]:
        """The runs in ``output_dir``, the one that trained last first; RunFolderError where it cannot be read. A run
        folder left out as unreadable (a disk's or network's error) is said to ``on_skip``."""
    def run_status(self, folder: Path) -> str:
        """The status word of the run in ``folder`` alone (engine.runs.folder.run_status): no other run's log is read."""
    def trainer_started(self, folder: Path) -> float:
        """When the run's latest trainer was started (time.time(), its state file's); 0.0 where none is known."""
    def checked_checkpoints(self, folder: Path) -> tuple[list[int], list[int]]:
        """The steps of the run's complete checkpoints, oldest first: (whole ones, damaged ones), checked as an export
        checks them (engine.runs.keep.checked_checkpoints)."""
    def export_checkpoint(self, folder: Path, step: int, emit: Emit | None = None) -> dict[str, str]:
        """The checkpoint's outputs into RUN/exports/step-N/; {format: path}."""
    def write_report(self, folder: Path) -> Path:
        """RUN/report.html, written again from the run folder; its path."""


def model_kind(source: str) -> str:
    """A model source's kind from its text alone: ``engine.profile.model_source.model_kind``, imported
    when asked (the profile package loads pydantic, which the first screen does without)."""
    from engine.profile.model_source import model_kind as kind_of

    return kind_of(source)


class RealEngine:
    """The engine itself, imported lazily."""

    def __init__(self) -> None:
        self._tokenizers: dict[str, Any] = {}
        # The model's weight hashes the Dataset checks found, by its files' description: checking another concept (or
        # this one again) hashed the same unchanged model anew, a minute for one of gigabytes.
        self._hashes: KnownHashes = {}

    def probe_hardware(self, path: str) -> HardwareReport:
        from engine.hardware.machine import probe, too_small, verdict

        hardware = probe(path)
        sentence, preset = verdict(hardware)
        return HardwareReport(hardware, sentence, preset, fits=not too_small(hardware, preset))

    def inspect_model(self, source: str, *, vae: str | None = None, tokenizer: str | None = None) -> ModelInfo:
        from engine.model_info import describe_model
        from engine.profile.model_source import read_source

        d = describe_model(read_source(source), vae=vae, tokenizer=tokenizer)  # the draft's model.pretrained, as written
        return ModelInfo(source, d.kind, d.family, d.folder, supported=d.supported, resolution=d.resolution,
                         family_id=d.family_id)

    def conversion_target(self, source: str, components: str | None = None, part_files: dict[str, str] | None = None,
                          into: Path | None = None) -> ConversionTarget:
        from engine.model_import import conversion_target
        from engine.profile.model_source import read_source

        return conversion_target(read_source(source), components=components, part_files=part_files, into=into)

    def import_model(self, source: str, out_dir: Path, emit: Emit | None = None, components: str | None = None,
                     part_files: dict[str, str] | None = None, vae: str | None = None) -> Path:
        from engine.model_import import import_model
        from engine.profile.model_source import read_source

        _transformers_loaded()
        # model.vae as the draft writes it ("$MODELS/vae"), read as the profile reads it, as model.pretrained is.
        return import_model(read_source(source), out_dir, emit=emit, components=components, part_files=part_files,
                            vae=read_source(vae) if vae else None)

    def _dataset(self) -> Any:
        import engine.dataset as dataset

        return dataset

    def check_dataset(self, profile: Profile, concept: int, emit: Emit | None = None) -> Any:
        _transformers_loaded()
        return self._dataset().check_concept(profile, concept, emit=emit, hashes=self._hashes)

    def prepare_dataset(self, profile: Profile, concept: int, emit: Emit | None = None) -> Any:
        from engine.builtin import resolve_dir

        dataset = self._dataset()
        source, destination = dataset.prepare_paths(resolve_dir(profile.concepts[concept].instance_dir))
        return dataset.prepare_dataset(source, destination, **dataset.prepare_settings(profile), emit=emit)

    def caption_store(self, folder: str, extension: str) -> Any:
        from engine.builtin import resolve_dir

        return self._dataset().CaptionStore(resolve_dir(folder), extension)

    def autocaption(self, folder: str, extension: str, emit: Emit | None = None) -> AutocaptionResult:
        from engine.builtin import resolve_dir

        _transformers_loaded()
        return self._dataset().autocaption(resolve_dir(folder), extension=extension, emit=emit)

    def identifier_tokens(self, model: str, identifier: str) -> list[str] | None:
        from engine.dataset.tokens import identifier_pieces, judges_words
        from engine.profile.model_source import read_source

        if model not in self._tokenizers:
            _transformers_loaded()
            self._tokenizers[model] = self._dataset().load_tokenizer(read_source(model))  # the draft's, as written
        tokenizer = self._tokenizers[model]
        return identifier_pieces(tokenizer, identifier) if judges_words(tokenizer) else None

    def fit_test(self, profile: Profile, steps: int, emit: Emit | None = None, price_per_hour: float | None = None,
                 stop: Callable[[], bool] | None = None) -> Any:
        from engine.runs.fit_process import run_fit_process

        return run_fit_process(profile, steps, emit, price_per_hour=price_per_hour, stop=stop)

    def estimate_memory(self, profile: Profile, stop: Callable[[], bool] | None = None) -> MemoryEstimate | None:
        # In a child process: the meter imports torch, which the wizard's process never loads.
        from engine.memory.process import estimate_in_child

        return estimate_in_child(profile, stop)

    def start_run(self, profile: Profile, resume: str | None = None,
                  waiting: Callable[[Path], None] | None = None) -> Path:
        """Start the trainer as its own process: closing the app never stops it. ``resume``:
        "latest" or a checkpoint; without it a folder with checkpoints raises RunExistsError."""
        import threading

        from engine.runs.launcher import start_run

        started = start_run(profile, detach=True, resume=resume, waiting=waiting)
        # Reap the process when it ends, so that a finished trainer is not left a zombie that
        # still looks alive to the run folder's pid check.
        threading.Thread(target=started.process.wait, name="dbtui-reap", daemon=True).start()
        return Path(started.folder.path)

    def follow_run(self, folder: Path, stop: Callable[[], bool]) -> Iterator[Event]:
        from engine.runs.folder import RunFolder
        from engine.runs.follow import follow_events

        return follow_events(RunFolder(Path(folder)), stop=stop)

    def control(self, folder: Path, what: str) -> None:
        from engine.runs.control import request
        from engine.runs.folder import RunFolder

        request(RunFolder(Path(folder)), what)

    def list_runs(self, output_dir: str, on_skip: Callable[[str], None] | None = None) -> list[RunSummary]:
        from engine.evaluation.best import best_step_of_run
        from engine.runs.crash_point import resume_point
        from engine.runs.events_state import state_from_events
        from engine.runs.folder import list_runs
        from engine.runs.paused import paused_trainer

        runs = []
        for folder in list_runs(Path(output_dir), None if on_skip is None else lambda error: on_skip(str(error))):
            state = folder.read_state() or state_from_events(folder)  # no state file: what its events tell
            best = best_step_of_run(folder.events)
            status = folder.status()
            # A killed trainer's state file lags its log by up to a second: where it got to, as `dbtui runs` says.
            point = resume_point(folder, state, status)
            if folder.gone():  # deleted while it was read: no run's any more
                continue
            runs.append(RunSummary(folder.path, status, point.reached if point else state.step if state else 0,
                                   state.total_steps if state else 0, best.step if best else None,
                                   point.resumes_from if point else None, paused_trainer(folder) is not None))
        return runs

    def run_status(self, folder: Path) -> str:
        from engine.runs.folder import RunFolder

        return RunFolder(Path(folder)).status()

    def trainer_started(self, folder: Path) -> float:
        from engine.runs.folder import RunFolder

        state = RunFolder(Path(folder)).read_state()
        return state.started if state is not None else 0.0

    def checked_checkpoints(self, folder: Path) -> tuple[list[int], list[int]]:
        from engine.runs.folder import RunFolder
        from engine.runs.keep import checked_checkpoints

        return checked_checkpoints(RunFolder(Path(folder)))

    def export_checkpoint(self, folder: Path, step: int, emit: Emit | None = None) -> dict[str, str]:
        from engine.runs.export import export_checkpoint
        from engine.runs.folder import RunFolder
        from engine.runs.library_noise import hide_library_progress_bars, library_noise_into

        _transformers_loaded()
        with library_noise_into(RunFolder(Path(folder)).log):  # in the wizard's process: its stderr is the screen
            hide_library_progress_bars()
            return export_checkpoint(Path(folder), step, emit=emit)

    def write_report(self, folder: Path) -> Path:
        from engine.runs.report import write_report

        return write_report(Path(folder))
