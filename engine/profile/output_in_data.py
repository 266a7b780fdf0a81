"""A run folder inside a concept's data folder: ``saving.output_dir`` in (or at) an instance or class folder.

The run reads only the images directly in those folders, so training never takes the run's files; but its previews
(PNG files under RUN/samples/) then lie among the user's pictures, where `dbtui dataset check -r`, a copy of the
folder for another tool or a class folder's count of pictures it does not use takes them for photos.
"""

from __future__ import annotations

import os

from engine.profile.concept_pairs import folder_identity
from engine.profile.model_source import BUILTIN_PREFIX
from engine.profile.problems import Problem
from engine.profile.schema import Profile


def output_in_data_problems(profile: Profile) -> list[Problem]:
    """A warning for each concept folder ``saving.output_dir`` is in, saying where to put it instead."""
    output = folder_identity(profile.saving.output_dir)
    problems: list[Problem] = []
    for index, concept in enumerate(profile.concepts):
        folders = [("instance_dir", concept.instance_dir)] + ([("class_dir", concept.class_dir)]
                                                              if profile.prior.enabled and concept.class_dir else [])
        for key, folder in folders:
            if folder.startswith(BUILTIN_PREFIX):
                continue  # dbtui's own, in its cache: no output_dir written by hand is in it
            data = folder_identity(folder)
            if output == data or output.startswith(data.rstrip(os.sep) + os.sep):
                beside = os.path.join(os.path.dirname(data), "runs")
                problems.append(Problem("saving.output_dir", (
                    f"'{profile.saving.output_dir}' is inside concepts.{index}.{key} '{folder}': the run's previews "
                    f"(PNG files in {os.path.join(profile.saving.output_dir, profile.name, 'samples')}) would lie among your pictures, where `dbtui dataset check "
                    f"-r` and a copy of the folder take them for training pictures (the run itself reads only the "
                    f"folder's own files); set saving.output_dir to a folder outside it, such as '{beside}'")))
    return problems
