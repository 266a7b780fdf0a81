"""Images whose pixels are not plain 8-bit sRGB train as they look: colour profiles, float and 16-bit greys, LAB."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from engine.data.images import load_rgb
from engine.dataset import prepare_dataset
from engine.dataset.checks import BLUR_THRESHOLD
from engine.dataset.image_probe import probe_image


# Hand-written: no ICC profile other than sRGB ships with Pillow or on this machine, and tests need others.
D50 = (0.9642, 1.0, 0.8249)  # the profile connection space's white
SRGB_PRIMARIES = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))  # XYZ of R, G, B


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _icc(kind: bytes, name: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2 profile: ``kind`` the device class and colour space ("mntrRGB "), a description, a D50 white, ``tags``."""
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + b"\0" + bytes(11) + bytes(67)
    tags = [(b"desc", desc), (b"wtpt", _xyz(*D50)), *tags]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + kind + b"XYZ "
              + bytes(12) + b"acsp" + bytes(28) + b"".join(_s15(v) for v in D50) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def linear_rgb_profile() -> bytes:
    """A display profile: sRGB's primaries with a linear curve, so 128 stored is 188 in sRGB."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100)
    primaries = [(signature, _xyz(*xyz)) for signature, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), SRGB_PRIMARIES)]
    return _icc(b"mntrRGB ", b"linear test RGB", primaries + [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)])


def cmyk_profile() -> bytes:
    """A CMYK profile (a 2-point lut16 to XYZ): each ink takes its share of linear light, so 50 % black is 188 in
    sRGB, where a conversion that ignores the profile gives 127."""
    clut = b""
    for c, m, y, k in itertools.product((0, 1), repeat=4):
        light = ((1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k))
        for axis in range(3):
            xyz = sum(primary[axis] * share for primary, share in zip(SRGB_PRIMARIES, light))
            clut += struct.pack(">H", min(65535, round(xyz * 32768)))  # the PCS's 1.0 is 32768 of 65535 in a lut16
    ends = struct.pack(">HH", 0, 65535)
    lut = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + b"".join(_s15(x) for x in (1, 0, 0, 0, 1, 0, 0, 0, 1))
           + struct.pack(">HH", 2, 2) + ends * 4 + clut + ends * 3)
    return _icc(b"prtrCMYK", b"test CMYK", [(b"A2B0", lut)])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_embedded_colour_profile_is_applied(tmp_path: Path, suffix: str) -> None:
    """A phone's Display P3 or a print file's Adobe RGB photo trained with its numbers read as sRGB: dull or shifted."""
    path = tmp_path / f"tagged{suffix}"
    Image.new("RGB", (32, 32), (128, 128, 128)).save(path, icc_profile=linear_rgb_profile(), quality=100)
    assert np.asarray(load_rgb(path))[0, 0].tolist() == [188, 188, 188]
    prepared = prepare_dataset(tmp_path, tmp_path / "out", resolution=32)
    with Image.open(prepared.written[0]) as copy:
        assert copy.getpixel((0, 0)) == (188, 188, 188)


def test_a_profile_keeps_transparency_and_a_damaged_profile_is_ignored(tmp_path: Path) -> None:
    with_alpha = Image.new("RGBA", (16, 16), (128, 128, 128, 255))
    with_alpha.putpixel((0, 0), (0, 0, 0, 0))
    with_alpha.save(tmp_path / "alpha.png", icc_profile=linear_rgb_profile())
    pixels = np.asarray(load_rgb(tmp_path / "alpha.png"))
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[1, 1].tolist() == [188, 188, 188]
    # A transparent colour (tRNS), and a palette: the profile applied, the transparency still flattened.
    keyed = Image.new("RGB", (16, 16), (128, 128, 128))
    keyed.putpixel((0, 0), (0, 0, 0))
    keyed.save(tmp_path / "keyed.png", icc_profile=linear_rgb_profile(), transparency=(0, 0, 0))
    palette = keyed.convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    palette.save(tmp_path / "palette.png", icc_profile=linear_rgb_profile(), transparency=palette.getpixel((0, 0)))
    for name in ("keyed.png", "palette.png"):
        pixels = np.asarray(load_rgb(tmp_path / name))
        assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[1, 1].tolist() == [188, 188, 188], name
    Image.new("RGB", (16, 16), (128, 128, 128)).save(tmp_path / "damaged.png", icc_profile=b"not a profile")
    assert np.asarray(load_rgb(tmp_path / "damaged.png"))[0, 0].tolist() == [128, 128, 128]


def test_a_float_tiff_trains_at_its_brightness_not_black(tmp_path: Path) -> None:
    ramp = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    Image.fromarray(ramp, mode="F").save(tmp_path / "float.tif")
    assert np.asarray(load_rgb(tmp_path / "float.tif")).mean() == pytest.approx(127.5, abs=0.5)
    Image.fromarray(ramp * 255, mode="F").save(tmp_path / "float255.tif")  # some tools store 0-255
    assert np.asarray(load_rgb(tmp_path / "float255.tif")).mean() == pytest.approx(127.5, abs=0.5)
    checks = np.indices((64, 64)).sum(axis=0) % 2  # a sharp pattern the doctor read as near-black, so "blurry"
    Image.fromarray(checks.astype(np.float32), mode="F").save(tmp_path / "checks.tif")
    probe = probe_image(str(tmp_path / "checks.tif"))
    assert probe.ok and probe.sharpness > BLUR_THRESHOLD


def test_a_lab_tiff_is_read_in_colour_not_called_damaged(tmp_path: Path) -> None:
    Image.new("LAB", (16, 16), (140, 200, 128)).save(tmp_path / "lab.tif")  # a clear red
    probe = probe_image(str(tmp_path / "lab.tif"))
    assert probe.ok, probe.reason
    red, green, blue = np.asarray(load_rgb(tmp_path / "lab.tif"))[0, 0].tolist()
    assert red > 200 and green < 100


def test_a_16_bit_grey_with_a_transparent_value_is_flattened_where_transparent(tmp_path: Path) -> None:
    grey = np.full((16, 16), 40000, np.uint16)
    grey[:8] = 0  # the transparent value
    Image.fromarray(grey).save(tmp_path / "grey16.png", transparency=0)
    pixels = np.asarray(load_rgb(tmp_path / "grey16.png"))
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[15, 0].tolist() == [156, 156, 156]


def test_a_cmyk_image_is_read_through_its_profile_and_the_doctor_warns_only_without_one(tmp_path: Path) -> None:
    from engine.dataset import check_dataset

    for name, profile in (("bare.tif", None), ("tagged.tif", cmyk_profile()), ("mistagged.tif", linear_rgb_profile())):
        Image.new("CMYK", (64, 64), (0, 0, 0, 128)).save(tmp_path / name, **({"icc_profile": profile} if profile else {}))
    assert np.asarray(load_rgb(tmp_path / "tagged.tif"))[0, 0].tolist() == pytest.approx([188] * 3, abs=2)
    assert np.asarray(load_rgb(tmp_path / "bare.tif"))[0, 0].tolist() == [127, 127, 127]
    assert np.asarray(load_rgb(tmp_path / "mistagged.tif"))[0, 0].tolist() == [127, 127, 127]  # an RGB profile: unusable
    report = check_dataset(tmp_path, resolution=64, workers=1)
    found = {Path(f.path).name: f for f in report.findings if f.code == "color_mode"}
    assert found["bare.tif"].severity == "warning" and "without a colour profile" in found["bare.tif"].message
    assert found["mistagged.tif"].severity == "warning"
    assert found["tagged.tif"].severity == "info" and "converted to sRGB" in found["tagged.tif"].fix


def test_the_warning_on_a_float_tiff_says_it_is_scaled_as_prepare_scales_it(tmp_path: Path) -> None:
    """A 0-1 float TIFF was said to lose all but "the top 8" bits, yet prepare spreads 0-1 over 0-255."""
    from engine.dataset import check_dataset

    Image.fromarray(np.full((64, 64), 0.5, np.float32), mode="F").save(tmp_path / "float.tif")
    assert np.asarray(load_rgb(tmp_path / "float.tif"))[0, 0].tolist() == [128, 128, 128]  # scaled, not cut
    [found] = [f for f in check_dataset(tmp_path, resolution=64, workers=1).findings if f.code == "color_mode"]
    assert "scales them to 8 bits (0–1 as black to white" in found.message and "top 8" not in found.message


@pytest.mark.parametrize(("peak", "read"), [(100, [100, 50]), (255, [255, 127]), (40000, [156, 78]),
                                            (65535, [255, 127]), (2**31 - 1, [255, 127])])
def test_a_32_bit_integer_tiff_is_read_by_its_range_as_its_warning_says(tmp_path: Path, peak: int,
                                                                      read: list[int]) -> None:
    """Said to keep "only the top 8" bits, a 32-bit integer TIFF was shifted by 8 bits: 0-255 (a numpy int array saved
    as it was) trained black, and values over 65535 white."""
    from engine.dataset import check_dataset

    values = np.zeros((64, 64), np.int32)
    values[0, 0], values[0, 1], values[1, 0] = peak, peak // 2, -5
    Image.fromarray(values).save(tmp_path / "int.tif")
    pixels = np.asarray(load_rgb(tmp_path / "int.tif"))[:2, :2, 0]
    assert pixels.tolist() == [read, [0, 0]]  # a negative value is black
    [found] = [f for f in check_dataset(tmp_path, resolution=64, workers=1).findings if f.code == "color_mode"]
    assert "32-bit integer values" in found.message and "by their range (up to 255 as they are" in found.message


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_heic_and_avif_photos_are_found_checked_and_read(tmp_path: Path, suffix: str) -> None:
    """An iPhone's photos are HEIC: the doctor said the folder had no images at all."""
    from engine.data.images import list_images
    from engine.dataset import check_dataset

    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / f"photo{suffix}", quality=95)
    assert list_images(tmp_path) == [tmp_path / f"photo{suffix}"]
    report = check_dataset(tmp_path, resolution=32, workers=1)
    assert not [f for f in report.findings if f.severity == "error"], report.findings
    red, green, blue = np.asarray(load_rgb(tmp_path / f"photo{suffix}"))[24, 32].tolist()
    assert red > 170 and green < 70 and blue < 70


def test_a_damaged_heic_is_called_damaged_and_one_this_python_cannot_read_says_what_to_install(tmp_path: Path,
                                                                                            monkeypatch) -> None:
    damaged = tmp_path / "cut.heic"
    damaged.write_bytes(b"\0\0\0\x18ftypheic" + bytes(40))
    assert probe_image(str(damaged)).reason == "it is a damaged HEIC file (its header cannot be read)"
    monkeypatch.delitem(Image.OPEN, "HEIF")  # a Python without pillow-heif (a bare GPU image)
    monkeypatch.setattr(Image, "ID", [name for name in Image.ID if name != "HEIF"])
    assert "`pip install pillow-heif`" in probe_image(str(damaged)).reason


def _damaged_avif(path: Path, box: bytes, offset: int, byte: int) -> Path:
    """A real AVIF with one byte of ``box`` changed, as a bad download or disk leaves it."""
    pixels = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path.with_suffix(".tmp.avif"))
    data = bytearray(path.with_suffix(".tmp.avif").read_bytes())
    path.with_suffix(".tmp.avif").unlink()
    data[data.index(box) + offset] = byte
    path.write_bytes(bytes(data))
    return path


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow reads no AVIF")
def test_a_damaged_avif_stops_the_run_with_its_name_not_a_runtime_error(tmp_path: Path) -> None:
    """Pillow's AVIF reader raises RuntimeError on damaged data: the doctor named the file, the run failed with
    "RuntimeError: Failed to decode image …, this is a bug in dbtui" (at its start, or mid-caching)."""
    from engine.data.examples import build_examples
    from engine.data.images import DataError, image_size
    from tests.training_helpers import tiny_profile

    Image.new("RGB", (64, 64), (0, 90, 200)).save(tmp_path / "good.png")
    no_item = _damaged_avif(tmp_path / "no_item.avif", b"infe", 9, 0x3D)  # its item id no longer the primary one
    bad_colours = _damaged_avif(tmp_path / "bad_colours.avif", b"nclx", 8, 0xCA)  # colour matrix out of range
    for path in (no_item, bad_colours):
        assert probe_image(str(path)).error == "unreadable"
        with pytest.raises(DataError, match=f"cannot read image '{path}'"):
            image_size(path) if path == no_item else load_rgb(path)
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(tmp_path), "instance_prompt": "zwx"}])
    with pytest.raises(DataError, match="1 image file\\(s\\) cannot be read as pictures: .*no_item.avif"):
        build_examples(profile, [tmp_path], {}, [(64, 64)])


def _float_rgb_tiff(path: Path, width: int = 8, height: int = 4) -> None:
    """An uncompressed TIFF of three 32-bit float samples a pixel (an HDR export), which Pillow does not read."""
    pixels = np.ones((height, width, 3), "<f4").tobytes()
    tags = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, 0), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 0),
            (277, 3, 1, 3), (278, 3, 1, height), (279, 4, 1, len(pixels)), (339, 3, 3, 0)]
    arrays = 8 + 2 + 12 * len(tags) + 4  # where BitsPerSample's and SampleFormat's three values go
    values = {258: arrays, 339: arrays + 6, 273: arrays + 12}
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + (struct.pack("<I", values[tag]) if tag in values else
                                                 struct.pack("<HH" if kind == 3 else "<I", value, *([0] if kind == 3 else [])))
        for tag, kind, count, value in tags)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + struct.pack("<6H", 32, 32, 32, 3, 3, 3)
                     + pixels)


def test_a_tiff_of_a_kind_pillow_does_not_read_is_not_called_damaged(tmp_path: Path) -> None:
    """A 32-bit float colour TIFF was "a damaged TIFF file (its header cannot be read)": the user would copy it again,
    to the same refusal, where exporting it otherwise is what helps."""
    _float_rgb_tiff(tmp_path / "hdr.tif")
    reason = probe_image(str(tmp_path / "hdr.tif")).reason
    assert "damaged" not in reason and "3 samples of 32-bit floating point" in reason and "export it as" in reason
    (tmp_path / "cut.tif").write_bytes(b"II*\x00\x08\x00\x00\x00\xff\xff")
    assert probe_image(str(tmp_path / "cut.tif")).reason == "it is a damaged TIFF file (its header cannot be read)"
