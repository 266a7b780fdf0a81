"""Which of a run's stored paths holding a control character are the run's own, read as they are.

A run made before paths were refused a line break or a tab (saving.output_dir "C:\\new\\tmp" in double quotes, read by
TOML as C:, a line break, "ew", a tab and "mp") keeps such a path in RUN/profile.toml, which dbtui writes as
"C:\\new\\tmp": the very text a user writes there by hand when told to put a moved folder's new place in it. The file
cannot tell the two apart; what the run recorded can. A value equal to the run's record at the same key is the run's
(it must still export and resume); any other is judged as a typed path, with the advice on quotes that it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.profile.text_characters import control_character


def control_texts(data: Any, key: str = "") -> dict[str, str]:
    """Dotted key (list items numbered from 0) → each text of ``data``, a profile's TOML data (``profile_data``), that
    holds a control character."""
    if isinstance(data, str):
        return {key: data} if control_character(data, allowed="") else {}
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    found: dict[str, str] = {}
    for name, value in items:
        found.update(control_texts(value, f"{key}.{name}" if key else str(name)))
    return found


def stored_context(data: Any, recorded: Mapping[str, str]) -> dict[str, Any]:
    """The validation context of a run's stored profile ``data``: the paths holding a control character that are still
    what the run recorded at their key (``recorded``, from ``control_texts``) are read as they are (``fields._path``)."""
    return {"recorded": frozenset(text for key, text in control_texts(data).items() if recorded.get(key) == text)}
