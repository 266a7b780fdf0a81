"""How a dataset finding names its file, the same in `dbtui dataset check` and the wizard: by its path under the
checked folder, so that a/x.png and b/x.png (sub-folders read) are two files, not two of the same name."""

from __future__ import annotations

from pathlib import Path


def finding_name(path: str | Path, folder: str | Path) -> str:
    """``path`` under ``folder``; "(folder)" for a finding about the folder itself; whole where it lies outside."""
    path, root = Path(path), Path(folder)
    if path == root:
        return "(folder)"
    return str(path.relative_to(root) if path.is_relative_to(root) else path)
