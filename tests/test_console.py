"""The headless dashboard's lines name their phase and carry no Rich source location."""

from __future__ import annotations

import io

from rich.console import Console

from dbtui.console import RichDashboard
from engine.events import PhaseFinished, PhaseStarted, Warning


def test_a_finished_phase_prints_its_name_and_nothing_else() -> None:
    dashboard = RichDashboard("demo")
    out = io.StringIO()
    dashboard.console = Console(file=out, width=100, force_terminal=False, color_system=None)
    dashboard(PhaseStarted(phase="class_images", total=8))
    dashboard(PhaseFinished(phase="class_images", seconds=64.6))
    dashboard(Warning(message="a [bracketed] note", advice="keep [it]"))
    assert out.getvalue() == "[class_images] done in 64.6s\n"
    rendered = io.StringIO()
    Console(file=rendered, width=120, color_system=None).print(dashboard._render())
    assert "a [bracketed] note — keep [it]" in rendered.getvalue()
