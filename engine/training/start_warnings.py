"""What a run warns of as it starts, for a profile ``dbtui validate`` (or the wizard's review) never checked: a
headless `dbtui run` is read only by its log."""

from __future__ import annotations

from engine.evaluation.prompt_problems import empty_prompt_problems, shared_identifier_problems
from engine.profile import Profile
from engine.profile.concept_warnings import shared_prompt_problems
from engine.profile.output_in_data import output_in_data_problems
from engine.profile.problems import Problem


def run_start_problems(profile: Profile) -> list[Problem]:
    """The profile's evaluation prompts that name no subject or another concept's, and a run folder among the user's
    pictures: the warnings validate gives that a run would otherwise go on without a word of."""
    return (shared_prompt_problems(profile) + shared_identifier_problems(profile) + empty_prompt_problems(profile)
            + output_in_data_problems(profile))
