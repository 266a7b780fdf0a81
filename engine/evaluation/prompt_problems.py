"""Evaluation settings that can never name a best step (no prompt names a concept, a scorer folder that is not there),
and concepts it would score against another's photos: said by ``dbtui validate`` before a run spends its rounds."""

from __future__ import annotations

import os
from pathlib import Path

from engine.evaluation.prompts import concept_words, evaluation_prompts
from engine.profile import Profile, concept_label
from engine.profile.concept_warnings import shared_prompt_problems
from engine.profile.problems import Problem
from engine.support.hub_snapshot import download_command, hub_offline, is_hub_id, relative_folder_hint
from engine.support.relative_paths import where_read


# How a style, trained from its captions with no identifier, can have a best step: only a prompt naming a concept's
# identifier (or being its whole instance prompt) is compared with that concept's pictures.
STYLE_IDENTIFIER = ("to have a best step named, train an identifier with the captions (caption_mode = "
                    "\"prompt_then_caption_file\", instance_prompt = \"zwx style\") and name it in evaluation.prompts "
                    "('a lighthouse at dusk, zwx style'), or turn [evaluation] off")


def evaluation_problems(profile: Profile) -> list[Problem]:
    """Evaluation prompts that can choose no best step: custom ones none of which names a concept (no round scores the
    subject), or, left to the defaults, a concept's empty instance prompt (a style's), which a round scores as is."""
    if not profile.evaluation.enabled:
        return []
    if not profile.evaluation.prompts:
        return empty_prompt_problems(profile)
    if any(prompt.is_subject for prompt in evaluation_prompts(profile)):
        return []
    named = [" ".join(filter(None, words)) for words in (concept_words(c.instance_prompt, c.class_prompt) for c in profile.concepts)
             if words[0]]
    if not named and not any(c.instance_prompt.strip() for c in profile.concepts):
        # "Leave the list empty for the defaults" pointed a style run back to scoring its empty prompt.
        return [Problem("evaluation.prompts", "none names a concept's identifier, and no concept has one (their instance "
                                              f"prompts are empty), so no best step can be chosen: {STYLE_IDENTIFIER}")]
    example = f"e.g. 'a {named[0]} on the beach'" if named else "e.g. a concept's instance prompt"
    return [Problem("evaluation.prompts", "none names a concept's identifier, so no round scores the subject and no best "
                                          f"step can be chosen: add one ({example}), or leave the list empty for the defaults")]


def empty_prompt_problems(profile: Profile) -> list[Problem]:
    """[evaluation] left to its default prompts, which are each concept's instance prompt, where one is empty (a style
    run's, trained from its captions): every round scored images of an empty prompt, and named a best step by them."""
    empty = [f"concepts.{i}.instance_prompt" for i, c in enumerate(profile.concepts) if not c.instance_prompt.strip()]
    if not profile.evaluation.enabled or profile.evaluation.prompts or not empty:
        return []
    return [Problem("evaluation.prompts", f"is empty, so [evaluation] scores each concept's instance prompt, and "
                                          f"{' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: its rounds "
                                          "score images made from no prompt, whose CLIP-T, that the best step is held to, "
                                          "reads an empty text. Set evaluation.prompts, the prompts the scorer generates "
                                          "(sampling.prompts makes only the previews); without an identifier they measure "
                                          f"only drift from the base model: {STYLE_IDENTIFIER}")]


def shared_identifier_problems(profile: Profile) -> list[Problem]:
    """A concept whose identifier an earlier concept's prompt holds too ('photo of zwx dog', 'photo of zwx cat'): one token
    learns both subjects, and evaluation scores a prompt with it against the first concept's photos only. Two concepts
    with one whole prompt are ``shared_prompt_problems``' to say."""
    problems: list[Problem] = []
    said = {problem.key for problem in shared_prompt_problems(profile)}
    first_with: dict[str, int] = {}
    for index, concept in enumerate(profile.concepts):
        identifier, _ = concept_words(concept.instance_prompt, concept.class_prompt)
        if identifier is None:
            continue
        earlier = first_with.setdefault(identifier.casefold(), index)  # CLIP's tokenizer lowercases: ZWX is zwx
        key = f"concepts.{index}.instance_prompt"
        if earlier != index and key not in said:
            problems.append(Problem(
                key,
                f"uses the identifier '{identifier}' of {concept_label(earlier)} too: one token would learn both "
                "subjects, and evaluation would score this concept's prompts against that concept's photos; give each "
                "concept its own rare token (e.g. 'photo of zwx dog' and 'photo of qxr cat')",
            ))
    return problems


def missing_scorer_folder(name: str) -> str | None:
    """Why the scorer ``name`` cannot be loaded when it is written as a path (/, ./, ../, ~, or a name no hub id can be:
    "models/dino/" as the shell completes it, "models/clip/vit") to no folder; None otherwise (a hub id, a built-in
    name, a folder that is there). Without this a path was looked up as a hub id and said to be "offline, and not in
    the Hugging Face cache"."""
    if not name.startswith(("/", "./", "../", "~")) and (name.startswith("builtin:") or is_hub_id(name)):
        return None
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # '~someone/clip' for a user this machine does not have
        return f"the path '{name}' starts with '{name.split('/')[0]}', which names no user here: write the path out"
    # os.path's tests, not Path's: they answer False for a name the system refuses (too long, say) instead of raising.
    if os.path.isdir(path):
        return None
    if os.path.exists(path):
        return f"the path '{name}' is a file, not a folder: give the model's folder (the one holding its config.json)"
    return f"the folder '{name}' does not exist{where_read(path)}"


def scorer_problems(profile: Profile) -> list[Problem]:
    """Scorers named as folders that are not on this machine: the run would go on unscored, with one warning."""
    if not profile.evaluation.enabled:
        return []
    problems = []
    for key, own in (("clip_model", "builtin:tiny-clip"), ("dino_model", "builtin:tiny-dino")):
        name = getattr(profile.evaluation, key)
        if name in ("builtin:tiny-clip", "builtin:tiny-dino") and name != own:  # said only once the run had loaded
            problems.append(Problem(f"evaluation.{key}", f"{name} is the other scorer: the run would not be scored; "
                                                         f"write {own}"))
        missing = missing_scorer_folder(name)
        if missing:
            problems.append(Problem(f"evaluation.{key}", f"{missing}: the run would not be scored; give a model folder, a hub "
                                                         "id, or builtin:tiny-clip / builtin:tiny-dino"))
        offline = None if missing else offline_scorer(name)
        if offline:  # already a hub id: what it lacks is its download
            problems.append(Problem(f"evaluation.{key}", f"{offline}: the run would not be scored; "
                                                         f"{scorer_download_advice(name)}.{relative_folder_hint(name)}"))
    return problems


def scorer_download_advice(name: str) -> str:
    """How to get the hub scorer ``name`` that HF_HUB_OFFLINE keeps from being downloaded: into the cache (`hf download`
    obeys HF_HUB_OFFLINE too, hence its =0), or as a folder from a machine with internet."""
    return (f"download it first, where this machine reaches the hub (`{download_command(name, into_cache=True)}` keeps "
            f"it in the cache), or give a folder of it (`{download_command(name)}` on a machine with internet, then copy "
            "FOLDER here)")


def offline_scorer(name: str) -> str | None:
    """Why the scorer ``name``, a hub id, cannot be loaded where HF_HUB_OFFLINE forbids downloading and it is not in the
    Hugging Face cache; None otherwise (online, cached, not a hub id). The run found it out only once the model had
    loaded, and trained unscored with one warning."""
    if not hub_offline() or name.count("/") != 1 or name.startswith(("/", "./", "../", "~")):
        return None
    if os.path.isdir(name):  # 'models/clip' in the working folder: the run loads it as a folder before any hub id
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repo id: the run says what it is
        return None
    if isinstance(cached, str):
        return None
    return f"'{name}' is not in the Hugging Face cache, and HF_HUB_OFFLINE forbids downloading it"
