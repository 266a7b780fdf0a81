"""engine/ is UI-free, the CLI starts without torch, and the UI never loads torch to start a trainer."""

import dataclasses
import json
import pkgutil
import shlex
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).parents[1]


def test_engine_never_imports_textual() -> None:
    modules = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
    assert len(modules) > 5
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'dbtui'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_help_works_without_importing_torch() -> None:
    code = (
        "import sys\nfrom dbtui.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'textual') if m in sys.modules]\n"
        "print('HEAVY', heavy); sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validate" in result.stdout and "run" in result.stdout


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


HEAVY = "sorted(m for m in ('torch', 'diffusers', 'transformers', 'accelerate') if m in sys.modules)"


def _demo_profile(tmp_path: Path, *overrides: str) -> Path:
    from engine.builtin import demo_profile_text
    from engine.profile import loads_profile, save_profile

    profile = loads_profile(demo_profile_text(), [f"saving.output_dir={str(tmp_path / 'runs')!r}", *overrides])
    return save_profile(profile, tmp_path / "demo.toml")


def test_starting_a_detached_run_leaves_torch_out_of_the_caller(tmp_path: Path) -> None:
    """The wizard starts the trainer as the app does; the app's process never loads torch for it."""
    code = (
        "import json, os, signal, sys\nimport psutil\n"
        "from dbtui.engine_facade import RealEngine\nfrom engine.profile import load_profile\n"
        "folder = RealEngine().start_run(load_profile(sys.argv[1]))\n"
        f"heavy = {HEAVY}\n"
        "trainers = psutil.Process().children()\n"
        "for trainer in trainers:  # detached: its own process group, which holds whatever it started\n"
        "    os.killpg(trainer.pid, signal.SIGKILL)\n"
        "gone, alive = psutil.wait_procs(trainers, timeout=30)\n"
        "print(json.dumps({'heavy': heavy, 'folder': str(folder), 'trainers': len(trainers), 'alive': len(alive)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(_demo_profile(tmp_path))], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["trainers"] == 1 and report["alive"] == 0  # it was started, and nothing is left running
    assert (Path(report["folder"]) / "profile.toml").is_file()
    assert report["heavy"] == []


def test_the_fit_test_leaves_torch_out_of_the_caller(tmp_path: Path) -> None:
    """The fit test trains in a child process; its parent (the wizard) only reads the child's lines.

    The child is stood in for by a script that answers as ``python -m engine.runs.fit_process``
    does (an event, then the result), so that only the parent's side is measured, in a second.
    """
    from engine.events import PhaseStarted
    from engine.runs.fit import FitResult
    from engine.runs.fit_process import RESULT_KEY

    fit = FitResult(steps=2, total_steps=60, peak_vram_mb=None, peak_rss_mb=500.0, setup_s=1.0, s_per_step=0.5,
                    eta_s=31.0, est_cost=None, device="cpu")
    lines = [PhaseStarted(time=1.0, phase="training", total=2).to_json(), json.dumps({RESULT_KEY: dataclasses.asdict(fit)})]
    child = tmp_path / "fit-child"
    child.write_text("#!/bin/sh\n" + "".join(f"echo {shlex.quote(line)}\n" for line in lines), encoding="utf-8")
    child.chmod(0o755)
    code = (
        "import sys\nfrom dbtui.engine_facade import RealEngine\nfrom engine.profile import load_profile\n"
        "profile = load_profile(sys.argv[1])\nsys.executable = sys.argv[2]  # the child's command starts with it\n"
        "events = []\nresult = RealEngine().fit_test(profile, 2, events.append)\n"
        "print('RESULT', result.s_per_step, [e.kind for e in events])\n"
        f"print('HEAVY', {HEAVY})\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(_demo_profile(tmp_path)), str(child)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT 0.5 ['phase_started']" in result.stdout
    assert "HEAVY []" in result.stdout


def test_checking_a_model_file_leaves_torch_out_of_the_wizard(tmp_path: Path) -> None:
    """The Model step and the hardware advice read a .safetensors file's header (family, integer weights) in the app's
    process: safetensors' "pt" framework imported torch there, seconds of a frozen wizard."""
    import numpy as np
    from safetensors.numpy import save_file

    model = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": np.zeros((320, 4, 3, 3), np.float16),
               "model.diffusion_model.out.2.weight": np.zeros((4, 320, 3, 3), np.int8)}, str(model))
    code = (
        "import sys\nfrom dbtui.engine_facade import RealEngine\nfrom engine.model_info import advice_family\n"
        "info = RealEngine().inspect_model(sys.argv[1])\nadvice_family(sys.argv[1])\n"
        f"print('FAMILY', info.family)\nprint('HEAVY', {HEAVY})\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(model)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "holds integer (int8) weights" in result.stdout  # both header reads ran
    assert "HEAVY []" in result.stdout


def test_every_source_file_stays_under_400_lines() -> None:
    """The project's limit on a module: one past it has a cohesive piece to move into a module named for what it does."""
    long = {str(path.relative_to(ROOT)): lines for folder in ("engine", "dbtui", "bench")
            for path in sorted((ROOT / folder).rglob("*.py"))
            if (lines := path.read_bytes().count(b"\n")) >= 400}
    assert long == {}
