"""The images in sub-folders of an image folder, which neither the check nor training reads: said, not passed over."""

from __future__ import annotations

from pathlib import Path

from engine.data.images import images_in_sub_folders, list_images
from engine.support.prepared_marks import prepared_sub_folders
from engine.dataset.report import Finding
from engine.support.generated_set import is_dbtui_class_images

_NO_IMAGES = "the folder has no images (.jpg, .png, .webp…)"
_POINT_TO_IT = "point to the folder that holds your training images"


def folder_findings(folder: Path | str, images: list[Path], *, recursive: bool,
                    skip: tuple[Path, ...] = (), instance_dir: bool = False) -> list[Finding]:
    """``no_images`` when ``folder`` has no images, and where the images of its sub-folders are (a set sorted into
    folders by date or pose), which are not read. ``skip``: the folders that are something else (the class folder,
    the profile's other concepts); dbtui's prepared copies are passed over too. A recursive check reads them all
    (but prepared copies, which ``scan_folder`` passes over).
    ``instance_dir``: the folder is a profile concept's, where generated class images are no training images (the run
    refuses it), so they leave it ``no_images``."""
    below = {} if recursive else images_in_sub_folders(Path(folder), (*skip, *prepared_sub_folders(Path(folder))))
    if below:
        names = ", ".join(f"{name}/" for name in list(below)[:3]) + (f" and {len(below) - 3} more" if len(below) > 3 else "")
        unused = (f"{sum(below.values())} image(s) in sub-folders ({names}) are not used: training reads only the "
                  "images directly in the folder")
        fix = "move them up into the folder, or make each sub-folder a concept of its own (concepts.N.instance_dir)"
        if not images:
            return [Finding(str(folder), "no_images", "error", f"the folder has no images of its own; {unused}", fix)]
        return [Finding(str(folder), "images_in_sub_folders", "warning", unused, fix)]
    if images:
        return []
    generated = 0 if instance_dir else _generated_class_images(Path(folder))
    if generated:
        return [Finding(str(folder), "only_generated_class_images", "warning",
                        f"the folder holds only the {generated} class image(s) dbtui generated (in its generated-…/ "
                        "folders), which a run reads as class images, through the profile that made them",
                        "check them with `dbtui dataset check --profile PROFILE`, which reads a concept's class folder "
                        "as the run does; as an instance_dir, " + _POINT_TO_IT)]
    return [Finding(str(folder), "no_images", "error", _NO_IMAGES, _POINT_TO_IT)]


def _generated_class_images(folder: Path) -> int:
    """How many images dbtui's class-image generation made in ``folder`` (its sub-folders ``is_dbtui_class_images``)."""
    try:
        return sum(len(list_images(sub)) for sub in folder.iterdir() if sub.is_dir() and is_dbtui_class_images(sub))
    except OSError:
        return 0
