"""Benchmark: check_dataset on 1,000 JPEGs of 1024×1024 (the target is ≤ 20 s on 2 cores).

The images are generated once into a cache folder (photo-like: smooth shapes plus sensor
noise, ~150 KB each) and reused by later runs.

    python bench/bench_dataset_check.py [--count 1000] [--workers N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_image(seed: int, side: int = 1024) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y = rng.integers(0, side, 2)
        r = int(rng.integers(side // 20, side // 4))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    image = image.filter(ImageFilter.GaussianBlur(2))
    noise = rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def ensure_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(count) if not (folder / f"{i:04d}.jpg").exists()]
    if missing:
        print(f"generating {len(missing)} images in {folder} (once)…", flush=True)
    for i in missing:
        make_image(i).save(folder / f"{i:04d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dbtui-bench-1024")
    args = parser.parse_args()
    ensure_images(args.cache, args.count)
    from engine.data.decode_budget import decode_workers
    from engine.dataset import check_dataset
    from engine.events import PhaseProgress

    progress = []
    started = time.perf_counter()
    report = check_dataset(args.cache, resolution=512, workers=args.workers, emit=lambda e: isinstance(e, PhaseProgress) and progress.append(e))
    seconds = time.perf_counter() - started
    # As the check sized its pool: --workers is the most, the CPUs and the decode budget may start fewer.
    workers = decode_workers(sorted(args.cache.glob("*.jpg")), args.workers)
    print(f"checked {report.summary.images} images of 1024×1024 in {seconds:.2f} s "
          f"({report.summary.images / seconds:.0f} images/s, {workers} workers, "
          f"{len(progress)} progress events); findings: {report.summary.counts}")


if __name__ == "__main__":
    main()
