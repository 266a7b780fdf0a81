"""Peak GPU memory of the issue's reference trainings, from the memory meter: no GPU needed.

    python bench/memory.py           # the table, beside the targets
    python bench/memory.py --json    # one JSON object per row: model, method, resolution, peak_gb, …
    python bench/memory.py --only 3  # row 3 alone (SD1.5 LoRA); repeatable
    python bench/memory.py --presets # measure the wizard's presets into engine/memory/preset_estimates.json

Each row is one of the shipped example profiles (profiles/*.toml), as a user would run it, on the
real architecture with random weights (builtin:sd15-random, builtin:sdxl-random, Flux.1 [dev]'s configs); the "+ savers"
rows add the memory savers of today's options (bf16 weights with stochastic rounding and the
optimizer step fused into the backward pass, which need bf16). Batch 1. peak_gb is the meter's
peak allocated memory (what torch.cuda.max_memory_allocated reports), in GiB; a card needs the
CUDA context and the allocator's slack on top, which the fit line includes.
SD1.5 rows take about 20 s each on an idle CPU, SDXL rows about a minute (two to three times that on a
busy 2-core machine).

``--presets`` measures each preset of dbtui/presets.py (those that set the training, not the
person/style ones) merged onto a new profile of a model of its family, at 512 px unless the
preset sets its own size: without and with prior preservation, and a bf16 preset also as a GPU
without bf16 trains it (fp16). The SD presets keep a draft's size, so they are measured again at
768 and 1024 px on SD1.5, on SD2.1-base (its configs ship with dbtui), whose text encoder is three
times SD1.5's, for SD2 models' advice, and on SD2.1-v at its 768 px and at 1024 px: a draft is
judged by the rows of the smallest size at or above its own. ``dbtui hardware``
reads the table (engine/memory/preset_table.py); run this again after changing a preset. About
half an hour on a CPU.

``--measure`` (on a GPU) trains each row's profile for a few steps with the fit test, each in a
fresh process, and sets torch's peak allocated memory of the steps and of the caching pass beside
the meter's, with the meter's error (the issue's target: within 15 %) and s/step. The profiles
train the demo photos, prior preservation draws 2 class images in 2 sampler steps, and the Flux
rows train builtin:flux-random (Flux.1 [dev]'s size with random weights). The meter runs on the
CPU after each row's training, so that it slows no step. Each row is printed as it finishes.
``--set KEY=VALUE`` (repeatable) changes every measured row's profile, for the GPU and the meter
alike: ``--measure --only 1 --set precision.gradient_checkpointing=false``.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAVERS = ['precision.mixed_precision="bf16"', "precision.bf16_weights=true", "optimizer.fused_backward=true"]


@dataclass(frozen=True)
class Row:
    model: str
    method: str
    profile: str  # under profiles/
    pretrained: str
    target_gb: float  # the target
    anchor: str  # what others publish
    overrides: tuple[str, ...] = ()
    measured_on: str | None = None  # what --measure trains instead of a model that cannot be downloaded here


FLUX_RANDOM = "builtin:flux-random"


ROWS = (
    Row("SD1.5", "full + prior preservation", "sd15-person.toml", "builtin:sd15-random", 6.0,
        "ShivamShrirao fork: 9.92 GB (fp16, checkpointing, 8-bit Adam)"),
    Row("SD1.5", "full + prior preservation + savers", "sd15-person.toml", "builtin:sd15-random", 6.0,
        "ShivamShrirao fork: 9.92 GB", tuple(SAVERS)),
    Row("SD1.5", "LoRA", "sd15-lora-8gb.toml", "builtin:sd15-random", 3.5, ""),
    Row("SDXL", "LoRA", "sdxl-lora-12gb.toml", "builtin:sdxl-random", 8.0, "sd-scripts: 8 GB minimum, 10 GB recommended"),
    Row("SDXL", "full + prior preservation", "sdxl-person.toml", "builtin:sdxl-random", 16.0,
        "sd-scripts: about 17 GB (fused backward, Adafactor)"),
    Row("SDXL", "full + prior preservation + savers", "sdxl-person.toml", "builtin:sdxl-random", 16.0,
        "sd-scripts: about 17 GB", tuple(SAVERS)),
    Row("Flux.1 [dev]", "LoRA, NF4 base", "flux-lora-16gb.toml", "black-forest-labs/FLUX.1-dev", 9.0,
        "SimpleTuner: 9,090 MiB at 512 px", measured_on=FLUX_RANDOM),
    Row("Flux.1 [dev]", "LoRA, NF4 base", "flux-lora-24gb.toml", "black-forest-labs/FLUX.1-dev", 24.0,
        "sd-scripts: 24 GB with fp8 weights", measured_on=FLUX_RANDOM),
)


def row_profile(row: Row, extra: list[str] | None = None):
    """The row's shipped profile on its model, with its overrides and ``extra`` ones."""
    from engine.profile import load_profile

    return load_profile(ROOT / "profiles" / row.profile, [f'model.pretrained="{row.pretrained}"', *row.overrides, *(extra or [])])


def measure(row: Row, extra: list[str] | None = None) -> dict:
    from engine.memory import estimate_peak
    from engine.memory.estimate import GIB

    profile = row_profile(row, extra)
    estimate = estimate_peak(profile)
    return {
        "model": row.model, "method": row.method, "resolution": profile.dataset.resolution,
        "peak_gb": round(estimate.peak_allocated / GIB, 2), "card_gb": round(estimate.card_need / GIB, 2),
        "caching_card_gb": round(estimate.caching_card_need / GIB, 2), "sampling_card_gb": round(estimate.sampling_card_need / GIB, 2),
        "target_gb": row.target_gb, "meets_target": estimate.peak_allocated <= row.target_gb * GIB,
        "fits": estimate.fit_line(), "profile": f"profiles/{row.profile}", "overrides": list(row.overrides),
        "phase": estimate.peak_phase, "seconds": round(estimate.seconds, 1),
        "breakdown_gb": {part: round(getattr(estimate, part) / GIB, 2)
                         for part in ("weights", "gradients", "optimizer_state", "activations", "caches")},
        "anchor": row.anchor, "peak_mb": estimate.peak_allocated / 2**20, "caching_mb": estimate.caching / 2**20,
    }


MEASURE_STEPS = 6
RESULT = "fit result: "  # the line --train-row reports on, whatever else the run prints


def gpu_overrides(row: Row, work: Path) -> list[str]:
    """The --set lines that make a row's profile trainable here (see --measure in the module docstring)."""
    overrides = ['concepts.0.instance_dir="builtin:demo-instance"', f'saving.output_dir="{work / "runs"}"',
                 f'concepts.0.class_dir="{work / "class" / row.profile}"', "concepts.0.num_class_images=2",
                 "prior.steps=2", "prior.sample_batch_size=2"]
    return overrides + ([f'model.pretrained="{row.measured_on}"'] if row.measured_on else [])


def built_before(pretrained: str) -> None:
    """A random-weight built-in made (on the GPU, when it is large) before the measure starts.

    Built inside the measure, SDXL's fp32 parts (12.9 GB) and Flux's bf16 ones (31.5 GB) counted
    as the run's setup peak on the first row of each family.
    """
    import torch

    from engine.builtin import is_builtin, resolve_model

    if is_builtin(pretrained):
        resolve_model(pretrained)
    gc.collect()  # what the build left in reference cycles goes before the cache is handed back
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def train_row(index: int, work: Path, extra: list[str]) -> int:
    """The fit test of ROWS[index] (with ``extra`` --set lines) in this process; prints its figures as one JSON line after RESULT."""
    from engine.runs.fit import fit_test

    row = ROWS[index]
    profile = row_profile(row, gpu_overrides(row, work) + extra)
    built_before(profile.model.pretrained)
    result = fit_test(profile, MEASURE_STEPS, work_dir=work)
    print(RESULT + json.dumps({"steps_mb": result.peak_vram_allocated_mb, "caching_mb": result.setup_vram_allocated_mb,
                      "reserved_mb": result.peak_vram_mb, "s_per_step": result.s_per_step, "setup_s": result.setup_s,
                      "steps": result.steps, "lacks_optimizer_state": result.lacks_optimizer_state, "setup_by_phase_mb": result.setup_by_phase_mb}))
    return 0


def error(estimated_mb: float, measured_mb: float | None) -> str:
    return f"{(estimated_mb - measured_mb) / measured_mb:+.1%}" if measured_mb else "–"


def note(got: dict) -> str:
    """The steps measured (whether fp16's loss scaler took one before the last) and setup's peaks by phase."""
    phases = ", ".join(f"{name} {mb / 1024:.2f}" for name, mb in got["setup_by_phase_mb"].items())
    steps = f"{got['steps']} steps" + (": fp16's loss scaler took none before the last, no optimizer state in the peak"
                                       if got["lacks_optimizer_state"] else "")
    return f"{steps}; before the steps, GB: {phases}"


def measure_rows(indices: list[int], extra: list[str]) -> int:
    """--measure: each row (with ``extra`` --set lines) trained on the GPU in a fresh process, then the meter
    run here (after it, so that the meter's CPU work slows no step)."""
    import torch

    if not torch.cuda.is_available():
        print("--measure trains on a CUDA GPU, and torch sees none here", file=sys.stderr)
        return 2
    from engine.errors import DbtuiError

    try:
        for index in indices:
            row_profile(ROWS[index], extra)
    except DbtuiError as problem:
        print(f"--set: {problem}", file=sys.stderr)
        return 2
    if extra:
        print("Every row's profile with --set " + " --set ".join(extra))
    print("| model | method | px | steps GB (torch) | meter | error | caching GB (torch) | meter | error | reserved GB | s/step | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    failed = 0
    sets = [arg for line in extra for arg in ("--set", line)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for index in indices:
            row = ROWS[index]
            gpu = subprocess.run([sys.executable, __file__, "--train-row", str(index), "--work", str(work), *sets],
                                 capture_output=True, text=True)
            meter = measure(row, gpu_overrides(row, work) + extra)
            results = [line.removeprefix(RESULT) for line in gpu.stdout.splitlines() if line.startswith(RESULT)]
            if gpu.returncode != 0 or not results:
                failed += 1
                lines = [line for line in gpu.stderr.splitlines() if line.strip()] or [f"exit status {gpu.returncode}"]
                print(f"| {row.model} | {row.method} | {meter['resolution']} | failed: {lines[-1]} |", flush=True)
                continue
            got = json.loads(results[-1])
            print(f"| {row.model} | {row.method} | {meter['resolution']} | {got['steps_mb'] / 1024:.2f} | "
                  f"{meter['peak_mb'] / 1024:.2f} | {error(meter['peak_mb'], got['steps_mb'])} | "
                  f"{(got['caching_mb'] or 0) / 1024:.2f} | {meter['caching_mb'] / 1024:.2f} | "
                  f"{error(meter['caching_mb'], got['caching_mb'])} | {got['reserved_mb'] / 1024:.2f} | "
                  f"{got['s_per_step']:.3f} | {note(got)} |", flush=True)
    return 1 if failed else 0


def table(results: list[dict]) -> str:
    lines = [
        "| model | size | method | peak GB | weights · grads · optimizer · activations | target | fits | anchor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        parts = " · ".join(f"{r['breakdown_gb'][k]:.2f}" for k in ("weights", "gradients", "optimizer_state", "activations"))
        verdict = "✓" if r["meets_target"] else f"✗ (+{r['peak_gb'] - r['target_gb']:.2f})"
        lines.append(f"| {r['model']} | {r['resolution']} px | {r['method']} | {r['peak_gb']:.2f} | {parts} | "
                     f"≤ {r['target_gb']:g} {verdict} | {r['fits'].removeprefix('fits ')} | {r['anchor']} |")
    return "\n".join(lines)


# The model each preset is measured on: SDXL presets on SDXL, Flux presets on Flux.1 [dev] (its configs
# ship with the meter), the CPU demo on its tiny model, the rest on SD1.5.
PRESET_MODELS = {"cpu-demo": "builtin:tiny-sd1", "sdxl-lora": "builtin:sdxl-random", "sdxl-full": "builtin:sdxl-random",
                 "flux-lora-16gb": "black-forest-labs/FLUX.1-dev", "flux-lora-24gb": "black-forest-labs/FLUX.1-dev"}


def measure_preset(settings: dict, pretrained: str, resolution: int | None = None):
    """A PresetEstimate of one preset, at ``resolution`` unless the preset sets its own (None: 512 px)."""
    from engine.memory import estimate_peak
    from engine.memory.preset_table import BASE_RESOLUTION, PresetEstimate, preset_profile, uses_bf16

    def estimate(**how):
        # Stored for any dataset: the pictures assumed, not the demo folder's read (engine/memory/pictures.py).
        profile = preset_profile(settings, pretrained, resolution=resolution or BASE_RESOLUTION, **how)
        return estimate_peak(profile, read_pictures=False)

    return PresetEstimate(settings, pretrained, no_prior=estimate(prior=False), prior=estimate(prior=True),
                          prior_fp16=estimate(prior=True, fp16=True) if uses_bf16(settings) else None)


def measure_presets() -> int:
    from dbtui.presets import PRESETS, TIER_PRESETS
    from engine.hardware.machine import FAMILY_PRESETS
    from engine.memory.estimate import GIB
    from engine.memory.preset_table import ROW_SETS, SD15, save_preset_estimates

    def measured(name: str, pretrained: str, resolution: int | None = None):
        row = measure_preset(PRESETS[name], pretrained, resolution)
        need = row.prior
        print(f"{name} ({pretrained}, {need.width} px): {need.card_need / GIB:.1f} GB on the card with prior preservation, "
              f"{need.fit_line()}; caching pass {need.caching_card_need / GIB:.1f} GB, sampling pass "
              f"{need.sampling_card_need / GIB:.1f} GB", flush=True)
        return row

    rows = {name: measured(name, PRESET_MODELS.get(name, SD15)) for name in TIER_PRESETS}
    own_rows = {family: {name: measured(name, model.pretrained, model.resolution) for name in FAMILY_PRESETS["sd"]}
                for family, model in ROW_SETS.items()}
    print(f"wrote {save_preset_estimates(rows, own_rows)}")
    return 0


def row_number(text: str) -> int:
    """--only's argument: a row of ROWS, counted from 1."""
    if not text.isdigit() or not 1 <= int(text) <= len(ROWS):
        raise argparse.ArgumentTypeError(f"{text!r} is not a row: give 1 to {len(ROWS)}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON objects, one a line")
    parser.add_argument("--presets", action="store_true", help="measure the wizard's presets for dbtui hardware")
    parser.add_argument("--measure", action="store_true", help="on a GPU: train each row a few steps and compare with the meter")
    parser.add_argument("--only", type=row_number, action="append", metavar="N",
                        help=f"only row N (1 to {len(ROWS)}, in the table's order; repeatable), in the table or --measure")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="with --measure: change each row's profile so (as dbtui's --set; repeatable)")
    parser.add_argument("--train-row", type=int, help=argparse.SUPPRESS)  # one row of --measure, in its own process
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sets and not args.measure and args.train_row is None:
        parser.error("--set changes the rows --measure trains; the table and --presets measure the shipped profiles")
    args.only = list(dict.fromkeys(args.only or []))  # `--only 3 --only 3` measured row 3 twice: each asked row once
    if args.presets:
        if args.only:
            parser.error("--only picks rows of the table; --presets measures every preset")
        return measure_presets()
    if args.train_row is not None:
        return train_row(args.train_row, args.work, args.sets)
    if args.measure:
        return measure_rows([n - 1 for n in args.only] if args.only else list(range(len(ROWS))), args.sets)
    results = []
    # A row takes up to a minute on a CPU, the eight about ten: --only 3 for the one row wanted.
    for row in [ROWS[n - 1] for n in args.only] if args.only else ROWS:
        result = measure(row)
        results.append(result)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(f"{row.model} {row.method}: {result['peak_gb']:.2f} GB ({result['seconds']:.0f} s)", file=sys.stderr, flush=True)
    if not args.json:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
