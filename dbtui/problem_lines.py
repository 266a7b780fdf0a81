"""A profile problem as the Parameters step lists it: one whose key is set on an earlier step says which, since the
form has no field for it (the concepts' folders and prompts, the model), and the user would look for it there."""

from __future__ import annotations

import re

from engine.profile import Problem

# Key prefix → where the wizard sets it, and the way back there from Parameters.
EARLIER_STEPS = (("concepts.", "on the Dataset step (Esc)"), ("model.pretrained", "on the Model step (Esc twice)"))
# Keys an opened profile may hold that no step has a field for: where they are set instead.
NO_FIELD = ("model.vae", "model.tokenizer")
IN_THE_FILE = ("; the wizard has no field for it: edit it in the profile file (Ctrl+S writes the draft there) and open "
               "that file again")


def problem_line(problem: Problem, *, say_step: bool = False) -> str:
    """``key: message``; with ``say_step``, where the key is set when that is an earlier step."""
    line = f"{problem.key or 'profile'}: {problem.told(quote='')}"  # the engine's words as they are: its concepts count from 1
    where = next((step for prefix, step in EARLIER_STEPS if problem.key.startswith(prefix)), None) if say_step else None
    if say_step and problem.key in NO_FIELD:
        return line + IN_THE_FILE
    concept = re.match(r"concepts\.(\d+)(?:\.|$)", problem.key)
    if concept:  # keys count concepts from 0, the Dataset step's selector from 1
        named = f"concepts.{concept[1]} is Concept {int(concept[1]) + 1}"
        return line + (f"; set it {where}, where {named}" if where else f" ({named} on the Dataset step)")
    return line + (f"; set it {where}" if where else "")
