"""The one place a command's outcome becomes a message and an exit status.

Exit statuses (the README lists them too):
  0  done;
  1  the command ran and reports a problem in your data or run (dataset errors, a failed run);
  2  dbtui could not use what you gave it (profile, file, folder, option): the message says why;
  3  a bug in dbtui: a short message, and the traceback in a log file it names;
  130 interrupted (Ctrl-C);
  141 its output was closed (`| head`) while it followed a run that goes on, or before it started one
      (dbtui/cli/output_closed.py).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from dbtui.cli.output_closed import OutputClosedError
from engine.builtin import cache_dir
from engine.errors import DbtuiError

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USER_ERROR = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 141  # as a shell reports a process that SIGPIPE ended: 128 + 13


def crash_log_dir() -> Path:
    """Where tracebacks of unexpected errors go: $DBTUI_CACHE/logs, else ~/.cache/dbtui/logs."""
    return cache_dir() / "logs"


def write_crash_log(argv: list[str]) -> Path | None:
    """Write the exception being handled, with the command line, to a new log file."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = f"dbtui {' '.join(argv)}\n\n{traceback.format_exc()}"
    for folder in (crash_log_dir(), Path(os.environ.get("TMPDIR", "/tmp"))):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"dbtui-crash-{stamp}-{os.getpid()}.log"
            # A file name of undecodable bytes reaches argv as surrogates: written as escapes, not an error of its own.
            path.write_text(text, encoding="utf-8", errors="backslashreplace")
            return path
        except OSError:
            continue
    return None


def _usable_output() -> None:
    """Output in any locale: a character the terminal's encoding lacks (✓, …, a name's ü under PYTHONIOENCODING=ascii)
    is written as an escape rather than failing the command."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _current_folder_error() -> str | None:
    try:
        os.getcwd()
    except FileNotFoundError:
        return "the current folder was deleted (or moved) under this shell: `cd` to a folder that exists, then run it again"
    return None


def run_guarded(command: Callable[[], int], argv: list[str]) -> int:
    """Run one command; typed errors print their message, anything else points to a log."""
    _usable_output()
    gone = _current_folder_error()
    if gone:  # every relative path, and torch's own libraries, would fail on it in ways that say nothing
        print(f"dbtui: {gone}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        code = int(command() or 0)
        sys.stdout.flush()  # here, where a full disk or a closed pipe is still ours to report
        return code
    except DbtuiError as error:
        advice = getattr(error, "advice", "")  # what to do, where the error carries it (as a failed run's event does)
        print(f"dbtui: {error}" + (f"\n  advice: {advice}" if advice else ""), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return _interrupted()
    except OutputClosedError as left:
        _discard_output()
        with contextlib.suppress(OSError):  # `2>&1 | head`: stderr is the closed pipe too
            print(f"dbtui: {left}", file=sys.stderr, flush=True)
        return EXIT_OUTPUT_CLOSED
    except BrokenPipeError:
        # `dbtui runs | head` closed our output: nothing left to tell anyone.
        _discard_output()
        return EXIT_OK
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _bug(argv, error)
        # A full disk (or quota), be it the output's or a file's: the machine's state, not a bug.
        print(f"dbtui: the disk is full ({error}): free space on it, or write the output somewhere else", file=sys.stderr)
        _discard_output()
        return EXIT_USER_ERROR
    except Exception as error:  # noqa: BLE001 - the last line of defence against a bare traceback
        return _bug(argv, error)


def _discard_output() -> None:
    """Write what is still buffered for stdout, or where stdout is the full disk or the closed pipe, send it to
    /dev/null: the interpreter's last flush would fail again, and turn the exit status into 120 with a traceback."""
    try:
        sys.stdout.flush()  # the full disk may be a file's, and stdout fine: what it holds is still written
        return
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a file here (a test's capture): nothing will be flushed to one


@contextlib.contextmanager
def stops_as_interrupts(signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While a command works in this process (no trainer of its own to pass a stop to, as `dbtui run` has):
    SIGTERM (`kill`, `timeout`) and SIGHUP (a closed terminal or SSH session) stop it as Ctrl-C does, so that
    its ``finally`` blocks remove what it made and it ends with status 130. By default either ends the process
    at once, leaving its temporary folders. Only the first is raised: a second would cut that clean-up short.
    A signal the process inherited as ignored stays ignored: `nohup` ignores SIGHUP so the job outlives its session."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if not seen:
            seen.append(signum)
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, on_signal) for signum in signals
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupted() -> int:
    with contextlib.suppress(OSError):  # after a SIGHUP the terminal may be gone: the status says it all
        print("dbtui: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def _ctrl_c_in(error: BaseException) -> str | None:
    """How a Ctrl-C in ``error``'s chain of causes led to it: "import" where an import it cut short raised (a C
    extension's "ImportError: initialization failed", which diffusers' lazy import, e.g. of onnxruntime in
    save_pretrained, wraps in a RuntimeError), a plain interruption; "handling" where the error came while the
    KeyboardInterrupt was handled (a bug in that code: a summary printed on detach, an undo that failed); None without
    one."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    found = None
    while pending:
        current = pending.pop()
        if id(current) in seen:  # a chain can loop back on itself
            continue
        seen.add(id(current))
        links = [linked for linked in (current.__cause__, current.__context__) if linked is not None]
        if _cut_short(current):
            return "import"
        if isinstance(current, KeyboardInterrupt):
            found = "handling"
        pending += links
    return found


def _cut_short(error: BaseException) -> bool:
    """Whether ``error`` is an import's own failure raised from the Ctrl-C that cut it short: an extension's init turns
    it into ImportError("initialization failed") with the KeyboardInterrupt as its cause (pybind11's raise_from). An
    import that fails within an ``except KeyboardInterrupt`` has it as context only, and a module that is not there
    is never a cut-short init: both are bugs in the handler, to be logged."""
    return (isinstance(error, ImportError) and not isinstance(error, ModuleNotFoundError)
            and isinstance(error.__cause__, KeyboardInterrupt))


def _bug(argv: list[str], error: BaseException) -> int:
    """Say that ``error`` is dbtui's bug, with the log its traceback went to. After a Ctrl-C it is said as an
    interruption (exit 130): a plain one where it broke an import, else with the traceback of the error that followed
    it, which is a bug in the code that handled it."""
    ctrl_c = _ctrl_c_in(error)
    if ctrl_c == "import":
        return _interrupted()
    log = write_crash_log(argv)
    if ctrl_c == "handling":
        where = f"its traceback is in {log}" if log else "no log could be written"
        print(f"dbtui: interrupted; an error followed it ({type(error).__name__}: {error}), {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    where = f"the traceback is in {log}" if log else "no log could be written"
    print(
        f"dbtui: unexpected error ({type(error).__name__}: {error}). This is a bug in dbtui; "
        f"{where}. Please report it with that file.",
        file=sys.stderr,
    )
    return EXIT_BUG
