"""What the dataset step tells of a concept: the identifier its prompts name and how the tokenizer splits it, and
what to do about its check's errors."""

from __future__ import annotations

import re

from rich.markup import escape


def guess_identifier(instance_prompt: str, class_prompt: str | None) -> str | None:
    """The word of the instance prompt that the class prompt lacks ('photo of zwx dog' vs 'photo of a dog')."""
    words = re.findall(r"[\w-]+", instance_prompt.lower())
    others = set(re.findall(r"[\w-]+", (class_prompt or "").lower())) | {"photo", "of", "a", "an", "the", "in", "sks"}
    extra = [w for w in words if w not in others]
    if "sks" in words:
        return "sks"
    return extra[0] if extra else None


def errors_advice(report) -> str:
    """What to do about the report's errors, promising of Prepare only what it does: it leaves unusable images out of
    its copies, and mends no caption, prompt or setting."""
    from engine.dataset.image_probe import PROBLEMS

    errors = [finding for finding in report.findings if finding.severity == "error"]
    images = sum(finding.code in PROBLEMS for finding in errors)
    others = len(errors) - images
    advice = [f"Prepare makes copies without the {images} unusable image(s)"] if images else []
    if others:
        advice.append(f"fix {f'the other {others}' if images else 'them'} as each finding says (Prepare does not)")
    return "; ".join(advice)


def tokens_said(identifier: str, tokens: list[str] | str | None) -> str:
    """The token line (markup): ``tokens`` as the tokenizer split the identifier, None where it spells every word
    letter by letter, or why the check could not run."""
    identifier = escape(identifier)  # the user's words, shown as typed
    if tokens is None:
        return (f"Identifier '{identifier}': [dim]not judged: this model's tokenizer spells every word letter by "
                "letter (the built-in demo's)[/]")
    if isinstance(tokens, str):
        return f"Identifier '{identifier}': [dim]token check unavailable ({escape(tokens)})[/]"
    if len(tokens) == 1:
        return f"Identifier '{identifier}': [green]one token ✓[/]"
    return (f"Identifier '{identifier}': [yellow]splits into {len(tokens)} tokens "
            f"({' + '.join(escape(token) for token in tokens)}); a rare single-token word trains better[/]")
