"""The slow-CPU note of a fit test started before the hardware probe answered is held for that answer; where the probe
failed, no answer came and the note was never said."""

from __future__ import annotations

from test_wizard_fit_test import HeldCpuCachingEngine
from wizard_steps import fit_result, held_probe_wizard, parameters_before_the_probe, until


class FailingProbeEngine(HeldCpuCachingEngine):
    """The slow caching fit test, whose held probe fails once the test lets it answer."""

    def probe_hardware(self, path: str):
        super().probe_hardware(path)
        raise OSError("cannot read the free disk space")


async def test_a_slow_fit_test_says_its_note_where_the_hardware_probe_fails() -> None:
    engine = FailingProbeEngine()
    async with held_probe_wizard(engine) as pilot:
        app = pilot.app
        try:
            await parameters_before_the_probe(pilot, engine, "d", dataset__resolution=128)
            await until(pilot, lambda: type(app.screen).__name__ == "ParametersScreen")
            await pilot.pause()
            await pilot.press("ctrl+f")
            await until(pilot, engine.started.is_set)
            await pilot.pause(0.2)
            engine.answer.set()
            await until(pilot, lambda: any(n.title == "Hardware check failed" for n in app._notifications))
            await pilot.pause(0.2)
            said = [n.message for n in app._notifications if n.title == "Slow on this CPU"]
            result = " ".join(fit_result(app.screen).split())
        finally:
            engine.release.set()
    assert len(said) == 1 and "the hardware check failed" in said[0], said
    assert "caching (14 items) will take about 7 min at 128 px" in said[0], said
    assert "Note: if this machine has no GPU (the hardware check failed), on this CPU, caching" in result, result
