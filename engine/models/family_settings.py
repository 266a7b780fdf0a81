"""Whether a profile's settings suit its model's family, known before any weights load.

The trainer asks the family (``Family.check_profile``) once the model has loaded; ``dbtui validate``
asks the same family here, found as ``engine.model_info.likely_family`` finds it (the model's own
files where they are on this machine, else its name), so that "valid" means the run will not be
refused at the load for a setting its family cannot honour.
"""

from __future__ import annotations

from engine.errors import DbtuiError
from engine.profile.problems import Problem
from engine.profile.schema import Profile


def family_setting_problems(profile: Profile) -> list[Problem]:
    """The setting the model's family refuses, as a problem of ``model.pretrained``; none when it takes them all."""
    from engine.builtin import builtin_family, is_builtin
    from engine.model_info import likely_family
    from engine.models.registry import family_named

    source = profile.model.pretrained
    try:
        # A built-in is known by name: asking its files would build it (Flux's full size is 34 GB).
        family = family_named((builtin_family(source) or "") if is_builtin(source) else likely_family(source))
    except (DbtuiError, KeyError):
        return []  # a model that cannot be told here is the load's to report
    try:
        family.check_profile(profile)
    except DbtuiError as error:
        return [Problem("model.pretrained", f"as a {family.label} model, this profile is refused: {error}")]
    return []
