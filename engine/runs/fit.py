"""The fit test: train a few real steps of a profile to measure memory, speed, time and cost.

Runs the real trainer in a temporary run folder with sampling and checkpoints off, and stops
it (through its cancel event) after ``steps`` steps, or before the last of a run that short, so
that nothing is exported and the total step count, hence the ETA, is the real run's. Imports torch only when called.

fp16's loss scaler skips the first steps of a run while it lowers its scale from 65,536, and
an optimizer makes its state at its first step taken: measured before one, the peak would lack
the state (1.6 GB for SD1.5 with 8-bit AdamW). So the test goes on past ``steps`` until a step
measured after one taken, for at most ``MAX_EXTRA_STEPS`` more.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.events import Event, PhaseFinished, PhaseStarted, RunStarted, StepEnded
from engine.memory.estimate import MemoryEstimate
from engine.profile import Profile
from engine.profile.fields import PATHS_READ
from engine.training.class_images import PHASE as CLASS_IMAGES

CACHING_PHASES = ("caching", "caching_text")  # engine/data/encoders.py, engine/training/text_encoders_on_demand.py
MAX_EXTRA_STEPS = 30  # past the steps asked for, waiting for fp16's loss scaler to take a step
MIN_STEPS = 2  # the speed is a gap between steps: one step alone has none
# FitResult.lacks_optimizer_state, in words.
LACKS_STATE = ("fp16's loss scaler skipped the steps measured (their gradients overflowed; it took none before the last), "
               "so the peak lacks the optimizer's state")


@dataclass(frozen=True)
class FitResult:
    steps: int  # steps measured
    total_steps: int  # steps of the whole run
    peak_vram_mb: float | None  # torch's peak (reserved) over setup and steps; None without CUDA
    peak_rss_mb: float | None
    setup_s: float  # loading the model, class images, caches: paid once per run
    s_per_step: float  # median gap between steps (those the optimizer took, past the first, where there are 2 such)
    eta_s: float  # setup plus every step of the whole run
    est_cost: float | None  # eta at the hourly price, when one is given
    device: str  # "cuda" or "cpu", as the trainer saw it
    # torch.cuda.max_memory_allocated over the steps alone: what the memory meter's step peak estimates.
    peak_vram_allocated_mb: float | None = None
    memory_estimate: MemoryEstimate | None = None  # the memory meter's, when the caller made one (engine.memory)
    # The same over the caching pass (after class images, before the steps): what the meter's caching figure estimates.
    setup_vram_allocated_mb: float | None = None
    # fp16's loss scaler took no step before the last measured: the peak lacks the optimizer's state (or most of its effect).
    lacks_optimizer_state: bool = False
    setup_by_phase_mb: dict[str, float] = field(default_factory=dict)  # SetupPeak.by_phase


class SetupPeak:
    """Splits torch's peak GPU memory into the moments the memory meter estimates apart: class-image
    generation (which it does not count), the caching pass (the VAE and text encoders on the GPU while
    the caches fill) and the steps (from the run_started event on). Each phase is measured from its
    own start to its end: what lies between (loading, the class-image model leaving the GPU, the
    denoiser coming to it) counts only in the whole.

    ``cuda`` is ``torch.cuda`` (a stand-in in tests); it is read only when it has a device.
    """

    def __init__(self, cuda=None) -> None:
        self._cuda = cuda
        self.class_images_mb: float | None = None  # allocated while class images were generated
        self.allocated_mb: float | None = None  # allocated while the caches filled: the caching pass
        self.between_mb: float | None = None  # allocated at any other moment before the steps
        self.reserved_mb: float | None = None  # reserved at any moment before the steps
        self.by_phase: dict[str, float] = {}  # allocated in each measured phase, and "before PHASE" for the moments between
        self._steps_began = False

    def __call__(self, event: Event) -> None:
        measured = isinstance(event, (PhaseStarted, PhaseFinished)) and event.phase in (CLASS_IMAGES, *CACHING_PHASES)
        if self._steps_began or not (measured or isinstance(event, RunStarted)):
            return
        cuda = self._cuda
        if cuda is None:
            import torch

            cuda = torch.cuda
        if not cuda.is_available():
            return
        allocated = cuda.max_memory_allocated() / 2**20
        if isinstance(event, RunStarted):
            self._steps_began = True
        moment = event.phase if isinstance(event, PhaseFinished) else f"before {getattr(event, 'phase', 'the steps')}"
        self.by_phase[moment] = max(self.by_phase.get(moment, 0.0), allocated)
        if isinstance(event, PhaseFinished) and event.phase == CLASS_IMAGES:
            self.class_images_mb = allocated
        elif isinstance(event, PhaseFinished):
            self.allocated_mb = max(self.allocated_mb or 0.0, allocated)
        else:  # the moments before a measured phase, or before the steps
            self.between_mb = max(self.between_mb or 0.0, allocated)
        self.reserved_mb = max(self.reserved_mb or 0.0, cuda.max_memory_reserved() / 2**20)
        cuda.reset_peak_memory_stats()  # the next moment's peak is its own

    @property
    def whole_mb(self) -> float | None:
        """The largest allocated before the steps."""
        return max((m for m in (self.class_images_mb, self.allocated_mb, self.between_mb) if m is not None), default=None)


def fit_profile(profile: Profile) -> Profile:
    """The profile as the fit test trains it: no previews, no scoring rounds, no checkpoints, no tracker, and one
    process without sharding (see ``launch_note``)."""
    data = profile.model_dump(mode="python")
    # The test trains in its caller's process: accelerate shards only in processes its launcher started, and no
    # other process would meet this one.
    data["launch"].update(num_processes=1, num_machines=1, machine_rank=0, sharding="none")
    data["sampling"]["num_images"] = 0
    data["evaluation"]["enabled"] = False
    data["sampling"]["every_n_steps"] = None
    data["saving"]["every_n_steps"] = None
    data["logging"]["logger"] = "none"
    return Profile.model_validate(data, context=PATHS_READ)


def launch_note(profile: Profile) -> str | None:
    """What the fit test measures of a run launched as several processes or sharded (it trains one, unsharded), in
    words; None for a run of one process, which it measures as it runs."""
    launch = profile.launch
    if launch.num_processes == 1 and launch.sharding == "none":
        return None
    run = f"{launch.num_processes} processes" + (f" on {launch.num_machines} machines" if launch.num_machines > 1 else "")
    run += f' with sharding = "{launch.sharding}"' if launch.sharding != "none" else ""
    as_launched = "sharded" if launch.sharding != "none" else "with DDP's copy of the gradients"
    return (f"the run trains {run}; the fit test trains one process without sharding: its peak VRAM is one GPU holding "
            f"the whole model, where the memory meter's figure is per GPU of the run as launched ({as_launched}), so the "
            "two are not compared; its speed and ETA are one process's")


def fit_test(
    profile: Profile,
    steps: int = 10,
    emit: Callable[[Event], None] | None = None,
    *,
    price_per_hour: float | None = None,
    work_dir: Path | None = None,
    cancel: threading.Event | None = None,
) -> FitResult:
    """Train ``steps`` steps of ``profile`` and measure them (see the module docstring).

    ``cancel`` set from elsewhere stops it early, as it stops any run.
    """
    from engine.runs.in_process import train
    from engine.training.accelerator import check_sharding_installed

    check_sharding_installed(profile)  # the test trains unsharded: only the run would find it missing
    steps = max(MIN_STEPS, steps)
    cancel = cancel or threading.Event()
    seen: list[StepEnded] = []
    started = time.perf_counter()
    first_step_at: list[float] = []

    def collect(event: Event) -> None:
        if isinstance(event, StepEnded):
            if not seen:
                first_step_at.append(time.perf_counter())
            seen.append(event)
            # Stopped before the run's last step, a run that short is not finished, so nothing is exported.
            if measured_enough(seen, steps) or event.step >= event.total_steps - 1:
                cancel.set()
        if emit:
            emit(event)

    setup_peak = SetupPeak()
    folder = Path(tempfile.mkdtemp(prefix="dbtui-fit-", dir=work_dir))
    try:
        train(fit_profile(profile), folder / "run", sinks=[setup_peak, collect], cancel=cancel)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return measure(seen, setup_s=(first_step_at[0] - started) if first_step_at else 0.0, price_per_hour=price_per_hour,
                   setup_peak=setup_peak)


def taken_before_last(events: list[StepEnded]) -> bool:
    """Whether the optimizer took a step before the last of ``events``: the last then ran with its state throughout."""
    return any(not e.optimizer_skipped for e in events[:-1])


def measured_enough(events: list[StepEnded], steps: int) -> bool:
    """Whether the test can stop: ``steps`` steps, and one after the first the optimizer took (see the module docstring)."""
    return len(events) >= steps + MAX_EXTRA_STEPS or (len(events) >= steps and taken_before_last(events))


def measure(events: list[StepEnded], *, setup_s: float, price_per_hour: float | None = None,
            setup_peak: SetupPeak | None = None) -> FitResult:
    """A FitResult from the step events of a short run, and the peak its setup reached."""
    if not events:
        raise ValueError("the fit test ran no steps")
    pairs = list(zip(events, events[1:]))
    # A step fp16's loss scaler skipped did no optimizer work: the steps taken give the speed where there are some,
    # after the first, which also made the optimizer's state.
    taken = [(a, b) for a, b in pairs if not b.optimizer_skipped][1:]
    gaps = [b.time - a.time for a, b in (taken if len(taken) >= 2 else pairs)] or [1.0 / max(events[0].it_per_s, 1e-9)]
    s_per_step = statistics.median(gaps)
    total = events[-1].total_steps
    # The first step pays for warm-up, so it is left out of the median but counted with setup.
    eta = setup_s + s_per_step * total
    peaks = [e.vram_reserved_peak_mb or e.vram_allocated_peak_mb for e in events]
    peaks = [p for p in peaks if p is not None]
    if setup_peak is not None and setup_peak.reserved_mb is not None:
        peaks.append(setup_peak.reserved_mb)
    allocated = [e.vram_allocated_peak_mb for e in events if e.vram_allocated_peak_mb is not None]
    rss = [e.rss_mb for e in events if e.rss_mb is not None]
    return FitResult(
        steps=len(events), total_steps=total, peak_vram_mb=max(peaks) if peaks else None,
        peak_rss_mb=max(rss) if rss else None, setup_s=setup_s, s_per_step=s_per_step, eta_s=eta,
        est_cost=eta / 3600 * price_per_hour if price_per_hour is not None else None,
        device="cuda" if peaks else "cpu", peak_vram_allocated_mb=max(allocated) if allocated else None,
        setup_vram_allocated_mb=setup_peak.allocated_mb if setup_peak is not None else None,
        lacks_optimizer_state=not taken_before_last(events) if len(events) > 1 else events[0].optimizer_skipped,
        setup_by_phase_mb=dict(setup_peak.by_phase) if setup_peak is not None else {},
    )
