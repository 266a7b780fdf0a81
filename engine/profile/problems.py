"""Profile problems: each names the file, dotted key, line, what is wrong and a suggestion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import DbtuiError
from engine.profile.text_characters import printable


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a profile."""

    key: str
    message: str
    line: int | None = None
    suggestion: str | None = None
    file: Path | None = None
    override: str | None = None  # the `--set KEY=VALUE` that gave the value, when not the file

    def __post_init__(self) -> None:
        # A message may name a file of the user's folder (an image, a caption), whose name can hold a terminal's escape
        # sequences or a line break: printed as they are, they recoloured the terminal or split the problem's line.
        object.__setattr__(self, "message", printable(self.message))

    def __str__(self) -> str:
        if self.override is not None:
            # The file's line holds a value that was replaced: point at the override instead.
            # A pasted value can be huge, or hold a terminal's escapes (refused, and not to be echoed as they are).
            shown = printable(self.override if len(self.override) <= 80 else self.override[:77] + "…")
            where = f"--set {shown}"
            # A key the override already shows is not said again (a malformed one's key is the override itself).
            key = "" if self.key in (self.override, self.override.partition("=")[0].strip()) else self.key
        else:
            where = str(self.file) if self.file else "<profile>"
            if self.line is not None:
                where += f":{self.line}"
            key = self.key or ("" if self.line is not None else "(top level)")  # a syntax error: its line says where
        return f"{where}: {key + ': ' if key else ''}{self.told()}"

    def told(self, quote: str = "'") -> str:
        """The message with the suggestion after its first clause, the likeliest key before the others a message may
        name: "unknown key (did you mean 'training.max_train_steps'?); other sections' steps, …"."""
        if not self.suggestion:
            return self.message
        head, pause, rest = self.message.partition("; ")
        return f"{head} (did you mean {quote}{self.suggestion}{quote}?){pause}{rest}"


class ProfileError(DbtuiError):
    """A profile that cannot be used; holds every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the profile:"
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))
