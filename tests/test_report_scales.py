"""The report compares scored rounds as the best-step rule does: only those of the newest base round's [evaluation]
settings; rounds of earlier settings are marked in the table and left out of the chart."""

from __future__ import annotations

import re
from pathlib import Path

from engine.events import SamplesScored
from engine.runs.report import write_report
from test_report import fake_run

NOT_COMPARED = "not compared (scored under earlier [evaluation] settings)"


def test_rounds_of_earlier_evaluation_settings_are_marked_and_left_out_of_the_chart(tmp_path: Path) -> None:
    """Rounds of the old prompts were plotted and listed beside the new ones, on a scale the rule never compares."""
    folder = fake_run(tmp_path)
    old, new = {"prompts": ["a"]}, {"prompts": ["b", "a"]}
    rounds = [(0, 0.4, 0.30, old), (5, 0.9, 0.30, old), (10, 0.8, 0.30, old), (0, 0.4, 0.20, new), (15, 0.5, 0.19, new)]
    with folder.events.open("a", encoding="utf-8") as events:
        for step, subject, clip_t, settings in rounds:
            scores = {"dino": subject, "clip_i": subject, "subject": subject, "clip_t": clip_t, "class_drift": 0.01}
            events.write(SamplesScored(step=step, scores=scores, settings=settings).to_json() + "\n")
    text = write_report(folder.path).read_text(encoding="utf-8")
    table = text[text.index('<table class="scores">'):]
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"<tr[^>]*><td>(\d+)[^<]*(?:<span[^>]*>[^<]*</span>)?</td>.*?</tr>", table)}
    assert sorted(rows) == [0, 5, 10, 15]
    assert all((NOT_COMPARED in rows[step]) == (step in (5, 10)) for step in rows)
    chart = text[text.index("<h2>Scores</h2>"):text.index('<table class="scores">')]
    subject_line = re.search(r'data-name="subject fidelity" points="([^"]*)"', chart)
    assert subject_line is not None and len(subject_line.group(1).split()) == 2  # steps 0 and 15 only
    assert "Which step to keep: <span class=\"best\">step 15</span>" in text
