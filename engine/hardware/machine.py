"""What this machine can train with: GPUs, memory, libraries. Imports torch: call it lazily."""

from __future__ import annotations

import importlib.util
import platform
import shutil
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from engine.memory.preset_table import BASE_RESOLUTION, ROW_SETS, base_family, measured_at, measured_sizes

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.memory.estimate import MemoryEstimate


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_mb: float
    free_mb: float | None
    compute_capability: str
    bf16: bool


@dataclass(frozen=True)
class Hardware:
    gpus: list[Gpu] = field(default_factory=list)
    torch: str = ""
    cuda: str | None = None
    driver: str | None = None
    bitsandbytes: bool = False
    """bitsandbytes is installed (found, not imported: importing it costs start-up time and, without
    CUDA, logs a CPU-kernel notice). The 8-bit optimizer imports it, and says so if it cannot load."""
    xformers: bool = False
    ram_total_mb: float = 0.0
    ram_available_mb: float = 0.0
    disk_free_mb: float = 0.0
    disk_path: str = ""  # where disk_free_mb was measured: the output folder, or its nearest parent that exists
    python: str = platform.python_version()
    # The card's memory as sold where the user gave it (a card to rent, `--card 7.6`); None: read from the GPU,
    # whose reported size rounds to the nominal one (``_nominal_gb``).
    sold_gb: float | None = None

    @property
    def vram_mb(self) -> float:
        return max((g.total_mb for g in self.gpus), default=0.0)

    def to_dict(self) -> dict:
        return asdict(self)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _installed(package: str) -> bool:
    """The distribution is installed and its module can be found, without importing it."""
    return _version(package) is not None and importlib.util.find_spec(package) is not None


def _driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else version
    except Exception:  # noqa: BLE001 - NVML is missing on machines without an NVIDIA driver
        return None


def _free_mb(uuid: str) -> float | None:
    """Free memory of the GPU with this CUDA UUID, from NVML. Asking CUDA (torch.cuda.mem_get_info)
    would create a context on that GPU, hundreds of MB held on every GPU by every process that probes."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")).free / 2**20
    except Exception:  # noqa: BLE001 - no NVML, or a device it names otherwise (MIG): free memory unknown
        return None


def probe(path: str | Path = ".") -> Hardware:
    """Probe GPUs, libraries, RAM and free disk at ``path`` (or its nearest existing parent)."""
    import psutil
    import torch

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append(Gpu(index, props.name, props.total_memory / 2**20, _free_mb(str(props.uuid)),
                            f"{props.major}.{props.minor}", props.major >= 8))
    target = Path(path).resolve()
    while not target.exists():
        target = target.parent
    memory = psutil.virtual_memory()
    return Hardware(
        gpus=gpus,
        torch=torch.__version__,
        cuda=torch.version.cuda,
        driver=_driver(),
        bitsandbytes=_installed("bitsandbytes"),
        xformers=_version("xformers") is not None and bool(gpus),
        ram_total_mb=memory.total / 2**20,
        ram_available_mb=memory.available / 2**20,
        disk_free_mb=shutil.disk_usage(target).free / 2**20,
        disk_path=str(target),
    )


# Cards are sold by their nominal size but report a little less (a 24 GB RTX 4090 reads 23.99 GiB,
# a 12 GB RTX 4070 11.99 GiB), so an SDXL tier counts a card within this margin as that size.
_NOMINAL_MARGIN_GB = 0.5
# Which preset fits a card is the memory meter's call, from its stored table (what `dbtui hardware` prints
# under the advice), so the two cannot disagree; a tier's card size below is used only for a preset the
# table lacks. Published anchors (sd-scripts, batch 1 at 1024 px): an SDXL LoRA needs 8 GB at least, 10 GB
# is recommended (below it the advice says "tightly"); its full fine-tune takes about 17 GB with the
# optimizer step fused into the backward pass and Adafactor, which dbtui's sdxl-full does with fp32 weights
# (the meter: 14.5 GB on the card; 23.4 GB without bf16, hence without the fused step).
# Each verdict's last words where there is no GPU: the wizard, which has its own way into the demo, leaves them out.
DEMO_TIP = "Try `dbtui demo` to see everything work."
SDXL_LORA_MIN_GB = 8
SDXL_LORA_RECOMMENDED_GB = 10
SDXL_FULL_GB = 24
# sdxl-full with training.train_text_encoder = true (the encoders' 0.8 B parameters trained too), by the memory
# meter as the table's rows are measured (preset_table.preset_profile with prior preservation): no preset, so not
# in the table. By bf16 on the GPU: with it, and in fp16 (no fused step) without it.
SDXL_FULL_TEXT_ENCODERS_GB = {True: 18.2, False: 30.0}


def verdict(hw: Hardware, family: str = "sd", prior: bool = True) -> tuple[str, str]:
    """(a sentence on what this machine can do for a model ``family``, the recommended preset name), its presets judged
    with prior preservation unless ``prior`` is False (a profile without it: a 16 GB card was told flux-lora-16gb for
    a profile whose own flux-lora-24gb needs 12.4 GB without it).

    ``family`` is a family id of engine/models ("sd" for SD1.x/SD2.x, "sdxl", "flux"), or "sd2" for an SD2.x model, whose
    presets' figures are SD2.1-base's (see ``engine.model_info.advice_family``), or one of those with the size its
    rows were measured at, "sd-1024", "sd2-768", for a draft trained above 512 px (``sized_family``).
    """
    if family not in _VERDICTS:
        raise ValueError(f"no hardware advice for model family {family!r}; known: {', '.join(_VERDICTS)}")
    return _VERDICTS[family](hw, prior=prior)


# SD1.x/SD2.x tiers, largest first: (preset, its card where the meter's table lacks it, what fits). The largest
# preset whose stored estimate fits the card as it trains there is recommended (a GPU without bf16 trains the
# bf16 presets in fp16, with neither bf16 weights nor the fused step). "{te}": the text encoder's tier's need.
_SD_TIERS = (
    ("full-text-encoder", 24, "full fine-tune with text-encoder training."),
    ("full", 16, "full fine-tune; training the text encoder too needs {te}."),
    ("full-8bit", 8, "full fine-tune with 8-bit Adam, bf16 weights, the optimizer step fused into the backward pass, "
                     "gradient checkpointing and cached latents."),
    ("lora", 0, "LoRA training fits; full fine-tuning does not."),
)
# full-8bit as a GPU without bf16 trains it.
_SD_FULL_8BIT_FP16 = ("full fine-tune with 8-bit Adam, gradient checkpointing and cached latents; this GPU has no bf16, "
                      "so it trains in fp16, keeping fp32 weights and a plain optimizer step.")
# The presets each family's advice recommends, smallest first (dbtui hardware lists their estimates); SD1.x's and
# SD2.x's are judged by their figures at the draft's size, on SD1.5, SD2.1-base or SD2.1-v (engine.memory.preset_table.ROW_SETS).
_SD_PRESETS = tuple(preset for preset, _, _ in reversed(_SD_TIERS))
FAMILY_PRESETS = {"sd": _SD_PRESETS, **dict.fromkeys(ROW_SETS, _SD_PRESETS), "sdxl": ("sdxl-lora", "sdxl-full"),
                  "flux": ("flux-lora-16gb", "flux-lora-24gb")}


def _sd_model_said(family: str) -> str:
    """What the SD verdict says of the model beside the card: ", SD2.x at 768 px"; nothing for SD1.x at 512 px."""
    base, size = base_family(family), measured_at(family)
    model = ", SD2.x" if base == "sd2" else "" if size == BASE_RESOLUTION else ", SD1.x"
    return model + (f" at {size} px" if size != BASE_RESOLUTION else "")


def sized_family(family: str, resolution: int | None) -> str:
    """The advice family for a model of advice family ``family`` trained at ``resolution`` px (None: as given): the SD
    presets keep a draft's size, so an SD draft is judged by their rows measured at the smallest size at or above its
    own (an SD1.5 draft at 1024 px was picked full-8bit for a 12 GB card by its figure at 512 px). Above every size
    measured, the largest's (``unmeasured_size`` says so, for the advice to say it and pick none)."""
    sizes = measured_sizes(base_family(family))
    if not sizes or resolution is None:
        return family
    return next((key for key, size in sizes.items() if size >= resolution), next(reversed(sizes)))


def unmeasured_size(family: str, resolution: int | None) -> int | None:
    """Where an SD draft of advice family ``family`` trains at ``resolution`` px, above every size its presets were
    measured at, the largest of those; None where a size at or above it was measured (or the presets set their own)."""
    sizes = measured_sizes(base_family(family))
    largest = max(sizes.values(), default=None)
    return largest if largest is not None and resolution is not None and resolution > largest else None


def unmeasured_text(largest: int, resolution: int) -> str:
    """Why no preset is picked for a draft at ``resolution`` px, where ``unmeasured_size`` is ``largest``: one text for
    `dbtui hardware`, the wizard's Hardware step and its Parameters note, each of which adds where to estimate its own."""
    return f"no preset was measured above {largest} px, and this trains at {resolution} px"


def _nominal_gb(hw: Hardware) -> float:
    """The card's size as sold: as given for a card to rent, else rounded, as cards report a little less (an 8 GB
    card 7.99 GiB). A given 7.6 GB card rounded to 8 held a preset that the table beside the advice said it did not."""
    return hw.sold_gb if hw.sold_gb is not None else round(hw.vram_mb / 1024)


def _meter_need(preset: str, hw: Hardware, *, family: str = "sd", prior: bool = True) -> MemoryEstimate | None:
    """The memory meter's stored estimate of ``preset`` as the first GPU trains it, in ``family``'s rows; None where it
    was never measured."""
    from engine.memory.preset_table import load_preset_estimates

    row = load_preset_estimates(family=family).get(preset)
    return None if row is None else row.need(hw.gpus[0].bf16, prior)


def _meter_fits(preset: str, hw: Hardware, unmeasured_gb: float = 0, *, family: str = "sd", prior: bool = True) -> bool:
    """Whether the preset's whole run (its step, caching pass and previews) fits the card by the meter, as `dbtui
    hardware`'s table judges it; a preset the table lacks fits a card of ``unmeasured_gb`` or more."""
    need = _meter_need(preset, hw, family=family, prior=prior)
    return _nominal_gb(hw) >= unmeasured_gb if need is None else need.fits(_nominal_gb(hw))


def _needs(preset: str, hw: Hardware, unmeasured_gb: float, *, family: str = "sd", prior: bool = True) -> str:
    """"14.5 GB by the memory meter", or the tier's card where the table lacks the preset."""
    need = _meter_need(preset, hw, family=family, prior=prior)
    return f"a {unmeasured_gb:g} GB card" if need is None else f"{_gb_beyond(need.run_need, hw)} GB by the memory meter"


def _gb_beyond(size: int, hw: Hardware) -> str:
    """``size`` bytes in GB beside the card (``gb_beside``): "too little ..., which needs about 11 GB" of an 11 GB card
    read as no more than it, where Flux's LoRA needs 11.03."""
    from engine.memory.estimate import gb_beside

    return gb_beside(size, (_nominal_gb(hw),))


def _larger_card(need: MemoryEstimate | None) -> str:
    """"use a card of 12 GB or more": the smallest size a card is sold with that holds ``need``'s whole run by the
    meter, where "use a larger card" left the user to guess which to rent."""
    from engine.hardware.card_names import smallest_card_gb
    from engine.memory.estimate import GIB

    card = None if need is None else smallest_card_gb(need.run_need / GIB)
    return "use a larger card" if card is None else f"use a card of {card:g} GB or more"


def _sd_verdict(hw: Hardware, *, family: str = "sd", prior: bool = True) -> tuple[str, str]:
    if not hw.gpus:
        return (f"No NVIDIA GPU found: training real models here would take days. {DEMO_TIP}", "cpu-demo")
    gpu = hw.gpus[0]
    about = f"{gpu.name} with {_nominal_gb(hw):g} GB{_sd_model_said(family)}"
    for preset, card_gb, what in _SD_TIERS:
        if _meter_fits(preset, hw, card_gb, family=family, prior=prior):
            break
    else:  # even the LoRA misses the card
        return (f"{about}: too little even for a LoRA, which needs {_needs(preset, hw, 0, family=family, prior=prior)} "
                f"({'with prior preservation and ' if prior else ''}previews); "
                f"{_larger_card(_meter_need(preset, hw, family=family, prior=prior))}.", preset)
    if preset == "full-8bit" and not gpu.bf16:
        what = _SD_FULL_8BIT_FP16
    te_preset, te_card, _ = _SD_TIERS[0]
    return f"{about}: {what.format(te=_needs(te_preset, hw, te_card, family=family, prior=prior))}", preset


def _sdxl_verdict(hw: Hardware, *, prior: bool = True) -> tuple[str, str]:
    if not hw.gpus:
        return (f"No NVIDIA GPU found: SDXL needs a GPU with at least {_smallest_card('sdxl-lora', SDXL_LORA_MIN_GB)} GB "
                f"even for a LoRA. {DEMO_TIP}", "cpu-demo")
    gpu = hw.gpus[0]
    vram = hw.vram_mb / 1024

    def fits(gb: int) -> bool:
        return vram >= gb - _NOMINAL_MARGIN_GB

    about = f"{gpu.name} with {_nominal_gb(hw):g} GB, SDXL at 1024 px:"
    full = f"a full fine-tune needs {_needs('sdxl-full', hw, SDXL_FULL_GB, prior=prior)}" + ("" if gpu.bf16 else " in fp16")
    full_fits = _meter_fits("sdxl-full", hw, SDXL_FULL_GB, prior=prior)
    if not _meter_fits("sdxl-lora", hw, SDXL_LORA_MIN_GB, prior=prior):
        sentence = (f"{about} too little even for a LoRA, which needs {_needs('sdxl-lora', hw, SDXL_LORA_MIN_GB, prior=prior)} "
                    f"({SDXL_LORA_RECOMMENDED_GB} GB recommended); train an SD1.5 model here, or "
                    f"{_larger_card(_meter_need('sdxl-lora', hw, prior=prior))}.")
    elif not full_fits and not fits(SDXL_LORA_RECOMMENDED_GB):
        sentence = (f"{about} a LoRA fits, tightly: keep gradient checkpointing, cached latents and 8-bit Adam, and lower "
                    f"the rank if memory runs out; {full}.")
    elif not full_fits:
        sentence = f"{about} a LoRA fits; {full}."
    else:
        how = ("Adafactor with its step fused into the backward pass, bf16" if gpu.bf16
               else "Adafactor with a full set of fp32 gradients, in fp16")
        encoders = SDXL_FULL_TEXT_ENCODERS_GB[gpu.bf16]
        sentence = f"{about} a full fine-tune fits ({how}, gradient checkpointing, cached latents)"
        sentence += (f"; training the text encoders too needs {encoders:.1f} GB by the memory meter."
                     if _nominal_gb(hw) < encoders else ", with room to train the text encoders too.")
    if not gpu.bf16:
        sentence += " This GPU has no bf16: the SDXL presets train in fp16 instead, with the VAE kept in fp32."
    return sentence, "sdxl-full" if full_fits else "sdxl-lora"


def _smallest_card(preset: str, unmeasured_gb: int) -> float:
    """The smallest card of the meter's table that holds ``preset`` with bf16; ``unmeasured_gb`` where it lacks it."""
    from engine.memory.estimate import CARD_SIZES_GB
    from engine.memory.preset_table import load_preset_estimates

    row = load_preset_estimates().get(preset)
    return next((card for card in CARD_SIZES_GB if row is not None and row.need().fits(card)), unmeasured_gb)
# Flux.1 LoRA presets, largest first: (preset, what it trains). Flux's 12 B-parameter transformer
# trains only as a LoRA on a quantized base on one card (a full fine-tune needs several 80 GB GPUs);
# which preset fits is the memory meter's call for the whole run, as for every family: the caching pass
# before the steps holds T5-XXL (9 GB) beside the transformer while the trainer caches the prompts.
_FLUX_TIERS = (
    ("flux-lora-24gb", "a LoRA on an NF4 base at Flux's native 1024 px fits"),
    ("flux-lora-16gb", "a LoRA on an NF4 base at 512 px fits"),
)


def _flux_verdict(hw: Hardware, *, prior: bool = True) -> tuple[str, str]:
    smallest = _FLUX_TIERS[-1][0]
    if not hw.gpus:
        return ("No NVIDIA GPU found: Flux.1 needs a large GPU even for a LoRA on a 4-bit base. "
                f"{DEMO_TIP}", "cpu-demo")
    gpu = hw.gpus[0]
    about = f"{gpu.name} with {_nominal_gb(hw):g} GB, Flux.1:"
    for preset, what in _FLUX_TIERS:
        if _meter_fits(preset, hw, prior=prior):
            sentence = f"{about} {what} (the 12 B transformer trains only as a LoRA on one card)."
            break
    else:
        need = _meter_need(smallest, hw, prior=prior)
        size = f"{_gb_beyond(need.run_need, hw)} GB" if need is not None else "more"
        sentence = (f"{about} too little even for a LoRA on an NF4 base at 512 px, which needs {size} by the memory "
                    f"meter; train SDXL or SD1.5 here, or {_larger_card(need)}.")
        preset = smallest
    if not gpu.bf16:
        sentence += " This GPU has no bf16: Flux then trains in fp16, which it was not made for; a card with bf16 is safer."
    return sentence, preset


_VERDICTS: dict[str, Callable[..., tuple[str, str]]] = {  # each takes (hw, *, prior)
    "sd": _sd_verdict, **{family: partial(_sd_verdict, family=family) for family in ROW_SETS},
    "sdxl": _sdxl_verdict, "flux": _flux_verdict}
FAMILIES = tuple(_VERDICTS)


def card_hardware(card_gb: float, bf16: bool = True) -> Hardware:
    """A machine with one card of ``card_gb`` not in this one (the one to rent), with bf16 or (a T4) without."""
    return Hardware(gpus=[Gpu(0, "A card", card_gb * 1024, None, "8.0" if bf16 else "7.5", bf16)], sold_gb=card_gb)


def card_verdict(card_gb: float, family: str = "sd", bf16: bool = True, prior: bool = True) -> tuple[str, str]:
    """``verdict`` for a card of ``card_gb`` not in this machine (the one to rent), with bf16 or without."""
    return verdict(card_hardware(card_gb, bf16), family, prior)


def too_small(hw: Hardware, preset: str, family: str = "sd", prior: bool = True) -> bool:
    """Whether ``verdict`` named ``preset`` for this GPU (for ``family``) only as the family's smallest, which does not
    fit it either."""
    unmeasured = {name: card for name, card, _ in _SD_TIERS} | {"sdxl-lora": SDXL_LORA_MIN_GB, "sdxl-full": SDXL_FULL_GB}
    return bool(hw.gpus) and not _meter_fits(preset, hw, unmeasured.get(preset, 0), family=family, prior=prior)
