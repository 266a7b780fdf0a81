"""Pieces shared by several sub-commands."""

from __future__ import annotations

import argparse


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile value, e.g. --set training.max_train_steps=400 "
        "(values are read as TOML; repeat for several)",
    )
