"""``python -m engine.worker RUN_DIR``: the trainer process. Reads RUN_DIR/profile.toml.

It reports only through RUN_DIR/events.jsonl, so whoever started it can go away.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import DbtuiError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.worker", description="Train the profile in RUN_DIR/profile.toml.")
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    from engine.profile import load_profile
    from engine.run import train

    try:
        profile = load_profile(args.run_dir / "profile.toml")
        result = train(profile, args.run_dir)
    except DbtuiError as error:
        print(f"dbtui trainer: {error}", file=sys.stderr)
        return 1
    return 0 if result.status in ("finished", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
