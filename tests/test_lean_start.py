"""A lean start: the hardware probe reads GPU memory from NVML, never through a CUDA context."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.hardware.machine import _free_mb


class FakeNvml:
    """pynvml's calls that the probe makes, with one GPU of 24 GiB, 20 GiB of it free."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.asked: list[str] = []

    def nvmlInit(self) -> None:
        if self.fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        self.asked.append(uuid)
        return uuid

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> SimpleNamespace:
        return SimpleNamespace(total=24 * 2**30, free=20 * 2**30, used=4 * 2**30)


def test_free_gpu_memory_comes_from_nvml_by_the_gpus_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert _free_mb("5c9d2a5e-0000-1111-2222-333344445555") == 20 * 1024
    # CUDA's UUID, in NVML's spelling: the same GPU whatever order CUDA_VISIBLE_DEVICES gives them
    assert nvml.asked == ["GPU-5c9d2a5e-0000-1111-2222-333344445555"]


def test_free_gpu_memory_is_unknown_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(fail=True))
    assert _free_mb("5c9d2a5e-0000-1111-2222-333344445555") is None


# -- bitsandbytes waits for its first use --------------------------------------------------------

def make_package(root, name: str) -> None:
    """A package whose code counts its runs in a file, with one submodule."""
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text(
        "import pathlib\n"
        "runs = pathlib.Path(__file__).with_name('runs.txt')\n"
        "runs.write_text(runs.read_text() + 'x' if runs.exists() else 'x')\n"
        "from . import part\n"
        "answer = part.value * 2\n"
        "__version__ = '1.0'\n"
    )
    (package / "part.py").write_text("value = 21\n")


def test_a_deferred_module_runs_at_its_first_use_not_when_imported_or_scanned(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import inspect

    from engine.support.deferred_import import defer

    make_package(tmp_path, "deferred_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "deferred_pkg", raising=False)
    monkeypatch.delitem(sys.modules, "deferred_pkg.part", raising=False)
    runs = tmp_path / "deferred_pkg" / "runs.txt"
    defer("deferred_pkg")
    held = importlib.import_module("deferred_pkg")  # what diffusers and peft do at their import
    inspect.getmodule(test_a_deferred_module_runs_at_its_first_use_not_when_imported_or_scanned)  # reads every module's __file__
    assert hasattr(held, "__file__") and not hasattr(held, "__wrapped__")
    assert not runs.exists()
    assert held.answer == 42  # the first use runs it, its own submodule import included
    assert held.__version__ == "1.0" and runs.read_text() == "x"
    assert importlib.import_module("deferred_pkg") is held and importlib.import_module("deferred_pkg.part").value == 21
    assert runs.read_text() == "x"  # once


def test_a_deferred_submodule_runs_neither_its_own_code_nor_its_packages(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """scipy.stats is deferred at every command's start: finding it imported scipy (and numpy), 0.2 s a command that
    loads no model never used."""
    import importlib

    from engine.support.deferred_import import defer

    make_package(tmp_path, "deferred_parent")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("deferred_parent", "deferred_parent.part"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    defer("deferred_parent.part")
    assert "deferred_parent" not in sys.modules and not (tmp_path / "deferred_parent" / "runs.txt").exists()
    assert importlib.import_module("deferred_parent.part").value == 21  # its first use runs it
    assert importlib.import_module("deferred_parent").answer == 42


def test_a_run_that_needs_no_8bit_optimizer_never_loads_bitsandbytes(tmp_path) -> None:
    """The trainer's process imports diffusers and peft, which import bitsandbytes; a full fine-tune
    with AdamW then trains without running it (nor torch's inductor, which its import compiles with).
    A run without scoring rounds never imports the dataset doctor either (the scoring prompts do). Nor does it run
    scipy.stats, which diffusers' schedulers import for Beta-distributed sigmas; a scheduler that uses them loads it."""
    import subprocess

    from tests.runs_helpers import ROOT, env

    code = ("import sys; from pathlib import Path; from engine.runs.in_process import train; "
            "from tests.training_helpers import tiny_profile; tmp = Path(sys.argv[1]); "
            "train(tiny_profile(tmp, training={'max_train_steps': 1}), tmp / 'run'); "
            "print(type(sys.modules['bitsandbytes']).__name__, 'torch._inductor.compile_fx' in sys.modules, "
            "'engine.dataset' in sys.modules, type(sys.modules['scipy.stats']).__name__); "
            "from diffusers import DPMSolverMultistepScheduler; beta = DPMSolverMultistepScheduler(use_beta_sigmas=True); "
            "beta.set_timesteps(4); print(type(sys.modules['scipy.stats']).__name__, len(beta.sigmas))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=dict(env(), OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-6:] == ["_Deferred", "False", "False", "_Deferred", "module", "5"]


@pytest.mark.parametrize("entry", [
    "from dbtui.cli import main; main(['fit', sys.argv[1], '--estimate-only'])",
    "from engine.memory.__main__ import main; main([sys.argv[1]])",
], ids=["dbtui fit --estimate-only", "the meter's process"])
def test_a_command_that_builds_diffusers_models_never_loads_bitsandbytes(entry: str, tmp_path) -> None:
    """`dbtui export`, `convert` and `fit`, and the meter's process that the wizard starts, load diffusers, which imports
    bitsandbytes: deferred there as in the trainer's process, a plain AdamW profile's estimate never runs it."""
    import subprocess

    from tests.runs_helpers import ROOT, env, profile_file

    code = (f"import sys; {entry}; "
            "print(type(sys.modules['bitsandbytes']).__name__, 'torch._inductor.compile_fx' in sys.modules, 'diffusers' in sys.modules, "
            "type(sys.modules['scipy.stats']).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(profile_file(tmp_path))], cwd=ROOT, env=dict(env(), OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-4:] == ["_Deferred", "False", "True", "_Deferred"]


# -- commands that load no model never load torch ------------------------------------------------

def test_a_command_that_loads_no_model_never_imports_torch(tmp_path, tiny_sd1, tiny_flux) -> None:
    """`dbtui dataset check --profile` read the model's tokenizers through transformers' AutoTokenizer, which imports
    torch: 4-6 s of CPU before its first finding, for a command that runs no model. The models are built here first: a
    built-in model's first use builds it, with torch. One child runs the commands in turn, as `python -m dbtui` would,
    and says after each which of those libraries are loaded: a library one loads stays, so it is named at that one."""
    import json
    import subprocess

    from engine.builtin import resolve_dir
    from tests.runs_helpers import ROOT, env, profile_file

    def profile(model: Path, name: str) -> str:
        (tmp_path / name).mkdir()
        return str(profile_file(tmp_path / name, model={"pretrained": str(model)}, training={"method": "lora"}))

    commands = {"dataset check --profile": ["dataset", "check", "--profile", profile(tiny_sd1, "sd1")],
                "dataset check --profile (flux)": ["dataset", "check", "--profile", profile(tiny_flux, "flux")],
                "dataset check FOLDER": ["dataset", "check", str(resolve_dir("builtin:demo-instance"))],
                "validate": ["validate", profile(tiny_sd1, "sd1-validate")],
                "runs": ["runs"]}
    code = ("import json, sys; from dbtui.cli import main\n"
            "for command in json.loads(sys.argv[1]):\n"
            "    try:\n        main(command)\n    except SystemExit as done:\n        assert not done.code, (command, done.code)\n"
            "    print('loaded:', json.dumps([name for name in ('torch', 'diffusers', 'accelerate', 'peft') if name in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(list(commands.values()))], cwd=ROOT,
                          env=dict(env(), OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = [json.loads(line.removeprefix("loaded:")) for line in done.stdout.splitlines() if line.startswith("loaded:")]
    assert dict(zip(commands, loaded)) == dict.fromkeys(commands, [])
