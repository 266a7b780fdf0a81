"""What the Model step says: its help, the family and folder lines of a model checked, the terminal command for a
conversion it cannot run, and a conversion's warnings and failures."""

from __future__ import annotations

import re
import shlex

from textual.content import Content

from engine.profile.model_source import read_source

# Three rows at 80 columns, beside a scroll bar too: under it, a Flux file's parts and Convert fit 80x24.
SOURCE_HELP = ("An SD1.x, SD2.x, SDXL or Flux.1 model: a diffusers folder, a hub id such as black-forest-labs/FLUX.1-dev, "
               "a .safetensors/.ckpt file (converted here), or builtin:tiny-sd1 for the demo.")


def terminal_command(said: str, source: str, out_dir: str) -> str | None:
    """The command for a conversion the engine's message asks to run with --config or --prediction-type, which the
    wizard does not pass, with this file and folder filled in; None when it asks neither."""
    options = ["--config FOLDER"] if "--config" in said else []
    prediction = re.search(r"--prediction-type (epsilon|v_prediction)", said)
    if prediction:
        options.append(prediction.group(0))
    elif "--prediction-type" in said:
        options.append("--prediction-type epsilon|v_prediction")
    if not options:
        return None
    command = " ".join([shlex.join(["dbtui", "convert", "to-diffusers", source, out_dir]), *options])
    return f"In a terminal: {command}\nthen give that folder as the base model above."


def size_line(native: int, trains: object, *, guessed: bool = False) -> str:
    """What the model's native size (``guessed``: its family's usual size, by the model's name) means for this
    profile, which trains at ``trains`` (dataset.resolution as the draft holds it; None: not set)."""
    from engine.model_problems import takes_resolution

    made = "Likely made for" if guessed else "Made for"
    said = f"{made} {native} px images{' (by its name)' if guessed else ''}"
    if trains is None or trains == native:
        return f"{said}: the dataset step checks yours at that size."
    if not takes_resolution(trains):  # 0 or -3 read "this profile trains at 0 px", of a size no profile takes
        return f"{said}; dataset.resolution in Parameters is no size a profile takes: set one there."
    return f"{said}; this profile trains at {trains} px (dataset.resolution in Parameters)."


def on_disk(source: str) -> str:
    """The file ``source`` names, ``~`` and ``$VAR`` read as the profile reads them, for a command the user copies: a
    shell given '$MODELS/x.safetensors' in quotes passes it on as typed. (The engine calls read the draft themselves.)"""
    return str(read_source(source))


def family_text(info, trains: int | None, guessed_size: int | None = None) -> Content:
    """The family found, marked ✓ or ✗, and what the model's native size (else ``guessed_size``, by its name: a hub id
    not downloaded) means for this profile, warned of where it trains far from it."""
    from engine.model_problems import resolution_effect

    # The mark says it without colour too (a monochrome terminal, colour blindness).
    mark, colour = ("✓", "green") if info.supported else ("✗", "red")
    text = Content.from_markup(f"[{colour}]{mark} $family[/]", family=info.family)
    native = (info.resolution or guessed_size) if info.supported else None
    if native:
        text += Content("\n" + size_line(native, trains, guessed=not info.resolution))
        effect = resolution_effect(trains, native)
        if effect:
            text += Content.from_markup(f"\n[yellow]⚠ At {trains} px {effect}: train at {native} px, or near it.[/]")
    return text


def folder_text(info) -> Content:
    """What the profile will use, or what a single file may do, where no conversion is offered yet."""
    single = info.kind == "single-file" and info.supported
    if info.folder and info.supported:
        return Content.from_markup("The profile will use: [b]$source[/b]", source=info.source)  # as stored: not a builtin's cache folder
    if single and info.family_id == "flux":
        return Content("Convert it here with the parts above; left as it is, training converts it with the file's own hub repository.")
    if single:
        return Content("Convert it once here, or leave it: training converts it into the run folder.")
    return Content()


def warning_text(message: str, advice: str, source: str, into: str) -> tuple[str, Content]:
    """A conversion's warning as said (the toast), and the lines kept on screen: with the command that converts
    ``source`` otherwise into a folder beside ``into`` (as typed: a shell reads variables)."""
    other = re.search(r"--prediction-type (\w+)", advice)
    said = f"{message}; {advice}" if advice else message
    command = terminal_command(said, on_disk(source), f"{on_disk(into)}-{other.group(1) if other else 'again'}")
    return said, Content.from_markup("[yellow]⚠ $said[/]" + ("\n$command" if command else ""), said=said, command=command)


def failure_text(what: str, message: str, source: str, into: str) -> Content:
    """A check's or conversion's failure; a conversion's with the terminal command that runs it where it asks one.
    The words are values, not markup: escaped, a message ending in \\ still ate the closing tag."""
    command = terminal_command(message, on_disk(source), on_disk(into) or "OUT")
    shown = what == "Conversion" and command
    return Content.from_markup("[red]✗ $message[/]" + ("\n$command" if shown else ""), message=message, command=command)
