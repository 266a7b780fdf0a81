"""A generated dataset with one image per problem the doctor knows, plus clean images.

``EXPECTED`` maps each finding code to the files it must fire on (and on no other file).
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from engine.builtin.tiny_model import _bytes_to_unicode

IDENTIFIER = "ohwx"
CLEAN = ["clean_a.jpg", "clean_b.png", "clean_c.webp", "clean_d.jpg"]
EXPECTED = {
    "not_image": {"webpage.jpg"},
    "truncated": {"truncated.jpg"},
    "broken_link": {"broken_link.jpg"},
    "too_many_pixels": {"bomb.png"},
    "exif_orientation": {"rotated.jpg"},
    "transparency": {"cutout.png"},
    "color_mode": {"cmyk.jpg", "palette.png", "gray16.png"},
    "too_small": {"small.jpg"},
    "aspect_crop": {"wide.jpg"},
    "blurry": {"blurry.jpg"},
    "near_duplicate": {"dup_a.jpg", "dup_b.jpg"},
    "caption_missing": {"uncaptioned.jpg"},
    "caption_lacks_identifier": {"no_identifier.jpg"},
    "caption_too_long": {"long_caption.jpg"},
}
LONG_CAPTION = IDENTIFIER + " " + " ".join(f"word{i}" for i in range(80))


def textured(seed: int, size: tuple[int, int] = (640, 640)) -> Image.Image:
    """A sharp, busy picture, different for every seed (so no two look alike)."""
    rng = np.random.default_rng(seed)
    w, h = size
    cells = rng.integers(0, 256, (h // 32 + 1, w // 32 + 1, 3), dtype=np.uint8)
    blocks = np.kron(cells, np.ones((32, 32, 1), dtype=np.uint8))[:h, :w]
    noise = rng.integers(-40, 40, (h, w, 3))
    return Image.fromarray(np.clip(blocks.astype(int) + noise, 0, 255).astype(np.uint8))


def _bomb_png(path: Path, width: int = 30_000, height: int = 30_000) -> None:
    """A tiny PNG whose header claims 900 megapixels (what a decompression bomb looks like)."""
    buffer = io.BytesIO()
    Image.new("1", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


def write_fixture(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    seed = iter(range(100, 200))

    def caption(name: str, text: str = f"photo of {IDENTIFIER} dog") -> None:
        (folder / name).with_suffix(".txt").write_text(text + "\n", encoding="utf-8")

    for i, name in enumerate(CLEAN):
        textured(i).save(folder / name)
        caption(name, f"photo of {IDENTIFIER} dog, scene {i}")
    (folder / "webpage.jpg").write_text("<!DOCTYPE html><html><body>Image not found</body></html>")
    whole = io.BytesIO()
    textured(next(seed)).save(whole, format="JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    (folder / "broken_link.jpg").symlink_to(folder / "moved-away.jpg")
    _bomb_png(folder / "bomb.png")
    rotated = textured(next(seed), (600, 700))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    rotated.save(folder / "rotated.jpg", exif=exif.tobytes())
    cutout = textured(next(seed)).convert("RGBA")
    alpha = Image.new("L", cutout.size, 0)
    alpha.paste(255, (120, 120, 520, 520))
    cutout.putalpha(alpha)
    cutout.save(folder / "cutout.png")
    textured(next(seed)).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    textured(next(seed)).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    grey = np.asarray(textured(next(seed)).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(folder / "gray16.png")
    textured(next(seed), (300, 300)).save(folder / "small.jpg", quality=95)
    textured(next(seed), (1200, 560)).save(folder / "wide.jpg", quality=95)
    textured(next(seed)).filter(ImageFilter.GaussianBlur(8)).save(folder / "blurry.jpg", quality=95)
    duplicate = textured(next(seed))
    duplicate.save(folder / "dup_a.jpg", quality=95)
    duplicate.resize((560, 560)).save(folder / "dup_b.jpg", quality=60)
    textured(next(seed)).save(folder / "uncaptioned.jpg", quality=95)
    textured(next(seed)).save(folder / "no_identifier.jpg", quality=95)
    textured(next(seed)).save(folder / "long_caption.jpg", quality=95)
    (folder / "notes.md").write_text("not a training file")
    for path in folder.iterdir():
        if path.suffix != ".txt" and path.name not in {"uncaptioned.jpg", "notes.md", *CLEAN}:
            caption(path.name)
    caption("no_identifier.jpg", "photo of a dog on grass")
    caption("long_caption.jpg", LONG_CAPTION)
    return folder


def write_clip_tokenizer_files(data: Path, folder: Path) -> Path:
    """vocab.json + merges.txt of OpenAI CLIP's real BPE, from its merges list (shared/data)."""
    lines = gzip.open(data / "clip_bpe_simple_vocab_16e6.txt.gz", "rt", encoding="utf-8").read().split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    alphabet = list(_bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder
