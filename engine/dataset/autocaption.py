"""Write captions with a model: BLIP (sentences, transformers) or a WD14 tagger (tags, onnxruntime).

Only images without a caption are captioned unless ``overwrite``; every write goes through
``CaptionStore`` so an overwritten caption is kept in the history folder. A caption written while the captioner
runs (typed by hand in the wizard meanwhile) is kept: each write first checks that the caption is as it was.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.dataset.caption_files import dangling_caption, not_to_replace
from engine.dataset.no_images import NOTHING_TO_CAPTION, refuse_no_images
from engine.dataset.caption_renames import rename_advice
from engine.dataset.captions import CaptionStore
from engine.dataset.errors import CaptionError, CaptionerUnavailableError
from engine.dataset.files import file_problem, how_misnamed, linked_captions, misnamed_captions
from engine.dataset.image_probe import decode_problem, identify_file, problem_text
from engine.data.colours import to_rgb
from engine.data.images import upright
from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted

Backend = Literal["blip", "wd14"]
BACKEND_NAMES = {"blip": "BLIP captioner", "wd14": "WD14 tagger"}
DEFAULT_MODELS = {"blip": "Salesforce/blip-image-captioning-base", "wd14": "SmilingWolf/wd-v1-4-moat-tagger-v2"}
WD14_GENERAL, WD14_CHARACTER = 0, 4  # category column of selected_tags.csv (9 is the rating)
Captioner = Callable[[list[Image.Image]], list[str]]  # pictures → one caption each


@dataclass(frozen=True)
class AutocaptionResult:
    written: tuple[str, ...]  # caption files written
    # Caption files kept, each named by an image it belongs to: it had a caption, or was given one while the captioner ran.
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (image, reason)


def autocaption(
    folder: Path | str,
    *,
    backend: Backend = "blip",
    model: str | None = None,
    overwrite: bool = False,
    extension: str = ".txt",
    recursive: bool = False,
    batch_size: int = 4,
    threshold: float = 0.35,
    character_threshold: float = 0.85,
    emit: Callable[[Event], None] | None = None,
) -> AutocaptionResult:
    """Caption the images of ``folder`` with ``backend`` loaded from ``model`` (a local path or a hub id).

    ``threshold`` and ``character_threshold`` are the WD14 tag probabilities to keep. Several folders with one load:
    ``plan_autocaption`` each, ``load_captioner`` once, then ``write_captions``.
    """
    store = CaptionStore(folder, extension, recursive=recursive)
    plan = plan_autocaption(store, overwrite)
    # All captioned: no load (a download of a GB) for nothing to write.
    captioner = load_captioner(backend, model, threshold, character_threshold) if plan.todo else None
    return write_captions(plan, captioner, backend=backend, batch_size=batch_size, emit=emit)


def write_captions(plan: AutocaptionPlan, captioner: Captioner | None, *, backend: str = "blip", batch_size: int = 4,
                   emit: Callable[[Event], None] | None = None) -> AutocaptionResult:
    """Write the captions ``plan`` lists with ``captioner`` (None only where the plan writes none): the plan the caller
    read to decide whether to load one, so that what it was told and what is written cannot differ."""
    emit = emit or (lambda event: None)
    todo, skipped, failed, before = list(plan.todo), list(plan.skipped), list(plan.failed), plan.before
    store = plan.store
    if not todo:  # no phase: a log (stdout not a terminal) said "started writing 0 captions" of a folder all captioned
        return AutocaptionResult((), tuple(skipped), tuple(failed))
    emit(PhaseStarted(phase="autocaption", total=len(todo), description=f"writing {len(todo)} captions with {backend}"))
    started = time.monotonic()
    written, meanwhile = [], []  # meanwhile: images given a caption while the captioner ran
    for done, batch in _batches(todo, batch_size):
        pictures, ready = [], []
        for owners in batch:
            problems = []
            for image in owners:  # the first that is a picture: a.jpg a saved web page, a.png is captioned
                picture = _picture(image)
                if isinstance(picture, str):
                    problems.append((str(image), picture))
                    continue
                pictures.append(picture)
                ready.append(image)
                break
            else:
                failed += problems
        assert captioner is not None or not pictures, "a plan with captions to write needs a captioner"
        for image, caption in zip(ready, captioner(pictures) if captioner and pictures else []):
            path = store.caption_file(image)
            if store.write_if_unchanged(image, caption, before[path]):
                written.append(str(path))
            else:
                meanwhile.append(str(image))
        emit(PhaseProgress(phase="autocaption", done=done, total=len(todo)))
    emit(PhaseFinished(phase="autocaption", seconds=time.monotonic() - started))
    return AutocaptionResult(tuple(written), tuple(skipped + meanwhile), tuple(failed))


class AutocaptionPlan(NamedTuple):
    store: CaptionStore  # the folder's captions, listed once for the plan and the writes
    todo: list[list[Path]]  # the images of each caption file to write
    skipped: list[str]  # an image of each caption kept
    failed: list[tuple[str, str]]  # (image, why its caption may not be written)
    before: dict[Path, bytes | None]  # each caption file as it was when listed to caption


def plan_autocaption(store: CaptionStore, overwrite: bool = False) -> AutocaptionPlan:
    """Which caption files of ``store`` are to be written, kept, or may not be written; a CaptionError where its
    folder holds no image. No ``todo``: no captioner need load."""
    refuse_no_images(store, NOTHING_TO_CAPTION)
    skipped: list[str] = []
    todo: list[list[Path]] = []
    failed: list[tuple[str, str]] = []
    before: dict[Path, bytes | None] = {}
    # One caption per caption file: a.jpg and a.png share a.txt (as b.jpg does by a link b.txt -> a.txt), which is
    # written (or kept) once, not twice.
    captions = linked_captions(store.owners(), store.folder)
    misnamed = misnamed_captions(list(captions), store.extension)
    for path, owners in captions.items():
        hidden = _not_to_write(path, misnamed.get(path), owners, store.extension)
        if hidden:
            failed.append((str(owners[0]), hidden))
            continue
        before[path] = store.raw(owners[0])
        try:
            captioned = bool(store.read(owners[0]))
        except CaptionError as error:  # never replaced unasked: the user may want to fix it instead
            if not overwrite:  # a folder or a read-only file in its place: --overwrite would refuse it too
                failed.append((str(owners[0]), not_to_replace(path) or f"{error} (or use --overwrite to replace it)"))
                continue
            captioned = False
        if captioned and not overwrite:
            skipped.append(str(owners[0]))
        elif why := not_to_replace(path):  # as a bulk edit leaves it
            failed.append((str(owners[0]), why))
        else:
            todo.append(owners)
    return AutocaptionPlan(store, todo, skipped, failed, before)


def _not_to_write(path: Path, near: Path | None, owners: list[Path], extension: str) -> str | None:
    """Why no caption may be written at ``path``, as a bulk edit creates none there: the user's caption is there
    under a name that differs (``near``: photo.jpg.txt, Photo.TXT), which a new one would hide from training, or
    ``path`` is a link to no file, which writing would replace. None when it may be written."""
    if near is not None:
        return (f"its caption is there as '{near}', which differs from {path.name} only in {how_misnamed(path, near)}: "
                f"training does not read it, and no {path.name} was written to hide it; "
                f"{rename_advice(path, near, owners, extension)}")
    if path.is_symlink() and not path.exists():
        return f"its {dangling_caption(path)}"
    return None


def load_captioner(backend: str = "blip", model: str | None = None, threshold: float = 0.35,
                   character_threshold: float = 0.85) -> Captioner:
    """``backend``'s captioner loaded from ``model`` (its usual one where None); CaptionerUnavailableError says why not."""
    if backend == "blip":
        return _Blip(model or DEFAULT_MODELS["blip"])
    if backend == "wd14":
        return _Wd14(model or DEFAULT_MODELS["wd14"], threshold, character_threshold)
    raise CaptionerUnavailableError(f"unknown caption backend '{backend}': choose blip or wd14")


def _picture(image: Path) -> Image.Image | str:
    """The picture in ``image``, upright and RGB; or why the file holds none."""
    problem = file_problem(str(image))
    if problem:
        return problem_text(*problem)
    try:
        with Image.open(image) as opened:
            return to_rgb(upright(opened), (255, 255, 255))
    except UnidentifiedImageError:
        return problem_text(*identify_file(str(image)))
    except Exception as error:  # noqa: BLE001 - any decoder error is about this one file
        return problem_text(*decode_problem(error))


def _batches(items: list[list[Path]], size: int) -> Iterator[tuple[int, list[list[Path]]]]:
    """Each batch of ``items`` with the number of items up to its end."""
    size = max(1, size)
    for start in range(0, len(items), size):
        yield min(start + size, len(items)), items[start:start + size]


class _Blip:
    """BLIP image captioning through transformers (imported here: torch is slow to import)."""

    def __init__(self, model: str):
        folder = _model_folder(model, "blip", ["*.json", "*.txt", "*.safetensors"])
        from transformers import AutoConfig, BlipForConditionalGeneration, BlipProcessor
        from transformers.utils import logging as transformers_logging

        advice = f"give a local folder saved with save_pretrained or a hub id such as {DEFAULT_MODELS['blip']}"
        verbosity = transformers_logging.get_verbosity()
        # A wrong folder makes transformers log a table of every weight; the one line below says it instead.
        transformers_logging.set_verbosity_error()
        try:
            model_type = AutoConfig.from_pretrained(folder).model_type
            if model_type != "blip":  # loaded anyway, its weights would be random and its captions noise
                raise CaptionerUnavailableError(f"'{model}' holds a {model_type} model, not a BLIP captioner: {advice}")
            self.processor = BlipProcessor.from_pretrained(folder)
            self.model = BlipForConditionalGeneration.from_pretrained(folder).eval()
        except (OSError, ValueError) as error:
            raise CaptionerUnavailableError(f"cannot load a BLIP captioner from '{model}': {advice} ({error})") from error
        except RuntimeError as error:  # transformers' own text points at the load report, which is held back
            raise CaptionerUnavailableError(
                f"cannot load a BLIP captioner from '{model}': its weights do not fit its config.json (another model's "
                f"weights, or a damaged download); {advice}") from error
        finally:
            transformers_logging.set_verbosity(verbosity)

    def __call__(self, pictures: list[Image.Image]) -> list[str]:
        import torch

        inputs = self.processor(images=pictures, return_tensors="pt")
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=40)
        return [text.strip() for text in self.processor.batch_decode(ids, skip_special_tokens=True)]


class _Wd14:
    """A WD14-style tagger: ``model.onnx`` + ``selected_tags.csv`` (SmilingWolf's layout)."""

    def __init__(self, model: str, threshold: float, character_threshold: float):
        try:
            import onnxruntime
        except ImportError as error:
            raise CaptionerUnavailableError(
                "the WD14 tagger needs onnxruntime: pip install onnxruntime (or use --auto blip)"
            ) from error
        onnx_file, tags_file = _wd14_files(model)
        try:
            self.session = onnxruntime.InferenceSession(str(onnx_file), providers=onnxruntime.get_available_providers())
            self.input = self.session.get_inputs()[0]
            self.side = int(self.input.shape[1])  # NHWC, square (448 for SmilingWolf's taggers)
        except Exception as error:  # noqa: BLE001 - onnxruntime's errors (InvalidProtobuf, Fail…) derive from Exception only
            raise CaptionerUnavailableError(
                f"{onnx_file} cannot be loaded as a WD14 tagger ({error}); download the tagger's model.onnx again "
                f"(a git-lfs pointer file is not the model: `git lfs pull` fetches it), or use {DEFAULT_MODELS['wd14']}"
            ) from None
        self.names, self.categories = _wd14_tags(tags_file)
        self.threshold, self.character_threshold = threshold, character_threshold

    def __call__(self, pictures: list[Image.Image]) -> list[str]:
        batch = np.stack([self._pixels(p) for p in pictures])
        probabilities = self.session.run(None, {self.input.name: batch})[0]
        return [self._caption(row) for row in probabilities]

    def _pixels(self, picture: Image.Image) -> np.ndarray:
        # The taggers were trained on white-padded squares, BGR, 0–255 floats.
        side = max(picture.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
        square = square.resize((self.side, self.side), Image.Resampling.BICUBIC)
        return np.asarray(square, dtype=np.float32)[:, :, ::-1]

    def _caption(self, probabilities: np.ndarray) -> str:
        keep = []
        for category, limit in ((WD14_CHARACTER, self.character_threshold), (WD14_GENERAL, self.threshold)):
            chosen = np.nonzero((self.categories == category) & (probabilities >= limit))[0]
            keep += sorted(chosen, key=lambda i: -probabilities[i])
        # Underscores separate words in booru tags; short ones are emoticons such as ^_^.
        return ", ".join(self.names[i].replace("_", " ") if len(self.names[i]) > 3 else self.names[i] for i in keep)


def _wd14_tags(tags_file: Path) -> tuple[list[str], np.ndarray]:
    """The tag names and categories of ``selected_tags.csv``, in the model's output order."""
    try:
        with open(tags_file, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        return [str(row["name"]) for row in rows], np.array([int(row["category"]) for row in rows])
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as error:  # TypeError: a row short of a column
        raise CaptionerUnavailableError(
            f"{tags_file} is not a WD14 tag list ({type(error).__name__}: {error}): it needs the columns name and "
            "category (a number) on every row; download the tagger's selected_tags.csv again"
        ) from None


def _wd14_files(model: str) -> tuple[Path, Path]:
    folder = _model_folder(model, "wd14", ["model.onnx", "selected_tags.csv"])
    files = folder / "model.onnx", folder / "selected_tags.csv"
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise CaptionerUnavailableError(f"{folder} is not a WD14 tagger folder: {', '.join(missing)} missing")
    return files


def _model_folder(model: str, backend: Backend, patterns: list[str]) -> Path:
    """A local folder, or a hub id's files from the cache or downloaded: offline that fails at once, where
    a loader's own download would retry for minutes."""
    from engine.support.hub_snapshot import HubUnavailable, hub_snapshot

    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder
    try:
        return hub_snapshot(model, allow_patterns=patterns)
    except HubUnavailable as error:
        raise CaptionerUnavailableError(
            f"cannot get the {BACKEND_NAMES[backend]} '{model}': it is not a folder here, not in the Hugging Face cache, and cannot be "
            f"downloaded ({error.cause}); caption with a local copy of the model (`dbtui dataset caption FOLDER --auto "
            f"{backend} --model MODEL_FOLDER`), or on a machine that can download {DEFAULT_MODELS[backend]}"
        ) from None
