"""``dbtui`` with no command: open the wizard."""

from __future__ import annotations

import argparse


def run_wizard(args: argparse.Namespace) -> int:
    from dbtui.app import make_app

    make_app().run()
    return 0
