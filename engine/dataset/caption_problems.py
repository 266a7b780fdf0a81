"""A concept's captions the trainer would stop on after the model has loaded, said before the run: caption files
that cannot be read, are missing or empty, or image names that cannot be captions."""

from __future__ import annotations

from pathlib import Path

from engine.data.caption_text import CaptionFileError, caption_words, read_caption
from engine.data.captions import CAPTION_FILE_MODES, caption_for, captions_alone
from engine.data.images import DataError, list_images, unreadable_headers
from engine.data.unread_captions import caption_of_another_extension, other_extension_fix, unread_captions_warning
from engine.dataset.caption_file_findings import misnamed_finding
from engine.dataset.files import caption_owners, misnamed_captions
from engine.profile import Profile
from engine.profile.problems import Problem
from engine.profile.text_characters import blank, printable


def file_name_problems(key: str, images: list[Path], instance_prompt: str | None) -> list[Problem]:
    """Image names the trainer would refuse as captions (a control character in one), after the model has loaded; and,
    with an empty instance prompt (a style's) to fall back on, names that give no words ("003.png", "___.png"), whose images
    would train with no prompt at all."""
    refused, wordless = [], []
    for image in images:
        try:
            caption = caption_for(image, "file_name", instance_prompt or "")
        except DataError as error:
            refused.append(str(error))
            continue
        if blank(caption):  # as captions_alone reads a prompt: a zero-width space pasted alone is no word
            wordless.append(image.name)
    problems = [Problem(f"{key}.caption_mode", f"{len(refused)} image name(s) cannot be captions, e.g. {refused[0]}")] if refused else []
    if wordless:
        problems.append(Problem(f"{key}.caption_mode", f"{len(wordless)} image name(s) give no words (a counter or "
                                f"punctuation alone), e.g. {printable(wordless[0])}, and the instance prompt is empty: their images would train with "
                                "no prompt at all; rename them to say what they show, or set the instance prompt"))
    return problems


def caption_problems(key: str, mode: str, folder: Path, images: list[Path], extension: str) -> list[Problem]:
    """Caption files the trainer would stop on after the model has loaded: unreadable ones in every mode that reads
    them; missing or empty ones when the caption is all the prompt (the combined modes use the prompt alone then).
    A file that is no picture (the header problems name it) needs no caption: the run refuses the file itself."""
    texts, unreadable = {}, {}
    for image in images:
        try:
            texts[image] = read_caption(image.with_suffix(extension), folder)  # as the trainer reads it
        except CaptionFileError as error:
            unreadable[image] = str(error)
    missing = [image for image, text in texts.items() if text is None]
    empty = [image for image, text in texts.items() if text is not None and not caption_words(text)]
    # Headers read only for the images whose captions would be said: few, where a folder is mostly right.
    said = [*unreadable, *missing, *empty] if mode == "caption_file" else list(unreadable)
    not_pictures = set(unreadable_headers(said))
    problems = []
    if cannot_read := [why for image, why in unreadable.items() if image not in not_pictures]:
        problems.append(Problem(f"{key}.caption_mode", f"{len(cannot_read)} caption file(s) cannot be read, e.g. "
                                f"{cannot_read[0]}"))
    if mode != "caption_file":
        return problems
    problems += _missing_caption_problems(key, missing, extension, not_pictures)
    if empty := [image.with_suffix(extension).name for image in empty if image not in not_pictures]:
        # The dataset doctor calls it an error too: the image would train with no prompt at all.
        problems.append(Problem(f"{key}.caption_mode", f"{len(empty)} caption file(s) are empty, e.g. {empty[0]}: "
                                "their images would train with no prompt; write them, or remove the images"))
    return problems


def unread_caption_problems(profile: Profile) -> list[Problem]:
    """What a run warns of the caption files it leaves unread (unread_captions_warning), said by validate as a warning:
    a.caption where .txt is read trained on the instance prompt alone under the modes that fall back to it."""
    problems = []
    for index, concept in enumerate(profile.concepts):
        if concept.caption_mode not in CAPTION_FILE_MODES:
            continue  # no caption file is read, none left unread: the folder is not listed again for nothing
        try:
            images = list_images(Path(concept.instance_dir))
        except (OSError, DataError):  # missing, unreadable, a name too long: path_problems says it
            continue
        # With no prompt to fall back on (a style's), a missing caption is refused (caption_problems), not trained on
        # "the instance prompt alone": only the second caption files are left to warn of.
        mode = "caption_file" if captions_alone(concept.caption_mode, concept.instance_prompt) else concept.caption_mode
        said = unread_captions_warning(images, profile.dataset.caption_extension, mode)
        if said:
            problems.append(Problem(f"concepts.{index}.instance_dir", said))
    return problems


def _missing_caption_problems(key: str, images: list[Path], extension: str, not_pictures: set[Path]) -> list[Problem]:
    """Images with no caption file, as the dataset check says them: one there under another name is to be renamed (no
    caption can be written beside it), and a file that is no picture (``not_pictures``) needs none."""
    owners = caption_owners(images, extension)  # y.jpg and y.png both read y.txt: two images, one caption name
    misnamed = misnamed_captions(list(owners), extension)
    problems = []
    if misnamed:
        path, near = next(iter(misnamed.items()))
        said = misnamed_finding(str(owners[path][0]), path, near, "error", owners[path], extension)
        problems.append(Problem(f"{key}.caption_mode", f"{sum(len(owners[p]) for p in misnamed)} image(s) have a caption "
                                f"file training does not read, e.g. {owners[path][0].name}: {said.message}; {said.fix}"))
    missing = [image for path, read_by in owners.items() if path not in misnamed for image in read_by
               if image not in not_pictures]
    if missing:
        # Counted by image, as ``missing`` is: a.jpg and a.png both read a.caption once it is the extension.
        others = [other for image in missing if (other := caption_of_another_extension(image, extension))]
        write = "write them or run `dbtui dataset caption`"
        fix = (f"{len(others)} of them have one training does not read, such as {others[0].name}: "
               f"{other_extension_fix(extension, others[0])}" if others else write)
        if others and len(others) < len(missing):  # the others still need a caption, whichever extension is read
            fix += f"; for the other {len(missing) - len(others)}, {write}"
        problems.append(Problem(f"{key}.caption_mode", f"{len(missing)} image(s) have no caption file, e.g. "
                                f"{missing[0].name}; {fix}"))
    return problems
