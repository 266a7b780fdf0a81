"""`dbtui fit` from the command line: how it stops, and what it says it measured."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dbtui.cli import main
from dbtui.cli.boundary import EXIT_INTERRUPTED
from engine.runs.fit import fit_profile, launch_note
from tests.runs_helpers import ROOT, env, profile_file, wait_for
from tests.training_helpers import tiny_profile


# `dbtui fit` as `python -m dbtui` runs it, less the memory estimate (CPU seconds of tracing the model), which comes
# before the temporary folder is made and the signal is sent: what is tested is the process and its stop in training.
FIT_WITHOUT_THE_ESTIMATE = """
import sys
from dbtui.cli import cmd_fit, main
cmd_fit._estimate = lambda profile, cards, say=print: None
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_fit_test_ended_by_sigterm_or_sighup_removes_its_temporary_folder(signum: int, tmp_path: Path, tiny_sd1: Path,
                                                                            demo_data: Path) -> None:
    """`timeout` or a closed SSH session ended the process at once: its run folder, caches included, stayed in TMPDIR."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "fit.out"
    profile = profile_file(tmp_path, training={"max_train_steps": 2000})
    command = [sys.executable, "-c", FIT_WITHOUT_THE_ESTIMATE, "fit", str(profile), "--steps", "500"]
    with out.open("w") as output:
        fit = subprocess.Popen(command, cwd=ROOT, env=dict(env(), TMPDIR=str(tmp)), stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "step 2:" in out.read_text() or fit.poll() is not None, timeout=240, poll=0.1)
            assert fit.poll() is None, out.read_text()
            assert any(tmp.glob("dbtui-fit-*/run/cache")), "the test trains in TMPDIR"
            fit.send_signal(signum)
            assert fit.wait(timeout=120) == EXIT_INTERRUPTED, out.read_text()
        finally:
            if fit.poll() is None:
                fit.kill()
    assert not list(tmp.glob("dbtui-fit-*")), out.read_text()
    assert "dbtui: interrupted" in out.read_text() and "Traceback" not in out.read_text()


def test_a_sharded_profiles_fit_test_trains_one_unsharded_process_and_says_so(tmp_path: Path, tiny_sd1: Path,
                                                                              demo_data: Path, capsys) -> None:
    """It was refused with "On a machine without GPUs set sharding = none", on any machine; and a profile of two
    processes was measured as one without a word."""
    profile = profile_file(tmp_path, training={"max_train_steps": 2}, launch={"num_processes": 2, "sharding": "fsdp"})
    assert main(["fit", str(profile)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert ('the run trains 2 processes with sharding = "fsdp"; the fit test trains one process without sharding' in out
            and "(sharded)" in out)
    # Grammar: one step is "its first step", two are "2 steps".
    assert "the fit test measures its first step (the last" in out and "whole run:         2 steps," in out


def test_the_note_on_several_processes_names_ddps_copy_and_a_run_of_one_process_gets_none(tmp_path: Path) -> None:
    note = launch_note(tiny_profile(tmp_path, launch={"num_processes": 4, "num_machines": 2, "main_process_ip": "10.0.0.1"}))
    assert note is not None and note.startswith("the run trains 4 processes on 2 machines; ") and "DDP's copy" in note
    assert launch_note(tiny_profile(tmp_path)) is None
    fitted = fit_profile(tiny_profile(tmp_path, launch={"num_processes": 2, "sharding": "fsdp"}))
    assert (fitted.launch.num_processes, fitted.launch.sharding) == (1, "none")


def test_a_run_of_one_step_is_said_as_one_step(tmp_path: Path, tiny_sd1: Path, demo_data: Path, capsys, monkeypatch) -> None:
    from dbtui.cli import cmd_fit

    monkeypatch.setattr(cmd_fit, "_estimate", lambda profile, cards, say=print: None)  # the steps' line alone is read
    assert main(["fit", str(profile_file(tmp_path, training={"max_train_steps": 1}))]) == 0
    assert "whole run:         1 step," in capsys.readouterr().out


def test_a_fit_test_refused_for_missing_images_says_the_estimate_alone_needs_none(tmp_path: Path, capsys) -> None:
    """On a laptop before renting, `dbtui fit my.toml` said only "cannot start the run: … folder 'data/dog' does not
    exist": no estimate, and nothing said that --estimate-only makes one without the images."""
    profile = profile_file(tmp_path, concepts=[{"instance_dir": str(tmp_path / "not-here"), "instance_prompt": "photo of zwx dog"}])
    assert main(["fit", str(profile)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "add --estimate-only" in err, err


def test_the_fit_command_counts_the_set_up_phases_images_in_a_few_lines(monkeypatch, capsys, tmp_path: Path) -> None:
    """`dbtui fit` printed each phase's start alone: caching a tiny Flux's pictures on a CPU sat for minutes under
    "[caching] started …", where the wizard's fit test counts them. Piped, a tenth a line, not one per picture."""
    from dbtui.cli import cmd_fit
    from engine.events import PhaseFinished, PhaseProgress, PhaseStarted, StepEnded
    from engine.runs import fit

    def fake_fit_test(profile, steps, emit, **kwargs):
        emit(PhaseStarted(time=0.0, phase="caching", total=200, description="encoding images with the VAE"))
        for done in range(1, 201):
            emit(PhaseProgress(time=done * 3.0, phase="caching", done=done, total=200))
        emit(PhaseFinished(time=600.0, phase="caching", seconds=600.0))
        emit(PhaseStarted(time=600.0, phase="training", total=2))
        steps_ended = [StepEnded(time=600.0 + n, step=n, total_steps=300, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4,
                                 it_per_s=1.0, eta_s=1.0) for n in (1, 2)]
        for ended in steps_ended:
            emit(ended)
            emit(PhaseProgress(time=ended.time, phase="training", done=ended.step, total=2))
        return fit.measure(steps_ended, setup_s=600.0)

    monkeypatch.setattr(fit, "fit_test", fake_fit_test)
    monkeypatch.setattr(cmd_fit, "_estimate", lambda profile, cards, say=print: None)
    profile = profile_file(tmp_path, training={"max_train_steps": 300})
    assert main(["fit", str(profile), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    caching = [line for line in out.splitlines() if line.startswith("[caching]")]
    assert "[caching] 100/200" in out and "[caching] 200/200" in out and "eta" in out, out  # counts, with the time left
    assert len(caching) <= 13, caching  # started, ten tenths, done: no line per picture
    assert "[training]" not in out and "  step 2: loss 0.1000" in out  # the steps keep their own lines
