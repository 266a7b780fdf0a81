"""A base model's weight files, as they name a set of class images: described by the file system (names, sizes,
modification times), and hashed whole where that description alone does not tell.

A set's folder is named by the description (``model_identity``), which only the file system is asked for; a set also
records the hash of the files that made it (``DIGEST`` in its manifest). A copy of the model with new file times
(``cp -r``), or a single file moved, is then found to be the same model by its bytes, not made into minutes of class
images again. Never a partial hash: fine-tunes of one model share its sizes and its files' headers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted
from engine.models.conversion_note import noted_less_samples
from engine.training.weight_hashing import CURRENT, HashingStopped, digest, listed, scheme_of
# What a converted folder's note holds of its file that two copies of that file may differ in.
_WHERE = ("path", "mtime_ns")
# What the note says the conversion became: told by the file's bytes, not by the profile's check before a conversion.
_BECAME = ("family", "prediction_type")
# Hashes found, by place, description (``model_identity``'s files) and algorithm: one held by every search of a command
# (a dataset check's concepts) hashes each model once, however many of its sets they find. Hashes only: a read that
# failed (EIO, a drive unplugged) is tried again by the next check, not taken for "not that model" for the session.
KnownHashes = dict[tuple[Path, str, str], str]
_POLL = 0.5  # seconds between the progress lines of a hash waited for


def model_identity(model: Any, folder: Path) -> dict[str, Any]:
    """What tells the base model's images apart, for ``settings_of``: the profile's ``[model]`` settings that
    change them and the weight files as the file system describes them (name, size, modification time). A
    model replaced in place, another VAE, or a relative path read from another folder makes new images; only
    the stat of each file is read."""
    return {**model_settings(model), "files": {name: _weight_files(place) for name, place in _places(model, folder).items()}}


def model_settings(model: Any) -> dict[str, Any]:
    """The part of ``model_identity`` the profile tells, without the model's files."""
    return {"pretrained": model.pretrained, "revision": model.revision, "vae": model.vae, "quantize": model.quantize}


def _places(model: Any, folder: Path) -> dict[str, Path]:
    places = {"model": Path(folder)}
    if model.vae and Path(model.vae).expanduser().exists():
        places["vae"] = Path(model.vae).expanduser()
    return places


def _weight_files(place: Path) -> list[list[Any]]:
    from engine.models.loading import CONVERTED_FROM

    note = place / CONVERTED_FROM
    if note.is_file():
        # Converted from a single file into this run's folder: the file it was made from says which weights these
        # are (the conversion's own files are new in every run folder, and would make new images every run).
        return [[CONVERTED_FROM, note.read_text(encoding="utf-8")]]
    return [[name, stat.st_size, stat.st_mtime_ns] for name, file in listed(place) if (stat := file.stat())]


def described_before_samples(then: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether ``then`` (a set's recorded ``model_identity``) is ``now`` as it was described before it held the sample
    of a converted file's bytes (conversion_source): the sets of class images made then are found on those fields, not
    each made again or its file hashed whole. A set that holds a sample is its file's alone: another of the same size
    copied over it with its time kept (``cp -p``) has another sample, and gets images of its own."""
    files_then, files_now = then.get("files"), now.get("files")
    if ({key: value for key, value in then.items() if key != "files"} != {
            key: value for key, value in now.items() if key != "files"}
            or not isinstance(files_then, dict) or not isinstance(files_now, dict) or files_then.keys() != files_now.keys()):
        return False
    return all(files_then[name] == files_now[name] or _unsampled_note(files_then[name], files_now[name])
               for name in files_now)


def _unsampled_note(then: Any, now: Any) -> bool:
    """Whether the note ``then`` describes is the note ``now`` describes less samples it was written without: the
    file's, and a Flux conversion's part files' (noted since), which its upgraded note holds too."""
    was = _note(then[0]) if isinstance(then, list) and len(then) == 1 else None
    noted = _note(now[0]) if isinstance(now, list) and len(now) == 1 else None
    return was is not None and noted is not None and was != noted and noted_less_samples(was, noted)


class WeightDigests:
    """The content hash of weight files, each place hashed once as it is described: the model a run reads now
    (``places``, as ``model_identity`` names them) and earlier models still where a set says they were."""

    def __init__(self, model: Any, folder: Path, emit: Callable[[Event], None] = lambda e: None,
                 known: KnownHashes | None = None):
        self.places = _places(model, folder)
        self.emit = emit
        # By place, description and algorithm: a model replaced in place since a set was made (a fine-tune saved over
        # the folder) is not that set's, though the model a run reads now, hashed at that place first, is.
        self._known: KnownHashes = {} if known is None else known
        # What could not be read for this search alone: its other sets do not read a failing disk again.
        self._unread: set[tuple[Path, str, str]] = set()
        self._background: Future[dict[str, str] | None] | None = None
        self._held: list[Event] = []  # the thread's phase, for ``now`` (a list's append is safe across threads)
        self._stop = threading.Event()

    def start(self, should_stop: Callable[[], bool]) -> None:
        """Hash the model a run reads now in a thread (hashlib lets go of the GIL): ready, or nearly, once the GPU has
        made the images its set records it with. Its phase is held, not shown: the images' bar is the run's then, and
        a run's sinks are called from its own thread; ``now`` shows it where it is waited for."""
        if self._background is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="hashing-weights")
            self._background = pool.submit(self._hashed, lambda: should_stop() or self._stop.is_set(), self._held.append)
            pool.shutdown(wait=False)  # the thread ends with the hash

    def stop(self) -> None:
        """The thread ``start`` began, stopped at its next block (a run that ends otherwise)."""
        self._stop.set()

    def ready(self) -> dict[str, str] | None:
        """``now``'s hashes where the thread has them already, else None."""
        background = self._background
        return background.result() if background is not None and background.done() else None

    def now(self, should_stop: Callable[[], bool] = lambda: False) -> dict[str, str] | None:
        """Each place's hash, for the manifest of a set the model makes now (none of a place that cannot be read);
        None once ``should_stop``. The thread's, its phase shown while it is waited for: the images' bar stood full,
        and a phase line without progress said nothing of how long the hash of a large model had left."""
        background = self._background
        if background is None:
            return self._hashed(should_stop, self.emit)
        if not background.done():
            self._shown_until_done(background)
        return background.result()

    def _shown_until_done(self, background: Future[dict[str, str] | None]) -> None:
        """The thread's phase told to ``emit`` from the hash under way (its start again, then its latest progress every
        ``_POLL`` seconds) until it ends."""
        held = list(self._held)
        starts = [index for index, event in enumerate(held) if isinstance(event, PhaseStarted)]
        at = starts[-1] if starts and not isinstance(held[-1], PhaseFinished) else len(held)
        while True:
            ended = bool(wait([background], timeout=_POLL).done)
            held = self._held[at:]
            at += len(held)
            for event in _latest_progress(held):
                self.emit(replace(event, time=time.time()))  # as of now: the log's lines stay in order
            if ended:
                return

    def _hashed(self, should_stop: Callable[[], bool], emit: Callable[[Event], None]) -> dict[str, str] | None:
        try:
            hashed = {name: self.of(place, _weight_files(place), should_stop=should_stop, emit=emit)
                      for name, place in self.places.items()}
        except HashingStopped:
            return None
        return {name: value for name, value in hashed.items() if value is not None}

    def of(self, place: Path, described: list[list[Any]], scheme: str = CURRENT,
           should_stop: Callable[[], bool] = lambda: False, emit: Callable[[Event], None] | None = None) -> str | None:
        """The hash of ``scheme`` of the weights ``described`` (``model_identity``'s files) at ``place``, shown to
        ``emit`` (``self.emit`` where none is given); None where they are not there as described (removed, replaced
        since) or cannot be read. HashingStopped once ``should_stop``."""
        key = (place, json.dumps(described), scheme)
        if key not in self._known and key not in self._unread:
            source = _source(place, described)
            try:
                hashed = None if source is None else digest(source, scheme, emit or self.emit, should_stop)
            except OSError:
                hashed = None
            if hashed is None:
                self._unread.add(key)
            else:
                self._known[key] = hashed
        return self._known.get(key)


def _latest_progress(events: list[Event]) -> list[Event]:
    """``events`` less each PhaseProgress that another follows: a bar needs the last."""
    return [event for event, after in zip(events, [*events[1:], None])
            if not (isinstance(event, PhaseProgress) and isinstance(after, PhaseProgress))]


def _source(place: Path, described: list[list[Any]]) -> Path | None:
    """What holds the weights ``described``: a folder or file as it is described, or the single file a converted
    folder's note names where it stands as the note says."""
    try:
        if len(described) == 1 and (note := _note(described[0])) is not None:
            file = Path(str(note.get("path")))
            return file if _as_noted(file, note) and _as_noted(file.with_suffix(".yaml"), note.get("sidecar")) else None
        return place if place.exists() and _weight_files(place) == described else None
    except OSError:
        return None


def _as_noted(file: Path, noted: Any) -> bool:
    """Whether ``file`` stands as a note's ``file_identity`` of it says (None: it was not there)."""
    if not isinstance(noted, dict):
        return noted is None and not file.is_file()
    stat = file.stat()
    return [noted.get("size"), noted.get("mtime_ns")] == [stat.st_size, stat.st_mtime_ns]


def _note(entry: list[Any]) -> dict[str, Any] | None:
    from engine.models.loading import CONVERTED_FROM

    if len(entry) != 2 or entry[0] != CONVERTED_FROM or not isinstance(entry[1], str):
        return None
    try:
        note = json.loads(entry[1])
    except ValueError:
        return None
    return note if isinstance(note, dict) else None


def shape(described: Any) -> Any:
    """``model_identity``'s files of one place less what a copy of them changes: their times, a single file's place."""
    if not isinstance(described, list):
        return described
    if len(described) == 1 and (note := _note(described[0])) is not None:
        sidecar = note.get("sidecar")
        return {**{key: value for key, value in note.items() if key not in (*_WHERE, *_BECAME, "sidecar", "sample")},
                "sidecar": sidecar.get("size") if isinstance(sidecar, dict) else sidecar}
    return [entry[:2] if isinstance(entry, list) else entry for entry in described]


def same_weights(then: dict[str, Any], digest: Any, now: dict[str, Any], digests: WeightDigests,
                 learned: Callable[[str, str], None] = lambda name, digest: None) -> bool:
    """Whether the model a set recorded (``then``, its manifest's model and ``digest``) has the weights of ``now``
    (``model_identity``'s, its path aside): the same files as the file system describes them, or files of the same
    names and sizes whose bytes hash alike. A set made before hashes were recorded is hashed where its model still is,
    as it describes it: ``learned`` is told each such hash (a place's name, its hash), for the set to keep."""
    rest = {key for key in (*then, *now) if key not in ("pretrained", "files")}
    files_then, files_now = then.get("files"), now.get("files")
    if any(then.get(key) != now.get(key) for key in rest) or not isinstance(files_then, dict) or not isinstance(files_now, dict):
        return False
    if files_then == files_now:
        return True
    if files_then.keys() != files_now.keys() or any(shape(files_then[k]) != shape(files_now[k]) for k in files_now):
        return False
    recorded = digest if isinstance(digest, dict) else {}
    for name in files_now:
        if files_then[name] == files_now[name]:
            continue
        place = digests.places.get(name)
        hashed_then = recorded.get(name) if isinstance(recorded.get(name), str) else None
        # Hashed now as the set's hash was: an older algorithm's hash still tells.
        scheme = CURRENT if hashed_then is None else scheme_of(hashed_then)
        hashed_now = digests.of(place, files_now[name], scheme) if place is not None else None
        if hashed_now is None:
            return False
        if hashed_then is None and (hashed_then := _hash_where_it_was(then, name, digests)) is not None:
            learned(name, hashed_then)
        if hashed_now != hashed_then:
            return False
    return True


def _hash_where_it_was(then: dict[str, Any], name: str, digests: WeightDigests) -> str | None:
    where = then.get("pretrained" if name == "model" else name)
    if not isinstance(where, str):
        return None
    return digests.of(Path(where).expanduser(), then["files"][name])


def weights_here(model: Any, emit: Callable[[Event], None] = lambda e: None,
                 known: KnownHashes | None = None) -> tuple[dict[str, Any], WeightDigests] | None:
    """(the ``model_identity`` a run on the profile's ``model`` would have, its hashes, shown to ``emit``, kept in
    ``known``) without loading or converting anything: a folder's files, or a single file as its conversion's note
    would describe it; None for a model not on this machine as a path (a hub id, a built-in)."""
    from engine.models.conversion_note import source_identity
    from engine.models.loading import CONVERTED_FROM

    place = Path(model.pretrained).expanduser()
    if place.is_dir():
        return model_identity(model, place), WeightDigests(model, place, emit, known)
    if not place.is_file():
        return None
    files = {"model": [[CONVERTED_FROM, json.dumps(source_identity(place))]]}
    files |= {name: _weight_files(where) for name, where in _places(model, place).items() if name != "model"}
    return {**model_settings(model), "files": files}, WeightDigests(model, place, emit, known)
