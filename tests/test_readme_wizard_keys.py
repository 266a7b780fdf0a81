"""The README's wizard section names the keys of the Dataset, Parameters and Training steps and of the caption review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbtui.screens.captions import CaptionScreen
from dbtui.screens.dataset import DatasetScreen
from dbtui.screens.parameters import ParametersScreen
from dbtui.screens.training import TrainingScreen

README = Path(__file__).resolve().parent.parent / "README.md"


def _bullet(step: str) -> str:
    wizard = README.read_text(encoding="utf-8").split("## The wizard", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"^- \*\*{step}\*\*:.*?(?=^- \*\*|^#)", wizard, re.MULTILINE | re.DOTALL).group(0)


@pytest.mark.parametrize(("step", "screen"), [("Dataset", DatasetScreen), ("Dataset", CaptionScreen),
                                              ("Parameters", ParametersScreen), ("Training", TrainingScreen)])
def test_each_steps_bullet_names_each_key_of_the_step(step: str, screen) -> None:
    """Ctrl+R (Check again; undo in caption review) was in neither: only F1 help told of it."""
    bullet = " ".join(_bullet(step).split())
    for binding in screen.BINDINGS:
        if binding.key not in ("escape", "ctrl+n"):  # Esc and Ctrl+N work on every step: the section's opening says so
            # Ctrl+R and F2 as the README writes them; a plain letter (the dashboard's `s`) stays as it is typed.
            key = binding.key if len(binding.key) == 1 else "+".join(
                part.capitalize() if len(part) > 1 else part.upper() for part in binding.key.split("+"))
            assert f"`{key}`" in bullet, (screen.__name__, key)
