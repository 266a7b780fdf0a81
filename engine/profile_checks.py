"""Every check of a profile short of loading its model, in one place: ``dbtui validate`` and the wizard's review
both call ``check_profile``, so that what one says the other says too.

Here rather than in engine.profile, which stays plain data: these read the model's files and the data folders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from engine.dataset.caption_problems import unread_caption_problems
from engine.dataset.profile_paths import every_machine_problems, path_problems
from engine.dataset.shared_class_folder import shared_class_folder_problems
from engine.evaluation.prompt_problems import evaluation_problems, scorer_problems, shared_identifier_problems
from engine.model_problems import family_setting_problems, model_part_problems, resolution_problems
from engine.profile import Problem, Profile
from engine.profile.concept_warnings import (class_prompt_problems, generated_set_problems, prior_weight_problems,
                                            shared_prompt_problems, unused_class_problems)
from engine.profile.empty_settings import empty_setting_problems
from engine.profile.library_problems import missing_library_problems
from engine.profile.output_in_data import output_in_data_problems
from engine.profile.schedule_warnings import schedule_problems
from engine.profile.unused_lora_settings import unused_lora_problems


class ProfileChecks(NamedTuple):
    """A profile's problems, by who must act on them."""

    errors: list[Problem]  # wrong on any machine (a misspelt built-in, a setting the model's family refuses): no run starts
    missing_here: list[Problem]  # what this machine lacks (folders, images, captions, the model): no run starts here
    warnings: list[Problem]  # settings that run, likely not as meant


def check_profile(profile: Profile, family_id: str | None = None, missing_here: list[Problem] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> ProfileChecks:
    """What ``dbtui validate`` reports of ``profile``. ``family_id``: the model's family as already read from its files
    (the wizard's model step), taken as certain; without it the family is read here, or guessed from the model's name,
    and what a guessed family refuses is only a warning. ``missing_here``: ``path_problems(profile, builtins=False)``
    as found already (the wizard's, while the settings they read are unchanged), so that they are not read again.
    ``progress``: told (done, total) as the images' headers are read."""
    refused, family_warnings, certain = family_setting_problems(profile, family_id)
    errors = empty_setting_problems(profile) + every_machine_problems(profile) + (refused if certain else [])
    here = ((path_problems(profile, builtins=False, progress=progress) if missing_here is None else missing_here) + model_part_problems(profile.model)
            + missing_library_problems(profile))
    # A scorer folder missing here is a warning, not what this machine lacks: the run goes on, unscored.
    warnings = (([] if certain else refused) + family_warnings + evaluation_problems(profile) + scorer_problems(profile)
                + shared_prompt_problems(profile) + shared_identifier_problems(profile) + unused_class_problems(profile)
                + class_prompt_problems(profile) + prior_weight_problems(profile) + generated_set_problems(profile)
                + shared_class_folder_problems(profile) + output_in_data_problems(profile)
                + schedule_problems(profile) + resolution_problems(profile) + unused_lora_problems(profile)
                + unread_caption_problems(profile))
    return ProfileChecks(errors, here, warnings)
