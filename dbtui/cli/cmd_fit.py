"""``dbtui fit PROFILE``: train a few real steps to measure VRAM, speed, time and cost."""

from __future__ import annotations

import argparse

from dbtui.cli.common import add_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="measure peak VRAM, s/step, the whole run's time and cost with a few real steps",
        description="Train a few steps of the profile in a temporary folder (no samples, no checkpoints, "
        "nothing exported) and report peak VRAM, seconds per step, the whole run's ETA and its cost.",
    )
    parser.add_argument("profile", help="path to a .toml profile")
    parser.add_argument("--steps", type=int, default=10, help="steps to measure (default: %(default)s)")
    parser.add_argument("--price-per-hour", type=float, default=None, metavar="X", help="hourly price of this machine")
    add_overrides(parser)
    parser.set_defaults(handler=_fit)


def _fit(args: argparse.Namespace) -> int:
    from engine.events import StepEnded
    from engine.runs.fit import fit_test
    from engine.profile import load_profile
    from engine.runs.folder import run_dir_for
    from engine.runs.folder import check_creatable

    from dbtui.format import duration

    profile = load_profile(args.profile, args.set)
    # The fit test trains in a temporary folder; a run folder the real run cannot write would
    # only fail after the measurement, so it is refused first.
    check_creatable(run_dir_for(profile))

    def progress(event) -> None:
        if isinstance(event, StepEnded):
            print(f"  step {event.step}: loss {event.loss:.4f}", flush=True)

    print(f"fit test: {args.steps} steps of {args.profile}", flush=True)
    result = fit_test(profile, args.steps, progress, price_per_hour=args.price_per_hour)
    vram = f"{result.peak_vram_mb / 1024:.2f} GB" if result.peak_vram_mb is not None else "not measured (no CUDA)"
    print(f"peak VRAM (torch): {vram}")
    if result.peak_rss_mb is not None:
        print(f"peak RAM:          {result.peak_rss_mb / 1024:.2f} GB")
    print(f"setup:             {duration(result.setup_s)}")
    print(f"speed:             {result.s_per_step:.3f} s/step")
    print(f"whole run:         {result.total_steps} steps, about {duration(result.eta_s)}")
    if result.est_cost is not None:
        print(f"cost:              about {result.est_cost:.2f} at {args.price_per_hour}/hour")
    return 0
