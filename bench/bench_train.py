"""Benchmark a DreamBooth run on the local random-weight models and print where the time goes.

    python bench/bench_train.py --model tiny            # 64 px, seconds a step on a CPU
    python bench/bench_train.py --model medium          # SD-like 8x VAE at 256 px
    python bench/bench_train.py --model sd15 --precision fp16   # the SD1.5 architecture, for GPUs
    python bench/bench_train.py --model sdxl --precision bf16   # the SDXL base architecture at 1024 px
    python bench/bench_train.py --model flux --method lora --quantize nf4 --precision bf16 --resolution 512

The default configuration is the one the issue compares with diffusers' train_dreambooth.py:
30 steps, batch 1, fp32, lr 5e-6, prior preservation with 8 class images generated from scratch.
Each run is one fresh process, timed from the moment it started, imports included. `--rerun`
then starts a second process on the same work folder, which reuses the class images and the run's cache.
`bench/compare_reference.py` runs this next to diffusers' script. Prints one `key: value` line
per measure. On a GPU the peak memory is measured whole, and apart for the caching pass (after
class images, before the steps) and for the steps (caching_/step_peak_vram_allocated_mb);
`--meter` puts the memory meter's estimates of both beside them.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {"tiny": ("builtin:tiny-sd1", 64), "medium": ("builtin:medium-sd1", 256), "sd15": ("builtin:sd15-random", 512),
          "tiny-sdxl": ("builtin:tiny-sdxl", 64), "sdxl": ("builtin:sdxl-random", 1024),
          "tiny-flux": ("builtin:tiny-flux", 64), "flux": ("builtin:flux-random", 1024)}
INSTANCE_PROMPT = "photo of zwx disc"
CLASS_PROMPT = "photo of a disc"
LEARNING_RATE = {"full": 5e-6, "lora": 1e-4}
# Steps median_s_per_step leaves out: the first is start-up (start_to_first_step_s), the next three warm-up.
UNTIMED_STEPS = 4


def median_step_seconds(step_ends: list[float]) -> float:
    """The median time of the steps after ``UNTIMED_STEPS``, from the times each step ended; nan where a run ended
    before one (``check_steps`` refuses to ask for so few)."""
    gaps = [b - a for a, b in zip(step_ends[UNTIMED_STEPS - 1:], step_ends[UNTIMED_STEPS:])]
    return statistics.median(gaps) if gaps else float("nan")


def check_steps(parser: argparse.ArgumentParser, steps: int) -> None:
    """Refuse a step count that leaves no step timed: median_s_per_step printed nan."""
    if steps <= UNTIMED_STEPS:
        parser.error(f"--steps {steps} leaves no step to time: median_s_per_step leaves out the first {UNTIMED_STEPS} "
                     f"(start-up and warm-up); give --steps {UNTIMED_STEPS + 1} or more")


def seconds_since_process_start() -> float:
    """Wall time since this process was created, so interpreter start-up and imports count.

    On Linux from the kernel's start tick (10 ms); psutil's create_time rounds boot time to whole
    seconds, which would add up to a second to every start-up figure.
    """
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError):
        return time.time() - psutil.Process().create_time()


def high_water_kb(pid: int | str = "self") -> int:
    """A process's peak RSS so far (VmHWM), 0 where /proc has none.

    Not ru_maxrss: that starts from the parent's RSS at fork, so a re-run started by a large
    first run, or a child of a test runner, would report its parent's size.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def profile_for(args: argparse.Namespace, work: Path):
    from engine.profile import validate_data

    model, resolution = MODELS[args.model]
    return validate_data({
        "name": "bench",
        "model": {"pretrained": model, "quantize": args.quantize},
        "concepts": [{"instance_dir": "builtin:demo-instance", "instance_prompt": INSTANCE_PROMPT,
                      "class_dir": str(work / "class"), "class_prompt": CLASS_PROMPT, "num_class_images": args.class_images}],
        "dataset": {"resolution": args.resolution or resolution, "cache_latents": True},
        "prior": {"enabled": args.class_images > 0, "steps": args.class_steps, "sample_batch_size": 4},
        "training": {"method": args.method, "max_train_steps": args.steps, "train_batch_size": 1, "seed": 0},
        "optimizer": {"name": args.optimizer, "learning_rate": LEARNING_RATE[args.method], "fused_backward": args.fused_backward},
        "precision": {"mixed_precision": args.precision, "gradient_checkpointing": args.gradient_checkpointing,
                      "bf16_weights": args.bf16_weights},
        "sampling": {"num_images": 0},
        "saving": {"output_dir": str(work / "runs"), "every_n_steps": None, "export": ["diffusers"] if args.method == "full" else ["lora_diffusers"]},
    })


def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    import torch

    from engine.runs.fit import SetupPeak
    from engine.runs.in_process import train

    profile = profile_for(args, work)
    events = []
    setup_peak = SetupPeak()  # the steps' GPU peak apart from setup's, as the meter estimates them
    run_dir = work / "runs" / "bench"  # one folder per work folder: a re-run finds its cache (RUN/cache) as a resume would
    train(profile, run_dir, sinks=[setup_peak, lambda e: events.append((seconds_since_process_start(), e))])
    end = seconds_since_process_start()
    steps = [t for t, e in events if e.kind == "step_ended"]
    phases = {e.phase: e.seconds for _, e in events if e.kind == "phase_finished"}
    result = {
        "start_to_first_step_s": steps[0],
        "class_generation_s": phases.get("class_images", 0.0),
        "caching_s": phases.get("caching", 0.0) + phases.get("caching_text", 0.0),
        "median_s_per_step": median_step_seconds(steps),
        "save_outputs_s": phases.get("export", 0.0),
        "total_wall_s": end,
        "peak_rss_mb": (high_water_kb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024,
    }
    if torch.cuda.is_available():
        # The counters were reset after class images and where the steps began: the whole run's peak is the largest part.
        result["peak_vram_allocated_mb"] = max(setup_peak.whole_mb or 0.0, torch.cuda.max_memory_allocated() / 2**20)
        result["peak_vram_reserved_mb"] = max(setup_peak.reserved_mb or 0.0, torch.cuda.max_memory_reserved() / 2**20)
        result["caching_peak_vram_allocated_mb"] = setup_peak.allocated_mb or 0.0
        result["step_peak_vram_allocated_mb"] = max(e.vram_allocated_peak_mb for _, e in events if e.kind == "step_ended")
    if args.meter:  # after the run, so that its seconds count in no timing
        result |= meter(profile)
    return result


def meter(profile) -> dict[str, float]:
    """The memory meter's figures for the profile, in MB, to set beside what torch measures."""
    from engine.memory import estimate_peak

    estimate = estimate_peak(profile)
    return {"meter_step_mb": estimate.peak_allocated / 2**20, "meter_caching_mb": estimate.caching / 2**20}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--class-images", type=int, default=8)
    parser.add_argument("--class-steps", type=int, default=20, help="sampler steps per class image")
    parser.add_argument("--method", choices=["full", "lora"], default="full")
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--precision", choices=["no", "fp16", "bf16"], default="no")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--quantize", choices=["nf4", "int8"], help="keep the frozen base in 4 or 8 bits (with --method lora)")
    parser.add_argument("--bf16-weights", action="store_true", help="keep trained weights in bf16, no fp32 copy (needs --precision bf16)")
    parser.add_argument("--fused-backward", action="store_true", help="step the optimizer inside the backward pass (needs bf16 or fp32)")
    parser.add_argument("--resolution", type=int, help="training size in px (default: the model's own)")
    parser.add_argument("--work", type=Path, help="folder for class images and runs (kept); a temporary one if not given")
    parser.add_argument("--rerun", action="store_true", help="then run again in a fresh process, reusing the class images")
    parser.add_argument("--meter", action="store_true",
                        help="also print the memory meter's estimate of the steps' and the caching pass's peak (meter_*_mb)")
    args = parser.parse_args(argv)
    check_steps(parser, args.steps)
    return args


def print_result(label: str, result: dict[str, float]) -> None:
    print(f"--- {label}")
    for key, value in result.items():
        print(f"{key}: {value:.3f}")


def main() -> int:
    args = parse_args()
    os.environ.setdefault("DBTUI_CACHE", str(Path(tempfile.gettempdir()) / "dbtui-bench-cache"))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        result = measure(args, work)
        print(f"config: model={args.model} steps={args.steps} class_images={args.class_images} class_steps={args.class_steps} "
              f"method={args.method} optimizer={args.optimizer} precision={args.precision} "
              f"gradient_checkpointing={args.gradient_checkpointing} quantize={args.quantize} bf16_weights={args.bf16_weights} "
              f"fused_backward={args.fused_backward} "
              f"resolution={args.resolution or MODELS[args.model][1]}")
        print_result("first run" if args.rerun else "run", result)
        sys.stdout.flush()
        if args.rerun:
            again = [a for a in sys.argv[1:] if a != "--rerun"]
            if args.work is None:
                again += ["--work", str(work)]
            output = subprocess.run([sys.executable, __file__, *again], check=True, capture_output=True, text=True).stdout
            print("--- re-run (class images reused, fresh process)")
            print("\n".join(line for line in output.splitlines() if not line.startswith(("---", "config:"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
