"""``dbtui`` with no command: open the wizard."""

from __future__ import annotations

import argparse


def run_wizard(args: argparse.Namespace) -> int:
    # textual-image asks the terminal what it can draw, which is impossible once Textual
    # runs: import it first (it costs ~0.4 s; the first screen still comes in under 1 s).
    import textual_image.widget  # noqa: F401

    from dbtui.app import make_app

    app = make_app()
    app.run()
    return app.return_code or 0
