"""Run the standard set of training benchmarks and print one table: where a GPU run's VRAM and time go.

    python bench/suite.py                    # the SD1.5 architecture (random weights) on a GPU
    python bench/suite.py --model tiny       # the same set on the tiny model, to try it on a CPU
    python bench/suite.py --only lora-8gb    # one configuration
    python bench/suite.py --model sdxl       # the SDXL set: SDXL base's architecture at 1024 px
    python bench/suite.py --model tiny-sdxl  # the SDXL set on the tiny SDXL, to try it on a CPU
    python bench/suite.py --model flux       # the Flux set: Flux.1 [dev]'s size, NF4 and bf16 base, 512 and 1024 px
    python bench/suite.py --model tiny-flux  # the Flux set on the tiny Flux (64 and 128 px), to try it on a CPU
    python bench/suite.py --meter            # also the memory meter's estimate, and on a GPU its error

Each configuration is `bench/bench_train.py` in a fresh process (30 steps, batch 1, prior
preservation with 8 class images). They share one work folder, so the first generates the class
images and the rest reuse them: class-generation time is the first row's. A configuration that
fails is listed with its last error line, never left out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_train import check_steps

BENCH = Path(__file__).resolve().parent / "bench_train.py"

# name → bench_train.py arguments. fp16 on a CPU falls back to fp32 with a warning.
CONFIGS: dict[str, list[str]] = {
    "full-fp16": ["--precision", "fp16"],
    "full-fp16-checkpointing": ["--precision", "fp16", "--gradient-checkpointing"],
    "full-fp16-checkpointing-adamw8bit": ["--precision", "fp16", "--gradient-checkpointing", "--optimizer", "adamw8bit"],
    "lora-fp16": ["--method", "lora", "--precision", "fp16"],
    # What profiles/sd15-lora-8gb.toml trains with.
    "lora-8gb": ["--method", "lora", "--precision", "fp16", "--gradient-checkpointing", "--optimizer", "adamw8bit"],
    # The memory savers: bf16 weights with stochastic rounding and the optimizer step fused into the backward pass.
    "full-bf16-savers": ["--precision", "bf16", "--gradient-checkpointing", "--optimizer", "adamw8bit", "--bf16-weights",
                         "--fused-backward"],
}
# The SDXL set (--model sdxl or tiny-sdxl), in bf16 like profiles/sdxl-*.toml: SDXL's VAE overflows in
# fp16 (the trainer would keep it in fp32 there).
SDXL_CONFIGS: dict[str, list[str]] = {
    # What profiles/sdxl-person.toml trains with: the full fine-tune meant for a 24 GB card.
    "sdxl-full-adafactor": ["--precision", "bf16", "--gradient-checkpointing", "--optimizer", "adafactor"],
    # The same with 8-bit Adam, to show what Adafactor saves.
    "sdxl-full-adamw8bit": ["--precision", "bf16", "--gradient-checkpointing", "--optimizer", "adamw8bit"],
    "sdxl-lora-bf16": ["--method", "lora", "--precision", "bf16"],
    # What profiles/sdxl-lora-12gb.toml trains with.
    "sdxl-lora-12gb": ["--method", "lora", "--precision", "bf16", "--gradient-checkpointing", "--optimizer", "adamw8bit"],
    # The full fine-tune with the memory savers: what bench/memory.py's "+ savers" row estimates.
    "sdxl-full-savers": ["--precision", "bf16", "--gradient-checkpointing", "--optimizer", "adafactor", "--bf16-weights",
                         "--fused-backward"],
}
SDXL_MODELS = ("sdxl", "tiny-sdxl")
# The Flux set (--model flux or tiny-flux): LoRA on a frozen NF4 or bf16 base, in bf16 with gradient
# checkpointing and 8-bit Adam, as profiles/flux-lora-16gb.toml (NF4, 512 px) and flux-lora-24gb.toml
# (NF4, 1024 px) train.
FLUX_COMMON = ["--method", "lora", "--precision", "bf16", "--gradient-checkpointing", "--optimizer", "adamw8bit"]
FLUX_CONFIGS: dict[str, list[str]] = {
    f"flux-lora-{base}-{size}": [*FLUX_COMMON, *(["--quantize", base] if base == "nf4" else []), "--resolution", str(size)]
    for base in ("nf4", "bf16") for size in (512, 1024)
}
FLUX_MODELS = ("flux", "tiny-flux")
# The tiny Flux trains the same rows at an eighth of the size: 64 and 128 px.
TINY_FLUX_SCALE = 8
GPU_ONLY = {"flux": "Flux.1's 12 B parameters need a CUDA GPU: on a CPU building them takes 34 GB of RAM and a step "
                    "takes minutes (--model tiny-flux runs the same rows on the tiny Flux)"}
COLUMNS = {
    "peak_vram_allocated_mb": "VRAM alloc MB",
    "peak_vram_reserved_mb": "VRAM reserved MB",
    "step_peak_vram_allocated_mb": "steps alloc MB",
    "meter_step_mb": "meter steps MB",
    "caching_peak_vram_allocated_mb": "caching alloc MB",
    "meter_caching_mb": "meter caching MB",
    "median_s_per_step": "s/step",
    "start_to_first_step_s": "to 1st step s",
    "class_generation_s": "class gen s",
    "save_outputs_s": "save s",
    "total_wall_s": "wall s",
    "peak_rss_mb": "RSS MB",
}


def _tiny(args: list[str]) -> list[str]:
    """A row's arguments with its resolution scaled down for the tiny Flux."""
    return [str(int(a) // TINY_FLUX_SCALE) if i and args[i - 1] == "--resolution" else a for i, a in enumerate(args)]


def configs_for(model: str) -> dict[str, list[str]]:
    """The configurations that suit a bench_train.py model: the SDXL set for SDXL models, the Flux set for Flux."""
    if model in FLUX_MODELS:
        return {name: _tiny(args) if model == "tiny-flux" else args for name, args in FLUX_CONFIGS.items()}
    return SDXL_CONFIGS if model in SDXL_MODELS else CONFIGS


def skip_reason(model: str) -> str | None:
    """Why ``model``'s rows cannot run on this machine, or None."""
    if model not in GPU_ONLY:
        return None
    import torch

    return None if torch.cuda.is_available() else GPU_ONLY[model]


def parse_measures(output: str) -> dict[str, float]:
    """bench_train.py's `key: value` lines as numbers."""
    measures = {}
    for line in output.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in COLUMNS:
            measures[key] = float(value)
    return measures


def run_config(model: str, args: list[str], work: Path, steps: int, meter: bool = False) -> tuple[dict[str, float], str]:
    """(measures, error line or "") for one configuration."""
    command = [sys.executable, str(BENCH), "--model", model, "--steps", str(steps), "--work", str(work), *args,
               *(["--meter"] if meter else [])]
    process = subprocess.run(command, capture_output=True, text=True)
    if process.returncode != 0:
        errors = [line for line in process.stderr.splitlines() if line.strip()]
        return {}, errors[-1] if errors else f"exit status {process.returncode}"
    return parse_measures(process.stdout), ""


# The meter's error against torch, each a (meter, measured) pair of columns: the target is within 15 %.
METER_ERRORS = {"meter steps error": ("meter_step_mb", "step_peak_vram_allocated_mb"),
                "meter caching error": ("meter_caching_mb", "caching_peak_vram_allocated_mb")}


def with_meter_errors(measures: dict[str, float]) -> dict[str, str]:
    """A row's cells: its measures, then the meter's error wherever both the estimate and the measure exist."""
    cells = {COLUMNS[k]: f"{v:.2f}" for k, v in measures.items()}
    for column, (estimated, measured) in METER_ERRORS.items():
        if measures.get(estimated) and measures.get(measured):
            cells[column] = f"{(measures[estimated] - measures[measured]) / measures[measured]:+.1%}"
    return cells


def table(rows: list[tuple[str, dict[str, float], str]]) -> str:
    shown = [with_meter_errors(measures) for _, measures, _ in rows]
    columns = [c for c in [*COLUMNS.values(), *METER_ERRORS] if any(c in cells for cells in shown)]
    lines = ["| configuration | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for (name, _, error), cells in zip(rows, shown):
        row = [cells.get(c, "") for c in columns] if not error else [f"failed: {error}"] + [""] * (len(columns) - 1)
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sd15", choices=["tiny", "medium", "sd15", *SDXL_MODELS, *FLUX_MODELS])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--only", action="append", choices=sorted({**CONFIGS, **SDXL_CONFIGS, **FLUX_CONFIGS}),
                        help="run only this configuration (repeatable)")
    parser.add_argument("--work", type=Path, help="folder for class images and runs (kept); a temporary one if not given")
    parser.add_argument("--meter", action="store_true",
                        help="also run the memory meter on each configuration; on a GPU the table shows its error")
    args = parser.parse_args(argv)
    check_steps(parser, args.steps)  # each row's bench_train.py would refuse it, one after another
    configs = configs_for(args.model)
    names = args.only or list(configs)
    wrong = [name for name in names if name not in configs]
    if wrong:
        parser.error(f"{', '.join(wrong)} not for --model {args.model}; choose from {', '.join(configs)}")
    reason = skip_reason(args.model)
    if reason:
        for name in names:
            print(f"{name}: skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        rows = []
        for index, name in enumerate(names, 1):
            # A row can take minutes (a CPU builds and steps a real-size model): say which is running.
            print(f"[{index}/{len(names)}] {name}: running {args.steps} steps of {args.model} …", flush=True)
            measures, error = run_config(args.model, configs[name], work, args.steps, args.meter)
            rows.append((name, measures, error))
            print(f"{name}: " + (f"failed: {error}" if error else ", ".join(f"{k}={v:.2f}" for k, v in measures.items())), flush=True)
    print(f"\nmodel={args.model} steps={args.steps} batch 1, 8 class images (generated by the first row)\n")
    print(table(rows))
    return 1 if any(error for _, _, error in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
