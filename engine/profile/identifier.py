"""A concept's identifier as its prompts tell it: plain text, read by the profile's own warnings and the dataset doctor."""

from __future__ import annotations

import re

# Words around a subject's name in an instance prompt ('a photo of zwx dog'), as the wizard's dataset step skips them.
FILLER_WORDS = {"photo", "of", "a", "an", "the", "in"}


def prompt_words(prompt: str) -> list[str]:
    """A prompt's words, a possessive's 's (or ’s) dropped: in 'photo of zwx's dog' the subject's name is 'zwx', the
    word a caption or the tokenizer is checked for. So is a plural possessive's or a quote's apostrophe at either end
    ("sks' dog", "'zwx' dog"); one inside a word stays (o'brien)."""
    words = (re.sub(r"['’]s$", "", word, flags=re.IGNORECASE).strip("'’") for word in re.findall(r"[\w'’]+", prompt))
    return [word for word in words if word]  # a lone "'s" names nothing


def guess_identifier(instance_prompt: str, class_prompt: str | None) -> str | None:
    """The word of the instance prompt that the class prompt lacks ('photo of zwx dog' vs 'photo of a dog', or vs 'a
    dog': fillers aside). Without a class prompt: the first of the prompt's two words besides 'a photo of' and the
    like, where they stand side by side (an identifier before its class noun, as the guide writes it); none for a
    prompt of another shape, such as 'painting in zwx style' or 'a portrait of ohwx'."""
    if not class_prompt:
        words = prompt_words(instance_prompt)
        kept = [i for i, word in enumerate(words) if word.lower() not in FILLER_WORDS]
        return words[kept[0]] if len(kept) == 2 and kept[1] == kept[0] + 1 else None
    words = prompt_words(instance_prompt)
    class_words = set(prompt_words(class_prompt.lower()))
    extra = [i for i, w in enumerate(words) if w.lower() not in class_words]
    if len(extra) == 1:
        return words[extra[0]]
    # A class prompt without the instance prompt's fillers ('photo of zwx disc' vs 'a disc'): its one other word, if
    # no word the two share stands before it ('photo of zwx disc' vs 'a zwx' names the identifier, not 'disc').
    named = [i for i in extra if words[i].lower() not in FILLER_WORDS]
    shared = [i for i, w in enumerate(words) if w.lower() in class_words and w.lower() not in FILLER_WORDS]
    return words[named[0]] if len(named) == 1 and not any(i < named[0] for i in shared) else None
