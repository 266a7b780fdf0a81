"""A picture's size is read from its header: ``image_size`` runs for every picture at each estimate and each run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageFile

from engine.data.images import image_size, load_rgb


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose pixels get decoded from now on."""
    decoded: list[str] = []
    load = ImageFile.ImageFile.load

    def spying(image):
        decoded.append(str(getattr(image, "filename", "")))
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spying)
    return decoded


def test_a_pngs_size_is_read_without_decoding_its_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's getexif decoded a PNG whole to look for EXIF after the pixels: 46 ms a 1024² picture, 8 minutes an
    estimate for a prepared folder of 10,000."""
    plain = tmp_path / "plain.png"
    Image.new("RGB", (96, 160), (200, 40, 40)).save(plain)
    turned = tmp_path / "turned.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait: Pillow writes the eXIf chunk before the pixels
    Image.new("RGB", (160, 96), (200, 40, 40)).save(turned, exif=exif)
    decoded = _decodes(monkeypatch)
    assert image_size(plain) == (96, 160) and image_size(turned) == (96, 160)
    assert decoded == []
    assert load_rgb(turned).size == (96, 160)  # training turns it as the size says


@pytest.mark.parametrize(("width", "height", "said"), [(30_000, 30_000, "900 megapixels"), (12_000, 9_000, "108 megapixels")])
def test_a_picture_over_the_pixel_limit_is_told_the_limit_it_must_go_below(tmp_path: Path, width: int, height: int,
                                                                            said: str) -> None:
    """The wizard's preview (load_rgb) quoted Pillow: 'exceeds limit of 178956970 pixels, could be decompression bomb
    DOS attack' past twice the limit, and an image resized below that was refused again at 89 MP."""
    from dataset_fixture import _bomb_png

    from engine.data.images import DataError

    path = tmp_path / "giant.png"
    _bomb_png(path, width, height)
    for read in (load_rgb, image_size):
        with pytest.raises(DataError) as refused:
            read(path)
        assert f"{said}, over the 89 MP limit" in str(refused.value) and "178956970" not in str(refused.value)


def test_a_picture_just_over_the_pixel_limit_is_told_a_figure_over_it(tmp_path: Path) -> None:
    """10940×8180 read "89 megapixels, over the 89 MP limit": both rounded to whole megapixels, the picture did not
    look over the limit, nor say how far to shrink it. The preview and the dataset doctor say it alike."""
    from dataset_fixture import _bomb_png

    from engine.data.images import DataError
    from engine.dataset.image_probe import probe_image

    path = tmp_path / "just-over.png"
    _bomb_png(path, 10_940, 8_180)
    said = "89.49 megapixels, over the 89.48 MP limit"
    for read in (load_rgb, image_size):
        with pytest.raises(DataError) as refused:
            read(path)
        assert said in str(refused.value)
    assert probe_image(path).reason == f"10940×8180 is {said}"
