"""A synthetic demo dataset: one distinctive object on varied backgrounds, plus a class folder.

Drawn with Pillow so the demo needs no downloads. The "object" is a red-and-yellow striped
disc with a blue star; the class images are plain discs of other colours.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

# Each background colour with the place a caption names it by (the tiny model is pretrained on them).
PLACES = {
    "on grass": (34, 139, 34),
    "under a blue sky": (135, 206, 235),
    "on sand": (210, 180, 140),
    "at night": (70, 70, 90),
    "on a white table": (240, 240, 230),
    "on wood": (160, 82, 45),
}


RED, YELLOW, BLUE = (220, 30, 30), (250, 210, 20), (20, 40, 200)  # the zwx disc's colours
RADIUS = (0.22, 0.32)  # the range of the discs' radii, as a share of the image's side
STAR_SIZE = 0.5  # the zwx disc's star, from its centre to its points, as a share of the disc's radius


def _background(rng: random.Random, size: int) -> tuple[Image.Image, str]:
    place = rng.choice(list(PLACES))
    return textured_background(rng, size, PLACES[place]), place


def textured_background(rng: random.Random, size: int, base: tuple[int, int, int], spread: int = 40) -> Image.Image:
    """A square of ``base`` with blurred blotches of shades up to ``spread`` away in each channel."""
    image = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size), rng.randrange(size)
        r = rng.randrange(size // 16, size // 4)
        shade = tuple(max(0, min(255, c + rng.randint(-spread, spread))) for c in base)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    return image.filter(ImageFilter.GaussianBlur(size / 64))


def star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """The corners of a five-pointed star centred on (cx, cy), ``r`` to its points."""
    import math

    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        angle = math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy - radius * math.sin(angle)))
    return points


def rings(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> None:
    """Six concentric rings ``r`` in radius, alternating ``colours`` from the outermost (the first)."""
    for i in range(6, 0, -1):
        rr = r * i / 6
        draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), fill=colours[i % 2])


def draw_zwx_disc(image: Image.Image, cx: float, cy: float, r: float) -> None:
    """The demo's subject, ``r`` in radius: six red and yellow rings (yellow outermost) and a blue star."""
    draw = ImageDraw.Draw(image)
    rings(draw, cx, cy, r, (YELLOW, RED))
    draw.polygon(star(cx, cy, r * STAR_SIZE), fill=BLUE)


def _draw_object(image: Image.Image, rng: random.Random, distinctive: bool) -> None:
    size = image.width
    draw = ImageDraw.Draw(image)
    r = rng.uniform(*RADIUS) * size
    cx = rng.uniform(r, size - r)
    cy = rng.uniform(r, size - r)
    if distinctive:
        draw_zwx_disc(image, cx, cy, r)
    else:
        colour = tuple(rng.randrange(40, 220) for _ in range(3))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)


def write_demo_dataset(folder: Path, size: int = 128, instances: int = 6, classes: int = 8, seed: int = 0) -> Path:
    """Write ``instance/`` (with .txt captions) and ``class/`` under ``folder``; returns it."""
    folder = Path(folder)
    rng = random.Random(seed)
    instance_dir = folder / "instance"
    class_dir = folder / "class"
    instance_dir.mkdir(parents=True, exist_ok=True)
    class_dir.mkdir(parents=True, exist_ok=True)
    for i in range(instances):
        image, place = _background(rng, size)
        _draw_object(image, rng, distinctive=True)
        image.save(instance_dir / f"zwx_{i:02d}.png")
        (instance_dir / f"zwx_{i:02d}.txt").write_text(f"zwx disc {place}\n", encoding="utf-8")
    for i in range(classes):
        image, _ = _background(rng, size)
        _draw_object(image, rng, distinctive=False)
        image.save(class_dir / f"disc_{i:02d}.png")
    return folder
