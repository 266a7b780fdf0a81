"""``dbtui hardware``: what this machine can train, for headless machines."""

from __future__ import annotations

import argparse
import json

from engine.hardware import FAMILIES  # standard library only at import: --help stays fast


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hardware",
        help="probe GPUs, libraries, RAM and disk, and recommend a preset",
        description="Probe GPUs (VRAM, compute capability, bf16), driver, CUDA and torch, bitsandbytes, "
        "xformers, RAM and free disk, then say in words what this machine can train. The advice is for "
        "SD1.x/SD2.x unless --family or --profile names SDXL.",
    )
    parser.add_argument("--output-dir", default=".", help="where runs will be written (free disk is measured there)")
    parser.add_argument("--json", action="store_true", help="print the probe as JSON")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--family", choices=FAMILIES, help="advice for this model family: sd (SD1.x/SD2.x, the default) or sdxl")
    which.add_argument("--profile", metavar="PROFILE", help="advice for the model this profile trains (model.pretrained)")
    parser.set_defaults(handler=_hardware)


def _hardware(args: argparse.Namespace) -> int:
    from engine.hardware import probe, verdict
    from engine.model_info import likely_family

    family = args.family or "sd"
    if args.profile:
        from engine.profile import load_profile

        family = likely_family(load_profile(args.profile).model.pretrained)
    hardware = probe(args.output_dir)
    sentence, preset = verdict(hardware, family)
    if args.json:
        print(json.dumps({**hardware.to_dict(), "family": family, "verdict": sentence, "preset": preset}, indent=2))
        return 0
    from rich.console import Console

    from dbtui.presets import PRESET_LABELS
    from dbtui.widgets.hardware_table import hardware_table

    console = Console()
    console.print(hardware_table(hardware))
    console.print(f"\n[b]{sentence}[/b]\nRecommended preset: [b]{PRESET_LABELS.get(preset, preset)}[/b] ({preset})")
    return 0
