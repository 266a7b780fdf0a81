"""Shared fixtures: tiny random-weight models and the demo dataset, built once per session."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from engine.support.deferred_import import defer_seldom_used

# As dbtui's processes do (dbtui/cli, engine/runs/in_process.py): diffusers and peft import bitsandbytes whenever it is
# installed, and its import compiles kernels, about 5 s of CPU here, which every worker paid at collection, whether or
# not its files use it (and diffusers' schedulers scipy.stats). Deferred before any test module imports diffusers; a
# first use loads it.
defer_seldom_used()

from tests.gc_freeze import freeze_at_an_import_wave  # noqa: E402
from tests.shared_runs import plain_scored_run, two_process_run  # noqa: F401,E402  (fixtures of several files)
from tests.stack_probes import stacks_probed  # noqa: F401,E402  (a fixture of several files)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker more than cores (``maxprocesses`` caps it): a Textual test waits on its app's messages, and a run
    test on its trainer's start, more than it computes, so with one worker a core the cores stood half idle."""
    return (os.cpu_count() or 1) + 1


if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    # Parallel workers share the cores: each (and every trainer it starts) takes its share of
    # threads, so they do not oversubscribe the machine and slow each other down.
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))


@pytest.fixture(autouse=True)
def _imported_modules_out_of_the_collector() -> None:
    """What is alive as a test starts after an import wave is frozen (tests/gc_freeze.py): later collections walk only
    what came after."""
    freeze_at_an_import_wave()


# As the worker started: what every test and every fixture's set-up leave behind them (below).
_HANDLERS_AT_START = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


def _signal_handlers_put_back() -> None:
    """The trainer's entry point, called in-process by some tests and fixtures, sets its own SIGINT/SIGTERM/SIGHUP
    handlers (SIGHUP ignored): left so, every process a later test of the same worker started inherited SIGHUP ignored,
    and one that should stop on it (a fit test, a watcher on a closed terminal) rightly kept running."""
    for signum, handler in _HANDLERS_AT_START.items():
        signal.signal(signum, handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup() -> object:
    """After each fixture's set-up: a module fixture's trainer runs before its first test, whose children inherited its
    handlers."""
    yield
    _signal_handlers_put_back()


@pytest.fixture(autouse=True)
def _signal_handlers_kept() -> object:
    """After each test, as after each fixture's set-up."""
    yield
    _signal_handlers_put_back()


@pytest.fixture(autouse=True)
def _notices_outlast_a_loaded_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wizard's notice leaves after its timeout (5 to 60 s) of wall time; on a loaded machine a Pilot test's few key
    presses took longer, and its look at app._notifications found the notice it asserted gone (a flaky failure). In
    tests a notice stays an hour longer; its own timeout, which tests assert, is unchanged."""
    from time import time

    from textual.notifications import Notification

    monkeypatch.setattr(Notification, "time_left", property(lambda self: self.raised_at + self.timeout + 3600 - time()))


@pytest.fixture(autouse=True)
def _screens_settle_on_a_loaded_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pilot waits 30 s of wall time for a screen to handle its pending messages after each key press or click, then
    fails the test (WaitForScreenTimeout). At load 8 the Parameters screen's layout took longer, and tests that assert
    nothing about time failed now and then; in tests the wait is three minutes."""
    from textual.pilot import Pilot

    wait = Pilot._wait_for_screen

    async def patient(self: Pilot, timeout: float = 180.0) -> bool:
        return await wait(self, timeout=max(timeout, 180.0))

    monkeypatch.setattr(Pilot, "_wait_for_screen", patient)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built-in assets go to a folder of this test session, never the user's ~/.cache. xdist's workers share it: each
    tiny model is built once a session, not once a worker (a second worker asking meanwhile waits for the first's
    build: engine.builtin._build_once)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "dbtui-cache"
    folder.mkdir(exist_ok=True)
    os.environ["DBTUI_CACHE"] = str(folder)
    return folder


@pytest.fixture
def silent_hub(monkeypatch: pytest.MonkeyPatch) -> object:
    """The hub's address as a local socket that accepts connections (the kernel does) and never answers, as a firewall
    that holds them does; online, and the hub's time limit cut to 1 s. Yields the address."""
    import socket

    from huggingface_hub import constants

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read when huggingface_hub was imported, maybe offline
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
    yield endpoint
    server.close()


@pytest.fixture(scope="session")
def tiny_sd1(_isolated_cache: Path) -> Path:
    """A tiny SD1-architecture diffusers folder (epsilon prediction)."""
    from engine.builtin import resolve_model

    return Path(resolve_model("builtin:tiny-sd1"))


@pytest.fixture(scope="session")
def tiny_sd2v(_isolated_cache: Path) -> Path:
    """A tiny SD2-style diffusers folder (v-prediction)."""
    from engine.builtin import resolve_model

    return Path(resolve_model("builtin:tiny-sd2v"))


@pytest.fixture(scope="session")
def tiny_sdxl(_isolated_cache: Path) -> Path:
    """A tiny SDXL diffusers folder (two text encoders of different widths, text_time conditioning)."""
    from engine.builtin import resolve_model

    return Path(resolve_model("builtin:tiny-sdxl"))


@pytest.fixture(scope="session")
def tiny_flux(_isolated_cache: Path) -> Path:
    """A tiny Flux.1 diffusers folder (CLIP-L and a T5 with a locally built tokenizer, a guidance-embedding transformer)."""
    from engine.builtin import resolve_model

    return Path(resolve_model("builtin:tiny-flux"))


@pytest.fixture(scope="session")
def old_python() -> Path:
    """The python of a venv with the oldest diffusers/transformers/peft pyproject.toml declares (old_stack.py)."""
    from old_stack import old_stack_python

    return old_stack_python()


@pytest.fixture(scope="session")
def demo_data(_isolated_cache: Path) -> Path:
    """The synthetic demo dataset: instance/ (with .txt captions) and class/."""
    from engine.builtin import resolve_dir

    return Path(resolve_dir("builtin:demo-instance")).parent


@pytest.fixture
def encode_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts, while the test runs, images the VAE encodes ("vae") and SD1 text-encoder passes ("text")."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    calls = {"vae": 0, "text": 0}
    vae_encode, text_forward = AutoencoderKL.encode, CLIPTextModel.forward

    def counting_encode(self, x, *args, **kwargs):
        calls["vae"] += x.shape[0]
        return vae_encode(self, x, *args, **kwargs)

    def counting_forward(self, *args, **kwargs):
        calls["text"] += 1
        return text_forward(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "encode", counting_encode)
    monkeypatch.setattr(CLIPTextModel, "forward", counting_forward)
    return calls


@pytest.fixture
def trainer_of():
    """Start a live process that reads as the dbtui trainer of a run folder (its command names engine.runs.worker and
    the folder), for runs shown as running; returns its pid."""
    import subprocess
    import sys
    import time

    processes: list[subprocess.Popen] = []

    def start(run_dir: Path) -> int:
        processes.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", "engine.runs.worker",
                                           str(run_dir)]))
        command = Path(f"/proc/{processes[-1].pid}/cmdline")
        deadline = time.monotonic() + 10
        while command.exists() and not command.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)  # empty until its exec ends: read then as any run's trainer (cannot tell)
        return processes[-1].pid

    yield start
    for process in processes:
        process.kill()
        process.wait()
