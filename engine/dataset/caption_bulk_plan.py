"""What a bulk caption edit changes, and what it leaves and why, judged before anything is written.

``CaptionStore``'s bulk operations (add or remove a tag, replace, trim) plan here, then write the plan themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from engine.data.caption_text import CaptionFileError, caption_words, read_caption
from engine.data.decode_budget import decode_workers
from engine.dataset.caption_changes import Change, Unreadable, refuse_too_big
from engine.dataset.caption_files import caption_bytes, dangling_caption, not_to_replace
from engine.dataset.caption_renames import rename_advice
from engine.dataset.files import how_misnamed, linked_captions, misnamed_captions
from engine.dataset.image_probe import probe_image, problem_text
from engine.dataset.pool import run_phase
from engine.events import Emit

if TYPE_CHECKING:
    from engine.dataset.captions import CaptionStore



class BulkPlan(NamedTuple):
    changes: list[Change]
    written: list[bytes]  # each change's bytes, as judged
    skipped: list[Unreadable]  # captions left as they are, and why
    still: list[Unreadable]  # edited captions that still need the user (``left``)


def plan_bulk_edit(store: CaptionStore, edit: Callable[[str], str], *, include_missing: bool,
                   left: Callable[[str], str | None] | None, emit: Emit) -> BulkPlan:
    """``edit`` applied to every caption of ``store`` (those missing too where ``include_missing``): what changes, with
    its bytes, and what is skipped and why; ``left`` says why an edited caption still needs the user (or None)."""
    plan, found = BulkPlan([], [], [], []), []
    for path, owners in linked_captions(store.owners(), store.folder).items():
        try:
            before = read_caption(path, store.folder)
        except CaptionFileError as error:  # one bad file never stops the others; it is reported
            plan.skipped.append(Unreadable(path, str(error)))
            continue
        if before is None and not include_missing:
            continue
        if before is None and path.is_symlink():  # writing would replace the link, and undo delete it
            plan.skipped.append(Unreadable(path, dangling_caption(path), "not_created"))
            continue
        found.append((owners, path, before))
    refused = _not_images([i for owners, _, before in found if before is None for i in owners], emit)
    misnamed = misnamed_captions([path for _, path, before in found if before is None], store.extension)
    for owners, path, before in found:
        if path in misnamed:  # a new caption beside it would hide the user's text, and the doctor's error with it
            near = misnamed[path]
            plan.skipped.append(Unreadable(path, f"caption file '{near}' differs from {path.name} only in "
                                                 f"{how_misnamed(path, near)}: training does not read it, and no "
                                                 f"{path.name} was created to hide it; "
                                                 f"{rename_advice(path, near, owners, store.extension)}",
                                           "not_created"))
            continue
        # a.jpg and a.png share a.txt: it is created when either is a picture, for that one trains with it.
        if before is None and all(image in refused for image in owners):
            why = "; ".join(f"'{image}' {refused[image]}" for image in owners)
            plan.skipped.append(Unreadable(path, f"{why}, so no caption file was created for "
                                                 f"{'it' if len(owners) == 1 else 'them'} (`dbtui dataset check` says "
                                                 "what to do)", "not_created"))
            continue
        after = edit(words := caption_words(before))  # a BOM alone is an empty caption, as training reads it
        if after != words and (why := not_to_replace(path)):
            plan.skipped.append(Unreadable(path, why, "read_only"))
            continue
        data = caption_bytes(after, before)  # the text read above: the file is not read again
        refuse_too_big(path, data)
        if after != words:
            plan.changes.append(Change(path, before, after))
            plan.written.append(data)
        if left is not None and (reason := left(after)):
            plan.still.append(Unreadable(path, f"caption file '{path}': {reason}"))
    return plan


def _not_images(images: list[Path], emit: Emit) -> dict[Path, str]:
    """Why each of ``images`` that the doctor finds no picture in (empty, truncated, a saved web page…) is none: a
    caption created beside it would train nothing. A picture over the pixel limit is one, and keeps its caption."""
    if not images:
        return {}
    probes = run_phase("caption_images", probe_image, [str(i) for i in images], workers=decode_workers(images),
                       emit=emit, description=f"reading the {len(images)} images without a caption")
    return {Path(p.path): problem_text(p.error, p.reason) for p in probes if p.error not in (None, "too_many_pixels")}
