"""The README's wizard section names the keys of the Dataset step and of its caption review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbtui.screens.captions import CaptionScreen
from dbtui.screens.dataset import DatasetScreen

README = Path(__file__).resolve().parent.parent / "README.md"


def _dataset_bullet() -> str:
    wizard = README.read_text(encoding="utf-8").split("## The wizard", 1)[1].split("\n## ", 1)[0]
    return re.search(r"^- \*\*Dataset\*\*:.*?(?=^- \*\*)", wizard, re.MULTILINE | re.DOTALL).group(0)


@pytest.mark.parametrize("screen", [DatasetScreen, CaptionScreen])
def test_the_dataset_bullet_names_each_key_of_the_step_and_its_caption_review(screen) -> None:
    """Ctrl+R (Check again; undo in caption review) was in neither: only F1 help told of it."""
    bullet = " ".join(_dataset_bullet().split())
    for binding in screen.BINDINGS:
        if binding.key != "escape":  # Esc goes back on every step: the section's opening says so once
            key = "+".join(part.capitalize() if len(part) > 1 else part.upper() for part in binding.key.split("+"))
            assert f"`{key}`" in bullet, (screen.__name__, key)
