"""Captioned pictures of simple shapes, drawn with Pillow: what the tiny demo model is pretrained on.

Discs, squares, triangles, stars, striped shapes and ringed discs in named colours, on the demo's
named backgrounds, each with a caption such as "photo of a red disc on grass". Rings and stars on
discs are drawn so the model knows those parts; the demo's own "zwx disc" (red and yellow rings
with a blue star) is deliberately never drawn here: DreamBooth has to teach that combination.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from engine.builtin.demo_data import PLACES, STAR_SIZE, rings, star, textured_background

COLOURS = {
    "red": (220, 30, 30),
    "yellow": (250, 210, 20),
    "blue": (20, 40, 200),
    "green": (30, 170, 60),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "orange": (245, 130, 20),
    "purple": (130, 40, 170),
    "pink": (240, 120, 180),
}
SHAPES = (
    "disc", "square", "triangle", "star", "striped disc", "striped square", "disc with a star",
    "ringed disc", "ringed disc with a star",
)
ZWX = ("red", "yellow", "blue")  # the demo's zwx disc: rings of the first two, a star of the third
PARTIAL_CAPTIONS = 0.25
_DRAW_SIZE = 128  # drawn at twice the training size, then downscaled for smooth edges


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def _box(cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
    return (cx - r, cy - r, cx + r, cy + r)


def _outline(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: tuple[int, int, int]) -> None:
    if shape == "disc":
        draw.ellipse(_box(cx, cy, r), fill=fill)
    elif shape == "square":
        draw.rectangle(_box(cx, cy, r * 0.85), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r * 0.95, cy + r * 0.7), (cx + r * 0.95, cy + r * 0.7)], fill=fill)
    else:
        draw.polygon(star(cx, cy, r), fill=fill)


def _stripes(size: int, cx: float, cy: float, r: float, colours: tuple[tuple[int, int, int], ...]) -> Image.Image:
    layer = Image.new("RGB", (size, size), colours[0])
    draw = ImageDraw.Draw(layer)
    width = max(2.0, r / 3)
    x = cx - r
    for i in range(12):
        draw.rectangle((x + i * width, 0, x + (i + 1) * width - 1, size), fill=colours[i % 2])
    return layer


def draw_example(rng: random.Random, size: int = 64) -> tuple[Image.Image, str]:
    """One picture of a shape and its caption; the same ``rng`` state gives the same pair."""
    place = rng.choice(list(PLACES))
    # Calmer backgrounds than the demo's: the little pretraining goes to the shapes, not the blotches.
    image = textured_background(rng, _DRAW_SIZE, PLACES[place], spread=12)
    shape = rng.choice(SHAPES)
    colour, second, third = rng.sample([c for c in COLOURS if _distance(COLOURS[c], PLACES[place]) > 90], 3)
    if shape == "ringed disc with a star" and (colour, second, third) in (ZWX, (ZWX[1], ZWX[0], ZWX[2])):
        shape = "ringed disc"
    r = rng.uniform(0.2, 0.34) * _DRAW_SIZE
    cx, cy = rng.uniform(r, _DRAW_SIZE - r), rng.uniform(r, _DRAW_SIZE - r)
    draw = ImageDraw.Draw(image)
    lead, star_colour = f"{colour} and {second} ", ""
    if shape.startswith("striped "):
        outline = shape.removeprefix("striped ")
        mask = Image.new("L", image.size, 0)
        _outline(ImageDraw.Draw(mask), outline, cx, cy, r, 255)
        image.paste(_stripes(_DRAW_SIZE, cx, cy, r, (COLOURS[colour], COLOURS[second])), mask=mask)
    elif shape.startswith("ringed disc"):
        rings(draw, cx, cy, r, (COLOURS[colour], COLOURS[second]))
        if shape.endswith("star"):
            draw.polygon(star(cx, cy, r * STAR_SIZE), fill=COLOURS[third])
            star_colour = third
    elif shape == "disc with a star":
        _outline(draw, "disc", cx, cy, r, COLOURS[colour])
        draw.polygon(star(cx, cy, r * 0.55), fill=COLOURS[second])
        lead, star_colour = f"{colour} ", second
    else:
        _outline(draw, shape, cx, cy, r, COLOURS[colour])
        lead = f"{colour} "
    return image.resize((size, size), Image.Resampling.BICUBIC), _caption(rng, lead, shape, star_colour, place)


def _caption(rng: random.Random, lead: str, shape: str, star_colour: str, place: str) -> str:
    """"photo of a red and yellow ringed disc with a blue star on grass"; a quarter of captions leave
    out the colours and a quarter the place, so short prompts such as the demo's "photo of a disc"
    are ones the model has learned."""
    if rng.random() < PARTIAL_CAPTIONS:
        lead, star_colour = "", ""
    if rng.random() < PARTIAL_CAPTIONS:
        place = ""
    name = lead + shape.replace("a star", f"a {star_colour} star" if star_colour else "a star")
    article = "an" if name[0] in "aeiou" else "a"
    return " ".join(f"photo of {article} {name} {place}".split())
