"""What to say of a path given as a run that holds none: where a run of that name is, or the run a profile trains in."""

from __future__ import annotations

import shlex
from pathlib import Path

from dbtui.cli.printable import printable
from engine.errors import DbtuiError


def named_run_elsewhere(run: str, base: Path) -> str:
    """Where a run named ``run`` is, when ``base`` has none of that name: `dbtui report tiny-demo` after `dbtui demo`
    (whose runs are in dbtui-demo/runs) is told the --dir to add."""
    from engine.runs.folder import holds_a_run
    from engine.runs.runs_nearby import run_dirs_near

    if Path(run).name == run:  # a bare name, not a path
        for path in run_dirs_near(Path.cwd()):
            if path.resolve() != base.resolve() and holds_a_run(path / run):
                shown = printable(shlex.quote(str(path.relative_to(Path.cwd()))))
                return f"; a run named {printable(run)!r} is in {shown}: add `--dir {shown}`"
    if base.resolve() == Path("runs").resolve():
        return "; `dbtui runs` lists them"
    return f"; `dbtui runs {printable(shlex.quote(str(base)))}` lists them"  # plain `dbtui runs` looks in runs/


def profile_given(run: str) -> str | None:
    """For a profile given where a run goes (`dbtui attach my.toml` after `dbtui run my.toml --detach`): the run folder
    it trains in; None for any other path, or a profile that cannot be read (its run is then not known)."""
    from engine.profile.io import load_profile
    from engine.runs.folder import holds_a_run, run_dir_for

    if not (run.endswith(".toml") and Path(run).is_file()):
        return None
    try:
        folder = run_dir_for(load_profile(run))
    except DbtuiError:
        return None
    shown = printable(shlex.quote(str(folder)))
    if holds_a_run(folder):
        return f"'{printable(run)}' is a profile, not a run folder: its run is {shown}; give that"
    # Run with --set name=... it trained elsewhere: the profile as written says only where its own run would be.
    return (f"'{printable(run)}' is a profile, not a run folder: as written it trains in {shown}, which holds no run "
            "yet (`dbtui runs` lists the runs there are)")


def inside_a_run(run: str, candidates: tuple[Path, ...]) -> str | None:
    """For a folder inside a run given where a run goes (`dbtui export runs/x/checkpoints/step-00000010`): the run
    folder to give, and for a checkpoint how export and resume name it; None for any other path. ``candidates``: where
    ``run`` may be, as a run is looked for (here, or in --dir: `dbtui export x/checkpoints/…` with runs/x)."""
    from engine.runs.folder import holds_a_run

    found = ((given, folder) for given in candidates for folder in given.parents
             if str(folder) != "." and holds_a_run(folder))
    given, parent = next(found, (None, None))
    if given is None or parent is None:
        return None
    shown = printable(shlex.quote(str(parent)))
    said = f"'{printable(run)}' is inside the run folder {shown}: give that"
    digits = given.name.removeprefix("step-")
    if given.parent.name == "checkpoints" and digits.isdigit():  # a checkpoint is named by its step, as export has it
        step = int(digits)
        said += (f"; a checkpoint is chosen by its step: `dbtui export {shown} --step {step}`, "
                 f"`dbtui resume {shown} --from {step}`")
    return said
