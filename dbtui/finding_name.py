"""How a dataset finding names its file, the same in `dbtui dataset check` and the wizard: by its path under the
checked folder, so that a/x.png and b/x.png (sub-folders read) are two files, not two of the same name."""

from __future__ import annotations

from pathlib import Path


def finding_name(path: str | Path, folder: str | Path, *, whole_outside: bool = True) -> str:
    """``path`` under ``folder``; "(folder)" for a finding about the folder itself; whole where it lies outside, or
    with ``whole_outside`` False by its own folder's name and its name (the wizard's table: a class folder beside the
    instance folder, whole, filled the 80 columns and cut each row's problem to a sliver)."""
    from engine.dataset.report import named_under  # here: `dbtui --help` imports this, and engine.dataset loads PIL

    path, root = Path(path), Path(folder)
    if path == root:
        return "(folder)"
    if whole_outside or path.is_relative_to(root):
        return named_under(path, root)  # as the report's own messages name it (an exact copy's first)
    return str(Path(path.parent.name, path.name))
