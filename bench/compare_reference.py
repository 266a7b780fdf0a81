"""Run diffusers' train_dreambooth.py and our trainer on the same local model and settings, side by side.

    python bench/compare_reference.py --reference ~/diffusers/examples/dreambooth/train_dreambooth.py --model tiny --rerun

diffusers does not ship its example scripts in the wheel: point --reference at a copy from a
diffusers checkout. The script needs torchvision; if it must run under another interpreter or
a wrapper, give that as --launcher (a command line the script path and arguments are appended to).

Both sides run as fresh processes on the same model folder, instance images, prompts, resolution,
30 steps, batch 1, fp32, lr 5e-6 and prior preservation with 8 class images. Total wall time and
peak RSS are measured from outside, the same way for both; the reference's phases are read from
its progress bars. `--rerun` runs each side a second time with its class images already there
(and ours in the same run folder, so its latents and text embeddings come from RUN/cache).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import (CLASS_PROMPT, INSTANCE_PROMPT, LEARNING_RATE, MODELS, check_steps, high_water_kb,  # noqa: E402
                         median_step_seconds)

# The issues' targets for dbtui / reference (the s/step one is set on the medium model; RSS and the
# re-run's start-up are issue 15's).
TARGETS = {"median_s_per_step": 0.85, "total_wall_s": 0.5, "peak_rss_mb": 0.8}
RERUN_TARGETS = {"total_wall_s": 0.3, "start_to_first_step_s": 0.6}
STEP_BAR = re.compile(r"Steps:.*?\|\s*(\d+)/(\d+)")
CLASS_BAR = re.compile(r"Generating class images")


@dataclass(frozen=True)
class TimedRun:
    lines: list[tuple[float, str]]  # (seconds since launch, one line or progress-bar redraw)
    wall_s: float
    peak_rss_mb: float
    returncode: int


def run_timed(command: list[str], env: dict[str, str]) -> TimedRun:
    """Run a command, stamping each output line and progress-bar redraw with its arrival time.

    Hand-written: tqdm redraws with a bare carriage return, so a line reader would see one
    line per bar; we split on both. A redraw is only ended by the next one, so each piece is
    stamped when its first byte arrived.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        pending, pending_since = b"", 0.0
        while chunk := os.read(process.stdout.fileno(), 65536):
            now = time.perf_counter() - started
            *parts, rest = (pending + chunk).replace(b"\r", b"\n").split(b"\n")
            for index, part in enumerate(parts):
                if part.strip():
                    lines.append((pending_since if index == 0 and pending else now, part.decode("utf-8", "replace")))
            pending_since = pending_since if not parts and pending else now
            pending = rest
        if pending.strip():
            lines.append((pending_since, pending.decode("utf-8", "replace")))

    reader = threading.Thread(target=read)
    reader.start()
    peak_kb = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak_kb = max(peak_kb, high_water_kb(process.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - started
    reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return TimedRun(lines, wall, (peak_kb or usage.ru_maxrss) / 1024, process.returncode)


def parse_reference_log(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Phases of a train_dreambooth.py run from its stamped progress bars."""
    step_times: dict[int, float] = {}
    class_times = [t for t, text in lines if CLASS_BAR.search(text)]
    for t, text in lines:
        match = STEP_BAR.search(text)
        if match and int(match.group(1)) >= 1:
            step_times.setdefault(int(match.group(1)), t)
    if not step_times:
        raise ValueError("no training step seen in the reference's output")
    ordered = [step_times[n] for n in sorted(step_times)]
    return {
        "start_to_first_step_s": ordered[0],
        "class_generation_s": class_times[-1] - class_times[0] if class_times else 0.0,
        "median_s_per_step": median_step_seconds(ordered),  # after warm-up, as bench_train.py
        "last_step_s": ordered[-1],
    }


def parse_key_values(text: str) -> dict[str, float]:
    """The `key: value` lines bench_train.py prints."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        try:
            values[key] = float(value)
        except ValueError:
            continue
    return values


def reference_command(args: argparse.Namespace, model_dir: str, instance_dir: Path, class_dir: Path, output_dir: Path) -> list[str]:
    resolution = MODELS[args.model][1]
    return [
        *shlex.split(args.launcher), str(args.reference),
        "--pretrained_model_name_or_path", model_dir, "--instance_data_dir", str(instance_dir),
        "--class_data_dir", str(class_dir), "--with_prior_preservation", "--prior_loss_weight", "1.0",
        "--num_class_images", str(args.class_images), "--instance_prompt", INSTANCE_PROMPT, "--class_prompt", CLASS_PROMPT,
        "--resolution", str(resolution), "--center_crop", "--train_batch_size", "1", "--max_train_steps", str(args.steps),
        "--learning_rate", str(LEARNING_RATE["full"]), "--mixed_precision", "no", "--seed", "0", "--output_dir", str(output_dir),
    ]


def measure_reference(args: argparse.Namespace, env: dict[str, str], model_dir: str, instance_dir: Path, work: Path, run: int) -> dict[str, float]:
    timed = run_timed(reference_command(args, model_dir, instance_dir, work / "ref-class", work / f"ref-out-{run}"), env)
    if timed.returncode != 0:
        tail = "\n".join(text for _, text in timed.lines[-15:])
        raise SystemExit(f"the reference script failed (exit {timed.returncode}):\n{tail}")
    phases = parse_reference_log(timed.lines)
    return {
        "start_to_first_step_s": phases["start_to_first_step_s"],
        "class_generation_s": phases["class_generation_s"],
        "median_s_per_step": phases["median_s_per_step"],
        "save_outputs_s": timed.wall_s - phases["last_step_s"],
        "total_wall_s": timed.wall_s,
        "peak_rss_mb": timed.peak_rss_mb,
    }


def measure_dbtui(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).with_name("bench_train.py")), "--model", args.model, "--steps", str(args.steps),
               "--class-images", str(args.class_images), "--class-steps", str(args.class_steps), "--work", str(work / "dbtui")]
    timed = run_timed(command, env)
    text = "\n".join(line for _, line in timed.lines)
    if timed.returncode != 0:
        raise SystemExit(f"bench_train.py failed (exit {timed.returncode}):\n{text[-3000:]}")
    result = parse_key_values(text)
    result["total_wall_s"] = timed.wall_s
    result["peak_rss_mb"] = timed.peak_rss_mb
    return result


def print_table(label: str, reference: dict[str, float], ours: dict[str, float], targets: dict[str, float]) -> None:
    print(f"\n{label}\n{'measure':24s} {'reference':>10s} {'dbtui':>10s} {'ratio':>7s}  target")
    for key in ("start_to_first_step_s", "class_generation_s", "median_s_per_step", "save_outputs_s", "total_wall_s", "peak_rss_mb"):
        ref, mine = reference.get(key, float("nan")), ours.get(key, float("nan"))
        ratio = mine / ref if ref else float("nan")
        target = targets.get(key)
        verdict = "" if target is None else f"≤ {target}× {'met' if ratio <= target else 'NOT met'}"
        print(f"{key:24s} {ref:10.2f} {mine:10.2f} {ratio:7.2f}  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="path to diffusers' examples/dreambooth/train_dreambooth.py")
    parser.add_argument("--launcher", default=shlex.quote(sys.executable), help="command that runs the reference script (default: this python)")
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--class-images", type=int, default=8)
    parser.add_argument("--class-steps", type=int, default=20, help="our sampler steps per class image (the reference always uses 50)")
    parser.add_argument("--rerun", action="store_true", help="run both again with their class images already there")
    args = parser.parse_args()
    if not args.reference.is_file():
        parser.error(f"{args.reference} is not a file: give the path to train_dreambooth.py from a diffusers checkout")
    check_steps(parser, args.steps)  # before the reference's minutes of work, as bench_train.py would after them

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.setdefault("DBTUI_CACHE", str(Path(tempfile.gettempdir()) / "dbtui-bench-cache"))
    os.environ["DBTUI_CACHE"] = env["DBTUI_CACHE"]
    from engine.builtin import resolve_dir, resolve_model
    from engine.data.images import IMAGE_SUFFIXES

    model_dir = resolve_model(MODELS[args.model][0])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # The reference opens every file in the folder as an image; give it the images only.
        instance_dir = work / "instance"
        instance_dir.mkdir()
        for image in Path(resolve_dir("builtin:demo-instance")).iterdir():
            if image.suffix.lower() in IMAGE_SUFFIXES:
                shutil.copy2(image, instance_dir)
        print(f"model={args.model} ({model_dir}) steps={args.steps} class_images={args.class_images} "
              f"our class_steps={args.class_steps}", flush=True)
        reference, ours = measure_reference(args, env, model_dir, instance_dir, work, 0), measure_dbtui(args, env, work)
        targets = TARGETS if args.model == "medium" else {k: v for k, v in TARGETS.items() if k != "median_s_per_step"}
        print_table("first run (class images generated)", reference, ours, targets)
        if args.rerun:
            reference_again, ours_again = measure_reference(args, env, model_dir, instance_dir, work, 1), measure_dbtui(args, env, work)
            print_table("re-run (class images reused)", reference_again, ours_again, {**targets, **RERUN_TARGETS})
            print(f"re-run wall against the reference's first run: {ours_again['total_wall_s'] / reference['total_wall_s']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
