"""What a resume or re-run with every caption cached no longer pays: loading the frozen text encoders.

    python bench/text_encoder_load.py --family sdxl --work /tmp/te   # SDXL's two CLIPs, fp16
    python bench/text_encoder_load.py --family sd15 --work /tmp/te   # SD1.5's CLIP-L, fp16

The first call saves the family's text encoders at their published sizes with random weights into
``--work`` (fp32, as a diffusers folder keeps them). Each measurement is then a fresh process that
loads them as a frozen fp16 run does (``Family.load_text_encoder``) and prints `key: value` lines:
their parameters, seconds to load them (their classes' imports included) and the peak RSS growth.
Run it twice and read the second: the first load also pays for reading the files into the page cache.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import high_water_kb  # noqa: E402

FAMILIES = {"sd15": "sd", "sdxl": "sdxl"}  # --family: the family whose text encoders are measured


def save(family: str, folder: Path) -> None:
    """The family's text encoders, random weights at the published sizes, into ``folder``."""
    import torch
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from engine.builtin.clip_tokenizer import clip_tokenizer
    from engine.builtin.sdxl_random import TEXT_1, TEXT_2, text_config

    tokenizer = clip_tokenizer()
    torch.manual_seed(0)
    parts = {"text_encoder": CLIPTextModel(text_config(tokenizer, TEXT_1))}  # CLIP ViT-L/14: SD1.5's, and SDXL's first
    if family == "sdxl":
        parts["text_encoder_2"] = CLIPTextModelWithProjection(text_config(tokenizer, TEXT_2))
    for name, model in parts.items():
        model.save_pretrained(folder / name)


def measure(family: str, folder: Path) -> None:
    import torch

    from engine.models.registry import family_named

    before = high_water_kb()
    started = time.perf_counter()
    adapter = family_named(FAMILIES[family])
    encoders = [adapter.load_text_encoder(folder, index, torch.float16) for index in range(len(adapter.text_encoder_names))]
    print(f"parameters: {sum(p.numel() for m in encoders for p in m.parameters())}")
    print(f"load_s: {time.perf_counter() - started:.3f}")
    print(f"rss_growth_mb: {(high_water_kb() - before) / 1024:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="sdxl")
    parser.add_argument("--work", type=Path, required=True, help="folder for the saved encoders (kept for the next call)")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.work / args.family
    if args.measure_only:
        measure(args.family, folder)
        return 0
    from engine.models.registry import family_named

    if not all((folder / name / "config.json").is_file() for name in family_named(FAMILIES[args.family]).text_encoder_names):
        save(args.family, folder)
    return subprocess.run([sys.executable, __file__, "--family", args.family, "--work", str(args.work), "--measure-only"]).returncode


if __name__ == "__main__":
    sys.exit(main())
