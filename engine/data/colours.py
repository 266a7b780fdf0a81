"""Pictures brought to the 8-bit sRGB that training reads: embedded colour profiles applied, transparency flattened,
wide greys (16-bit, 32-bit, floating point) scaled rather than clipped."""

from __future__ import annotations


# Modes whose values Pillow's convert() clips to 8 bits instead of scaling: 16- and 32-bit integers, 32-bit floats.
WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def wide_grey_to_8_bits(image):
    """An "L" image of a wide grey one, scaled, not clipped (convert("L") turns 16-bit grey white and 0-1 floats
    black). 16-bit integers lose their low byte; 32-bit ones ("I") are read by their brightest: up to 255 as they are,
    up to 65535 as 16-bit ones, brighter ones scale by their peak; floats in 0-1 (as image tools store them) scale by
    255, floats in 0-255 are taken as they are, brighter ones scale by their peak. Negative values are black. Written
    here because Pillow has no scaling conversion."""
    import numpy as np
    from PIL import Image

    if image.mode == "I":
        # The container says nothing of the range used: a numpy array of 0-255 saved as int32, a camera's 16-bit
        # levels, or the full range (shifted by 8 bits, the first was black and the last white).
        values = np.asarray(image, dtype=np.int64).clip(0, None)
        peak = int(values.max(initial=0))
        scaled = values if peak <= 255 else values >> 8 if peak <= 65535 else values * 255 // peak
        return Image.fromarray(scaled.astype(np.uint8))
    if image.mode != "F":
        return Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(0, None)
    peak = float(values.max(initial=0.0))
    # 0-1 as most tools store them; 0-255 as some do; anything brighter (HDR) by its peak, as no tone map is known.
    scale = 255.0 if peak <= 1.0 else 1.0 if peak <= 255.0 else 255.0 / peak
    return Image.fromarray((values * scale).round().clip(0, 255).astype(np.uint8))


# The colour space an embedded profile must describe for each mode it can be applied to.
_PROFILE_SPACES = {"RGB": "RGB", "RGBA": "RGB", "P": "RGB", "PA": "RGB", "CMYK": "CMYK", "L": "GRAY", "LA": "GRAY",
                   "LAB": "LAB"}


def usable_profile(image):
    """``image``'s embedded ICC profile when it describes the image's colours (not sRGB, whose numbers are already
    what training reads); None without one, or with one that is unreadable or of another colour space."""
    import io

    from PIL import ImageCms

    icc = image.info.get("icc_profile")
    space = _PROFILE_SPACES.get(image.mode)
    if not icc or space is None:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        described = profile.profile.xcolor_space.strip()
        is_srgb = "srgb" in (ImageCms.getProfileDescription(profile) or "").lower().replace(" ", "")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a damaged profile: the colours as stored, as most viewers then show them
    return profile if described == space and not is_srgb else None


def in_srgb(image):
    """``image`` with its embedded colour profile applied (a phone's Display P3, a print file's Adobe RGB or CMYK),
    as browsers and viewers show it; an image without one it can use (``usable_profile``) as stored. Palette and
    transparent images go through RGBA first, so that their transparency stays."""
    from PIL import ImageCms

    profile = usable_profile(image)
    if profile is None:
        return image
    if image.mode in ("P", "PA") or (image.mode == "RGB" and "transparency" in image.info):
        image = image.convert("RGBA")  # the transparency as alpha, which the profile's transform carries
    elif image.mode == "LA" or "transparency" in image.info:
        return image  # grey with transparency (rare): shown as stored, its transparency kept
    try:
        return ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"),
                                         outputMode="RGBA" if image.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image


def to_rgb(image, background: tuple[int, int, int]):
    """8-bit sRGB; an embedded colour profile is applied (``in_srgb``), transparency (an alpha channel or a
    transparent colour) flattened on ``background``, wide greys scaled to 8 bits (``wide_grey_to_8_bits``).
    Training, prepare and auto-captioning all convert through here."""
    import numpy as np
    from PIL import Image

    if image.mode in WIDE_GREY_MODES:
        grey = wide_grey_to_8_bits(image).convert("RGB")
        if "transparency" not in image.info:
            return grey
        opaque = np.asarray(image) != image.info["transparency"]
        flat = Image.new("RGB", image.size, background)
        flat.paste(grey, mask=Image.fromarray(opaque.astype(np.uint8) * 255))
        return flat
    image = in_srgb(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
