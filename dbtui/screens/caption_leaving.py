"""What leaving the caption screen changes in the draft: the dataset findings a caption change may have made stale
(the concepts that read the captions' folder), and, where the concept's training reads no caption, the caption mode
the user picks."""

from __future__ import annotations

import os
from typing import Any

from dbtui.session import Session
from engine.profile.fields import expanded_path


def forget_findings(session: Session, folder: str, concept: int | None) -> None:
    """Captions in ``folder`` changed: the findings of ``concept`` and of the concepts that read this folder may be
    stale; the others still hold."""
    here = os.path.realpath(folder)
    for index, other in enumerate(session.get("concepts") or []):
        if index == concept or _real_folder(other.get("instance_dir") or "") == here:
            session.reports.pop(index, None)


def reads_no_captions(session: Session, concept: int) -> bool:
    """Whether the concept trains with its instance prompt alone (the default): edited captions would go unread."""
    return (session.get(f"concepts.{concept}.caption_mode") or "instance_prompt") == "instance_prompt"


def ask_caption_mode(screen: Any, session: Session, concept: int) -> None:
    """Ask which captions the concept trains with; the answer goes into the draft, then ``screen`` is dismissed."""
    from dbtui.screens.caption_mode import CaptionModeScreen

    def chosen(mode: str | None) -> None:
        if mode:
            session.set(f"concepts.{concept}.caption_mode", mode)
            screen.notify(f"Caption mode: {mode.replace('_', ' ')}")
        screen.dismiss(None)

    screen.app.push_screen(CaptionModeScreen(), chosen)


def _real_folder(instance_dir: str) -> str | None:
    """The folder a concept's ``instance_dir`` names, as the dataset step opens it (None: it names none)."""
    try:
        return os.path.realpath(expanded_path(instance_dir)) if instance_dir else None
    except ValueError:
        return None
