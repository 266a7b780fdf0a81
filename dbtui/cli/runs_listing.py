"""``dbtui runs``: what it lists of each run under a folder (path, status, step, last loss, best step, age), the
parts of runs of several machines it finds there, and where runs are when it holds none."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import DbtuiError

if TYPE_CHECKING:
    from engine.runs.folder import RunFolder


def list_runs_command(args: argparse.Namespace) -> int:
    from dbtui.cli.printable import printable
    from dbtui.cli.run_row import read_row
    from dbtui.cli.runs_table import print_rows
    from engine.runs.folder import RunFolder, holds_a_run, list_runs
    from engine.runs.paused import paused_words

    base = _listed_folder(args.folder, args.dir)
    # A run folder given for the folder of runs: its own row, rather than "no runs" under it.
    folders = [RunFolder(base)] if holds_a_run(base) else list_runs(base)
    _say_a_long_read(folders)
    # One deleted while it was read is left out, not listed "unknown", 57 years old.
    rows = [row for row in [read_row(folder) for folder in folders] if not row.folder.gone()]
    # --json: the list alone on stdout, for a script; what is said for a person beside it goes to stderr.
    notes = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2, ensure_ascii=False, allow_nan=False))
    elif rows:
        # Said under the table by name (its path is in it), the step cell kept short enough for 80 columns: such a
        # run's step is not kept.
        over = [printable(row.folder.path.name) for row in rows if row.starts_over]
        print_rows([row.cells() for row in rows],
                   f"{', '.join(over)} saved no checkpoint: `dbtui resume` trains {'them' if over[1:] else 'it'} "
                   "from step 0" if over else "")
        for row in rows:
            if row.paused is not None:  # "running" by its state and lock, it trained nothing since
                print(f"{printable(row.folder.path)}: {paused_words(row.paused)}")
        if holds_a_run(base):
            print(f"{printable(base)} is a run folder itself; `dbtui attach {printable(shlex.quote(str(base)))}` follows it")
    parts = _other_machines_parts(base)
    for folder, rank in parts:
        print(f"{printable(folder)}: machine {rank}'s part of a run of several machines; machine 0 lists, watches and "
              "stops the run", file=notes)
    if not rows and not parts:
        print(f"no runs in '{printable(base)}'" + runs_elsewhere(base, option=False), file=notes)
    return 0


def _other_machines_parts(base: Path) -> list[tuple[Path, str]]:
    """The folders under ``base`` that hold another machine's part of a run (its profile-machine-N.toml, no events:
    machine 0 keeps those), with that machine's number: `dbtui runs` on that machine listed nothing of them."""
    from engine.runs.folder import RunFolderError, holds_a_run
    from engine.support.run_marks import MACHINE_PROFILE_GLOB, profile_machine

    try:
        folders = [base, *sorted(child for child in base.iterdir() if child.is_dir())]  # base: such a folder given itself
        return [(folder, str(profile_machine(part.name))) for folder in folders if not holds_a_run(folder)
                for part in sorted(folder.glob(MACHINE_PROFILE_GLOB))[:1]]
    except (OSError, RunFolderError):  # a listing it cannot finish: the runs above are what it could read
        return []


LONG_READ = 1 << 30  # bytes of event logs not read before that `dbtui runs` says it reads (seconds to minutes)


def _say_a_long_read(folders: list[RunFolder]) -> None:
    """A line before searching logs not read before for their best steps, where they are long (a first listing of long
    runs: minutes, which said nothing); later listings read only what the logs gained (engine/evaluation/scored_lines)."""
    from engine.evaluation.scored_lines import unread_bytes

    unread = {folder: unread_bytes(folder.events) for folder in folders}
    if sum(unread.values()) >= LONG_READ:
        # What was read is kept in each run folder: in another user's runs this user cannot keep it, and reads again.
        kept = all(os.access(folder.path, os.W_OK) for folder, size in unread.items() if size)
        print(f"reading {sum(unread.values()) / 1e9:.1f} GB of the runs' event logs for their best steps "
              + ("(once: later listings read only what they gained)..." if kept else
                 "(again at each listing: what was read cannot be kept in run folders this user may not write)..."),
              file=sys.stderr, flush=True)


def _listed_folder(folder: str | None, option: str | None) -> Path:
    """The folder `dbtui runs` lists: DIR or --dir (not two different ones), refused where it is no folder."""
    from dbtui.cli.printable import printable
    from engine.support.plain_path import plain_path

    if folder is not None and option is not None and not _same_folder(folder, option):
        raise DbtuiError(f"DIR ({printable(folder)}) and --dir ({printable(option)}) name two folders; give one of them")
    given = folder or option
    base = Path(os.path.expanduser(given or "runs"))  # `--dir=~/runs`: a ~ the shell leaves alone
    if given is None or base.is_dir():
        return plain_path(base)  # the default runs/ missing: said with where runs are instead
    if base.exists():
        raise DbtuiError(f"'{printable(base)}' is a file, not a folder of runs; give the folder that holds run folders "
                         "(saving.output_dir)")
    raise DbtuiError(f"'{printable(base)}' does not exist; `dbtui runs` with no folder looks in runs/ and names the "
                     "folders below this one that hold runs")


def _same_folder(one: str, other: str) -> bool:
    """Whether two spellings name one folder (runs and /abs/path/runs, or a link to it)."""
    try:
        return os.path.samefile(one, other)
    except OSError:  # one is missing: said as such next
        return os.path.realpath(one) == os.path.realpath(other)


def runs_elsewhere(base: Path, option: bool) -> str:
    """Where runs are, when ``base`` holds none: the folders below this one that do, as DIR or as --dir."""
    from dbtui.cli.printable import printable
    from engine.runs.runs_nearby import run_dirs_near

    near = [printable(shlex.quote(str(path.relative_to(Path.cwd()))))  # quoted once, ready to paste
            for path in run_dirs_near(Path.cwd()) if path.resolve() != base.resolve()][:5]
    if not near:
        return "; start one with `dbtui run PROFILE`"
    if option:
        return f"; runs are in {', '.join(near)}: add `--dir {near[0]}`"
    return "; runs are in " + ", ".join(f"`dbtui runs {path}`" for path in near)
