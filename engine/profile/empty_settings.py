"""Settings a file may hold empty that a run cannot start from: an empty output folder or evaluation scorer.

Said by `dbtui validate`, the wizard's review and a run's start, never when a file is read: run profiles and checkpoint
records written before these were refused hold them empty, and a resume reads those as they are (the run folder is
then the one given, and the run kept its scorers).
"""

from __future__ import annotations

from engine.profile.problems import Problem
from engine.profile.schema import Profile


def empty_setting_problems(profile: Profile, *, new_run: bool = True) -> list[Problem]:
    """Errors for the empty ones of these that matter: ``saving.output_dir`` where the run folder is made from it (a new
    run's ``new_run``), and the scorers while evaluation is on. A resume (``new_run`` false) trains as it was started."""
    if not new_run:
        return []
    problems = []
    if not profile.saving.output_dir.strip():
        # Empty, the run folder was NAME in whatever folder dbtui ran in, its files mixed with the user's.
        problems.append(Problem("saving.output_dir", "is empty; give the folder that holds the run folders, e.g. runs (the "
                                                     "default), or . for the folder dbtui runs in"))
    if profile.evaluation.enabled:
        for key in ("clip_model", "dino_model"):
            if not getattr(profile.evaluation, key).strip():
                # Empty, an evaluating run started and then went unscored, "cannot load the scorer ''" its only word.
                problems.append(Problem(f"evaluation.{key}", "is empty; name the scorer model: a hub id (as the default "
                                                             "is), a local folder, or builtin:tiny-clip / builtin:tiny-dino"))
    return problems
