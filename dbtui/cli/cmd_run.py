"""``dbtui run PROFILE``: train from a profile, headless."""

from __future__ import annotations

import argparse

from dbtui.cli.common import add_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="train from a profile, headless",
        description="Validate a profile (plus --set overrides) and train it. Outputs go to "
        "<saving.output_dir>/<name>/.",
    )
    parser.add_argument("profile", help="path to a .toml profile")
    add_overrides(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from engine.profile import load_profile

    profile = load_profile(args.profile, args.set)
    print(f"{args.profile}: valid; training is not wired in yet ({profile.name})")
    return 0
