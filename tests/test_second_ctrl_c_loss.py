"""A second Ctrl-C ends a foreground run at once: the state it leaves keeps the loss of the last step trained."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.runs import supervisor as supervisor_module
from engine.runs.folder import RunFolder, RunState
from engine.runs.supervisor import Supervisor


@pytest.mark.parametrize(("trained", "shown"), [(True, 0.125), (False, 0.5)])
def test_a_second_ctrl_c_keeps_the_last_steps_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: bool,
                                                    shown: float) -> None:
    """It wrote no loss: state.json said the attempt before's (0.5 here), or none, though steps had trained since.
    Before this attempt's first step (the trainer's loss nan) the earlier attempt's loss stays shown."""
    folder = RunFolder(tmp_path / "run").create()
    folder.write_state(RunState(pid=1, status="stopped", step=40, total_steps=200, last_loss=0.5))
    supervisor = Supervisor(folder)
    supervisor.trainer = SimpleNamespace(global_step=64 if trained else 40, total_steps=200,
                                         last_loss=0.125 if trained else float("nan"))
    supervisor.training = trained
    exits: list[int] = []
    monkeypatch.setattr(supervisor_module.os, "_exit", exits.append)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        supervisor.install_signals()
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        handler(signal.SIGINT, None)
        handler(signal.SIGINT, None)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    state = folder.read_state()
    assert exits == [130] and state is not None and state.status == "stopped"
    assert state.last_loss == shown, state
