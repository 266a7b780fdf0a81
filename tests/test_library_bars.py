"""dbtui export, convert and fit show dbtui's own phases, not diffusers' and transformers' tqdm bars ("Loading
weights", "Writing model shards", "Loading pipeline components") mixed into their lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from engine.profile import load_profile
from tests.runs_helpers import profile_file, python, trained_as_by_dbtui_run

BARS = ("Loading weights", "Writing model shards", "Loading pipeline components", "it/s]")

# Runs each command (argv lists, JSON in argv[1]) through dbtui's CLI in this one process, after a line of its own. The
# libraries' bars are put back on before each command after the first, as a process of its own starts with them: what
# turns them off in a command's output is that command's own doing. One process, not one a command: each cost the
# start of a process that imports torch and diffusers.
COMMANDS = """
import json, sys
from dbtui.cli import main
for index, argv in enumerate(json.loads(sys.argv[1])):
    if index:
        import huggingface_hub.utils as hub
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging
        diffusers_logging.enable_progress_bar()
        transformers_logging.enable_progress_bar()
        hub.enable_progress_bars()
    print(f"=== dbtui {argv[0]}", flush=True)
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if code:
        sys.exit(f"dbtui {argv[0]} ended with {code}")
"""


def _said(*commands: list[str]) -> list[str]:
    """What each command printed (stdout and stderr), in order; the first's with what the process printed before it."""
    run = python(COMMANDS, json.dumps(commands), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 0, out
    start, *parts = out.split("=== dbtui ")
    assert [part.split("\n", 1)[0] for part in parts] == [argv[0] for argv in commands], out
    return [start + parts[0], *parts[1:]]


def test_export_convert_and_fit_show_no_library_bars_and_say_when_the_model_loads(tmp_path: Path) -> None:
    profile = profile_file(tmp_path, training={"max_train_steps": 2},
                           saving={"every_n_steps": 100, "export": ["diffusers", "safetensors"]})
    # The run to export is trained in this process; the commands whose output is read run in a process of their own.
    run = trained_as_by_dbtui_run(load_profile(profile))
    single_file = str(tmp_path / "m.safetensors")
    exported, converted, fitted = _said(["export", str(run.path), "--step", "2"],
                                        ["convert", "to-single-file", str(run.outputs / "diffusers"), single_file],
                                        ["fit", str(profile), "--steps", "2"])
    for out in (exported, converted, fitted):
        assert not any(bar in out for bar in BARS), out
    assert "[load_model] started" in exported and "[load_model] done" in exported, exported
    assert "[load_model] started" in fitted, fitted
