"""The fit test measures the steps' GPU peak apart from setup's (class images, the caching pass), as
the memory meter estimates them apart: a stand-in for torch.cuda plays the GPU."""

from __future__ import annotations

from engine.events import PhaseFinished, PhaseStarted, RunStarted, StepEnded
from engine.runs.fit import SetupPeak, measure

MB = 2**20


class FakeCuda:
    """torch.cuda's peak counters: ``allocate`` raises the current use, and the peak with it."""

    def __init__(self, available: bool = True) -> None:
        self.available = available
        self.current = self.peak = self.reserved_peak = 0
        self.resets = 0

    def allocate(self, mb: int) -> None:
        self.current += mb * MB
        self.peak = max(self.peak, self.current)
        self.reserved_peak = max(self.reserved_peak, self.current + 100 * MB)

    def free(self, mb: int) -> None:
        self.current -= mb * MB

    def is_available(self) -> bool:
        return self.available

    def max_memory_allocated(self) -> int:
        return self.peak

    def max_memory_reserved(self) -> int:
        return self.reserved_peak

    def reset_peak_memory_stats(self) -> None:
        self.resets += 1
        self.peak = self.reserved_peak = self.current


def started() -> RunStarted:
    return RunStarted(run_dir="run", profile={}, hardware={}, versions={}, total_steps=4)


def step(n: int, cuda: FakeCuda) -> StepEnded:
    return StepEnded(time=float(n), step=n, total_steps=4, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-5, it_per_s=1.0,
                     eta_s=1.0, vram_allocated_peak_mb=cuda.max_memory_allocated() / MB,
                     vram_reserved_peak_mb=cuda.max_memory_reserved() / MB)


def test_class_images_the_caching_pass_and_the_steps_are_measured_apart() -> None:
    cuda = FakeCuda()
    peak = SetupPeak(cuda)
    cuda.allocate(200)  # loading
    peak(PhaseStarted(phase="class_images", total=2))
    cuda.allocate(5000)  # the pipeline generating class images
    peak(PhaseFinished(phase="class_images", seconds=1.0))
    cuda.free(5000)  # the denoiser leaves the GPU after the phase's end: a moment between, not the caching pass
    peak(PhaseStarted(phase="caching", total=4))
    cuda.allocate(2800)  # the VAE and text encoders while the caches fill
    peak(PhaseFinished(phase="caching", seconds=1.0))
    cuda.free(2500)  # the cached parts leave the GPU
    cuda.allocate(1000)  # the denoiser comes
    peak(started())
    assert (peak.class_images_mb, peak.allocated_mb, peak.between_mb, peak.whole_mb, peak.reserved_mb, cuda.resets) == (
        5200, 3000, 5200, 5200, 5300, 5)
    events = []
    for n in (1, 2, 3):
        cuda.allocate(800)  # the step's activations
        events.append(step(n, cuda))
        cuda.free(800)
    result = measure(events, setup_s=1.0, setup_peak=peak)
    assert result.peak_vram_allocated_mb == 2300  # the 1500 MB on the device and one step's 800
    assert result.setup_vram_allocated_mb == 3000
    assert result.peak_vram_mb == 5300  # a card must hold the largest moment: class images here


def test_text_caching_counts_in_the_caching_pass_too() -> None:
    cuda = FakeCuda()
    peak = SetupPeak(cuda)
    for phase, mb in (("caching", 1000), ("caching_text", 4000)):
        peak(PhaseStarted(phase=phase, total=1))
        cuda.allocate(mb)
        peak(PhaseFinished(phase=phase, seconds=1.0))
        cuda.free(mb)
    assert peak.allocated_mb == 4000
    # Before caching_text: the VAE, until it left.
    assert peak.by_phase == {"before caching": 0, "caching": 1000, "before caching_text": 1000, "caching_text": 4000}
    peak(started())
    peak(PhaseFinished(phase="caching", seconds=1.0))  # none comes once the steps began; were one to, it would not count
    assert peak.by_phase["caching"] == 1000 and "before the steps" in peak.by_phase
    assert measure([step(1, cuda)], setup_s=1.0, setup_peak=peak).setup_by_phase_mb == peak.by_phase


def test_without_a_gpu_nothing_is_read_or_reset() -> None:
    cuda = FakeCuda(available=False)
    peak = SetupPeak(cuda)
    peak(started())
    assert (peak.allocated_mb, peak.reserved_mb, cuda.resets) == (None, None, 0)
    on_cpu = StepEnded(step=1, total_steps=4, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-5, it_per_s=1.0, eta_s=1.0)
    result = measure([on_cpu], setup_s=1.0, setup_peak=peak)
    assert (result.peak_vram_mb, result.peak_vram_allocated_mb, result.setup_vram_allocated_mb, result.device) == (
        None, None, None, "cpu")


def test_the_fit_command_prints_each_measure_beside_the_meters_figure() -> None:
    from dbtui.cli.cmd_fit import _against_meter

    line = _against_meter("steps", 4 * 1024, 5 * 2**30)
    assert line == "steps: allocated 4.00 GB; the meter said 5.00 GB (+25%)"
