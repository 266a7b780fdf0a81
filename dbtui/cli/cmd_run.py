"""``dbtui run PROFILE``: train from a profile, headless, in the foreground or detached."""

from __future__ import annotations

import argparse
import shlex

from dbtui.cli.common import ExamplesFormatter, add_overrides, header_progress, launch_waited, user_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="train from a profile, headless",
        description="Validate a profile (plus --set overrides) and train it in a trainer process that "
        "writes <saving.output_dir>/<name>/. Progress shows as a live dashboard on a terminal, or as "
        "plain lines under nohup/CI/--plain. Ctrl-C saves a checkpoint and stops (twice: at once).",
        epilog="examples:\n  dbtui run my.toml\n  dbtui run my.toml --detach     # survives logout; dbtui attach to watch\n"
        "  dbtui run my.toml --resume     # continue its run from the latest checkpoint\n"
        "  dbtui run --resume my.toml     # the same\n"
        "  dbtui resume runs/my-run       # a stopped run: its own profile, --set values",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("profile", nargs="?", type=user_path, help="path to a .toml profile")
    add_overrides(parser)
    parser.add_argument("--detach", action="store_true", help="start the trainer in the background and return; it survives the terminal closing")
    parser.add_argument("--resume", nargs="?", const="latest", type=user_path, metavar="CHECKPOINT",
                        help="continue from a checkpoint: its step, its folder's name in the run's checkpoints/ or its "
                        "path (default: the latest complete one); a .toml file given here is taken as PROFILE, resumed "
                        "from the latest one")
    parser.add_argument("--plain", action="store_true", help="plain log lines instead of the live dashboard")
    parser.set_defaults(handler=_run)


def equivalent_command(args: argparse.Namespace) -> str:
    parts = ["dbtui", "run", shlex.quote(args.profile), *[f"--set {shlex.quote(item)}" for item in args.set]]
    if args.resume:
        parts.append("--resume" if args.resume == "latest" else f"--resume {shlex.quote(args.resume)}")
    return " ".join(parts)


def _take_profile_from_resume(args: argparse.Namespace) -> None:
    """``dbtui run --resume my.toml``: --resume's optional value took the profile. A checkpoint is a folder, never a
    .toml file, so it is the profile, resumed from the latest checkpoint."""
    from pathlib import Path

    from engine.errors import DbtuiError

    if args.profile is not None:
        return
    if args.resume is None or args.resume == "latest":
        raise DbtuiError("give the profile to train: `dbtui run PROFILE` (`dbtui run --help` lists the options)")
    if not (args.resume.endswith(".toml") or Path(args.resume).is_file()):
        raise DbtuiError(f"give the profile to train: `dbtui run PROFILE --resume {shlex.quote(args.resume)}` "
                         "(--resume takes a checkpoint folder, so the profile goes before it)")
    args.profile, args.resume = args.resume, "latest"


def _run(args: argparse.Namespace) -> int:
    from dbtui.cli.output_closed import say_before_start
    from dbtui.cli.watch import show_started_run
    from engine.family_sizes import load_profile_with_family_step
    from engine.runs.launcher import machine_profile, start_run

    _take_profile_from_resume(args)
    profile = load_profile_with_family_step(args.profile, args.set)
    say_before_start(f"running: {equivalent_command(args)}")
    # A refusal's suggested command keeps the user's other overrides; only the name is to change.
    keys = [item.partition("=")[0].strip() for item in args.set]
    kept = [f"--set {shlex.quote(item)}" for item, key in zip(args.set, keys) if key != "name"]
    started = start_run(profile, detach=args.detach, resume=args.resume, given_as=" ".join([shlex.quote(args.profile), *kept]),
                        given_keys=keys, progress=header_progress(),
                        decode_progress=header_progress(what="decoding images"),
                        decode_first=header_progress(what="decoding images") if args.detach else None,
                        waiting=launch_waited)
    changed = ""
    if started.changed:  # the profile file read again, without the --set values the run was started with
        kept = machine_profile(started.folder, started.machine_rank)  # machine N keeps its own
        changed = f"this profile changes the run's settings, as its {kept.name} kept them: {started.changed}"
    return show_started_run(started, profile.name, plain=args.plain, every=profile.logging.every_n_steps,
                            detach=args.detach, said=changed, profile=shlex.quote(args.profile))
