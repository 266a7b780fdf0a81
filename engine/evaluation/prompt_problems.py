"""Evaluation settings that can never name a best step, said by ``dbtui validate`` before a run spends its rounds."""

from __future__ import annotations

from engine.evaluation.prompts import concept_words, evaluation_prompts
from engine.profile import Profile
from engine.profile.problems import Problem


def evaluation_problems(profile: Profile) -> list[Problem]:
    """Custom evaluation prompts none of which names a concept: no round scores the subject, so no step is chosen."""
    if not profile.evaluation.enabled or not profile.evaluation.prompts:
        return []
    if any(prompt.is_subject for prompt in evaluation_prompts(profile)):
        return []
    named = [" ".join(filter(None, words)) for words in (concept_words(c.instance_prompt, c.class_prompt) for c in profile.concepts)
             if words[0]]
    example = f"e.g. 'a {named[0]} on the beach'" if named else "e.g. a concept's instance prompt"
    return [Problem("evaluation.prompts", "none names a concept's identifier, so no round scores the subject and no best "
                                          f"step can be chosen: add one ({example}), or leave the list empty for the defaults")]
