"""``dbtui validate PROFILE``: report every problem in a profile at once."""

from __future__ import annotations

import argparse

from dbtui.cli.common import add_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a profile and list every problem",
        description="Check a profile (and --set overrides) and print every problem with its line. "
        "Exit status 2 when there is any problem, settings the model's family cannot use among them "
        "(where its files are on this machine; else they are warnings). Missing data folders and caption files are "
        "listed as warnings (the profile may be meant for another machine), as are settings that run "
        "but likely not as meant (e.g. two concepts with one prompt, or dataset.resolution far from the size the "
        "model was made for, where its files are on this machine).",
    )
    parser.add_argument("profile", help="path to a .toml profile")
    add_overrides(parser)
    parser.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    from engine.profile import ProfileError, load_profile, located
    from engine.dataset.profile_paths import builtin_name_problems, path_problems
    from engine.evaluation.prompt_problems import evaluation_problems, shared_identifier_problems
    from engine.model_info import family_setting_problems, resolution_problems
    from engine.profile.concept_warnings import shared_prompt_problems
    from engine.profile.schedule_warnings import schedule_problems

    profile = load_profile(args.profile, args.set)
    refused, family_warnings, certain = family_setting_problems(profile)
    # The family read from the model's files, or a misspelt built-in name: wrong on any machine, and the run refuses them.
    errors = builtin_name_problems(profile) + (refused if certain else [])
    warnings = (path_problems(profile, builtins=False) + ([] if certain else refused) + family_warnings + evaluation_problems(profile)
                + shared_prompt_problems(profile) + shared_identifier_problems(profile) + schedule_problems(profile)
                + resolution_problems(profile))
    if not errors:
        print(f"{args.profile}: valid ({len(profile.concepts)} concept(s), method {profile.training.method})")
    for problem in located(warnings, args.profile, args.set):  # every one at once, beside the errors too
        print(f"  warning: {problem}")
    if errors:
        raise ProfileError(located(errors, args.profile, args.set))
    return 0
