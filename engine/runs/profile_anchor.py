"""The profile as a run folder keeps it: its relative paths made absolute, so that a resume from another working
folder trains what the run started with."""

from __future__ import annotations

import os

from engine.profile import Profile


def anchored_profile(profile: Profile) -> Profile:
    """The profile as the run folder keeps it: its concepts' folders made absolute, so that `dbtui resume` from another
    folder trains the images and class images the run started with, not whatever has the same name there (a relative
    class_dir made a new set of class images, silently); so are its model, VAE and tokenizer where they are a folder or
    file here (a relative model folder failed the resume's load, told as a hub id that cannot be downloaded), its
    scorers where they are a folder here, and launch.config_file where it is here."""
    from engine.builtin import is_builtin
    from engine.profile import validate_data

    data = profile.model_dump(mode="json")
    for concept in data["concepts"]:
        for key in ("instance_dir", "class_dir"):
            value = concept.get(key)
            if value and not is_builtin(value) and not os.path.isabs(value):
                concept[key] = os.path.abspath(value)
    # The scorers' folders too: a relative one, read from another folder, skipped scoring, or scored with another model
    # under the same name (the rounds compared as one scale).
    # And accelerate's config file, which a resume from another folder read as another file, or none.
    for section, keys in (("model", ("pretrained", "vae", "tokenizer")), ("evaluation", ("clip_model", "dino_model")),
                          ("launch", ("config_file",))):
        for key in keys:
            value = data[section].get(key)
            # Only what is here: "owner/name" is a hub id unless a folder of that name is (which loading then reads).
            if value and not is_builtin(value) and not os.path.isabs(value) and os.path.exists(value):
                data[section][key] = os.path.abspath(value)
    return validate_data(data, dumped=True)
