"""What the dataset step tells of a concept: its name in the selector, the identifier its prompts name and how the
tokenizer splits it, and what to do about its check's errors."""

from __future__ import annotations

from pathlib import Path

from textual.content import Content

from dbtui.problem_lines import problem_line
from engine.profile import Problem


def concept_name(index: int, folder: str | None) -> str:
    """The selector's name of concept ``index``: by its images folder's last part ("." and "/" have none), or in
    words while it has no folder ("Concept 1: ?" read as a question)."""
    if not folder:
        return f"Concept {index + 1} (no folder yet)"
    return f"Concept {index + 1}: {Path(folder).name or folder}"


# Caption modes that never train the instance prompt: what trains instead, where a style needs no identifier.
_CAPTIONS_ALONE = {"caption_file": "each image's own caption", "file_name": "each image's file name"}


def no_identifier_said(concept: dict) -> str:
    """The token line (markup) where the concept's prompts tell no identifier (``engine.profile.identifier``'s guess,
    which the run's evaluation and the dataset doctor read): how to write them so that one is told, unless its caption
    mode never trains the instance prompt (a style or native fine-tune, as profiles/sd15-style-native.toml)."""
    alone = _CAPTIONS_ALONE.get(concept.get("caption_mode") or "")
    if alone:
        return (f"[dim]No identifier: training reads {alone} alone, as a style or native fine-tune does; to train a "
                "subject, put a rare word for it there.[/]")
    if concept.get("class_prompt"):
        return ("[yellow]No identifier found: the instance prompt should be the class prompt with one rare word added, "
                "e.g. 'photo of zwx dog' with 'photo of a dog'.[/]")
    return "[yellow]No identifier found: write the instance prompt as a rare word before the class word, e.g. 'photo of zwx dog'.[/]"


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


def tokens_said(identifier: str, tokens: list[str] | str | None) -> Content:
    """The token line: ``tokens`` as the tokenizer split the identifier, None where it spells every word letter by
    letter, or why the check could not run. The user's words are values, shown as typed (escaped into the markup, one
    ending in \\ ate the closing tag)."""
    if tokens is None:
        said = "[dim]not judged: this model's tokenizer spells every word letter by letter (the built-in demo's)[/]"
    elif isinstance(tokens, str):
        said = "[dim]token check unavailable ($why)[/]"
    elif len(tokens) == 1:
        said = "[green]one token ✓[/]"
    else:
        said = f"[yellow]splits into {len(tokens)} tokens ($split); a rare single-token word trains better[/]"
    split = " + ".join(tokens) if isinstance(tokens, list) else ""
    return Content.from_markup("Identifier '$identifier': " + said, identifier=identifier, why=tokens if isinstance(tokens, str) else "", split=split)


def problems_said(problems: list[Problem], index: int) -> str:
    """The draft's problems that keep concept ``index`` from being checked or prepared (its own where it has some, up to
    four), one a line, each saying which of the step's concepts it is of: 'concepts.1.class_prompt' was read as the
    selector's Concept 1, the first. A key is the concept's only where 'concepts.N' ends it or a '.' follows: 'concepts.1'
    begins 'concepts.10' too."""
    mine = [p for p in problems if f"{p.key}.".startswith(f"concepts.{index}.")] or problems
    return "\n".join(problem_line(problem) for problem in mine[:4])
