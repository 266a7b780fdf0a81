"""The checks: turn probes, captions and the identifier into plain-language findings."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.data.buckets import Bucket, nearest_bucket
from engine.data.caption_text import CaptionFileError, caption_words
from engine.data.captions import CAPTION_FILE_MODES, caption_for, captions_alone, training_caption
from engine.data.decode_budget import decode_workers
from engine.data.images import DataError, unused_class_images
from engine.data.unread_captions import caption_of_another_extension, other_extension_fix
from engine.dataset.caption_file_findings import (misnamed_finding, orphan_caption_findings, other_extension_findings,
                                                  shared_caption_findings, unused_caption_findings)
from engine.dataset.captions import read_caption
from engine.dataset.class_checks import class_folder_findings, class_image_findings, class_images_present
from engine.dataset.copies import copy_findings
from engine.dataset.duplicates import DEFAULT_MAX_DISTANCE
from engine.dataset.grey_findings import grey_findings
from engine.dataset.files import caption_owners, caption_path, misnamed_caption, name_key, scan_folder
from engine.dataset.image_findings import image_findings
from engine.dataset.image_probe import ImageProbe, probe_image, refused_folder_said
from engine.dataset.options import bucket_list, checked_caption_extension, checked_resolution, checked_workers
from engine.dataset.pool import run_phase
from engine.dataset.report import DatasetReport, Finding, summarise
from engine.dataset.sub_folders import folder_findings
from engine.dataset.tokens import (
    DISCOURAGED_IDENTIFIERS,
    Overflow,
    TextReader,
    common_rank,
    identifier_pieces,
    judges_words,
    suggest_identifiers,
)
from engine.events import Event
from engine.models.family import CaptionReader
from engine.profile.text_characters import blank

# Variance of the Laplacian on the ≤512 px grey copy; sharp photos score in the hundreds or more.
BLUR_THRESHOLD = 60.0
_PROMPT_MODES = {"instance_prompt", "caption_file_then_prompt", "prompt_then_caption_file"}


# What of the cut text a finding quotes: a pasted page would fill the report's table.
QUOTED_CHARS = 400


def _quoted(text: str) -> str:
    return text if len(text) <= QUOTED_CHARS else f"{text[:QUOTED_CHARS].rstrip()}… ({len(text):,} characters)"


def _long_text(reader: CaptionReader, overflow: Overflow, prompt: bool) -> tuple[str, str, str, str]:
    """(code, severity, message, fix) for text longer than one of the family's tokenizers reads."""
    overflow = dataclasses.replace(overflow, cut=_quoted(overflow.cut))
    if reader.read_by:  # another encoder reads the rest: a note, not a loss
        message = (f"the instance prompt is {overflow.tokens} tokens, over {reader.name}'s {overflow.limit}: "
                   f"“{overflow.cut}” reaches {reader.read_by} only" if prompt else
                   f"its caption is {overflow.tokens} tokens; {reader.name} reads {overflow.limit}, so it only sees the "
                   f"start ({reader.read_by} reads it all) and misses: “{overflow.cut}”")
        return ("caption_partly_read", reader.severity, message,
                "nothing to do if the start says what matters: put the identifier and the subject first")
    message = (f"the instance prompt is {overflow.tokens} tokens, over {overflow.limit}: “{overflow.cut}” is cut" if prompt
               else f"its caption is {overflow.tokens} tokens; {reader.name} reads {overflow.limit}, so this is cut: "
                    f"“{overflow.cut}”")
    return "caption_too_long", reader.severity, message, "shorten it" if prompt else "shorten it; put what matters first"


def caption_findings(
    image: Path, *, caption_mode: str, extension: str, instance_prompt: str | None, identifier: str | None,
    readers: list[TextReader], root: Path | None = None, captions: dict[tuple[Path, str], Path] | None = None,
    sharing: list[Path] | None = None) -> list[Finding]:
    """What is wrong with one image's caption; ``captions`` (``Listing.captions_by_key``) names a misnamed one, and
    ``sharing`` the images that read the same caption file (``caption_owners``)."""
    path = str(image)
    found = []
    if caption_mode in CAPTION_FILE_MODES:
        file = caption_path(image, extension)
        # An instance prompt not given to the check (None) is not taken for empty: the prompt may be all it needs.
        alone = caption_mode == "caption_file" or (instance_prompt is not None and captions_alone(caption_mode, instance_prompt))
        near = misnamed_caption(file, captions or {}) if not file.exists() else None
        if near is not None:
            return [misnamed_finding(path, file, near, "error" if alone else "warning", sharing or [image], extension)]
        try:
            raw = read_caption(file, root or image.parent)
        except CaptionFileError as error:
            return [Finding(path, "caption_unreadable", "error", f"its caption cannot be used: {error}",
                            "fix the caption file, or write a new one (dbtui dataset caption)")]
        text = caption_words(raw)
        if not text:
            missing = "is missing" if raw is None else "is empty"
            if caption_mode == "caption_file":
                found.append(Finding(path, "caption_missing", "error",
                                     f"its caption file {file.name} {missing}, and the caption mode uses only caption files",
                                     "write one (dbtui dataset caption) or switch the caption mode"))
            elif alone:
                found.append(Finding(path, "caption_missing", "error",
                                     f"its caption file {file.name} {missing}, and the instance prompt is empty: it would "
                                     "train with no prompt at all", "write one (dbtui dataset caption) or set the instance prompt"))
            else:
                found.append(Finding(path, "caption_missing", "warning",
                                     f"its caption file {file.name} {missing}: it trains with the instance prompt alone",
                                     "write one (dbtui dataset caption)"))
            other = caption_of_another_extension(image, extension) if raw is None else None
            if other is not None:  # its caption is there, in the extension another tool writes: no need to write one
                found[-1] = dataclasses.replace(found[-1], message=f"{found[-1].message}; {other.name} is there, which training "
                                    f"does not read (the caption extension is {extension})",
                                    fix=other_extension_fix(extension, other))
        elif caption_mode == "caption_file" and identifier and not _has_word(text, identifier):
            found.append(Finding(path, "caption_lacks_identifier", "warning",
                                 f"its caption does not contain the identifier '{identifier}'",
                                 f"add it, e.g. dbtui dataset caption --add-tag {identifier}"))
    if caption_mode == "file_name":
        try:
            named = caption_for(image, caption_mode, instance_prompt or "", extension)
        except DataError as error:  # as the run refuses it (training_caption reads it as no caption)
            return [Finding(path, "caption_unusable_name", "error", str(error),
                            "rename it, or choose another caption mode")]
        if instance_prompt is not None and blank(named):  # None: the prompt is not known to this check
            return [Finding(path, "caption_empty_name", "error", "its name gives no words (a counter or punctuation "
                            "alone) and the instance prompt is empty: it would train with no prompt at all", "rename it to say what it shows, or set the "
                            "instance prompt")]
    if readers and caption_mode != "instance_prompt":
        caption = training_caption(image, caption_mode, instance_prompt, extension)
        for reader in readers if caption else []:
            overflow = reader.overflow(caption)
            if overflow:
                found.append(Finding(path, *_long_text(reader.reader, overflow, prompt=False)))
    return found


def prompt_findings(
    folder: str, *, caption_mode: str, instance_prompt: str | None, identifier: str | None, tokenizer: Any,
    readers: list[TextReader] | None = None,
) -> list[Finding]:
    """Findings about the instance prompt and the identifier (reported on the folder). ``tokenizer`` judges
    the identifier; ``readers`` (default: ``tokenizer`` as CLIP) measure the prompt."""
    found = []
    uses_prompt = caption_mode in _PROMPT_MODES
    if uses_prompt and instance_prompt and identifier and not _has_word(instance_prompt, identifier):
        found.append(Finding(folder, "prompt_lacks_identifier", "error",
                             f"the instance prompt “{instance_prompt}” does not contain the identifier '{identifier}'",
                             f"put it before the class word, e.g. 'photo of {identifier} dog'"))
    if tokenizer is None:
        reason = DISCOURAGED_IDENTIFIERS.get(identifier.lower()) if identifier else None
        if reason:  # known without a tokenizer: the ranks and suggestions below need one
            found.append(Finding(folder, "identifier_common", "warning", f"the identifier '{identifier}' is a poor choice: "
                                 f"{reason}", "use a short rare word (with --model the doctor suggests some)"))
        found.append(Finding(folder, "token_checks_skipped", "info",
                             "no tokenizer given: caption lengths and the identifier's tokens were not checked",
                             "pass --model (a diffusers folder) or --profile"))
        return found
    for reader in (readers or [TextReader(tokenizer)]) if uses_prompt and instance_prompt else []:
        overflow = reader.overflow(instance_prompt)
        if overflow:
            found.append(Finding(folder, *_long_text(reader.reader, overflow, prompt=True)))
    if identifier and not judges_words(tokenizer):
        found.append(Finding(folder, "identifier_not_judged", "info",
                             f"this model's tokenizer spells every word letter by letter (the built-in demo's), so the "
                             f"identifier '{identifier}' cannot be judged",
                             "with a real model the doctor checks that it is one rare token"))
    elif identifier:
        suggestions = suggest_identifiers(tokenizer, exclude=identifier)
        examples = f", e.g. {', '.join(suggestions)}" if suggestions else ""
        pieces = identifier_pieces(tokenizer, identifier)
        if len(pieces) > 1:
            found.append(Finding(folder, "identifier_splits", "warning",
                                 f"the identifier '{identifier}' is {len(pieces)} tokens for this model ({' + '.join(pieces)}): "
                                 "its pieces carry other meanings and it is harder to learn",
                                 f"use a short rare word that is one token{examples}"))
        reason = DISCOURAGED_IDENTIFIERS.get(identifier.lower())
        rank = common_rank(tokenizer, identifier)
        if reason or rank:
            why = reason or f"it is a common word (the model's {rank:,}th most frequent token) with a meaning of its own"
            found.append(Finding(folder, "identifier_common", "warning",
                                 f"the identifier '{identifier}' is a poor choice: {why}",
                                 f"use a short rare word{examples}"))
    return found


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def _checking(images: int, refused: int) -> str:
    """What the check's progress line says; the summary counts the refused entries as images too."""
    return f"checking {images} images" + (f" ({refused} more refused without opening: see the report)" if refused else "")


def check_dataset(
    folder: Path | str,
    *,
    resolution: int = 512,
    caption_mode: str | None = "instance_prompt",
    caption_extension: str = ".txt",
    instance_prompt: str | None = None,
    identifier: str | None = None,
    tokenizer: Any = None,
    readers: list[TextReader] | None = None,
    recursive: bool = False,
    bucketing: bool = False,
    buckets: list[Bucket] | None = None,
    size_multiple: int = 64,
    blur_threshold: float = BLUR_THRESHOLD,
    duplicate_distance: int = DEFAULT_MAX_DISTANCE,
    max_pixels: int | None = None,
    class_dir: Path | str | None = None,
    num_class_images: int | None = None,
    class_generated: tuple[Path | None, int] = (None, 0),
    emit: Callable[[Event], None] | None = None,
    workers: int | None = None,
    concept_folders: tuple[Path, ...] = (),
    instance_dir: bool = False,
) -> DatasetReport:
    """Check every image of ``folder`` for what spoils DreamBooth training; originals are only read.

    ``tokenizer`` judges the identifier; captions are measured against ``readers``, the model family's
    tokenizers (``load_readers``), or against ``tokenizer`` read as CLIP when none are given. ``class_generated``:
    the generated class images a run would reuse (see ``profile_settings.concept_settings``), beside ``class_dir``'s own.
    ``concept_folders``: the profile's other concepts' instance and class folders: not unused images as sub-folders.
    ``instance_dir``: ``folder`` is a profile concept's, so generated class images alone there are no training images.
    ``caption_mode`` None: none was told (a folder checked alone), so no caption file is said to go unread.
    """
    told_mode, caption_mode = caption_mode is not None, caption_mode or "instance_prompt"
    resolution = checked_resolution(resolution)
    workers = checked_workers(workers)
    if readers is None:
        readers = [TextReader(tokenizer)] if tokenizer is not None else []
    elif tokenizer is None and readers:
        tokenizer = readers[0].tokenizer  # the family's first reads the identifier
    caption_extension = checked_caption_extension(caption_extension)
    others = (*concept_folders, Path(class_dir)) if class_dir else concept_folders
    # -r passes them over: a class folder inside FOLDER was read as the concept's own images (and told to move up).
    listing = scan_folder(folder, recursive=recursive, exclude=others, caption_extension=caption_extension)
    images = listing.images
    refused = [r for r in listing.refused if not r.folder]  # a refused sub-folder is a finding, not an image
    folder_name = str(folder)
    probe = functools.partial(probe_image, max_pixels=max_pixels) if max_pixels else probe_image
    # A process a CPU held a decoded picture each: a 96-CPU machine ran out of memory on huge photos.
    probes: list[ImageProbe] = run_phase("dataset_check", probe, [str(p) for p in images],
                                         workers=decode_workers(images, workers),
                                         emit=emit, description=_checking(len(images), len(refused)))
    probes += [ImageProbe(str(r.path), r.code, r.reason) for r in refused]
    probes.sort(key=lambda p: p.path)
    buckets = bucket_list(resolution, buckets, size_multiple)
    findings = [Finding(str(r.path), r.code, "error", *refused_folder_said(r)) for r in listing.refused if r.folder]
    findings += folder_findings(folder, images, recursive=recursive, skip=others, instance_dir=instance_dir)
    for item in probes:
        findings += image_findings(item, resolution=resolution, bucketing=bucketing, buckets=buckets,
                                   blur_threshold=blur_threshold)
    copied, copies = copy_findings(probes, duplicate_distance, Path(folder))
    findings += copied
    broken = {p.path for p in probes if not p.ok}
    captions, sharing = listing.captions_by_key(caption_extension), caption_owners(images, caption_extension)
    for image in images:
        if str(image) in broken:
            continue
        findings += caption_findings(image, caption_mode=caption_mode, extension=caption_extension,
                                     instance_prompt=instance_prompt, identifier=identifier, readers=readers,
                                     root=Path(folder), captions=captions, sharing=sharing[caption_path(image, caption_extension)])
    # A caption named but for case or accents is reported on its image (caption_misnamed), not again as an orphan;
    # beside the image's own caption it is one training does not read (photo.jpg.txt beside photo.txt), an orphan.
    wanted = {(image.parent, name_key(caption.name)) for image in images
              if not (caption := caption_path(image, caption_extension)).exists()}
    findings += orphan_caption_findings([c for c in listing.orphan_captions if (c.parent, name_key(c.name)) not in wanted])
    findings += shared_caption_findings(images, caption_extension)
    reads_captions = not told_mode or "caption_file" in caption_mode
    findings += other_extension_findings(images, caption_extension) if reads_captions else []
    findings += unused_caption_findings(folder_name, images, caption_extension, caption_mode) if told_mode else []
    findings += prompt_findings(folder_name, caption_mode=caption_mode, instance_prompt=instance_prompt,
                                identifier=identifier, tokenizer=tokenizer, readers=readers)
    image_buckets = {p.path: nearest_bucket(p.width, p.height, buckets) for p in probes if p.ok}
    present = class_images_present(class_dir)
    # With prior preservation off (no class images wanted) the run never reads it, and validate calls it unused.
    findings += class_folder_findings(class_dir) if num_class_images != 0 else []
    unused, why = (unused_class_images(Path(class_dir), (Path(folder), *concept_folders)) if present is not None and num_class_images != 0
                   else (0, ""))
    if unused:
        enough = num_class_images is not None and present + class_generated[1] >= num_class_images
        findings.append(Finding(str(class_dir), "class_images_unused", "warning",
                                f"{unused} picture(s) in the class folder are not used as class images{why}",
                                "nothing to do if the class images already there are the ones you want" if enough
                                else "else the run generates class images in their place"))
    broken_class = (class_image_findings(Path(class_dir), num_class_images, max_pixels=max_pixels, workers=workers, emit=emit)
                    if present and num_class_images != 0 else [])
    findings += broken_class
    order = {"error": 0, "warning": 1, "info": 2}
    # -r reads the sub-folders' images for their findings; a run reads only the folder's own (engine.data.images).
    left_out = frozenset(p.path for p in probes if Path(p.path).parent != Path(folder))
    failed = {f.path for f in findings if f.severity == "error"} | left_out
    findings += grey_findings(folder_name, [p for p in probes if p.ok and p.path not in failed])
    findings.sort(key=lambda f: (f.path, order[f.severity], f.code))
    return DatasetReport(
        folder=folder_name,
        resolution=resolution,
        findings=tuple(findings),
        summary=summarise(probes, findings, image_buckets, num_class_images, present, class_generated, unused,
                          copies, left_out, class_images_with_errors=len(broken_class)),
        probes=tuple(probes),
        image_buckets=image_buckets,
    )
