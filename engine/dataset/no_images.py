"""The refusal of a caption folder that holds no image, shared by auto-captioning and the bulk caption edits: after
them, a mistyped folder, or photos in a sub-folder, were said only as "0 captions written" (or changed), status 0."""

from __future__ import annotations

from engine.data.images import why_no_images
from engine.dataset.captions import CaptionStore
from engine.dataset.errors import CaptionError

NOTHING_TO_CAPTION = "nothing to caption, so the captioner was not loaded"
NOTHING_TO_EDIT = "nothing to edit, so no caption was changed"


def refuse_no_images(store: CaptionStore, nothing: str) -> None:
    """A CaptionError where ``store``'s folder holds no image, said before a captioner loads (a download of a GB) or a
    bulk edit. ``nothing``: what is not done for it (NOTHING_TO_CAPTION, NOTHING_TO_EDIT)."""
    if store.images():
        return
    fix = "caption them with -r, or give the sub-folder itself"
    why = "" if store.recursive else why_no_images(store.folder, fix)
    raise CaptionError(f"no images in {store.folder}: {nothing}{why}")
