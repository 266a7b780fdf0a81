"""Concept settings that run, but not as meant: two concepts captioned with one prompt (they train as one subject),
class settings that nothing reads while prior preservation is off, a class prompt that names the subject, and a prior
loss weighted 0.

Warnings, not errors: a subject's photos split over two folders is a fair reason to share a prompt, class settings
are kept for when prior preservation is switched on, and a guessed identifier may be a word the class shares.
"""

from __future__ import annotations

import os
from pathlib import PurePath

from engine.profile.identifier import FILLER_WORDS, guess_identifier, prompt_words
from engine.profile.model_source import BUILTIN_PREFIX
from engine.profile.problems import Problem
from engine.profile.schema import Profile, concept_label
from engine.support.generated_set import generated_set_holding

# The caption modes whose captions hold the instance prompt.
_PROMPT_MODES = {"instance_prompt", "caption_file_then_prompt", "prompt_then_caption_file"}


def same_text(prompt: str) -> str:
    """A prompt as compared with another: case and spacing aside."""
    return " ".join(prompt.casefold().split())


def shared_prompt_problems(profile: Profile) -> list[Problem]:
    """A concept whose instance prompt an earlier concept uses as well."""
    problems: list[Problem] = []
    first_with: dict[str, int] = {}
    for index, concept in enumerate(profile.concepts):
        if concept.caption_mode not in _PROMPT_MODES or not concept.instance_prompt.strip():
            continue
        earlier = first_with.setdefault(same_text(concept.instance_prompt), index)
        if earlier != index:
            problems.append(Problem(
                f"concepts.{index}.instance_prompt",
                f"is the prompt of {concept_label(earlier)} too, so the model learns both folders as one subject: give "
                "each subject its own identifier (e.g. 'photo of zwx dog' and 'photo of qxr cat'), or put one subject's "
                "photos in one concept",
            ))
    return problems


def unused_class_problems(profile: Profile) -> list[Problem]:
    """A concept with a class folder or class prompt while prior preservation, which alone trains on class images, is
    off: a new profile has it off, and the wizard asks for those settings on the Dataset step, before Parameters."""
    if profile.prior.enabled:
        return []
    problems: list[Problem] = []
    for index, concept in enumerate(profile.concepts):
        class_prompt = "" if _scoring_reads(profile, concept.instance_prompt, concept.class_prompt) else concept.class_prompt
        if not (concept.class_dir or class_prompt):
            continue
        key = f"concepts.{index}.{'class_dir' if concept.class_dir else 'class_prompt'}"
        what = " and ".join(name for name, value in (("class folder", concept.class_dir), ("class prompt", class_prompt))
                            if value)
        problems.append(Problem(
            key,
            f"is not used in training: prior preservation is off; turn it on in Parameters ([prior] enabled = true, for every "
            f"concept: each then needs a class folder and prompt), or leave the {what} empty",
        ))
    return problems


def _scoring_reads(profile: Profile, instance_prompt: str, class_prompt: str | None) -> bool:
    """Whether [evaluation] reads the class prompt while prior preservation is off: emptying it, as the warning advised,
    took scores away. Its default prompts score it (the class drift's prompt); any prompts find the identifier by it
    where the instance prompt alone does not tell it ('photo of zwx red disc'): without it, 'a zwx red disc on the
    beach' was scored as a class prompt, its 'zwx' read by CLIP-T."""
    if not profile.evaluation.enabled or not class_prompt:
        return False
    return not profile.evaluation.prompts or guess_identifier(instance_prompt, class_prompt) != guess_identifier(instance_prompt, None)


def class_prompt_problems(profile: Profile) -> list[Problem]:
    """A class prompt that is the concept's instance prompt, or names its identifier: the class images are then the base
    model's picture of the subject's own prompt, and the prior loss pulls that prompt back to it, against what the
    instance images teach."""
    if not profile.prior.enabled:
        return []  # unused_class_problems' to say
    problems: list[Problem] = []
    for index, concept in enumerate(profile.concepts):
        instance, wanted = concept.instance_prompt, (concept.class_prompt or "").strip()
        if concept.caption_mode not in _PROMPT_MODES or not instance.strip() or not wanted:
            continue
        identifier = guess_identifier(instance, None)
        if same_text(wanted) == same_text(instance):
            said = "is the instance prompt"
        elif guess_identifier(instance, wanted.replace("'", " ")):  # 'dog's' holds the word 'dog'
            continue  # the class prompt lacks one word of the instance prompt: that one is the identifier, not a shared one
        elif identifier and identifier.casefold() in _words(wanted):
            said = f"names the subject's identifier '{identifier}'"
        elif (named := _words(instance) - FILLER_WORDS) and named <= _words(wanted):  # "!!!" names no word to hold
            said = "holds every word of the instance prompt, so whichever of them names the subject"
        else:
            continue
        problems.append(Problem(
            f"concepts.{index}.class_prompt",
            f"{said}: the class images would show the base model's idea of the subject's own prompt, and prior "
            "preservation would pull that prompt back to it, against the instance images; write the class alone, without "
            "the identifier (e.g. 'photo of a dog' for 'photo of zwx dog')",
        ))
    return problems


def _words(prompt: str) -> set[str]:
    return {word.casefold() for word in prompt_words(prompt)}


def prior_weight_problems(profile: Profile) -> list[Problem]:
    """Prior preservation on with its loss weighted 0: every class image is still generated and each step still runs the
    denoiser on them, for a loss that counts for nothing."""
    if not profile.prior.enabled or profile.prior.loss_weight > 0:
        return []
    return [Problem("prior.loss_weight", "is 0: the class images would be generated and each step would run on twice the "
                                         "images, for a loss that trains nothing; turn prior preservation off ([prior] "
                                         "enabled = false), or give the class loss a weight (1.0 is usual)")]


def generated_set_problems(profile: Profile) -> list[Problem]:
    """A class folder that is (or is inside, or links into) a set dbtui generated under a class folder for one class
    prompt: its images are the run's own pictures of that folder, taken first as class images whatever this concept's
    class prompt. Known by the manifest in it, not by its name (a folder of the user's own may be named generated-…)."""
    if not profile.prior.enabled:
        return []  # unused_class_problems' to say
    problems: list[Problem] = []
    for index, concept in enumerate(profile.concepts):
        folder = concept.class_dir or ""
        found = None if not folder or folder.startswith(BUILTIN_PREFIX) else generated_set_holding(folder)
        if found is None:
            continue
        # The class folder as the user wrote it where the path written names it, else where the set really is.
        written = PurePath(folder).parents
        parent = next((str(p) for p in written
                       if os.path.realpath(os.path.expanduser(p)) == os.path.realpath(found.parent)), str(found.parent))
        inside = os.path.realpath(found) != os.path.realpath(os.path.expanduser(folder))
        problems.append(Problem(
            f"concepts.{index}.class_dir",
            f"is{' inside' if inside else ''} dbtui's generated class-image set '{found.name}' of the class "
            f"folder '{parent}', made for one class prompt: its images would be taken as this concept's class images "
            f"whatever its class prompt ('{concept.class_prompt}'); set class_dir = \"{parent}\" (dbtui keeps each class "
            "prompt's generated images apart there) or a class folder of its own",
        ))
    return problems


def warned_before_class_images(profile: Profile) -> list[Problem]:
    """Those of these warnings a run's log says too, for a run started without `dbtui validate` (headless, or the wizard's
    review passed by), before it generates class images: they are about what that costs. ``shared_prompt_problems``
    the run says as it starts training."""
    return class_prompt_problems(profile) + prior_weight_problems(profile) + generated_set_problems(profile)
