"""Rebuild engine/builtin/assets/tiny-sd1.safetensors: the pretrained weights of ``builtin:tiny-sd1``.

    OMP_NUM_THREADS=1 python3 scripts/pretrain_tiny.py [--threads 1] [--out PATH]

Trains the tiny SD1 model on Pillow-drawn shapes (engine/builtin/tiny_pretrain.py): 1500 VAE
steps at batch 8 (about 0.2 s each), 8192 pictures encoded once, then 2500 UNet steps at batch 32
(about 1 s each): about 50 minutes on one thread of a 2-core CPU (measured 2026-12-03).
Deterministic: the same thread count (and torch build) gives a bit-identical file; the shipped
one was made with --threads 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.builtin.tiny_pretrain import Schedule, pretrain  # noqa: E402
from engine.builtin.tiny_weights import WEIGHTS_FILE, save_weights  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads; part of what makes the result reproducible (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE, help="where to write the weights (default: the shipped file)")
    args = parser.parse_args()
    pipe = pretrain(Schedule(), threads=args.threads, log=lambda line: print(line, flush=True))
    print(f"wrote {save_weights(pipe, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
