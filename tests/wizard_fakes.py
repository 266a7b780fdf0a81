"""A fake engine for the wizard's UI tests: instant, deterministic, no torch."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dbtui.engine_facade import HardwareReport, ModelInfo, RunSummary
from engine.events import (CheckpointSaved, CheckpointsRotated, Event, PhaseFinished, PhaseProgress, PhaseStarted,
                           RunFinished, RunStarted, SampleSaved, StepEnded, Warning)
from engine.dataset.autocaption import AutocaptionResult
from engine.dataset.caption_changes import Change, ChangeSet
from engine.dataset.prepare import PrepareResult
from engine.hardware.machine import Gpu, Hardware
from engine.memory.estimate import GIB, MemoryEstimate
from engine.model_import import ConversionTarget
from engine.runs.fit import FitResult

IMAGES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Finding:
    path: str
    code: str
    severity: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Summary:
    images: int
    usable: int
    counts: dict
    class_images_wanted: int = 0  # as engine.dataset.report.Summary counts them
    class_images_present: int | None = None
    class_images_generated: int = 0
    class_images_with_errors: int = 0

    @property
    def class_images_to_generate(self) -> int:
        return max(0, self.class_images_wanted - (self.class_images_present or 0) - self.class_images_generated)


@dataclass(frozen=True)
class Report:
    folder: str
    findings: tuple
    summary: Summary


class SimpleCaptions:
    """CaptionStore's contract on plain .txt files, with one level of bulk undo."""

    def __init__(self, folder: str, extension: str = ".txt") -> None:
        self.folder, self.extension = Path(folder), extension
        self._undo: list[dict[Path, str | None]] = []

    def images(self) -> list[Path]:
        from engine.dataset.files import checked_folder

        # The real store's DatasetError for a folder missing or a file, which the wizard shows: not a raw OSError.
        return sorted(p for p in checked_folder(self.folder).iterdir() if p.suffix.lower() in IMAGES)

    def path_for(self, image) -> Path:
        return Path(image).with_suffix(self.extension)

    def caption_file(self, image) -> Path:
        return self.path_for(image)

    def misnamed(self, images=None) -> dict[Path, Path]:
        return {}

    def read(self, image) -> str | None:
        path = self.path_for(image)
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    def write(self, image, caption: str) -> None:
        self.path_for(image).write_text(caption, encoding="utf-8")

    def _bulk(self, edit: Callable[[list[str]], list[str]]) -> ChangeSet:
        before, changed = {}, []
        for image in self.images():
            old = self.read(image) or ""
            tags = [t.strip() for t in old.split(",") if t.strip()]
            new = ", ".join(edit(tags))
            if new != old:
                before[image] = self.read(image)
                self.write(image, new)
                changed.append(Change(self.path_for(image), before[image], new))
        self._undo.append(before)
        return ChangeSet("bulk edit", tuple(changed))

    def add_tag(self, tag: str, front: bool = True, *, emit=None) -> ChangeSet:
        return self._bulk(lambda tags: tags if tag in tags else ([tag, *tags] if front else [*tags, tag]))

    def remove_tag(self, tag: str, *, emit=None) -> ChangeSet:
        return self._bulk(lambda tags: [t for t in tags if t != tag])

    def undo(self, *, emit=None) -> ChangeSet:
        if not self._undo:
            return ChangeSet("undo", ())
        before = self._undo.pop()
        for image, text in before.items():
            self.path_for(image).unlink(missing_ok=True) if text is None else self.write(image, text)
        return ChangeSet("undo", tuple(Change(self.path_for(image), None, text) for image, text in before.items()))

    def revert(self, image) -> bool:
        return False

    def tag_frequency(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for image in self.images():
            for tag in (self.read(image) or "").split(","):
                if tag.strip():
                    counts[tag.strip()] = counts.get(tag.strip(), 0) + 1
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def fake_report(folder: str, class_images: tuple[int, int | None] = (0, None)) -> Report:
    """One warning per image without a caption, one error for a tiny image named small*; ``class_images``: (wanted,
    present)."""
    from engine.builtin import resolve_dir

    images = sorted(p for p in Path(resolve_dir(folder)).iterdir() if p.suffix.lower() in IMAGES)
    findings = [Finding(str(p), "no_caption", "warning", "no caption file", "write one in caption review")
                for p in images if not p.with_suffix(".txt").exists()]
    findings += [Finding(str(p), "too_small", "error", "smaller than the resolution", "use a bigger picture")
                 for p in images if p.name.startswith("small")]
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    return Report(folder, tuple(findings), Summary(len(images), len(images) - counts["error"], counts, *class_images))


def fake_tokens(identifier: str) -> list[str]:
    """Short rare words stay whole; long ones split into pieces of three letters."""
    return [identifier] if len(identifier) <= 4 else re.findall(r".{1,3}", identifier)


NEW_PROFILE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # a new profile's hub id
# source: (family in words, folder, supported, native size, family id), as engine/model_info.py words them
FAKE_FOLDERS = {
    "models/sd21": ("diffusers folder: Stable Diffusion 2.x, v-prediction", "models/sd21", True, 768, "sd"),
    "models/sdxl-base": ("diffusers folder: Stable Diffusion XL", "models/sdxl-base", True, 1024, "sdxl"),
    "models/sdxl-refiner": ("diffusers folder: the Stable Diffusion XL refiner, which refines finished images and "
                            "cannot be DreamBooth-trained: use the SDXL base model or a fine-tune of it",
                            "models/sdxl-refiner", False, None, None),
    "models/flux": ("diffusers folder: Flux.1", "models/flux", True, 1024, "flux"),
    "models/sd3": ("diffusers folder: a StableDiffusion3Pipeline, which dbtui does not train", "models/sd3", False, None, None),
}


def run_events(total: int = 6) -> list[Event]:
    events: list[Event] = [
        RunStarted(time=1.0, run_dir="runs/demo", profile={}, hardware={}, versions={}, total_steps=total),
        PhaseStarted(time=1.0, phase="training", total=total, description=f"{total} steps"),
    ]
    for step in range(1, total + 1):
        loss = 0.5 / step + 0.05 * (step % 2)
        events.append(StepEnded(time=1.0 + step, step=step, total_steps=total, epoch=0, loss=loss,
                                smoothed_loss=0.5 / step, lr=1e-4, it_per_s=2.0, eta_s=(total - step) / 2.0, rss_mb=512.0))
        events.append(PhaseProgress(time=1.0 + step, phase="training", done=step, total=total))
    events += [Warning(time=9.0, message="fp16 is not available on CPU", advice="set mixed_precision = \"no\""),
               CheckpointsRotated(time=9.0, steps=[total - 1], keep_last_n=1),  # at the save, before its line
               CheckpointSaved(time=9.0, step=total, path="runs/demo/checkpoints/step-00000006"),
               SampleSaved(time=9.0, step=total, paths=[]),
               PhaseFinished(time=9.0, phase="training", seconds=6.0),
               RunFinished(time=9.0, step=total, outputs={"diffusers": "runs/demo/outputs/diffusers"}, seconds=8.0)]
    return events



def fake_estimate(profile) -> MemoryEstimate:
    """A memory estimate that grows with the images per step: 1 image fits 12 GB cards, 2 need 16 GB."""
    images = profile.training.train_batch_size * (2 if profile.prior.enabled else 1)
    return MemoryEstimate(weights=3 * GIB, gradients=3 * GIB, optimizer_state=int(1.5 * GIB), activations=int(1.5 * GIB) * images,
                          caches=0, autocast_weight_copies=0, peak_phase="backward", model="a fake model", batch=images,
                          height=profile.dataset.resolution, width=profile.dataset.resolution, seconds=0.0)


@dataclass
class FakeEngine:
    """Everything answers at once; ``calls`` records (method, args) for assertions, ``estimated`` the
    profiles the memory meter was asked about (the parameters screen asks on its own)."""

    calls: list = field(default_factory=list)
    estimated: list = field(default_factory=list)
    events: list = field(default_factory=run_events)
    has_checkpoints: bool = False
    finished_run: bool = False  # start_run finds a finished run in the profile's folder
    started: float = 0.0  # when the run's latest trainer was started, as its state file says (0.0: none known)

    def probe_hardware(self, path: str) -> HardwareReport:
        hw = Hardware(gpus=[], torch="2.13.0+cpu", cuda=None, driver=None, ram_total_mb=16384, ram_available_mb=8192,
                      disk_free_mb=102400, python="3.11.7")
        return HardwareReport(hw, "No NVIDIA GPU found: training real models here would take days. "
                                  "Try `dbtui demo` to see everything work.", "cpu-demo")

    def inspect_model(self, source: str) -> ModelInfo:
        """What the real engine says for each family; any other source is the tiny SD1."""
        if source.endswith(".safetensors"):
            return ModelInfo(source, "single-file", "single file: Stable Diffusion 1.x (512 px, epsilon)", None,
                             resolution=512, family_id="sd")
        if source in FAKE_FOLDERS:
            return ModelInfo(source, "diffusers", *FAKE_FOLDERS[source])
        if source == NEW_PROFILE_MODEL:
            return ModelInfo(source, "hub", "Hugging Face hub id: downloaded when training starts", source)
        return ModelInfo(source, "builtin", "built-in tiny Stable Diffusion 1.x with demo weights", "/cache/tiny-sd1",
                         resolution=64, family_id="sd")

    def conversion_target(self, source: str, components=None, part_files=None, into=None) -> ConversionTarget:
        return ConversionTarget(into or Path("models") / f"{Path(source).stem}-diffusers", False)

    def import_model(self, source: str, out_dir: Path, emit=None) -> Path:
        self.calls.append(("import_model", source))
        if emit is not None:  # as a conversion starts: none came where a folder was reused
            emit(PhaseStarted(phase="convert", total=1, description=source))
        return Path(out_dir)

    def check_dataset(self, profile, concept: int, emit=None) -> Report:
        from engine.builtin import resolve_dir
        from engine.dataset.class_checks import class_images_present

        self.calls.append(("check_dataset", concept))
        counted = profile.concepts[concept]
        wanted = counted.num_class_images if profile.prior.enabled else 0  # as engine.dataset.profile_settings gives it
        present = class_images_present(resolve_dir(counted.class_dir) if counted.class_dir else None)
        return fake_report(counted.instance_dir, (wanted, present))

    def prepare_dataset(self, profile, concept: int, emit=None) -> PrepareResult:
        from engine.builtin import resolve_dir
        from engine.dataset import folder_beside

        destination = folder_beside(resolve_dir(profile.concepts[concept].instance_dir))
        return PrepareResult(str(destination), (str(destination / "a.png"),), (), (), 0)

    def caption_store(self, folder: str, extension: str) -> SimpleCaptions:
        from engine.builtin import resolve_dir

        return SimpleCaptions(resolve_dir(folder), extension)

    def autocaption(self, folder: str, extension: str, emit=None) -> AutocaptionResult:
        return AutocaptionResult((), (), ())

    def identifier_tokens(self, model: str, identifier: str) -> list[str]:
        return fake_tokens(identifier)

    def fit_test(self, profile, steps: int, emit=None, price_per_hour=None, stop=None) -> FitResult:
        self.calls.append(("fit_test", steps, price_per_hour))
        eta = 2.0 + 0.5 * 400
        return FitResult(steps, 400, None, 900.0, 2.0, 0.5, eta, eta / 3600 * price_per_hour if price_per_hour else None, "cpu")

    def estimate_memory(self, profile, stop=None) -> MemoryEstimate:
        self.estimated.append(profile)
        return fake_estimate(profile)

    def start_run(self, profile, resume: str | None = None, waiting=None) -> Path:
        from engine.runs.start_refusals import RunExistsError, RunFinishedError

        self.calls.append(("start_run", profile.name) if resume is None else ("start_run", profile.name, resume))
        if self.finished_run:
            raise RunFinishedError(f"runs/{profile.name} holds a finished run (step 30; outputs in runs/{profile.name}/outputs)")
        if self.has_checkpoints and resume is None:
            raise RunExistsError(Path(profile.saving.output_dir) / profile.name, 4)
        return Path(profile.saving.output_dir) / profile.name

    def follow_run(self, folder: Path, stop) -> Iterator[Event]:
        yield from self.events

    def control(self, folder: Path, what: str) -> None:
        self.calls.append(("control", what))

    def trainer_started(self, folder: Path) -> float:
        return self.started

    def list_runs(self, output_dir: str, on_skip: Callable[[str], None] | None = None) -> list[RunSummary]:
        return [RunSummary(Path(output_dir) / "tiny-demo", "finished", 30, 30),
                RunSummary(Path(output_dir) / "person-v2", "running", 120, 800)]

    def run_status(self, folder: Path) -> str:
        """As list_runs says; "unknown" (no state file) for any folder it does not list."""
        folder = Path(folder).absolute()
        return next((run.status for run in self.list_runs(str(folder.parent)) if run.path == folder), "unknown")


HELD_S = 60.0  # how long a held probe waits for the test's word: only a failing test waits it out
T4 = Hardware(gpus=[Gpu(0, "T4", 15_000, 15_000, "7.5", False)])


class HeldProbe(FakeEngine):
    """A T4 (no bf16) whose probe answers once the test sets ``answer``, never by a timing; the first ``failing``
    probes raise instead."""

    def __init__(self, failing: int = 0) -> None:
        super().__init__()
        self.answer = threading.Event()
        self.probes = 0
        self.failing = failing

    def probe_hardware(self, path: str) -> HardwareReport:
        self.probes += 1
        assert self.answer.wait(HELD_S), "the test never let the probe answer"
        if self.probes <= self.failing:
            raise RuntimeError("nvidia-smi timed out")
        return HardwareReport(T4, "A T4: LoRA or a full fine-tune with 8-bit Adam.", "full-8bit")
