"""The README says what `dbtui fit` and `dataset check --profile` print as they print it: the fit test's per-phase
counts and its slow-CPU note (at the threshold and the size engine/runs/fit_pace.py uses), in the CLI's synopsis and
the wizard's, and the run-length line a profile that sets its length is told, quoted as the CLI prints it."""

from __future__ import annotations

import re
from pathlib import Path

from dbtui.cli import main
from engine.runs.fit_pace import SLOW_S, SMALL_RESOLUTION
from tests.dataset_fixture import textured

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_fit_synopsis_and_the_wizards_fit_test_say_the_phases_and_the_slow_cpu_note() -> None:
    synopsis = flat(README.split("    dbtui fit PROFILE", 1)[1].split("    dbtui serve", 1)[0])
    assert "set-up phases" in synopsis and "a line per tenth with the time left" in synopsis, synopsis
    assert f"past {SLOW_S / 60:g} minutes" in synopsis and f"--set dataset.resolution={SMALL_RESOLUTION}" in synopsis
    wizard = flat(README.split("`Ctrl+F` for a **fit test**", 1)[1].split("A **VRAM** line", 1)[0])
    assert "on a CPU" in wizard and f"`dataset.resolution={SMALL_RESOLUTION}`" in wizard, wizard


def test_the_run_length_line_the_readme_quotes_is_what_dataset_check_prints(tmp_path: Path, capsys) -> None:
    section = flat(README.split("## The dataset doctor", 1)[1].split("\n## ", 1)[0])
    [quoted] = re.findall(r"is told `(Training steps: [^`]*?)…`", section)
    folder = tmp_path / "style"
    folder.mkdir()
    for i in range(3):
        textured(i, (256, 256)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"an oil painting, scene {i}\n")
    profile = tmp_path / "p.toml"  # as sd15-style-native.toml: no identifier, captions, 10 epochs
    profile.write_text(f'[model]\npretrained = "builtin:tiny-sd1"\n[[concepts]]\ninstance_dir = "{folder}"\n'
                       'instance_prompt = ""\ncaption_mode = "caption_file"\n[training]\nnum_train_epochs = 10\n')
    assert main(["dataset", "check", "--profile", str(profile)]) == 0
    assert quoted in flat(capsys.readouterr().out), quoted
