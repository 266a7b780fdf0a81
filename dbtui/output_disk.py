"""Where free disk is measured for a draft or a profile: its output folder, and why a file there is no such folder.
Shared by `dbtui hardware` (which refuses it) and the wizard's Hardware step (which says it on its Disk line)."""

from __future__ import annotations

from pathlib import Path


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
    from engine.support.file_in_the_way import file_in_the_way

    blocker = file_in_the_way(Path(output_dir))
    if blocker is None:
        return None
    # my.toml/runs: its nearest folder that exists is that file, so the file is named too.
    where = f"{output_dir} is" if blocker == Path(output_dir) else f"{output_dir} is inside {blocker}, which is"
    return (f"{said} {where} a file, not a folder: free disk is measured where runs will be written; give that "
            "folder (it may not exist yet)")
