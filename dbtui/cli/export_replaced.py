"""What a repeated `dbtui export` of one step threw away: it keeps one earlier copy of each output (NAME.previous), so
a third export deletes the copy the second kept. Said in one line, since each copy can be a model's gigabytes."""

from __future__ import annotations

from pathlib import Path


def kept_copies(run: Path) -> dict[Path, int]:
    """The earlier copies kept under RUN/exports now, each with its inode: the one an export moves in is another
    file's (the output it replaces, which existed beside it), so a changed inode is a copy replaced."""
    kept = {}
    for path in (run / "exports").glob("*/*.previous*"):
        try:
            kept[path] = path.stat().st_ino
        except OSError:  # removed meanwhile: it is not one this export replaced
            continue
    return kept


def replaced_said(before: dict[Path, int], outputs: list[str]) -> str | None:
    """The line telling which copies ``before`` held that the export of ``outputs`` replaced; None where none was."""
    replaced = []
    for output in map(Path, dict.fromkeys(outputs)):  # two formats may name one file
        copy = output.with_name(f"{output.name}.previous" if output.is_dir() else
                                f"{output.stem}.previous{output.suffix}")
        if copy in before and copy.exists() and copy.stat().st_ino != before[copy]:
            replaced.append(str(copy))
    if not replaced:
        return None
    holds = "now holds" if len(replaced) == 1 else "now hold"
    return (f"replaced the earlier copy kept by the export before last (one is kept of each output): "
            f"{', '.join(replaced)} {holds} the export this one wrote over")
