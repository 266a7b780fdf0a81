"""Where free disk is measured for a draft or a profile: its output folder, and why a file there is no such folder.
Shared by `dbtui hardware` (which refuses it) and the wizard's Hardware step (which says it on its Disk line)."""

from __future__ import annotations


def disk_path(output_dir: str) -> str:
    """Where the free disk is measured: the output folder as the profile reads it ("~/runs" is the home
    folder's), or the working folder while it names a variable that is not set (the profile refuses that)."""
    from engine.profile.fields import expanded_path

    try:
        return expanded_path(output_dir)
    except ValueError:
        return "."


def output_dir_is_file(output_dir: str, said: str) -> str | None:
    """Why ``output_dir`` (named ``said``: the option or the profile's key) is not where runs can go, where it is a
    file: measured, its disk was read as room for them, where `validate` and `run` refuse it. None otherwise."""
    from engine.support.file_in_the_way import output_dir_in_the_way

    problem = output_dir_in_the_way(output_dir)
    return None if problem is None else f"{said} {problem}"
