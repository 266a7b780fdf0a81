"""A file where a folder has to be: the path itself or a folder above it."""

from __future__ import annotations

from pathlib import Path


def file_in_the_way(path: Path) -> Path | None:
    """The path itself or the nearest existing parent, when it is something other than a folder."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return None if candidate.is_dir() else candidate
        except OSError:
            return None
    return None


def output_dir_in_the_way(output_dir: str) -> str | None:
    """Why no run folder can be made in ``output_dir`` (saving.output_dir, `dbtui hardware --output-dir`), where it or
    a folder above it is a file; one text for `validate`/`run`, `dbtui hardware` and the wizard's Hardware step, which
    each said it in their own words. None otherwise."""
    blocker = file_in_the_way(Path(output_dir))
    if blocker is None:
        return None
    # my.toml/runs: its nearest folder that exists is that file, so the file is named too.
    where = f"'{blocker}' is" if blocker == Path(output_dir) else f"'{output_dir}' cannot be made, as '{blocker}' is"
    return f"{where} a file, not a folder: give another folder for the run folders (it is made if missing), or move " \
           "that file away"
