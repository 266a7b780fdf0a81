"""Black-and-white photos among a colour subject's: the model learns the look of the whole set, grey included."""

from __future__ import annotations

from pathlib import Path

from engine.dataset.image_probe import ImageProbe
from engine.dataset.report import Finding

# A grey photo kept as colour (a phone's black-and-white filter, a scan) keeps a level or two of chroma from its
# compression; a colour photo's mean is tens of levels, a sepia print's over ten.
GREY_CHROMA = 4.0


def grey_findings(folder: str, probes: list[ImageProbe]) -> list[Finding]:
    """``some_grayscale`` on ``folder`` when some but not all of the ``probes`` (the usable images a run reads) are
    grey: a set all grey is a look the user chose."""
    grey = sorted(p.path for p in probes if p.chroma < GREY_CHROMA)
    if not grey or len(grey) == len(probes):
        return []
    names = ", ".join(Path(path).name for path in grey[:3]) + (f" and {len(grey) - 3} more" if len(grey) > 3 else "")
    return [Finding(folder, "some_grayscale", "warning",
                    f"{len(grey)} of {len(probes)} images are black-and-white ({names}): the model learns the set's "
                    "look with the subject, so it may make grey pictures of it",
                    "remove them or use colour versions; if you want both looks, caption them (e.g. \"black and "
                    "white photo of …\", caption_mode caption_file) so the grey goes with those words")]
