"""The evaluation set: which prompts each round generates, and what each one is scored against."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.profile.identifier import guess_identifier, prompt_words
from engine.profile import Profile

# DreamBench's recontextualisation prompts ("a {identifier} {class} on the beach"…); three of them
# keep a round short while still asking the model to put the subject somewhere new.
RECONTEXTUALISATIONS = ("on the beach", "in the snow", "in the jungle")


@dataclass(frozen=True)
class EvalPrompt:
    prompt: str  # what the model generates from
    scored_prompt: str  # what CLIP-T reads: the prompt without any identifier
    concept: int | None  # the concept whose instance images the images are compared with; None: no identifier

    @property
    def is_subject(self) -> bool:
        return self.concept is not None


def concept_words(instance_prompt: str, class_prompt: str | None) -> tuple[str | None, str | None]:
    """(identifier, class noun) of a concept: 'photo of zwx dog' with 'photo of a dog' gives ('zwx', 'dog').

    The class noun is the word after the identifier in the instance prompt, else the class prompt's last word.
    """
    identifier = guess_identifier(instance_prompt, class_prompt)
    if identifier is None:
        return None, None
    words = prompt_words(instance_prompt)
    after = words.index(identifier) + 1
    noun = words[after] if after < len(words) else (prompt_words(class_prompt or "") or [None])[-1]
    return identifier, noun


def _identifier_word(identifier: str) -> re.Pattern[str]:
    """The identifier as a whole word, in any case (CLIP's tokenizer lowercases: ZWX is zwx), possessive or not
    ("zwx's dog", "zwx’s dog"); 'zwxy' and 'T-rex' (for 'rex') are other words."""
    return re.compile(rf"(?<![\w'’-]){re.escape(identifier)}(?:['’]s)?(?![\w'’-])", re.IGNORECASE)


def without_identifiers(prompt: str, identifiers: list[str]) -> str:
    """``prompt`` with each identifier word removed: CLIP never learnt 'zwx', so CLIP-T reads 'photo of dog'.

    A possessive goes with its identifier ("zwx's dog" is read 'dog'): the prompt counts as naming the concept,
    so the made-up token must not reach CLIP-T, and a lone "'s" would mean nothing."""
    for identifier in identifiers:
        prompt = _identifier_word(identifier).sub("", prompt)
    return re.sub(r"\s+", " ", prompt).strip()


def evaluation_prompts(profile: Profile) -> list[EvalPrompt]:
    """The profile's evaluation prompts (``evaluation.prompts`` or the defaults), each once."""
    words = [concept_words(c.instance_prompt, c.class_prompt) for c in profile.concepts]
    identifiers = [identifier for identifier, _ in words if identifier]
    texts = list(profile.evaluation.prompts)
    if not texts:
        for concept, (identifier, noun) in zip(profile.concepts, words):
            texts.append(concept.instance_prompt)
            if identifier and noun:
                texts += [f"a {identifier} {noun} {place}" for place in RECONTEXTUALISATIONS]
            if concept.class_prompt:
                texts.append(concept.class_prompt)
    prompts = []
    for text in dict.fromkeys(texts):
        prompts.append(EvalPrompt(text, without_identifiers(text, identifiers), _concept_of(text, profile, words)))
    return prompts


def _concept_of(text: str, profile: Profile, words: list[tuple[str | None, str | None]]) -> int | None:
    """The concept a prompt is about: the one whose identifier (or, without one, instance prompt) it holds."""
    for i, (concept, (identifier, _)) in enumerate(zip(profile.concepts, words)):
        if identifier and _identifier_word(identifier).search(text):
            return i
        if identifier is None and text == concept.instance_prompt:
            return i
    return None
