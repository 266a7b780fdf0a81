"""The CLI's one boundary: typed errors are messages with exit 2; anything else is a short
message that names a crash log holding the traceback, with exit 3; never a bare traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dbtui.cli.boundary import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USER_ERROR, run_guarded
from engine.errors import DbtuiError

PROFILE = Path(__file__).parents[1] / "profiles" / "tiny-demo.toml"


def test_a_typed_error_is_its_message_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def command() -> int:
        raise DbtuiError("the folder x does not exist; create it")

    assert run_guarded(command, ["run", "x"]) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "dbtui: the folder x does not exist; create it\n"


def test_an_unexpected_error_points_to_a_log_with_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path))

    def command() -> int:
        return {}["missing"]

    assert run_guarded(command, ["dataset", "check", "photos"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyError" in err and "bug in dbtui" in err
    [log] = (tmp_path / "logs").glob("dbtui-crash-*.log")
    assert str(log) in err
    text = log.read_text()
    assert text.startswith("dbtui dataset check photos") and "Traceback" in text and "KeyError: 'missing'" in text


def test_a_full_disk_is_the_machines_state_not_a_bug(tmp_path: Path, tiny_sd1: Path, demo_data: Path) -> None:
    """`dbtui validate > file` on a full disk said "This is a bug in dbtui" and wrote a crash log (to that full disk)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    # A cache of its own, for its logs, that lends the session's built model and images: building them (15 s) is
    # not what is tested.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(tiny_sd1.parent)
    (cache / "demo-data").symlink_to(demo_data)
    with open("/dev/full", "w") as full:
        code = f"import sys\nfrom dbtui.cli import main\nsys.exit(main(['validate', {str(PROFILE)!r}]))\n"
        result = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, text=True,
                                env={"DBTUI_CACHE": str(cache), "PATH": "/usr/bin:/bin"})
    assert result.returncode == EXIT_USER_ERROR
    assert "the disk is full" in result.stderr and "bug" not in result.stderr
    assert not (tmp_path / "cache" / "logs").exists()


def test_ctrl_c_is_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    def command() -> int:
        raise KeyboardInterrupt

    assert run_guarded(command, []) == EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


def test_ctrl_c_during_an_import_is_exit_130_not_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C while save_pretrained made diffusers import onnxruntime reached the boundary as "ImportError:
    initialization failed" wrapped in a RuntimeError, and was reported as a bug (exit 3)."""
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path))

    def command() -> int:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as interrupt:
                raise ImportError("initialization failed") from interrupt
        except ImportError as failed:
            raise RuntimeError("Failed to import diffusers.pipelines.onnx_utils") from failed

    assert run_guarded(command, []) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "dbtui: interrupted\n"  # a plain interruption: no error, no crash log said
    assert not list(tmp_path.rglob("dbtui-crash-*"))


def test_a_bug_raised_while_a_ctrl_c_is_handled_is_exit_130_with_its_traceback_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dbtui attach` detached on Ctrl-C and printed the best step inside its `except KeyboardInterrupt`: a bug there
    (or in a launch's undo) said "dbtui: interrupted" and left no trace of itself."""
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path))

    def command() -> int:
        try:
            raise KeyboardInterrupt  # the user detaches
        except KeyboardInterrupt:
            return {}["best"]

    assert run_guarded(command, ["attach", "x"]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    [log] = (tmp_path / "logs").glob("dbtui-crash-*.log")
    assert f"dbtui: interrupted; an error followed it (KeyError: 'best'), its traceback is in {log}" in err
    assert "KeyError: 'best'" in log.read_text() and "KeyboardInterrupt" in log.read_text()



@pytest.mark.parametrize("statement", ["import dbtui.no_such_summary", "from engine import no_such_summary"])
def test_an_import_that_fails_while_a_ctrl_c_is_handled_is_logged_not_taken_for_one_cut_short(
    statement: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A detach summary importing a renamed module said a plain "dbtui: interrupted": any ImportError with the Ctrl-C
    in its chain passed for an import it cut short, and the bug left no log."""
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path))

    def command() -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            exec(statement)
            return 0

    assert run_guarded(command, ["attach", "x"]) == EXIT_INTERRUPTED
    [log] = (tmp_path / "logs").glob("dbtui-crash-*.log")
    assert "an error followed it" in capsys.readouterr().err and "no_such_summary" in log.read_text()

def test_an_error_whose_chain_loops_without_a_ctrl_c_is_still_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DBTUI_CACHE", str(tmp_path))

    def command() -> int:
        first, second = ValueError("first"), RuntimeError("second")
        first.__context__, second.__cause__ = second, first
        raise second

    assert run_guarded(command, []) == EXIT_BUG
    assert "This is a bug in dbtui" in capsys.readouterr().err


def test_the_installed_command_reports_a_bug_without_a_traceback(tmp_path: Path) -> None:
    """End to end through the real entry point: a handler that crashes is caught by the boundary."""
    code = (
        "import sys\n"
        "import dbtui.cli.cmd_validate as v\n"
        "def boom(args):\n"
        "    raise RuntimeError('boom')\n"
        "v._validate = boom\n"
        "from dbtui.cli import main\n"
        "sys.exit(main(['validate', 'x.toml']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"DBTUI_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == EXIT_BUG
    assert "Traceback" not in result.stderr and "RuntimeError: boom" in result.stderr
    assert any((tmp_path / "logs").iterdir())


def test_a_signal_inherited_as_ignored_stays_ignored_and_sigterm_still_stops() -> None:
    """`nohup dbtui fit …` ignores SIGHUP so the job outlives its SSH session: stops_as_interrupts keeps it ignored."""
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup leaves it\n"
        "from dbtui.cli.boundary import run_guarded, stops_as_interrupts\n"
        "def command() -> int:\n"
        "    with stops_as_interrupts():\n"
        "        print('ready', flush=True)\n"
        "        sys.stdin.readline()\n"
        "        print('ran on', flush=True)\n"
        "        sys.stdin.readline()\n"
        "    return 0\n"
        "sys.exit(run_guarded(command, ['fit']))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGHUP)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "ran on\n"
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == EXIT_INTERRUPTED and "dbtui: interrupted" in err


def test_a_command_from_the_command_line_leaves_its_objects_to_the_exit_not_a_last_collection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dataset check --profile P.toml` sat about 2.5 s after its result, with nothing shown: the interpreter's last
    garbage collection walked the objects torch and transformers leave. A command of the command line freezes them;
    one called from Python (a test, a caller that goes on) does not."""
    import gc

    from dbtui.cli import main

    (tmp_path / "a.txt").write_text("zwx", encoding="utf-8")
    gc.unfreeze()  # what conftest froze for the suite's speed
    assert gc.get_freeze_count() == 0
    assert main(["dataset", "caption", str(tmp_path), "--frequency"]) == 0 and gc.get_freeze_count() == 0
    monkeypatch.setattr(sys, "argv", ["dbtui", "dataset", "caption", str(tmp_path), "--frequency"])
    try:
        assert main() == 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
