"""Which files of a folder are training images, which are refused and why, and where captions live.

Links are followed only while they stay inside the dataset folder: a link that leads out of it
could make the doctor read (and describe) any file on the machine.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.images import IMAGE_SUFFIXES
from engine.dataset.errors import DatasetError, FolderAccessError
from engine.support.folder_access import access_fix
from engine.support.prepared_marks import is_prepared_folder

IMAGE_EXTENSIONS = IMAGE_SUFFIXES


@dataclass(frozen=True)
class Refused:
    """A file named like an image, or a sub-folder, that is not used, with the probe error code and the reason."""

    path: Path
    code: str  # "link_outside", "not_a_file", or "unreadable" (a sub-folder that cannot be listed)
    reason: str
    folder: bool = False  # a sub-folder (unreadable, or a link leading out): not an image, so counted as none
    fix: str = ""  # the chmod that opens a sub-folder this user may not list or enter (access_fix)


@dataclass(frozen=True)
class Listing:
    images: list[Path]  # regular files, links inside the folder, and broken links (the probe names those)
    refused: list[Refused] = field(default_factory=list)
    captions: list[Path] = field(default_factory=list)  # files with the caption extension

    def captions_by_key(self, extension: str) -> dict[tuple[Path, str], Path]:
        """The caption files that are no image's own by folder and ``name_key``, to find one named but for case or
        accents (``misnamed_caption``): Photo.txt beside Photo.png is that image's, not photo.jpg's misnamed one."""
        owned = {caption_path(p, extension) for p in (*self.images, *(r.path for r in self.refused))}
        return {(c.parent, name_key(c.name)): c for c in self.captions if c not in owned}

    @property
    def orphan_captions(self) -> list[Path]:
        """Caption files with no image-named entry of the same name (its image renamed, deleted or never copied)."""
        named = {p.with_suffix("") for p in self.images} | {r.path.with_suffix("") for r in self.refused}
        return [c for c in self.captions if c.with_suffix("") not in named]


def name_key(name: str) -> str:
    """A file name as people read it: letter case and how accents are encoded (macOS writes é as e + accent) set
    aside, and an image's extension before the last (photo.jpg.txt, as some taggers name captions). Linux tells such
    names apart, so a caption named this way is not the image's."""
    path = Path(unicodedata.normalize("NFC", name).casefold())
    stem = path.with_suffix("")
    return (stem.with_suffix("").name + path.suffix) if stem.suffix in IMAGE_EXTENSIONS else path.name


def misnamed_caption(expected: Path, captions: dict[tuple[Path, str], Path]) -> Path | None:
    """The caption file (of ``Listing.captions_by_key``) that is ``expected`` but for case or accent encoding."""
    near = captions.get((expected.parent, name_key(expected.name)))
    return near if near is not None and near.name != expected.name else None


def how_misnamed(expected: Path, near: Path) -> str:
    """How the name of ``near`` differs from ``expected``'s (``misnamed_caption``): in what people cannot see."""
    if Path(near.stem).suffix.lower() in IMAGE_EXTENSIONS:
        return "keeping its image's extension"
    same_letters = unicodedata.normalize("NFC", near.name) == unicodedata.normalize("NFC", expected.name)
    return "how its accented letters are encoded" if same_letters else "letter case"


def misnamed_captions(expected: list[Path], extension: str) -> dict[Path, Path]:
    """Each of the ``expected`` caption files that is not there while one named but for case or accents is
    (photo.TXT for photo.txt), and that one; each folder is listed once."""
    listed: dict[Path, dict[tuple[Path, str], Path]] = {}
    found = {}
    for path in expected:
        if os.path.lexists(path):
            continue
        if path.parent not in listed:
            listed[path.parent] = _unowned_captions(path.parent, extension)
        near = misnamed_caption(path, listed[path.parent])
        if near is not None:
            found[path] = near
    return found


def _unowned_captions(folder: Path, extension: str) -> dict[tuple[Path, str], Path]:
    """The caption files in ``folder`` by ``name_key`` that no image-named entry there owns: Photo.txt beside Photo.png
    is that image's, and renaming it after photo.jpg would take it away (as ``Listing.orphan_captions``)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    owned = {caption_path(Path(name), extension).name for name in names if Path(name).suffix.lower() in IMAGE_EXTENSIONS}
    return {(folder, name_key(name)): folder / name for name in names
            if Path(name).suffix.lower() == extension.lower() and name not in owned}


def scan_folder(
    folder: Path | str, *, recursive: bool = False, exclude: tuple[Path | str, ...] = (),
    caption_extension: str | None = None,
) -> Listing:
    """Sort the entries of ``folder`` into images, refused image-named entries and caption files.

    Hidden entries, ``exclude`` (the prepared-copies folder inside the originals; a profile's class folder and other
    concepts' folders inside the one checked) and, when ``recursive``, the sub-folders holding copies dbtui prepared
    are skipped.
    """
    root = checked_folder(folder)
    real_root = Path(os.path.realpath(root))
    excluded = frozenset(Path(os.path.realpath(path)) for path in exclude)
    listing = Listing([], [], [])
    _walk(root, root, real_root, excluded, recursive, caption_extension, listing)
    listing.images.sort()
    listing.refused.sort(key=lambda r: r.path)
    listing.captions.sort()
    return listing


def checked_folder(folder: Path | str) -> Path:
    """``folder`` as a Path; a DatasetError saying what to give where it is a file or not there."""
    root = Path(folder)
    try:
        root.stat()
    except PermissionError as error:  # a folder above it lets this user not in: Python 3.11's is_file raised it as a crash
        raise _unreadable(root, error) from None
    except OSError:
        pass  # not there, or a broken link: said below
    if root.is_file():  # a picture dragged in instead of its folder
        raise DatasetError(f"{root} is a file, not a folder: give the folder that holds it ({root.parent})")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder: give the folder that holds your training images")
    return root


def _unreadable(root: Path, error: PermissionError) -> FolderAccessError:
    what, fix = f"cannot be read ({error.strerror})", access_fix(root)
    return FolderAccessError(f"cannot read the folder {root} ({error.strerror}): {fix}", what, fix)


def list_images(folder: Path | str, *, recursive: bool = False, exclude: tuple[Path | str, ...] = ()) -> list[Path]:
    """Image files (by extension) in ``folder``, sorted; see ``scan_folder`` for what is left out."""
    return scan_folder(folder, recursive=recursive, exclude=exclude).images


def leaves_folder(path: Path | str, real_root: Path) -> bool:
    """True when ``path`` (its links resolved) is not inside ``real_root`` (itself already resolved)."""
    return not Path(os.path.realpath(path)).is_relative_to(real_root)


def linked_captions(owners: dict[Path, list[Path]], folder: Path) -> dict[Path, list[Path]]:
    """``owners`` (each caption file and its images) with a caption file that is a link to a file in ``folder`` (b.txt
    -> a.txt) taken as that file, their images together: a bulk edit writes the shared file once and the link stays a
    link (written through its own name, the link was replaced by a copy, and undo put back a copy). A broken link, or
    one leading out of the folder, stays itself: its readers say why it is not read."""
    real_root = Path(os.path.realpath(folder))
    merged: dict[Path, list[Path]] = {}
    for path, images in owners.items():
        merged.setdefault(link_target(path, folder, real_root), []).extend(images)
    return merged


def link_target(path: Path, folder: Path, real_root: Path | None = None) -> Path:
    """The caption file ``path`` is (b.txt -> a.txt: a.txt, under ``folder``), where its link leads to a file in
    ``folder`` (``real_root``: that folder resolved): writing there keeps the link. Any other path is itself."""
    real_root = real_root or Path(os.path.realpath(folder))
    target = Path(os.path.realpath(path))
    if path.is_symlink() and target.is_file() and target.is_relative_to(real_root):
        return folder / target.relative_to(real_root)
    return path


def caption_path(image: Path, extension: str = ".txt") -> Path:
    """The caption file of an image: same name, caption extension (``a.jpg`` → ``a.txt``)."""
    return image.with_suffix(extension if extension.startswith(".") else "." + extension)


def caption_owners(images: list[Path], extension: str) -> dict[Path, list[Path]]:
    """Each caption file of ``images`` and the images that read it (a.jpg and a.png both read a.txt), in their order."""
    owners: dict[Path, list[Path]] = {}
    for image in images:
        owners.setdefault(caption_path(image, extension), []).append(image)
    return owners


def _walk(
    directory: Path, root: Path, real_root: Path, excluded: frozenset[Path], recursive: bool,
    caption_extension: str | None, listing: Listing,
) -> None:
    try:
        with os.scandir(directory) as found:
            entries = sorted(found, key=lambda e: e.name)
    except OSError as error:
        if directory == root and isinstance(error, PermissionError):
            raise _unreadable(root, error) from None
        if directory == root:
            raise DatasetError(f"cannot read the folder {root} ({error.strerror or error}): check its permissions") from None
        reason = f"this sub-folder cannot be read ({error.strerror or error})"
        fix = access_fix(directory) if isinstance(error, PermissionError) else ""
        listing.refused.append(Refused(directory, "unreadable", reason, folder=True, fix=fix))
        return
    if not os.access(directory, os.X_OK):
        # Listed (read permission) but not entered (no execute permission): every file in it fails to open or stat.
        if directory == root:
            what, fix = "can be listed but not entered (no execute permission)", access_fix(root)
            raise FolderAccessError(f"cannot open the files in the folder {root}: it {what}; {fix}", what, fix)
        listing.refused.append(Refused(directory, "unreadable", "this sub-folder can be listed but not entered (no "
                                       "execute permission)", folder=True, fix=access_fix(directory)))
        return
    for entry in entries:
        path = directory / entry.name
        if entry.name.startswith(".") or (excluded and Path(os.path.realpath(path)) in excluded):
            continue
        is_image_name = path.suffix.lower() in IMAGE_EXTENSIONS
        if entry.is_dir(follow_symlinks=False):
            # dbtui's prepared copies (`prepare pics pics/prepared`) are not more pictures: read, they counted twice.
            if recursive and not is_prepared_folder(path):
                _walk(path, root, real_root, excluded, recursive, caption_extension, listing)
            elif is_image_name:
                listing.refused.append(Refused(path, "not_a_file", "it is a folder, not an image file"))
            continue
        if recursive and entry.is_symlink() and _leads_to_folder(entry) and leaves_folder(path, real_root):
            # Named, as a link to a picture outside is: a linked album would otherwise go untrained without a word.
            listing.refused.append(Refused(path, "link_outside", "it is a symbolic link to a folder outside the "
                                           "dataset folder, and dbtui does not follow links that leave it", folder=True))
            continue
        if caption_extension and path.suffix.lower() == caption_extension.lower():
            listing.captions.append(path)
        if is_image_name:
            _sort_image(path, entry.is_symlink(), real_root, listing)


def _leads_to_folder(entry: os.DirEntry[str]) -> bool:
    """Whether a link leads to a folder; a loop (a -> b -> a) leads nowhere, and is_dir raises ELOOP for it."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _sort_image(path: Path, is_link: bool, real_root: Path, listing: Listing) -> None:
    if is_link and leaves_folder(path, real_root):
        reason = ("it is a symbolic link to a file outside the dataset folder, "
                  "and dbtui does not follow links that leave it")
        listing.refused.append(Refused(path, "link_outside", reason))
        return
    problem = file_problem(str(path))
    if problem and problem[0] == "not_a_file":
        listing.refused.append(Refused(path, *problem))
    else:  # readable, or a broken link, a loop or an unreadable file: the probe names those
        listing.images.append(path)


def file_problem(path: str) -> tuple[str, str] | None:
    """(code, reason) when ``path`` is not a regular file that can be opened; checked before Pillow opens it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if os.path.islink(path):
            return "broken_link", "it leads back to itself (a loop)" if error.errno == errno.ELOOP else \
                "the file it points to does not exist"
        return "unreadable", error.strerror or str(error)
    if not stat.S_ISREG(mode):
        # Opening a named pipe would wait forever for a writer.
        kind = "a folder" if stat.S_ISDIR(mode) else "a named pipe, socket or device"
        return "not_a_file", f"it is {kind}, not an image file"
    return None
