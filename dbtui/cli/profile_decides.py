"""``dbtui dataset check|prepare|caption --profile``: an option the profile gives is refused, told the --set that gives
it; without --profile, the options that choose or change a profile's values are refused, not left unused."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

# check's and caption's -r: one rule for both (check refused it beside any --profile, caption only without FOLDER).
RECURSIVE_WITH_PROFILE = ("include sub-folders; with --profile, only those of a FOLDER you name (each concept's "
                          "instance_dir is read as training reads it, without its sub-folders)")
SET_NEEDS_PROFILE = "--set overrides a profile's value: give --profile with it, or leave it out"


def profile_decides(given: dict[str, tuple[str, str | int | bool | None]], concepts: int = 1) -> None:
    """With --profile, the profile gives these settings, as training takes them: one given beside it is refused, not
    left unused without a word, and told the --set that gives it instead. ``given``: option → (the profile's key, the
    option's value, None where it was not given; "" where the key holds more than the option said). A concept's key is
    said as concepts.N where ``concepts`` (the number checked) is more than one."""
    from engine.profile.set_text import set_option

    flags = {flag: setting for flag, setting in given.items() if setting[1] is not None}
    if flags:
        from engine.errors import DbtuiError

        it = "it" if len(flags) == 1 else "them"
        sets = " ".join(set_option(key, value) if value != "" else f"--set {key}=…" for key, value in flags.values())
        each = "" if concepts == 1 or not any(key.startswith("concepts.N.") for key, _ in flags.values()) else \
            f" (N: the concept's number, 0 to {concepts - 1}; --concept N checks that one alone)"
        raise DbtuiError(f"{', '.join(flags)}: with --profile the profile gives {it}, as training takes {it}: change "
                         f"{it} in the profile or with {sets}{each}, or leave out --profile to give {it} here")


def recursive_with_profile(command: str, verb: str, leaving_out: str = "") -> str:
    """Why -r beside --profile and no FOLDER is refused: ``command`` (as the sentence names it) would read the images in
    each concept's sub-folders, which training never reads; a FOLDER the user names is theirs, read with its
    sub-folders by every dataset command. ``verb``: what the command does to a folder; ``leaving_out``: what leaving
    out -r does besides."""
    return (f"--recursive with --profile: training reads only the images directly in each concept's instance_dir, as "
            f"{command} with --profile does; leave out -r{leaving_out}, make each sub-folder a concept of its own, or "
            f"name the FOLDER to {verb} with its sub-folders (`dbtui dataset {verb} FOLDER --profile FILE -r`)")


def profile_values_need_profile(args: argparse.Namespace) -> None:
    """Without --profile, --concept and --set (which choose and change a profile's values) are refused: they were
    left unused without a word."""
    from engine.dataset import DatasetError

    if getattr(args, "concept", None) is not None:
        raise DatasetError("--concept chooses a concept of a profile: give --profile with it, or leave it out")
    if args.set:
        raise DatasetError(SET_NEEDS_PROFILE)


def folder_without_profile(args: argparse.Namespace, command: str, does: str) -> str:
    """FOLDER of a dataset command given no --profile: refused where missing or a profile given in its place, then
    --concept and --set are (``profile_values_need_profile``). ``does``: what `dbtui dataset COMMAND --profile` does
    to each concept's folder, as a verb."""
    from engine.dataset import DatasetError

    if not args.folder:
        raise DatasetError(f"dataset {command} needs a FOLDER, or --profile to {does} each concept's instance_dir")
    if args.folder.endswith(".toml") and Path(args.folder).is_file():  # as `dbtui validate PROFILE` takes it
        raise DatasetError(f"{args.folder} is a profile, not an image folder: `dbtui dataset {command} --profile "
                           f"{shlex.quote(args.folder)}` {does}s each of its concepts' folders")
    profile_values_need_profile(args)
    return args.folder
