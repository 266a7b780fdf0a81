"""The dataset step's Check and Prepare jobs: the concept each was started for, found again when its result comes
back (a concept may be removed, or given another folder, while the job runs), and what a Prepare's result says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from dbtui.messages import EngineEvent


@dataclass(frozen=True)
class Job:
    """A Check or Prepare as it was started."""

    concept: dict[str, Any] = field(compare=False, repr=False)  # the draft's own: its index shifts when one before goes
    folder: str  # the concept's images folder when the job started: its result is of this folder
    number: int = 0  # the screen's count of such jobs when it started: a later one replaces it

    @classmethod
    def of(cls, session, index: int, number: int = 0) -> Job:
        concept = session.get(f"concepts.{index}")
        return cls(concept, concept.get("instance_dir") or "", number)

    def index_in(self, session) -> int | None:
        """The concept's index now; None when it was removed or its images folder changed since the job started."""
        for index, concept in enumerate(session.get("concepts") or []):
            if concept is self.concept:
                return index if (concept.get("instance_dir") or "") == self.folder else None
        return None


# Each job's bar is named: a Check pressed while Prepare runs took Prepare's bar, left full when the check ended.
PROGRESS_LABELS = {"check": "Checking", "prepare": "Preparing"}


@dataclass
class JobEvent(EngineEvent):
    """An engine event of the step's Check or Prepare (``job``), for that job's own bar."""

    job: str = "check"

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobEvent) and message.job == self.job and super().can_replace(message)


def copies_of(folder: str) -> str:
    """Where a Prepare of ``folder`` (as the draft writes it: "a$$b", "$DATA/x") writes its copies."""
    from engine.builtin import resolve_dir
    from engine.dataset.prepared_origin import prepare_paths
    from engine.errors import DbtuiError
    from engine.profile.fields import expanded_path

    try:  # read as the profile reads it: "a$$b" is the folder a$b, whose copies go to a$b-prepared, not a$$b-prepared
        return str(prepare_paths(resolve_dir(expanded_path(folder)))[1])
    except (DbtuiError, OSError, ValueError):
        return f"the folder beside {folder}"


def prepare_said(result) -> tuple[bool, str]:
    """(whether the concept moves to the copies: only when some image was prepared, what went wrong or elsewhere).
    The failures are said either way, and listed among the findings of the copies' check, which cannot see what is
    not among them."""
    moved = bool(result.written or result.up_to_date)
    failed = f"{len(result.failed)} image(s) could not be prepared" if result.failed else ""
    if result.failed_folders:  # a linked folder outside, an unreadable one: not an image, as the check counts them
        failed = " and ".join(filter(None, [f"{len(result.failed_folders)} sub-folder(s) could not be read", failed]))
    if result.caption_failures:
        failed = " and ".join(filter(None, [failed, f"{len(result.caption_failures)} caption(s) could not be copied"]))
    if failed:  # unmoved, the concept's own folder is checked, which shows the images' problems itself
        failed += ": the findings list each, with why and what to do" if moved else " (Check says why)"
    if result.kept:  # files of the user's own where copies go: left alone, so their images are not prepared
        failed = "; ".join(filter(None, [failed, f"{len(result.kept)} image(s) not prepared: {result.destination} "
                                         "holds files of the same names that dbtui did not make (kept)"]))
    if result.stale_captions:  # not a failure: said so that the user knows where their text went
        failed = "; ".join(filter(None, [failed, f"{len(result.stale_captions)} caption(s) whose original is gone "
                                         f"were moved to {result.set_aside_in}"]))
    if result.edited_captions:
        failed = "; ".join(filter(None, [failed, f"{len(result.edited_captions)} caption(s) edited among the copies "
                                         "were kept, not replaced by the originals'"]))
    if result.origin_not_recorded:  # Prepare on the copies would then copy them, not update them from the originals
        failed = "; ".join(filter(None, [failed, result.origin_not_recorded]))
    return moved, failed
