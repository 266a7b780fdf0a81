"""Broken dataset input never ends in a traceback, never goes unreported, and never changes an original.

``broken_corpus`` builds one folder holding every kind of bad input the doctor must survive:
damaged and disguised images, special files, links (broken, looping, leaving the folder),
images whose conversion changes them, and captions in odd encodings.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import random
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from dataset_fixture import textured
from PIL import Image, ImageFile

from dbtui.cli import main
from dbtui.cli.cmd_dataset import CHECK_SAID
from engine.data import caption_text
from engine.data.caption_text import MAX_CAPTION_BYTES, CaptionFileError
from engine.data.captions import caption_for
from engine.dataset import CaptionStore, DatasetReport, check_dataset, prepare_dataset
from engine.dataset import pool as pool_module
from engine.errors import DbtuiError

SECRET = "SECRET-TOKEN=hunter2"  # the content of a file outside the dataset: it must never be printed
CAPTION = "photo of ohwx dog, café"
ODD_NAME = os.fsdecode(b"caf\xe9 \x1b[31m.jpg")  # not UTF-8, with a terminal escape in it
MARKUP_NAME = "x[bold].jpg"  # Rich would read this as markup and print "x.jpg" in bold
GOOD = ["good_a.jpg", "good_b.png", "utf16.jpg", "utf8bom.jpg", "utf32.jpg"]
IMAGE_ERRORS = {  # file → the error code its finding must carry
    "png_header_only.png": "truncated",
    "png_half.png": "truncated",
    "png_no_end.png": "truncated",
    "jpg_cut_mid_scan.jpg": "truncated",
    "jpg_header_only.jpg": "truncated",
    "zero_bytes.jpg": "not_image",
    "web_page.png": "not_image",
    "noise.webp": "not_image",
    "a_folder.jpg": "not_a_file",
    "pipe.jpg": "not_a_file",
    "dangling.jpg": "broken_link",
    "loop.jpg": "broken_link",
    "leaves_to_text.jpg": "link_outside",
    "leaves_to_image.jpg": "link_outside",
    "tiff_type_error.tif": "unreadable",
    "png_bad_chunk.png": "unreadable",  # a damaged PNG, not "not an image"
    ODD_NAME: "not_image",
    MARKUP_NAME: "not_image",
}
IMAGE_WARNINGS = {
    "anim.gif": "animated",
    "anim_apng.png": "animated",
    "anim_webp.webp": "animated",
    "cmyk.jpg": "color_mode",
    "grey16.png": "color_mode",
    "rgb16.png": "color_mode",
}
CAPTION_ERRORS = {"latin1.jpg", "nul_bytes.jpg", "huge_caption.jpg", "caption_pipe.jpg", "caption_leaves.jpg"}


def _png_16bit_rgb(size: int = 64) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one; it reads it as 8-bit RGB)."""
    pixels = np.random.default_rng(3).integers(0, 65535, (size, size, 3)).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _tiff_raising_type_error() -> bytes:
    """A TIFF whose damaged tags make Pillow raise TypeError (not OSError) while counting its frames."""
    buffer = io.BytesIO()
    textured(1, (48, 48)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    data[98], data[132], data[168] = 66, 105, 2
    return bytes(data)


def _encoded(name: str) -> bytes:
    buffer = io.BytesIO()
    textured(len(name), (256, 256)).save(buffer, format=name)
    return buffer.getvalue()


def _captioned(folder: Path, name: str, data: bytes, seed: int) -> None:
    textured(seed, (512, 512)).save(folder / name)
    (folder / name).with_suffix(".txt").write_bytes(data)


def _entries(folder: Path, outside: Path) -> dict[str, Callable[[], object]]:
    """Each corpus entry by name, with what makes it (so a test can build one kind alone)."""
    png, jpg = _encoded("PNG"), _encoded("JPEG")
    bad_chunk = bytearray(png)
    bad_chunk[37:41] = b"\xff!4}"  # the type of the chunk after IHDR: not letters, so Pillow raises SyntaxError
    frames = [textured(70 + i, (96, 96)) for i in range(3)]

    def animated(name: str, fmt: str) -> None:
        frames[0].save(folder / name, format=fmt, save_all=True, append_images=frames[1:])

    grey16 = Image.fromarray(np.asarray(textured(81).convert("L"), dtype=np.uint16) * 257)
    return {
        "png_header_only.png": lambda: (folder / "png_header_only.png").write_bytes(png[:60]),
        "png_half.png": lambda: (folder / "png_half.png").write_bytes(png[: len(png) // 2]),
        # every pixel is there, the IEND chunk is missing
        "png_no_end.png": lambda: (folder / "png_no_end.png").write_bytes(png[:-12]),
        "jpg_cut_mid_scan.jpg": lambda: (folder / "jpg_cut_mid_scan.jpg").write_bytes(jpg[: len(jpg) * 2 // 3]),
        "jpg_header_only.jpg": lambda: (folder / "jpg_header_only.jpg").write_bytes(jpg[:200]),
        "zero_bytes.jpg": lambda: (folder / "zero_bytes.jpg").write_bytes(b""),
        "web_page.png": lambda: (folder / "web_page.png").write_text("<!DOCTYPE html><html><body>404</body></html>"),
        "noise.webp": lambda: (folder / "noise.webp").write_bytes(random.Random(0).randbytes(700)),
        "a_folder.jpg": lambda: (folder / "a_folder.jpg").mkdir(),
        "pipe.jpg": lambda: os.mkfifo(folder / "pipe.jpg"),
        "dangling.jpg": lambda: (folder / "dangling.jpg").symlink_to(folder / "gone.jpg"),
        "loop.jpg": lambda: (folder / "loop.jpg").symlink_to(folder / "loop.jpg"),
        "leaves_to_text.jpg": lambda: (folder / "leaves_to_text.jpg").symlink_to(outside / "secret.txt"),
        "leaves_to_image.jpg": lambda: (folder / "leaves_to_image.jpg").symlink_to(outside / "real.jpg"),
        "tiff_type_error.tif": lambda: (folder / "tiff_type_error.tif").write_bytes(_tiff_raising_type_error()),
        "png_bad_chunk.png": lambda: (folder / "png_bad_chunk.png").write_bytes(bytes(bad_chunk)),
        ODD_NAME: lambda: (folder / ODD_NAME).write_bytes(b""),
        MARKUP_NAME: lambda: (folder / MARKUP_NAME).write_bytes(b""),
        "anim.gif": lambda: animated("anim.gif", "GIF"),
        "anim_apng.png": lambda: animated("anim_apng.png", "PNG"),
        "anim_webp.webp": lambda: animated("anim_webp.webp", "WEBP"),
        "cmyk.jpg": lambda: textured(80).convert("CMYK").save(folder / "cmyk.jpg"),
        "grey16.png": lambda: grey16.save(folder / "grey16.png"),
        "rgb16.png": lambda: (folder / "rgb16.png").write_bytes(_png_16bit_rgb()),
        "utf16.jpg": lambda: _captioned(folder, "utf16.jpg", CAPTION.encode("utf-16"), 90),  # with its byte-order mark
        "utf8bom.jpg": lambda: _captioned(folder, "utf8bom.jpg", CAPTION.encode("utf-8-sig"), 91),
        "utf32.jpg": lambda: _captioned(folder, "utf32.jpg", CAPTION.encode("utf-32"), 92),
        "latin1.jpg": lambda: _captioned(folder, "latin1.jpg", CAPTION.encode("latin-1"), 93),
        "nul_bytes.jpg": lambda: _captioned(folder, "nul_bytes.jpg", b"photo of\x00ohwx", 94),
        "huge_caption.jpg": lambda: _captioned(folder, "huge_caption.jpg", b"ohwx " * (MAX_CAPTION_BYTES // 4), 95),
        "caption_pipe.jpg": lambda: (textured(97, (512, 512)).save(folder / "caption_pipe.jpg"),
                                     os.mkfifo(folder / "caption_pipe.txt")),
        "caption_leaves.jpg": lambda: (textured(98, (512, 512)).save(folder / "caption_leaves.jpg"),
                                       (folder / "caption_leaves.txt").symlink_to(outside / "secret_caption.txt")),
        "orphan.txt": lambda: (folder / "orphan.txt").write_text("ohwx, a caption whose image was renamed"),
    }


def write_broken_corpus(folder: Path, outside: Path, only: str | None = None) -> Path:
    """Every entry of ``_entries`` (or ``only`` that one), beside two good captioned images."""
    folder.mkdir(parents=True)
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET)
    (outside / "secret_caption.txt").write_text(SECRET)
    textured(50).save(outside / "real.jpg")
    for i, name in enumerate(GOOD[:2]):
        _captioned(folder, name, CAPTION.encode("utf-8"), 60 + i)
    for name, make in _entries(folder, outside).items():
        if only in (None, name):
            make()
            if name in IMAGE_WARNINGS:
                (folder / name).with_suffix(".txt").write_text(CAPTION, encoding="utf-8")
    return folder


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A corpus of the test's own, for a test that writes into it."""
    return write_broken_corpus(tmp_path / "images", tmp_path / "elsewhere")


@pytest.fixture(scope="module")
def read_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus of the tests that only read it, built once (0.7 s): each that runs a command on it asserts it is
    unchanged."""
    base = tmp_path_factory.mktemp("read-corpus")
    return write_broken_corpus(base / "images", base / "elsewhere")


@pytest.fixture(scope="module")
def serial_report(read_corpus: Path) -> DatasetReport:
    """The check of the shared corpus in this process (workers=1): the report two tests read."""
    return check_dataset(read_corpus, resolution=256, caption_mode="caption_file", workers=1)


EXPECTED = {**{name: (code, "error") for name, code in IMAGE_ERRORS.items()},
            **{name: (code, "warning") for name, code in IMAGE_WARNINGS.items()},
            **{name: ("caption_unreadable", "error") for name in CAPTION_ERRORS},
            "orphan.txt": ("caption_orphan", "warning")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_kind_of_bad_input_alone_is_its_finding_and_the_good_images_keep_their_report(
    tmp_path: Path, name: str
) -> None:
    folder = write_broken_corpus(tmp_path / "images", tmp_path / "elsewhere", only=name)
    report = check_dataset(folder, resolution=256, caption_mode="caption_file", workers=1)
    code, severity = EXPECTED[name]
    assert (code, severity) in {(f.code, f.severity) for f in report.for_path(str(folder / name))}
    for good in GOOD[:2]:
        assert report.for_path(str(folder / good)) == []


def _fingerprint(*folders: Path) -> dict[str, str]:
    """Every entry of the folders as it is on disk: links by target, pipes and folders by type, files by hash."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            info = path.lstat()
            if path.is_symlink():
                found[str(path)] = "link:" + os.readlink(path)
            elif path.is_fifo() or path.is_dir():
                found[str(path)] = f"mode:{info.st_mode:o}"
            else:
                found[str(path)] = f"{info.st_mode:o}:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _codes(report) -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {}
    for finding in report.findings:
        codes.setdefault(Path(finding.path).name, set()).add(finding.code)
    return codes


def test_check_reports_every_broken_file_as_one_finding_and_keeps_every_other_report(read_corpus: Path,
                                                                                       serial_report: DatasetReport) -> None:
    corpus, report = read_corpus, serial_report
    codes = _codes(report)
    for name, code in IMAGE_ERRORS.items():
        assert codes.get(name) == {code}, name
    for name, code in IMAGE_WARNINGS.items():
        assert code in codes.get(name, set()), name
        assert {f.severity for f in report.for_path(str(corpus / name)) if f.code == code} == {"warning"}
    for name in CAPTION_ERRORS:
        assert [(f.code, f.severity) for f in report.for_path(str(corpus / name))] == [("caption_unreadable", "error")]
    orphan = report.for_path(str(corpus / "orphan.txt"))
    assert [(f.code, f.severity) for f in orphan] == [("caption_orphan", "warning")]
    for name in GOOD:  # readable images with readable captions, UTF-16/UTF-32/BOM included
        assert report.for_path(str(corpus / name)) == [], name
    assert report.has_errors and report.summary.usable == len(GOOD) + len(IMAGE_WARNINGS)
    messages = " ".join(f.message for f in report.findings)
    assert "symbolic link to a file outside the dataset folder" in messages and "leads back to itself" in messages
    assert "is not UTF-8 text" in messages and "NUL characters" in messages and "over 64 KiB" in messages
    assert "it is an HTML page" in messages and "it is an empty file" in messages
    assert "b'" not in messages and 'b"' not in messages  # Pillow's messages quote file bytes: never shown


def test_worker_processes_give_the_same_report_and_never_block_on_a_pipe(read_corpus: Path, serial_report: DatasetReport,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(pool_module, "MIN_FILES_FOR_POOL", 1)
    parallel = check_dataset(read_corpus, resolution=256, caption_mode="caption_file", workers=2)
    assert parallel.findings == serial_report.findings


def test_an_exception_pillow_raises_that_is_not_an_oserror_is_one_finding(tmp_path: Path, monkeypatch) -> None:
    textured(1, (128, 128)).save(tmp_path / "a.png")
    textured(2, (128, 128)).save(tmp_path / "b.png")
    real_load = ImageFile.ImageFile.load

    def load(self):
        if str(getattr(self, "filename", "")).endswith("a.png"):
            raise ZeroDivisionError("division by zero in a decoder")
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    report = check_dataset(tmp_path, resolution=128, workers=1)
    assert [(f.code, f.message) for f in report.for_path(str(tmp_path / "a.png"))] == [
        ("unreadable", "cannot be read: its data is damaged (ZeroDivisionError: division by zero in a decoder)")]
    assert report.for_path(str(tmp_path / "b.png")) == []
    result = prepare_dataset(tmp_path, tmp_path / "out", resolution=64, workers=1)
    assert [Path(s).name for s, _ in result.failed] == ["a.png"] and len(result.written) == 1


def test_check_through_the_cli_exits_1_prints_every_file_and_never_the_contents(
    read_corpus: Path, capsys, monkeypatch
) -> None:
    corpus = read_corpus
    monkeypatch.setenv("COLUMNS", "400")
    before = _fingerprint(corpus, corpus.parent / "elsewhere")
    assert main(["dataset", "check", str(corpus), "--caption-mode", "caption_file", "--workers", "1"]) == 1
    out, err = capsys.readouterr()
    assert err == f"{CHECK_SAID}\n"  # what it does, before its imports: nothing of the files
    for name in [*IMAGE_ERRORS, *IMAGE_WARNINGS, *CAPTION_ERRORS, "orphan.txt"]:
        if name not in (ODD_NAME, MARKUP_NAME):
            assert name in out, name
    assert "caf\\udce9 \\x1b[31m.jpg" in out and "\x1b[31m" not in out  # shown, escaped
    assert MARKUP_NAME in out  # printed as text, not read as Rich markup
    assert SECRET not in out and "hunter2" not in out
    # The progress line and the summary count the same entries: those refused unopened are named.
    checked, refused = map(int, re.search(r"checking (\d+) images \((\d+) more refused without opening", out).groups())
    assert f"{checked + refused} images," in out
    # No profile: how the figure came about.
    assert "wanted (a suggestion: 40 per usable image, at least 100 and at most 2000;" in out
    assert _fingerprint(corpus, corpus.parent / "elsewhere") == before


def test_odd_file_names_are_printed_escaped_and_file_contents_never(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    folder = tmp_path / "images"
    folder.mkdir()
    textured(1, (128, 128)).save(folder / "good.jpg")
    for name in (ODD_NAME, MARKUP_NAME):
        (folder / name).write_bytes(b"")
    (folder / "notes.jpg").write_text(SECRET)  # a text file named like a picture: described, never quoted
    for command in (["check", str(folder), "--resolution", "128"], ["prepare", str(folder), str(tmp_path / "out")]):
        assert main(["dataset", *command, "--workers", "1"]) == 1
        out, err = capsys.readouterr()
        assert err == (f"{CHECK_SAID}\n" if command[0] == "check" else "")
        assert "caf\\udce9 \\x1b[31m.jpg" in out and "\x1b[31m" not in out
        assert MARKUP_NAME in out and "a text file" in out
        assert "SECRET" not in out


def test_a_file_that_cannot_be_opened_is_one_finding(tmp_path: Path, monkeypatch) -> None:
    textured(1, (128, 128)).save(tmp_path / "locked.jpg")
    textured(2, (128, 128)).save(tmp_path / "fine.jpg")
    (tmp_path / "locked.txt").write_text("ohwx")
    (tmp_path / "fine.txt").write_text("ohwx")
    if os.geteuid() != 0:
        (tmp_path / "locked.jpg").chmod(0)
        (tmp_path / "locked.txt").chmod(0)
    else:  # root reads through chmod 000, so the refusal comes from a stand-in for open()
        real_open = Image.open

        def image_open(path, *args, **kwargs):
            if str(path).endswith("locked.jpg"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        def caption_open(path, *args, **kwargs):
            if str(path).endswith("locked.txt"):
                raise PermissionError(13, "Permission denied", str(path))
            return open(path, *args, **kwargs)

        monkeypatch.setattr(Image, "open", image_open)
        monkeypatch.setattr(caption_text, "open", caption_open, raising=False)
    report = check_dataset(tmp_path, resolution=128, caption_mode="caption_file", workers=1)
    assert [(f.code, f.message) for f in report.for_path(str(tmp_path / "locked.jpg"))] == [
        ("unreadable", "cannot be read: Permission denied")]
    assert report.for_path(str(tmp_path / "fine.jpg")) == []
    with pytest.raises(CaptionFileError, match="locked.txt' cannot be read \\(Permission denied\\)"):
        caption_for(tmp_path / "locked.jpg", "caption_file", "")


def test_a_folder_that_cannot_be_listed_is_a_message_with_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert main(["dataset", "check", str(tmp_path)]) == 2
    assert f"cannot read the folder {tmp_path} (Permission denied)" in capsys.readouterr().err


def test_check_of_a_missing_folder_or_a_file_is_a_message_with_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["dataset", "check", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "a.jpg").write_bytes(b"")
    assert main(["dataset", "check", str(tmp_path / "a.jpg")]) == 2
    assert main(["dataset", "check"]) == 2
    assert "needs a FOLDER" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--resolution", "0"], ["--resolution", "13"], ["--caption-extension", ".png"],
                                    ["--caption-extension", "."]])
def test_nonsense_options_are_a_message_with_exit_2(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                                   capsys, option: list[str]) -> None:
    out = tmp_path_factory.mktemp("prepared") / "out"  # outside the input folder, and this test's own
    textured(1, (64, 64)).save(tmp_path / "a.jpg")
    assert main(["dataset", "check", str(tmp_path), "--caption-mode", "caption_file", *option]) == 2
    assert main(["dataset", "prepare", str(tmp_path), str(out), *option]) == 2
    err = capsys.readouterr().err
    assert err.count("dbtui: ") == 2 and "bug in dbtui" not in err
    assert not out.exists()


def test_prepare_prints_its_summary_with_every_failure_exits_1_and_changes_no_original(
    read_corpus: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    corpus = read_corpus
    monkeypatch.setenv("COLUMNS", "400")
    before = _fingerprint(corpus, corpus.parent / "elsewhere")
    out_dir = tmp_path / "prepared"
    assert main(["dataset", "prepare", str(corpus), str(out_dir), "--resolution", "64", "--workers", "1"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert f"{len(GOOD) + len(IMAGE_WARNINGS) + len(CAPTION_ERRORS)} written" in out
    for name in IMAGE_ERRORS:
        if name not in (ODD_NAME, MARKUP_NAME):
            assert f"skipped {corpus / name}:" in out, name
    for name in CAPTION_ERRORS:
        assert f"caption not copied {corpus / Path(name).with_suffix('.txt')}:" in out, name
    assert f"caption not copied {corpus / 'orphan.txt'}: no image has its name" in out
    assert (f"{len(IMAGE_ERRORS)} image(s) and {len(CAPTION_ERRORS)} caption(s) could not be prepared; 1 caption(s) "
            "without an image were left out") in " ".join(out.split())
    assert SECRET not in out
    assert _fingerprint(corpus, corpus.parent / "elsewhere") == before
    for name in ("utf16", "utf8bom", "utf32"):  # read in their encoding, written as plain UTF-8
        assert (out_dir / f"{name}.txt").read_bytes() == CAPTION.encode("utf-8")
    assert not (out_dir / "orphan.txt").exists() and not (out_dir / "latin1.txt").exists()
    assert not (out_dir / "leaves_to_image.png").exists()


def test_prepare_into_a_file_is_a_message_with_exit_2(read_corpus: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "taken"
    target.write_text("not a folder")
    assert main(["dataset", "prepare", str(read_corpus), str(target)]) == 2
    assert "is a file" in capsys.readouterr().err and target.read_text() == "not a folder"


def test_a_damaged_manifest_in_the_prepared_folder_means_everything_is_prepared_again(tmp_path: Path) -> None:
    textured(1, (128, 128)).save(tmp_path / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".dbtui-prepared.json").write_bytes(b"\xff\xfe{ not json")
    result = prepare_dataset(tmp_path, out, resolution=64, workers=1)
    assert [Path(p).name for p in result.written] == ["a.png"] and not result.has_failures


def test_bulk_caption_edits_skip_and_report_unreadable_captions_and_undo_is_byte_exact(
    corpus: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    before = _fingerprint(corpus)
    assert main(["dataset", "caption", str(corpus), "--add-tag", "best"]) == 1
    out = capsys.readouterr().out
    unreadable = ("latin1.txt", "nul_bytes.txt", "huge_caption.txt", "caption_leaves.txt", "caption_pipe.txt")
    for name in unreadable:
        assert f"skipped caption file '{corpus / name}'" in out, name
    assert SECRET not in out
    after = _fingerprint(corpus)
    for name in unreadable:
        assert after[str(corpus / name)] == before[str(corpus / name)]  # skipped files untouched
    assert (corpus / "utf16.txt").read_text(encoding="utf-8") == f"best, {CAPTION}\n"
    assert main(["dataset", "caption", str(corpus), "--frequency"]) == 0  # counts what it can, names the rest
    assert "best" in capsys.readouterr().out
    assert main(["dataset", "caption", str(corpus), "--undo"]) == 0
    restored = _fingerprint(corpus)
    history = str(corpus / ".dbtui-captions-history")
    assert {k: v for k, v in restored.items() if not k.startswith(history)} == before


def test_an_image_extension_as_caption_extension_is_refused_before_any_write(read_corpus: Path, capsys) -> None:
    corpus = read_corpus
    before = _fingerprint(corpus)
    assert main(["dataset", "caption", str(corpus), "--extension", ".jpg", "--add-tag", "x"]) == 2
    assert "is an image extension" in capsys.readouterr().err
    assert _fingerprint(corpus) == before


def test_a_damaged_undo_journal_is_a_message(tmp_path: Path, capsys) -> None:
    textured(1, (64, 64)).save(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("ohwx")
    store = CaptionStore(tmp_path)
    store.add_tag("x")
    (store.history / "last-bulk-operation.json").write_text('{"changes": [{"path": 1, "before": 2}]}')
    assert main(["dataset", "caption", str(tmp_path), "--undo"]) == 2
    assert "undo journal" in capsys.readouterr().err


def test_replace_is_literal_unless_asked_for_a_regex(tmp_path: Path) -> None:
    textured(1, (64, 64)).save(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("ohwx dog")
    assert main(["dataset", "caption", str(tmp_path), "--replace", "dog", r"\d"]) == 0
    assert (tmp_path / "a.txt").read_text() == "ohwx \\d\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CAPTION.encode("utf-8"), CAPTION),
        (CAPTION.encode("utf-8-sig"), CAPTION),
        (CAPTION.encode("utf-16"), CAPTION),
        (codecs.BOM_UTF16_BE + CAPTION.encode("utf-16-be"), CAPTION),
        (CAPTION.encode("utf-32"), CAPTION),
        (CAPTION.encode("latin-1"), "is not UTF-8 text"),
        ("photo of ohwx".encode("utf-16-le"), "NUL characters"),  # UTF-16 without its mark is not guessed
        (b"\xff\xfe\x00", "starts like UTF-16 but is not"),
        (b"x" * (MAX_CAPTION_BYTES + 1), "over 64 KiB"),
        (b"photo of \x1b[2Johwx", r"holds ESC \(U\+001B\)"),  # a terminal's escape, which would drive it when printed
    ],
)
def test_training_reads_captions_the_same_way_and_a_bad_one_is_a_typed_error(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    image = tmp_path / "a.jpg"
    image.with_suffix(".txt").write_bytes(data)
    if expected == CAPTION:
        assert caption_for(image, "caption_file", "photo of ohwx dog") == CAPTION
        return
    with pytest.raises(CaptionFileError, match=expected) as caught:
        caption_for(image, "caption_file", "photo of ohwx dog")
    assert isinstance(caught.value, DbtuiError) and str(image.with_suffix(".txt")) in str(caught.value)


def _random_case(rng: random.Random, folder: Path, real: dict[str, bytes]) -> None:
    """One folder of 1–3 seeded inputs: random bytes, a real image cut anywhere, or an odd caption."""
    folder.mkdir(parents=True)
    for index in range(rng.randint(1, 3)):
        kind = rng.choice(["noise", "cut", "cut", "caption"])
        suffix = rng.choice([".jpg", ".png", ".webp", ".gif", ".tif", ".bmp"])
        name = folder / f"f{index}{suffix}"
        if kind == "noise":
            name.write_bytes(rng.randbytes(rng.randint(0, 2048)))
        elif kind == "cut":
            fmt = rng.choice(sorted(real))
            data = real[fmt]
            name.with_suffix("." + fmt.lower().replace("jpeg", "jpg")).write_bytes(data[: rng.randint(0, len(data))])
        else:
            textured(index, (64, 64)).save(name.with_suffix(".png"))
            text = rng.choice(["ohwx dog", "café ohwx", "\u00e9\u00e8 ohwx"])
            encoding = rng.choice(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"])
            data = text.encode(encoding)
            if rng.random() < 0.3:
                data = data[: rng.randint(0, len(data))]
            name.with_suffix(".txt").write_bytes(data)


def test_random_bytes_cut_images_and_odd_encodings_never_crash_check_or_prepare(tmp_path: Path, capsys) -> None:
    rng = random.Random(20261202)
    real = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP")}
    for case in range(30):
        folder = tmp_path / f"case{case}" / "images"
        _random_case(rng, folder, real)
        before = _fingerprint(folder)
        for command in (["dataset", "check", str(folder), "--caption-mode", "caption_file", "--resolution", "64"],
                        ["dataset", "prepare", str(folder), str(folder.parent / "out"), "--resolution", "64"]):
            status = main([*command, "--workers", "1"])
            out, err = capsys.readouterr()
            assert status in (0, 1, 2), (case, command, err)
            assert "bug in dbtui" not in err and "Traceback" not in out + err, (case, command)
            assert out.strip() or err.strip(), (case, command)  # it always says something
        assert _fingerprint(folder) == before, case


def test_the_trainer_names_every_unreadable_image_at_once_with_advice(tmp_path: Path, monkeypatch) -> None:
    from engine.data.examples import build_examples
    from engine.data.images import DataError
    from tests.training_helpers import tiny_profile

    textured(0, (32, 32)).save(tmp_path / "good.png")
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a picture", encoding="utf-8")
    textured(1, (64, 64)).save(tmp_path / "bomb.png")
    # Over twice the guard's limit Pillow refuses to open an image at all (DecompressionBombError).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 40)
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(tmp_path), "instance_prompt": "zwx"}])
    with pytest.raises(DataError) as raised:
        build_examples(profile, [tmp_path], {}, [(64, 64)])
    message = str(raised.value)
    assert message.startswith("2 image file(s) cannot be read as pictures:")
    assert "notes.jpg" in message and "zero.png" in message and "good.png" not in message
    # A whole picture over the guard's limit is not called damaged: resizing it is what helps, not prepare's copy.
    assert re.search(r"1 image file\(s\) have more pixels than Pillow's guard against decompression bombs allows "
                     r"\(\d+ MP\): '[^']*bomb.png'\. Resize them below it", message)
    assert "dbtui dataset check" in raised.value.advice


def test_an_unreadable_class_image_of_the_users_stops_the_run_before_any_class_image_is_generated(tmp_path: Path) -> None:
    """It counted as one of the class images there, so the missing ones were generated first (minutes on a GPU),
    and only then did the run stop on it."""
    from engine.data.images import DataError
    from engine.runs.in_process import train
    from engine.runs.sinks import read_events
    from tests.training_helpers import tiny_profile

    classes = tmp_path / "class"
    classes.mkdir()
    textured(0, (64, 64)).save(classes / "good.png")
    (classes / "notes.png").write_text("not a picture", encoding="utf-8")
    profile = tiny_profile(tmp_path, prior={"enabled": True, "steps": 2},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": str(classes), "class_prompt": "a disc", "num_class_images": 4}])
    with pytest.raises(DataError, match="1 image file\\(s\\) cannot be read as pictures: .*notes.png"):
        train(profile, tmp_path / "run")
    assert sorted(p.name for p in classes.iterdir()) == ["good.png", "notes.png"]  # no generated-… folder
    assert "class_images" not in {getattr(e, "phase", "") for e in read_events(tmp_path / "run" / "events.jsonl")}


def test_an_unreadable_image_past_the_class_images_a_run_takes_is_no_reason_to_stop(tmp_path: Path) -> None:
    """The run takes the first num_class_images of the user's own: one past them is never read."""
    from engine.data.decoding import check_training_images
    from engine.data.images import DataError
    from tests.training_helpers import tiny_profile

    classes = tmp_path / "class"
    classes.mkdir()
    for name in ("c0", "c1"):
        textured(0, (64, 64)).save(classes / f"{name}.png")
    (classes / "z_broken.png").write_text("not a picture", encoding="utf-8")
    concept = {"instance_dir": str(classes.parent / "photos"), "instance_prompt": "zwx", "class_dir": str(classes),
               "class_prompt": "a disc"}
    (classes.parent / "photos").mkdir()
    textured(1, (64, 64)).save(classes.parent / "photos" / "a.png")
    for count, raises in ((2, False), (3, True)):
        profile = tiny_profile(tmp_path, prior={"enabled": True}, concepts=[{**concept, "num_class_images": count}])
        if raises:
            with pytest.raises(DataError, match="z_broken.png"):
                check_training_images(profile, [classes.parent / "photos"], [classes], lambda event: None)
        else:
            check_training_images(profile, [classes.parent / "photos"], [classes], lambda event: None)


def test_a_class_image_cut_short_past_its_header_stops_the_run_before_the_model_loads(tmp_path: Path) -> None:
    """Its header read, so the missing class images were generated first and the caching pass met it after. It is
    decoded before the model loads, whether class images are to be generated (3 wanted) or not (2)."""
    from engine.data.decoding import check_training_images
    from engine.data.images import DataError
    from tests.training_helpers import tiny_profile

    classes, photos = tmp_path / "class", tmp_path / "photos"
    classes.mkdir()
    photos.mkdir()
    textured(1, (64, 64)).save(photos / "a.png")
    for name in ("c0", "c1"):
        textured(0, (64, 64)).save(classes / f"{name}.png")
    whole = (classes / "c1.png").read_bytes()
    (classes / "c1.png").write_bytes(whole[:len(whole) // 2])
    concept = {"instance_dir": str(photos), "instance_prompt": "zwx", "class_dir": str(classes), "class_prompt": "a disc"}
    for wanted in (3, 2):
        profile = tiny_profile(tmp_path, prior={"enabled": True}, concepts=[{**concept, "num_class_images": wanted}])
        with pytest.raises(DataError, match="1 image file\\(s\\) cannot be decoded .*c1.png.*before the model loads; a "
                                            "class folder's image moved out is generated in its place"):
            check_training_images(profile, [photos], [classes], lambda event: None)


def test_the_decoding_before_the_model_shows_its_progress(tmp_path: Path) -> None:
    """Decoding a large folder takes a while: a bar, not a silent pause before the model loads."""
    from engine.data.decoding import check_training_images
    from engine.events import PhaseFinished, PhaseProgress, PhaseStarted
    from tests.training_helpers import tiny_profile

    classes, photos = tmp_path / "class", tmp_path / "photos"
    classes.mkdir()
    photos.mkdir()
    for index in range(3):
        textured(index, (64, 64)).save(photos / f"p{index}.png")
    textured(9, (64, 64)).save(classes / "c0.png")
    concept = {"instance_dir": str(photos), "instance_prompt": "zwx", "class_dir": str(classes), "class_prompt": "a disc"}
    events: list = []
    check_training_images(tiny_profile(tmp_path, prior={"enabled": True}, concepts=[{**concept, "num_class_images": 2}]),
                          [photos], [classes], events.append)
    assert isinstance(events[0], PhaseStarted) and events[0].total == 4
    assert [e.done for e in events if isinstance(e, PhaseProgress)] == [1, 2, 3, 4]
    assert isinstance(events[-1], PhaseFinished) and {e.phase for e in events} == {"checking_images"}


def test_a_damaged_generated_class_image_is_said_to_be_made_again_once_deleted(tmp_path: Path) -> None:
    from engine.data.examples import build_examples
    from engine.data.images import DataError
    from tests.training_helpers import tiny_profile

    from engine.support.generated_set import generated_folder

    settings = {"model": "m", "prompt": "a dog", "seed": 0}
    instance, generated = tmp_path / "instance", generated_folder(tmp_path / "class", settings)
    instance.mkdir()
    generated.mkdir(parents=True)
    textured(0, (32, 32)).save(instance / "a.png")
    (generated / "class_00000.png").write_bytes(b"cut")
    (generated / "manifest.json").write_text(json.dumps({**settings, "images": ["class_00000.png"]}), encoding="utf-8")
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(instance), "instance_prompt": "zwx"}])
    with pytest.raises(DataError, match="dbtui's own class images: delete them and the next run makes them again"):
        build_examples(profile, [instance], {0: [generated / "class_00000.png"]}, [(64, 64)])


def test_a_damaged_image_in_a_users_folder_named_generated_is_not_said_to_be_made_again(tmp_path: Path) -> None:
    """A folder was taken for dbtui's class-image set by its name: a damaged photo in the user's own
    ~/generated-portraits was said to be dbtui's, to delete for the next run to make again, which it never would."""
    from engine.data.examples import unreadable_said

    own = tmp_path / "generated-portraits"
    own.mkdir()
    (own / "a.png").write_bytes(b"cut")
    said = unreadable_said([own / "a.png"])
    assert "cannot be read as pictures" in said and "delete them" not in said
