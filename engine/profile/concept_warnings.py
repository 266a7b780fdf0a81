"""Concepts that would train as one subject: two concepts whose images are captioned with the same prompt.

A warning, not an error: a subject's photos split over two folders is a fair reason to do it.
"""

from __future__ import annotations

from engine.profile.problems import Problem
from engine.profile.schema import Profile

# The caption modes whose captions hold the instance prompt.
_PROMPT_MODES = {"instance_prompt", "caption_file_then_prompt", "prompt_then_caption_file"}


def _same_text(prompt: str) -> str:
    return " ".join(prompt.casefold().split())


def shared_prompt_problems(profile: Profile) -> list[Problem]:
    """A concept whose instance prompt an earlier concept uses as well."""
    problems: list[Problem] = []
    first_with: dict[str, int] = {}
    for index, concept in enumerate(profile.concepts):
        if concept.caption_mode not in _PROMPT_MODES or not concept.instance_prompt.strip():
            continue
        earlier = first_with.setdefault(_same_text(concept.instance_prompt), index)
        if earlier != index:
            problems.append(Problem(
                f"concepts.{index}.instance_prompt",
                f"is concept {earlier}'s prompt too, so the model learns both folders as one subject: give each subject "
                "its own identifier (e.g. 'photo of zwx dog' and 'photo of qxr cat'), or put one subject's photos in one concept",
            ))
    return problems
