"""What Prepare left out of the copies, as the doctor's findings on the originals.

After Prepare the concept trains from the copies, and a check of them cannot see what is not there: an image too
large to decode, a caption it could not read (the check then calls the copy's caption "missing"). These findings
name each, with why and what to do, to show beside that check's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.dataset.image_findings import error_fix
from engine.dataset.image_probe import PROBLEMS
from engine.dataset.prepare import PrepareResult
from engine.dataset.report import SEVERITIES, Finding

AGAIN = "then Prepare again"


def left_out_findings(result: PrepareResult) -> tuple[Finding, ...]:
    """A finding for each image not prepared, caption not copied, and caption kept as the user edited it."""
    found = [Finding(source, "not_prepared", "warning", f"{reason}; so it is not among the prepared copies",
                     f"{_image_fix(source, reason)}, {AGAIN}") for source, reason in result.failed]
    found += [Finding(folder, "not_prepared", "warning", f"{problem}; so its pictures are not among the prepared copies",
                      f"{fix}, {AGAIN}") for folder, problem, fix in result.failed_folders]
    found += [Finding(file, "not_prepared", "warning", reason) for file, reason in result.kept]  # the reason says what to do
    found += [Finding(caption, "caption_not_copied", "warning", f"not copied beside its image's copy: {reason}",
                      f"fix it among the originals as it says, {AGAIN}") for caption, reason in result.caption_failures]
    found += [Finding(caption, "caption_not_copied", "info", "not copied: no image has its name",
                      "rename it after its image, or delete it") for caption in result.orphan_captions]
    found += [Finding(caption, "caption_kept", "info", "edited among the copies since Prepare copied it: kept, and its "
                      "original's text did not replace it", "delete it to take the original's text again")
              for caption in result.edited_captions]
    return tuple(found)


def _image_fix(source: str, reason: str) -> str:
    """The check's advice for the problem ``reason`` starts with (engine/dataset/image_probe.PROBLEMS), when one fits:
    the chmod, not "copy it again", for an original this user may not read."""
    codes = [code for code, words in PROBLEMS.items() if reason.startswith(words)]
    return error_fix(codes[0], source) if len(codes) == 1 else "fix it among the originals"


def with_findings(report: Any, extra: tuple[Finding, ...]) -> Any:
    """``report`` (a DatasetReport) with ``extra`` among its findings, by severity, and in its counts."""
    if not extra:
        return report
    counts = dict(report.summary.counts)
    for finding in extra:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    findings = sorted((*report.findings, *extra), key=lambda f: SEVERITIES.index(f.severity))
    return replace(report, findings=tuple(findings), summary=replace(report.summary, counts=counts))
