"""Each concept's instance images as a run trains them, by file name, size and time, and their caption files by content where
the concept's caption mode reads them: a checkpoint records them, so that a resume can say which were added, removed,
replaced or edited since. The profile's folders may change between a stop and a resume (they move), but what they hold
trains the steps to come: a photo added, or a caption edited, in between made another run of it without a word, and a
resume that said nothing read as exact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from engine.support.json_file import read_json_object

if TYPE_CHECKING:
    from engine.data.examples import Example
    from engine.profile.schema import ConceptSection

SHOWN = 3  # file names shown per kind of change
# Two file times this close are one: tar keeps whole seconds (the fraction is lost on the way back) and FAT two.
SAME_TIME_NS = 2_000_000_000
# Beside a checkpoint's manifest.json, not in it: on 10,000 images the record is 0.2-1 MB, which every listing of the
# checkpoints (that reads each manifest for its step) parsed again.
RECORD = "trained_images.json"

# Per concept index: {image file name: [size in bytes, modification time in ns]} (the size alone in a checkpoint of an
# earlier version, compared by size), and {caption file name: content hash, None where the image has none} where the
# concept's mode reads captions. A caption's value is never an int or a list: that tells the two apart, and a record
# with no caption at all (a checkpoint of an earlier version) says nothing of them. The time, not a hash of the photo:
# reading 10,000 photos whole at each start would cost far more than the stat build_examples makes anyway.
FileRecord = dict[str, Union[int, list[int], str, None]]
ImageRecord = list[FileRecord]


def _caption_words(caption: str, mode: str, prompt: str) -> str:
    """The caption file's words in ``caption``, an example's caption as ``caption_for`` made it: the combined modes
    join them to ``prompt`` (a change of the prompt is a setting's, told as one), and train the prompt alone for a
    caption file missing or blank; "" where there are none."""
    if mode == "caption_file":
        return caption
    if caption == prompt:
        return ""
    return caption.removesuffix(f", {prompt}") if mode == "caption_file_then_prompt" else caption.removeprefix(f"{prompt}, ")


def image_record(examples: Iterable[Example], concepts: Sequence[ConceptSection], extension: str) -> ImageRecord:
    """``{name: [size, time]}`` of the instance images of each concept among ``examples`` (-1 where a file's size could
    not be read: it is then told as replaced if it comes back), with the hashes of their captions' words as training
    reads them, None for none, where the concept's mode reads caption files. Of what ``build_examples`` read, not the files
    again: on 10,000 captions that took about 0.4 s at each start, on every process."""
    from engine.data.captions import CAPTION_FILE_MODES, caption_file  # Pillow's, which the UI's checkpoint listing needs not

    record: ImageRecord = [{} for _ in concepts]
    for example in examples:
        if not example.is_class:
            concept = concepts[example.concept]
            record[example.concept][example.path.name] = [example.file_size, example.file_time]
            if concept.caption_mode in CAPTION_FILE_MODES:
                words = _caption_words(example.caption, concept.caption_mode, concept.instance_prompt)
                # A final newline added or CRLF saved as LF trains the same words: the words are hashed, not the file.
                record[example.concept][caption_file(example.path, extension).name] = \
                    hashlib.sha256(words.encode("utf-8")).hexdigest() if words else None
    return record


def write_image_record(checkpoint: Path, record: ImageRecord | None) -> None:
    """``record`` into ``checkpoint``'s folder, compact (nothing for a process that made none)."""
    if record is not None:
        (checkpoint / RECORD).write_text(json.dumps({"concepts": record}, separators=(",", ":")), encoding="utf-8")


def read_image_record(checkpoint: Path) -> Any:
    """The record ``checkpoint`` holds; None where it holds none (made by an earlier version) or it is damaged."""
    return read_json_object(checkpoint / RECORD).get("concepts")


def _named(names: list[str]) -> str:
    more = len(names) - SHOWN
    return ", ".join(repr(name) for name in names[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _changes(was: FileRecord, is_now: FileRecord,
             key: Callable[[Any], Any] = lambda value: value) -> list[tuple[list[str], str]]:
    """(names, what) of the files added, removed and changed (their ``key`` of the value: an image's size) from ``was``
    to ``is_now``, a None value standing for none."""
    there, here = {n for n, v in was.items() if v is not None}, {n for n, v in is_now.items() if v is not None}
    return [(sorted(here - there), "added"), (sorted(there - here), "removed"),
            (sorted(name for name in there & here if key(was[name]) != key(is_now[name])), "changed")]


def _size(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _time(value: Any) -> int | None:
    """An image's file time in ns; None where the record kept none (an earlier version's: sizes alone) or holds no whole
    number there (a hand-edited or damaged record, which a resume reads and must not fail on)."""
    time = value[1] if isinstance(value, list) and len(value) > 1 else None
    return time if isinstance(time, int) and not isinstance(time, bool) else None


def _retimed(was: FileRecord, is_now: FileRecord) -> tuple[int, list[str]]:
    """How many images both records hold at the same size with a time each, and the names of those whose time moved by
    more than SAME_TIME_NS: edited in place (a photo rotated or retouched and saved over itself), or copied again."""
    moved: dict[str, int] = {}
    for name in was.keys() & is_now.keys():
        then, now = _time(was[name]), _time(is_now[name])
        if then is not None and now is not None and _size(was[name]) == _size(is_now[name]):
            moved[name] = abs(then - now)
    return len(moved), sorted(name for name, by in moved.items() if by > SAME_TIME_NS)


def _retimed_said(names: list[str]) -> str:
    its, time = ("its", "time") if len(names) == 1 else ("their", "times")
    return (f"{_named(names)}: {its} file {time} changed at the same size (edited in place, or copied again without "
            f"{its} {time})")


def _split(files: FileRecord) -> tuple[FileRecord, FileRecord]:
    images = {name: value for name, value in files.items() if isinstance(value, (int, list))}
    return images, {name: value for name, value in files.items() if name not in images}


def shared_images(before: Any, now: ImageRecord | None) -> Callable[[int, int], tuple[int] | None]:
    """How alike a concept of the checkpoint's record ``before`` (its index) and one ``now`` (its index) are: the number of
    images of the same name they hold, None for none (or no record)."""
    def shared(was: int, index: int) -> tuple[int] | None:
        if not isinstance(before, list) or now is None or was >= len(before) or index >= len(now) \
                or not isinstance(before[was], dict):
            return None
        count = len(_split(before[was])[0].keys() & _split(now[index])[0].keys())
        return (count,) if count else None

    return shared


class ImageChanges(NamedTuple):
    said: list[str]  # one line a concept whose images or captions differ
    what: str  # "images", "captions" or "images and captions"; "" for none
    retimed: bool  # some image is told by its time alone: edited in place, or only copied again
    sure: bool  # some change is told that is one for certain (a file added, removed, replaced, a caption edited)


def said_image_changes(before: Any, now: ImageRecord, pairs: dict[int, int], folders: list[str]) -> ImageChanges:
    """``concepts[N] (instance_dir '…'): 'a.png' added; caption 'b.txt' edited`` for each concept now (index N, its
    ``folders[N]``) paired with one of the checkpoint's (``pairs``: now → then) whose images or captions differ, and
    what changed of them all. ``before``: the checkpoint's record, nothing said where it has none (a checkpoint of an
    earlier version), nor of the captions where one of the two records none (another caption mode, said as a setting
    changed). Images whose times alone changed are told only where some of the record kept theirs: where every one
    changed (the data set copied without its files' times, as cp -r, scp -r or a git checkout do), none was edited."""
    said: list[str] = []
    kinds: set[str] = set()
    if not isinstance(before, list):
        return ImageChanges(said, "", False, False)
    compared = [(index, _split(before[earlier]), _split(now[index])) for index, earlier in sorted(pairs.items())
                if earlier < len(before) and index < len(now) and isinstance(before[earlier], dict)]
    retimed = [_retimed(was, is_now) for _, (was, _), (is_now, _) in compared]
    copied = sum(len(names) for _, names in retimed) == sum(count for count, _ in retimed)
    told_retimed = sure = False
    for (index, (was, was_captions), (is_now, captions)), (_, moved) in zip(compared, retimed):
        parts = [f"{_named(names)} {'replaced' if what == 'changed' else what}"  # at another size
                 for names, what in _changes(was, is_now, key=_size) if names]
        sure |= bool(parts)
        if moved and not copied:
            parts.append(_retimed_said(moved))
            told_retimed = True
        kinds |= {"images"} if parts else set()
        if was_captions and captions:
            edits = [f"caption{'s' if len(names) > 1 else ''} {_named(names)} {'edited' if what == 'changed' else what}"
                     for names, what in _changes(was_captions, captions) if names]
            kinds |= {"captions"} if edits else set()
            sure |= bool(edits)
            parts += edits
        if parts:
            said.append(f"concepts[{index}] (instance_dir {folders[index]!r}): {'; '.join(parts)}")
    return ImageChanges(said, " and ".join(kind for kind in ("images", "captions") if kind in kinds), told_retimed, sure)
