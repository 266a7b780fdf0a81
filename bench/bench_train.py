"""Benchmark a DreamBooth run on the local random-weight models and print where the time goes.

    python bench/bench_train.py --model tiny            # 64 px, seconds a step on a CPU
    python bench/bench_train.py --model medium          # SD-like 8x VAE at 256 px
    python bench/bench_train.py --model sd15 --precision fp16   # the SD1.5 architecture, for GPUs

The default configuration matches the reference measurement of diffusers' train_dreambooth.py
(see ../shared/README.md): 30 steps, batch 1, fp32, lr 5e-6, prior preservation with 8 class
images generated from scratch. `--rerun` runs it twice and reports the second run, which reuses
the class images. Prints one `key: value` line per measure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STARTED = time.perf_counter()

MODELS = {"tiny": ("builtin:tiny-sd1", 64), "medium": ("builtin:medium-sd1", 256), "sd15": ("builtin:sd15-random", 512)}


def profile_for(args: argparse.Namespace, work: Path):
    from engine.profile import validate_data

    model, resolution = MODELS[args.model]
    return validate_data({
        "name": "bench",
        "model": {"pretrained": model},
        "concepts": [{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                      "class_dir": str(work / "class"), "class_prompt": "photo of a disc", "num_class_images": args.class_images}],
        "dataset": {"resolution": resolution, "cache_latents": True},
        "prior": {"enabled": args.class_images > 0, "steps": args.class_steps, "sample_batch_size": 4},
        "training": {"method": args.method, "max_train_steps": args.steps, "train_batch_size": 1, "seed": 0},
        "optimizer": {"name": args.optimizer, "learning_rate": 5e-6 if args.method == "full" else 1e-4},
        "precision": {"mixed_precision": args.precision, "gradient_checkpointing": args.gradient_checkpointing},
        "sampling": {"num_images": 0},
        "saving": {"output_dir": str(work / "runs"), "every_n_steps": None, "export": ["diffusers"] if args.method == "full" else ["lora_diffusers"]},
    })


def measure(args: argparse.Namespace, work: Path, run: int) -> dict[str, float]:
    import torch

    from engine.run import train

    events = []
    start = time.perf_counter()
    profile = profile_for(args, work)
    train(profile, work / "runs" / f"bench-{run}", sinks=[lambda e: events.append((time.perf_counter(), e))])
    end = time.perf_counter()
    steps = [t for t, e in events if e.kind == "step_ended"]
    phases = {e.phase: e.seconds for _, e in events if e.kind == "phase_finished"}
    gaps = [b - a for a, b in zip(steps, steps[1:])][3:]  # after warm-up
    result = {
        "start_to_first_step_s": steps[0] - (STARTED if run == 0 else start),
        "class_generation_s": phases.get("class_images", 0.0),
        "caching_s": phases.get("caching", 0.0) + phases.get("caching_text", 0.0),
        "median_s_per_step": statistics.median(gaps) if gaps else float("nan"),
        "save_outputs_s": phases.get("export", 0.0),
        "total_wall_s": end - (STARTED if run == 0 else start),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if torch.cuda.is_available():
        result["peak_vram_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["peak_vram_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--class-images", type=int, default=8)
    parser.add_argument("--class-steps", type=int, default=20, help="sampler steps per class image")
    parser.add_argument("--method", choices=["full", "lora"], default="full")
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--precision", choices=["no", "fp16", "bf16"], default="no")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--rerun", action="store_true", help="report a second run that reuses the class images")
    args = parser.parse_args()
    os.environ.setdefault("DBTUI_CACHE", str(Path(tempfile.gettempdir()) / "dbtui-bench-cache"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = [measure(args, work, 0)]
        if args.rerun:
            results.append(measure(args, work, 1))
    print(f"config: model={args.model} steps={args.steps} class_images={args.class_images} method={args.method} "
          f"optimizer={args.optimizer} precision={args.precision} gradient_checkpointing={args.gradient_checkpointing}")
    for index, result in enumerate(results):
        label = "first run" if index == 0 else "re-run (class images reused)"
        print(f"--- {label}")
        for key, value in result.items():
            print(f"{key}: {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
