"""``dbtui validate PROFILE``: report every problem in a profile at once."""

from __future__ import annotations

import argparse

from dbtui.cli.common import ExamplesFormatter, add_overrides, header_progress, to_stderr, user_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a profile and list every problem",
        description="Check a profile (and --set overrides) and print every problem with its line. "
        "Exit status 2 when there is any problem, settings the model's family cannot use among them "
        "(where its files are on this machine; else they are warnings), and what `dbtui run` would refuse on this "
        "machine: missing data folders, caption files and model files, and image files that cannot be read as pictures "
        "(with --elsewhere, for a profile meant for another machine, these are warnings). Settings that run "
        "but likely not as meant (e.g. two concepts with one prompt, a class folder while prior preservation is off, or "
        "dataset.resolution far from the size the model was made for, where its files are on this machine) are "
        "warnings.",
        epilog="examples:\n  dbtui validate my.toml\n  dbtui validate my.toml --set training.max_train_steps=1200 "
        "# as run reads it\n  dbtui validate my.toml --elsewhere  # a profile for another machine",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("profile", type=user_path, help="path to a .toml profile")
    add_overrides(parser)
    parser.add_argument("--elsewhere", action="store_true",
                        help="the profile is for another machine: what this one lacks (folders, images, the model, "
                        "a library) is a warning, not a problem")
    parser.set_defaults(handler=_validate)


VALIDATE_SAID = "checking the profile: its settings, folders, images and model …"


def _validate(args: argparse.Namespace) -> int:
    to_stderr(VALIDATE_SAID)  # before the checks' imports: over a second, said by nothing; stdout keeps the report
    from engine.family_sizes import load_profile_with_family_step
    from engine.profile import ProfileError, located
    from engine.profile_checks import check_profile

    profile = load_profile_with_family_step(args.profile, args.set)
    errors, missing_here, settings = check_profile(profile, progress=header_progress())
    # What this machine lacks stops `dbtui run` here, so it fails here too: a script's "validate, then run" must not
    # pass one and fail the other. --elsewhere: the profile is meant for a machine that has them.
    warnings = (missing_here if args.elsewhere else []) + settings
    errors += [] if args.elsewhere else missing_here
    if not errors:
        print(f"{args.profile}: valid ({len(profile.concepts)} concept(s), method {profile.training.method})")
    for problem in located(warnings, args.profile, args.set):  # every one at once, beside the errors too
        print(f"  warning: {problem}")
    if errors:
        raise ProfileError(located(errors, args.profile, args.set))
    return 0
