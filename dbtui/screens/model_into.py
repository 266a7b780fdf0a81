"""The Model step's Into folder: the engine's answer for it, and for which file and Flux parts it was asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.profile.fields import expanded_path, written_path

if TYPE_CHECKING:
    from engine.model_import import ConversionTarget


def read_into(typed: str) -> Path | None:
    """The folder Into names, read as the Model field is; None where it names a variable that is not set."""
    try:
        return Path(expanded_path(typed))
    except ValueError:
        return None


def into_problem(typed: str) -> str:
    """Why Into names no folder to convert into (``read_into`` gave None, or Into is empty)."""
    if not typed:
        return "Name the folder to convert into."
    try:  # ~ and $VAR as the Model field and profiles read them; $$ is a $ of the name
        expanded_path(typed)
    except ValueError as error:
        return f"Into {error}"
    return ""


@dataclass
class IntoAnswer:
    """The engine's answer for the folder in Into (``target``), asked for this file and these Flux parts
    (``asked_for``: import_model's keywords), and the folder it suggested (``suggested``: Into left at it follows the
    Flux parts)."""

    target: ConversionTarget | None = None
    asked_for: tuple[str, dict] | None = None
    suggested: str | None = None

    def forget(self) -> None:
        self.target, self.asked_for, self.suggested = None, None, None

    def answered(self, typed: str, source: str, parts: dict) -> bool:
        """Whether the answer held is of this file, these parts and the folder typed in Into."""
        return (self.target is not None and self.asked_for == (source, parts) and bool(typed)
                and read_into(typed) == self.target.folder)

    def reuses(self, typed: str, source: str, parts: dict) -> bool:
        """Whether the folder typed holds this file's conversion already."""
        return self.target is not None and self.target.holds_it and self.answered(typed, source, parts)

    def follows_suggestion(self, typed: str) -> bool:
        """Into empty or left at the engine's suggestion: the engine suggests it again."""
        return typed in ("", self.suggested)

    def of_into(self, typed: str, into: Path | None) -> bool:
        """Whether an answer asked for ``into`` is of the folder in Into now: a suggestion's (None) while Into is empty
        or at the last one."""
        return self.follows_suggestion(typed) if into is None else bool(typed) and read_into(typed) == into

    def take(self, source: str, parts: dict, into: Path | None, target: ConversionTarget) -> str | None:
        """Keeps the answer; the folder to fill Into with where it was a suggestion, else None."""
        self.target, self.asked_for = target, (source, parts)
        if into is not None:
            return None
        self.suggested = written_path(str(target.folder))  # a folder named with a $ is read back as named
        return self.suggested
