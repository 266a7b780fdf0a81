"""``dbtui report RUN``: write RUN/report.html again from the run folder (a crashed run has none)."""

from __future__ import annotations

import argparse

from dbtui.cli.common import ExamplesFormatter, user_path


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report", help="write RUN/report.html: loss and score curves, previews, the step to keep, the profile",
        description="Write RUN/report.html from the run folder: one self-contained page (no network) with the "
        "loss and score curves, the preview grids of every step, the step to keep and why, and the profile. "
        "The trainer writes it when a run finishes or stops; this writes it for a crashed or running run, "
        "or again after a change.",
        epilog="examples:\n  dbtui report runs/my-run\n  dbtui report my-run --dir runs\n"
        "  dbtui report my-run --output ~/my-run.html   # a run folder you cannot write\n\n"
        "open it over SSH: `scp HOST:runs/my-run/report.html .` (it holds everything),\n"
        "or on HOST\n"
        "  python3 -m http.server 8001 --bind 127.0.0.1 --directory runs/my-run\n"
        "then `ssh -L 8001:127.0.0.1:8001 HOST` and open\n"
        "http://127.0.0.1:8001/report.html",
        formatter_class=ExamplesFormatter)
    report.add_argument("run", help="run folder or name under runs/")
    report.add_argument("--dir", default="runs", help="where to look for run names (default: %(default)s)")
    report.add_argument("--output", metavar="FILE", type=user_path,
                        help="write the page to FILE (replaced if there) instead of RUN/report.html: for a run folder "
                             "you cannot write, a read-only mount say")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dbtui.cli.cmd_runs import find_run
    from engine.runs.report import write_report

    folder = find_run(args.run, args.dir)
    print(write_report(Path(folder.path), Path(args.output) if args.output else None))
    return 0
