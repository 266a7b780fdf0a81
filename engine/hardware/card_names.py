"""Rental GPUs by name: the memory each is sold with, so `--card H100` judges an estimate as `--card 80` does.

Written by hand: no library here lists cards' memory (NVML reads only the cards in this machine). Sizes are the
makers' published ones; a model sold in several sizes (the A100 in 40 and 80 GB) is named with its size.
"""

from __future__ import annotations

import re

from engine.errors import DbtuiError

# Names as users type them, folded by ``_folded``: lower case, without "nvidia", "geforce", "rtx", "gtx", "tesla",
# the form factor (SXM, PCIe: one memory for both, or a size to give for both) or separators.
CARD_GB: dict[str, float] = {
    "t4": 16, "l4": 24, "a10": 24, "a10g": 24, "a40": 48, "l40": 48, "l40s": 48, "a4000": 16, "a4500": 20,
    "a5000": 24, "a6000": 48, "6000ada": 48, "h100": 80, "h100nvl": 94, "h200": 141, "b200": 180,
    "2080ti": 11, "3070": 8, "3080ti": 12, "3090": 24, "3090ti": 24, "4060": 8, "4070": 12, "4070ti": 12,
    "4080": 16, "4080super": 16, "4090": 24, "5080": 16, "5090": 32,
    # Older and in-between cards: a model number left out here was read as that many GB ("--card 2080": 2080 GB).
    "1070": 8, "1070ti": 8, "1080": 8, "1080ti": 11, "1660": 6, "1660super": 6, "1660ti": 6, "2060super": 8,
    "2070": 8, "2070super": 8, "2080": 8, "2080super": 8, "titanrtx": 24, "3060ti": 8, "3070ti": 8,
    "4070super": 12, "4070tisuper": 16, "5060": 8, "5070": 12, "5070ti": 16,
    "quadro4000": 8, "quadro5000": 16, "quadro6000": 24, "quadro8000": 48, "8000": 48, "4000ada": 20, "5000ada": 32,
}
# Data-center cards with GDDR memory keep ECC on, which takes a sixteenth of it: CUDA reports a T4 of 16 GB as 14.7 GiB
# (nvidia-smi 15360 MiB), an A10G of 24 as 22.1 (an L4 or A10 alike: 23034 MiB), an L40S of 48 as 44.5. These read as that
# size rounded, as `dbtui hardware` on the card itself judges it: `--card T4` was judged as 16 GB and recommended SD's
# `full` (15.1 GB in fp16), which the T4's own advice (15 GB) did not, and which does not fit its 14.7 GiB.
REPORTED_GB: dict[str, float] = {"t4": 15, "l4": 22, "a10": 22, "a10g": 22, "a40": 45, "l40": 45, "l40s": 45}
# Sold in several sizes: the name alone does not say which.
SIZES_OF: dict[str, tuple[float, ...]] = {"a100": (40, 80), "v100": (16, 32), "3080": (10, 12), "4060ti": (8, 16),
                                          "3060": (8, 12), "p100": (12, 16),
                                          "2060": (6, 12), "3050": (6, 8), "5060ti": (8, 16)}
# "RTX 4000" without "Quadro" or "Ada" is the Quadro (Turing, no bf16) as Paperspace rents it, or the Ada card (bf16):
# the size tells which ("RTX 6000 48GB" is the Ada card or the A6000, both bf16), as a name alone or another size cannot.
BARE_RTX: dict[str, tuple[str, str]] = {"4000": ("Quadro RTX 4000", "RTX 4000 Ada"),
                                        "5000": ("Quadro RTX 5000", "RTX 5000 Ada"),
                                        "6000": ("Quadro RTX 6000", "RTX 6000 Ada")}
# "Quadro 6000" without "RTX" is also the name of a Fermi card of 2010 (its GB here), which no PyTorch of today runs on:
# folded as the Quadro RTX 6000 (Turing, 24 GB) is, it was judged as that card.
FERMI_QUADRO: dict[str, float] = {"quadro4000": 2, "quadro5000": 2.5, "quadro6000": 6}

# Named cards made before Ampere, which have no bf16: they train the bf16 presets in fp16, without the memory savers
# (sdxl-full then needs 23.4 GB, not 14.5), so a T4 is advised as one.
NO_BF16 = {"t4", "v100", "p100", "p40", "p4", "k80", "m40", "m60", "titanrtx", "titanv", "titanxp", "titanx",
           "2060", "2060super", "2070", "2070super", "2080", "2080super", "2080ti",
           "1050", "1050ti", "1060", "1070", "1070ti", "1080", "1080ti", "1650", "1650super", "1660", "1660super", "1660ti",
           # Quadro RTX (Turing; "rtx" folded away), Pascal and Volta workstation cards, which clouds rent by these names.
           "quadro4000", "quadro5000", "quadro6000", "quadro8000", "quadrop2000", "quadrop2200", "quadrop4000",
           "quadrop5000", "quadrop6000", "quadrogp100", "quadrogv100", "quadrom4000", "quadrom5000", "quadrom6000",
           # The same as Paperspace names them, without "Quadro": "P5000", "M4000", "RTX5000" (BARE_RTX, by its size).
           "8000", "p2000", "p4000", "p5000", "p6000", "gp100", "gv100", "m4000", "m5000",
           "m6000"}


def smallest_card_gb(need_gb: float) -> float | None:
    """The smallest size a card with bf16 is sold with that holds ``need_gb``, to name where a card is too small; None
    above every one. Cards that CUDA reports smaller than sold (``REPORTED_GB``) are left out: "a card of 24 GB or more"
    read as an L4's 24, which holds 22."""
    sizes = {gb for name, gb in CARD_GB.items() if name not in NO_BF16 and name not in REPORTED_GB}
    sizes |= {gb for name, sold in SIZES_OF.items() if name not in NO_BF16 for gb in sold}
    return min((gb for gb in sizes if gb >= need_gb), default=None)


class UnknownCardError(DbtuiError, ValueError):
    """A card named that is not known here, or that is sold in several sizes."""


def _folded(name: str) -> str:
    # Separators go first: the Titan RTX keeps its "rtx" ("titan" alone is several cards).
    return re.sub(r"nvidia|geforce|(?<!titan)rtx|gtx|tesla|sxm\d?|pcie", "", re.sub(r"[\s_-]", "", name.lower()))


def is_card_name(text: str) -> bool:
    """Whether ``text`` names a card known here, sized or not: "4090" is a card, not 4090 GB."""
    return _folded(text) in CARD_GB or _folded(text) in SIZES_OF or _folded(text) in BARE_RTX


def _bare_rtx_card(name: str, folded: str, size: float | None) -> str:
    """The folded name of the card that the bare "RTX 4000" ``folded`` of ``size`` GB is."""
    for full in BARE_RTX[folded]:
        if size == CARD_GB[_folded(full)]:
            return _folded(full)
    quadro, ada = BARE_RTX[folded]
    raise UnknownCardError(f"'{name.strip()}' names two cards: the {quadro} ({CARD_GB[_folded(quadro)]:g} GB, no bf16) "
                           f"and the {ada} ({CARD_GB[_folded(ada)]:g} GB): give the full name, e.g. '{quadro}' or "
                           f"'{ada}' (or 'RTX A{folded}')")


def card_gb_by_name(name: str) -> float:
    """The memory, in GB as sold (as CUDA reports it for ``REPORTED_GB``'s), of the card ``name`` ("H100", "RTX 4090",
    "A100-80GB", "nvidia a10g")."""
    # "A100-80GB", "H100 80GB HBM3": the size the name gives, apart from its model number ("A10G" is none).
    sized = re.search(r"(?<=[\s_-])(\d+(?:\.\d+)?)\s*(?:gib|gb|g)\b", name, flags=re.IGNORECASE)
    if sized and re.search(r"[a-z0-9]", name[:sized.start()], flags=re.IGNORECASE):
        card = _folded(name[:sized.start()])
        if card in BARE_RTX:
            _bare_rtx_card(name, card, float(sized.group(1)))
        if card in REPORTED_GB and float(sized.group(1)) == CARD_GB[card]:
            return REPORTED_GB[card]  # "T4 16GB" is the T4
        return float(sized.group(1))
    folded = _folded(name)
    if folded in BARE_RTX:
        _bare_rtx_card(name, folded, None)
    if folded in FERMI_QUADRO and not re.search("rtx", name, flags=re.IGNORECASE):
        turing = f"Quadro RTX {folded.removeprefix('quadro')}"
        raise UnknownCardError(f"'{name.strip()}' is the Fermi card of 2010 ({FERMI_QUADRO[folded]:g} GB, no bf16), which "
                               f"no PyTorch of today trains on, or the {turing} ({CARD_GB[folded]:g} GB, no bf16) "
                               f"named short: give '{turing}' for that one")
    if folded in CARD_GB:
        return REPORTED_GB.get(folded, CARD_GB[folded])
    if folded in SIZES_OF:
        sizes = " or ".join(f"{size:g}" for size in SIZES_OF[folded])
        largest = f"{SIZES_OF[folded][-1]:g}"
        raise UnknownCardError(f"'{name}' is sold with {sizes} GB: give the size, e.g. {largest} or '{name.strip()} "
                               f"{largest}GB'")
    raise UnknownCardError(f"'{name}' is not a card size or a card known here: give its memory in GB, e.g. 24 or 80 "
                           "(cards known by name: H100, H200, A100-80GB, L40S, A6000, RTX 4090, L4, T4 and others)")


def has_bf16(name: str) -> bool:
    """Whether the card ``name`` has bf16; True for a size alone ("16"), which names no card."""
    sized = re.search(r"(?<=[\s_-])(\d+(?:\.\d+)?)\s*(?:gib|gb|g)\b", name, flags=re.IGNORECASE)
    folded = _folded(name[:sized.start()] if sized else name)
    if folded in BARE_RTX and sized:
        folded = _bare_rtx_card(name, folded, float(sized.group(1)))
    return folded not in NO_BF16
