"""A ``Log`` whose long lines wrap at its width, so that an 80-column dashboard shows a message's end."""

from __future__ import annotations

import textwrap

from textual.widgets import Log


class WrappingLog(Log):
    """Textual's ``Log`` cuts a line at the widget's edge and has no wrap option: lines are wrapped here,
    at the width the log has when they are written (later ones follow a resize)."""

    def write_line(self, line: str, scroll_end: bool | None = None) -> WrappingLog:
        width = self.scrollable_content_region.width
        lines = textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False) if width > 20 and len(line) > width else [line]
        self.write_lines(lines, scroll_end)
        return self
