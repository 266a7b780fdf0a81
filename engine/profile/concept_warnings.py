"""Concept settings that run, but not as meant: two concepts captioned with one prompt (they train as one subject), and
class settings that nothing reads while prior preservation is off.

Warnings, not errors: a subject's photos split over two folders is a fair reason to share a prompt, and class settings
are kept for when prior preservation is switched on.
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


def unused_class_problems(profile: Profile) -> list[Problem]:
    """A concept with a class folder or class prompt while prior preservation, which alone trains on class images, is
    off: a new profile has it off, and the wizard asks for those settings on the Dataset step, before Parameters."""
    if profile.prior.enabled:
        return []
    problems: list[Problem] = []
    for index, concept in enumerate(profile.concepts):
        if not (concept.class_dir or concept.class_prompt):
            continue
        key = f"concepts.{index}.{'class_dir' if concept.class_dir else 'class_prompt'}"
        what = " and ".join(name for name, value in (("class folder", concept.class_dir), ("class prompt", concept.class_prompt))
                            if value)
        problems.append(Problem(
            key,
            f"is not used in training: prior preservation is off; turn it on in Parameters ([prior] enabled = true, for every "
            f"concept: each then needs a class folder and prompt), or leave the {what} empty",
        ))
    return problems
