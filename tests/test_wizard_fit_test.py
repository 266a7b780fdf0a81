"""The parameters screen's fit test while it runs: one at a time, and ended when the user leaves or quits."""

from __future__ import annotations

import threading
import time

from textual.widgets import Button, Static

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import HELD_S, FakeEngine
from wizard_steps import at_step, fit_result, settle

SIZE = (80, 24)
WAIT_S = 30.0  # a fit test the test forgot to end gives up after this


class HeldFitEngine(FakeEngine):
    """A fit test that runs until ``release`` is set or its caller stops it, as a real one trains for a while."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.begun = 0  # fit tests started, ended or not

    def fit_test(self, profile, steps: int, emit=None, price_per_hour=None, stop=None):
        self.begun += 1
        self.started.set()
        deadline = time.monotonic() + WAIT_S
        while not self.release.wait(0.02) and time.monotonic() < deadline:
            if stop is not None and stop():
                self.stopped.set()
                return None
        return super().fit_test(profile, steps, emit, price_per_hour, stop)


async def fit_started(app, pilot, engine: HeldFitEngine):
    """The parameters screen with a fit test running."""
    await pilot.pause(0.2)
    screen = await at_step(app, pilot, 3, "ParametersScreen")
    await pilot.press("ctrl+f")
    await pilot.pause(0.3)
    assert engine.started.wait(5)
    return screen


async def test_a_running_fit_test_is_not_started_again_by_its_key() -> None:
    engine = HeldFitEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        try:
            screen = await fit_started(app, pilot, engine)
            await pilot.press("ctrl+f")
            await pilot.pause(0.2)
            await pilot.press("ctrl+f")
            await pilot.pause(0.3)
            assert engine.begun == 1
            assert screen.query_one("#par-fit", Button).disabled
            assert screen.check_action("fit", ()) is None  # shown in the footer, greyed
        finally:
            engine.release.set()
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        assert not screen.query_one("#par-fit", Button).disabled and screen.check_action("fit", ())
        await pilot.press("ctrl+f")
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert engine.begun == 2  # once it ended, the key starts the next


async def test_leaving_the_screen_ends_its_fit_test_and_coming_back_offers_a_new_one() -> None:
    engine = HeldFitEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        try:
            await fit_started(app, pilot, engine)
            await pilot.press("escape")
            await pilot.pause(0.3)
            assert type(app.screen).__name__ == "DatasetScreen"
            assert engine.stopped.wait(5), "the fit test went on after its screen was left"
        finally:
            engine.release.set()


async def test_quitting_ends_a_running_fit_test() -> None:
    engine = HeldFitEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await fit_started(app, pilot, engine)
            await pilot.press("ctrl+q")
            await pilot.pause(0.3)
        assert engine.stopped.wait(5), "the fit test went on after the app quit"
    finally:
        engine.release.set()


class GpuFitEngine(FakeEngine):
    """A fit test on a GPU: torch measured a peak the meter's estimate can be compared with."""

    def fit_test(self, profile, steps: int, emit=None, price_per_hour=None, stop=None):
        import dataclasses

        result = super().fit_test(profile, steps, emit, price_per_hour, stop)
        return dataclasses.replace(result, peak_vram_mb=9000.0, peak_vram_allocated_mb=8000.0, device="cuda")


async def test_a_fit_test_of_a_run_of_several_processes_says_it_measured_one_and_makes_no_meter_error_of_it() -> None:
    """`dbtui fit` said the fit test trains one process unsharded; the wizard's fit test said nothing of it, and compared
    that one process's peak with the meter's per-GPU figure of the run as launched, as the meter's error."""
    for processes in (1, 2):
        session = Session.for_demo()
        session.set("launch.num_processes", processes)
        app = make_app(GpuFitEngine(), session, image_renderer="none")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
            screen = await at_step(app, pilot, 3, "ParametersScreen")
            await app.workers.wait_for_complete()
            await pilot.press("ctrl+f")
            await app.workers.wait_for_complete()
            await pilot.pause(0.3)
            result = fit_result(screen)
        assert "Fit test: 8.8 GB peak VRAM" in result, result
        several = "the run trains 2 processes; the fit test trains one process without sharding" in result
        assert several is (processes == 2) and ("the meter said" in result) is (processes == 1), result


class CachingFitEngine(HeldFitEngine):
    """A fit test that caches its images for a minute before the steps, as a tiny Flux at 512 px does on a CPU."""

    def fit_test(self, profile, steps: int, emit=None, price_per_hour=None, stop=None):
        from engine.events import PhaseProgress, PhaseStarted

        began = time.time()
        emit(PhaseStarted(phase="caching", total=14, description="encoding images with the VAE", time=began))
        emit(PhaseProgress(phase="caching", done=2, total=14, time=began + 60))
        return super().fit_test(profile, steps, emit, price_per_hour, stop)


async def test_the_fit_tests_set_up_shows_its_phase_and_how_far_it_is() -> None:
    """Minutes of caching on a CPU showed "Fit test running: loading the model…", as if it had hung."""
    engine = CachingFitEngine()
    app = make_app(engine, Session.for_demo(), image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        try:
            screen = await fit_started(app, pilot, engine)
            status = str(screen.query_one("#par-fit-status", Static).render())
            assert "caching: encoding images with the VAE (2 of 14, about 6m 00s left)" in status, status
        finally:
            engine.release.set()
            await app.workers.wait_for_complete()


class SlowCachingEngine(FakeEngine):
    """A fit test caching its 14 pictures at a minute each, on a CPU (the fake's probe) or, with ``gpu``, on a T4."""

    def __init__(self, gpu: bool = False) -> None:
        super().__init__()
        self.gpu = gpu

    def probe_hardware(self, path: str):
        import dataclasses

        from wizard_fakes import T4

        report = super().probe_hardware(path)
        return dataclasses.replace(report, hardware=T4) if self.gpu else report

    def fit_test(self, profile, steps: int, emit=None, price_per_hour=None, stop=None):
        from engine.events import PhaseProgress, PhaseStarted

        emit(PhaseStarted(phase="caching", total=14, description="encoding images with the VAE", time=1000.0))
        emit(PhaseProgress(phase="caching", done=2, total=14, time=1120.0))
        return super().fit_test(profile, steps, emit, price_per_hour, stop)


async def test_a_slow_fit_test_on_a_cpu_says_so_and_what_to_fit_at_as_the_cli_does() -> None:
    """`dbtui fit` on a CPU said that caching would take 14 min and that 64 px measures sooner; the wizard's fit test
    (Ctrl+F) counted the pictures with no word of it. A GPU's pace is the run's: nothing is said there."""
    session = Session.for_demo()
    session.set("dataset.resolution", 128)
    engine = SlowCachingEngine(gpu=True)
    app = make_app(engine, session, image_renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        await app.workers.wait_for_complete()
        # One app: the GPU's fit test on a fresh screen first (it checks that nothing is said), then this CPU's, probed
        # again; its result replaces the GPU's (which has no CPU note to hide a missing one), and what it says is
        # checked from cleared notifications.
        for gpu in (True, False):
            if not gpu:
                engine.gpu = False
                app.probe_hardware()
                await settle(pilot)
                app.clear_notifications()
            assert session.hardware is not None and bool(session.hardware.hardware.gpus) is gpu
            await pilot.press("ctrl+f")
            await app.workers.wait_for_complete()
            await pilot.pause(0.3)
            result = " ".join(fit_result(screen).split())
            said = [n.message for n in app._notifications if n.title == "Slow on this CPU"]
            assert "s/step" in result, result  # the test ended, its result shown
            assert [call[0] for call in engine.calls].count("fit_test") == (1 if gpu else 2)
            if gpu:
                assert "on this CPU" not in result and not said, result
                continue
            hint = ("on this CPU, caching (14 items) will take about 14 min at 128 px; to measure sooner, fit at a "
                    "smaller resolution (dataset.resolution=64)")
            assert f"Note: {hint}" in result, result
            # the form's resolution is the run's: one lowered to fit sooner would train at 64 px unless put back
            assert "then set it back to 128 before you train" in result, result
            assert "the meter's estimate on the VRAM line, made without a GPU, is that figure" in result
            assert len(said) == 1 and hint in said[0], said


class HeldCpuCachingEngine(CachingFitEngine):
    """The slow caching fit test on this CPU (the fake's probe), whose probe answers once the test sets ``answer``."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()
        self.probes = 0

    def probe_hardware(self, path: str):
        self.probes += 1
        # Asked before Next, answered once the fit test runs: 20-25 s later on a loaded machine, at times over WAIT_S.
        assert self.answer.wait(HELD_S), "the test never let the probe answer"
        return super().probe_hardware(path)


async def test_a_slow_fit_test_started_before_the_probe_answered_says_so_once_it_does() -> None:
    """The slow-CPU note was dropped when the fit test's pace was known before the hardware step's probe had answered
    (Next, then Ctrl+F at once): the note is said once per test, and it was said to nobody."""
    from wizard_steps import held_probe_wizard, parameters_before_the_probe, until

    engine = HeldCpuCachingEngine()
    async with held_probe_wizard(engine) as pilot:
        app = pilot.app
        try:
            await parameters_before_the_probe(pilot, engine, "d", dataset__resolution=128)
            await until(pilot, lambda: type(app.screen).__name__ == "ParametersScreen")
            await pilot.pause()
            await pilot.press("ctrl+f")
            await until(pilot, engine.started.is_set)
            await pilot.pause(0.2)
            assert app.session.hardware is None  # the fit test's pace came first
            engine.answer.set()
            await until(pilot, lambda: app.session.hardware is not None)
            await pilot.pause(0.2)
            said = [n.message for n in app._notifications if n.title == "Slow on this CPU"]
            result = " ".join(fit_result(app.screen).split())
        finally:
            engine.release.set()
    assert len(said) == 1 and "caching (14 items) will take about 7 min at 128 px" in said[0], said
    assert "Note: on this CPU, caching (14 items)" in result, result
