"""Whether a profile's inputs are there before a trainer starts: the model, the images, the libraries and the
settings a run needs, checked in seconds rather than found by the trainer after the model has loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.errors import DbtuiError
from engine.profile import Profile


class RunInputsMissingError(DbtuiError):
    """The model or the images the profile names are not on this machine: found before the trainer starts."""

    advice: str = ""


def check_inputs(profile: Profile, run_dir: Path | None = None, resuming: bool = False,
                 progress: Callable[[int, int], None] | None = None, run_folder: Path | None = None,
                 decode_progress: Callable[[int, int], None] | None = None) -> None:
    """What ``dbtui validate`` refuses (a warning with ``--elsewhere``: a profile written for another machine) stops
    a run here, in seconds, rather than in the trainer after the model has loaded; so do settings the model's family
    refuses, and empty ones a new run cannot start from (``run_dir`` given: the run folder is not made from
    saving.output_dir).
    ``resuming``: a missing library's advice keeps the settings the checkpoints were trained with. ``progress``: told
    (done, total) as the images' headers are read; ``decode_progress`` as the others are decoded, where a header could
    not be read. ``run_folder``: where the run trains, whose own conversion of a single file its load reuses
    (``run_dir`` is given only where the folder was named, not worked out)."""
    from engine.dataset.image_headers import DamagedImagesProblem
    from engine.dataset.offline_model import unreachable_model_problems
    from engine.dataset.profile_paths import path_problems
    from engine.model_problems import family_setting_problems, model_part_problems
    from engine.profile.empty_settings import empty_setting_problems
    from engine.profile.library_problems import missing_library_problems

    refused, _, certain = family_setting_problems(profile)
    listed = (empty_setting_problems(profile, new_run=run_dir is None)
              + path_problems(profile, progress=progress, run_dir=run_folder, decode=True,
                              decode_progress=decode_progress) + model_part_problems(profile.model)
              + missing_library_problems(profile, resuming) + (refused if certain else []))
    if problems := listed + (hub := unreachable_model_problems(profile.model)):  # the hub's: validate asks no network
        said = "; ".join(f"{p.key}: {p.message}" for p in problems).rstrip(".")  # a message may end its own sentence
        # Validate reads headers alone: a picture cut short past its own is not among those it lists. Told by a field,
        # not by the words of the message, which also hold the user's file names.
        cut = any(isinstance(p, DamagedImagesProblem) and p.cut_short for p in listed)
        also = (f" `dbtui validate PROFILE` lists {'the others' if hub else 'these'} too"
                + (", but for the pictures cut short past their header, which it does not decode: `dbtui dataset check "
                   "FOLDER` names them." if cut else ".") if listed else "")
        raise RunInputsMissingError(f"cannot start the run: {said}.{also}")
