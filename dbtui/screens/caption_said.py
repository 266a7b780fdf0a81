"""What the caption screen says when a job over every caption ends (the notification's text, whether it warns),
and when a caption could not be saved."""

from __future__ import annotations

from typing import Any

from textual.content import Content


def autocaption_said(result: Any) -> tuple[str, bool]:
    """What auto-caption wrote, which captions it left (written before it, or saved while it ran), and which
    images it could not caption, with the first one's reason."""
    # Counted in caption files: a.jpg and a.png share one, written (or kept) once.
    said = f"Auto-caption wrote {len(result.written)} caption(s)"
    if result.skipped:
        said += f"; {len(result.skipped)} kept as they were (written before it, or while it ran)"
    if result.failed:
        image, reason = result.failed[0]
        more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
        said += f"; {len(result.failed)} not captioned: {image}: {reason}{more}"
    return said + ".", bool(result.failed)


def changes_said(changes: Any, hint: str) -> tuple[str, bool]:
    """A bulk edit or undo: what changed, and how many captions it left alone, and why."""
    said = f"{changes.operation}: {changes.counts_said('had none')}" + (f" {hint}" if hint and len(changes) else "")
    # A caption never created (beside a file that is no picture) was not "left as it was".
    left = [item for item in changes.skipped if item.kind != "not_created"]
    not_made = [item for item in changes.skipped if item.kind == "not_created"]
    for items, what in ((left, "left as they were"), (not_made, "not created")):
        if items:
            more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
            said += f". {len(items)} {what}: {items[0].reason}{more}"
    still = changes.still_said
    if still:
        said += f". {len(still)} still say it inside a longer tag, which Remove tag leaves whole: edit them by hand"
    return said, bool(changes.skipped or still)


def not_saved_said(error: str) -> tuple[Content, str]:
    """A save that failed: the status line under the editor, and the notification's text; both say what to do."""
    what_to_do = ("Your text stays in the editor; Prepare on the Dataset step makes an editable copy of the "
                  "folder. Moving on or Esc again goes without it.")
    return Content.from_markup(f"[red]Not saved.[/] {what_to_do} $error", error=error), f"{error.rstrip('.')}. {what_to_do}"
