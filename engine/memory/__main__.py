"""``python -m engine.memory PROFILE``: the meter's estimate, or why there is none, as one JSON line, for another process to read
(engine/memory/process.py). People use ``dbtui fit PROFILE --estimate-only``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.errors import DbtuiError
from engine.memory.process import ERROR_KEY, RESULT_KEY
from engine.support.process_exit import exit_with


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.memory", description=__doc__)
    parser.add_argument("profile", type=Path)
    args = parser.parse_args(argv)
    from engine.support.deferred_import import defer_seldom_used

    defer_seldom_used()  # as the trainer's process: the meter builds diffusers' models, and diffusers imports them
    from engine.memory.meter import estimate_peak
    from engine.profile import load_profile

    try:
        # As metered throughout, the family's own check of the profile included: the wizard keys answers without exports.
        estimate = estimate_peak(load_profile(args.profile))
    except DbtuiError as error:
        # On stdout, tagged: stderr holds the libraries' warnings too. The caller's words name the meter itself.
        # On a line of its own: a library may have left its last print without a newline.
        print(f"\n{json.dumps({ERROR_KEY: str(error)})}", flush=True)
        return 1
    print(f"\n{json.dumps({RESULT_KEY: estimate.to_dict()})}", flush=True)
    return 0


if __name__ == "__main__":
    exit_with(main)
