"""Checks of a profile against the file system: folders that are missing, captions not written (``caption_problems``).

Kept apart from validation: a profile stays valid on a machine where its data is not yet copied;
these come back as warnings. Here rather than in engine.profile, which stays plain data: these
checks read the disk with the trainer's own image list.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from engine.builtin import is_builtin, known_builtin
from engine.data.captions import captions_alone
from engine.data.images import list_images, why_no_images
from engine.dataset.caption_problems import caption_problems, file_name_problems
from engine.dataset.image_headers import header_problems
from engine.dataset.offline_model import offline_model_problems
from engine.dataset.web_address import is_web_address, web_address_problem
from engine.profile.concept_pairs import folder_identity
from engine.profile.model_source import SINGLE_FILE_SUFFIXES, local_path, model_kind
from engine.profile.problems import Problem
from engine.profile.schema import Profile, concept_label
from engine.profile.text_characters import printable
from engine.support.file_in_the_way import file_in_the_way, output_dir_in_the_way
from engine.support.folder_access import access_fix
from engine.support.relative_paths import where_read


def builtin_name_problems(profile: Profile) -> list[Problem]:
    """``builtin:`` names that name nothing built in: wrong on every machine, unlike a folder not copied here yet."""
    problems = []
    if is_builtin(profile.model.pretrained):
        problems += model_source_problems(profile.model.pretrained)
    for index, concept in enumerate(profile.concepts):
        for key in ("instance_dir", "class_dir"):
            name = getattr(concept, key)
            if is_builtin(name) and (unknown := known_builtin(name, "folder")):
                problems.append(Problem(f"concepts.{index}.{key}", unknown))
    # A misspelt scorer: said valid, the run failed at its base round, once the model had loaded.
    for key in ("clip_model", "dino_model") if profile.evaluation.enabled else ():
        name = getattr(profile.evaluation, key)
        if is_builtin(name) and (unknown := known_builtin(name, "scorer")):
            problems.append(Problem(f"evaluation.{key}", unknown))
    return problems


def every_machine_problems(profile: Profile) -> list[Problem]:
    """What ``dbtui validate`` calls errors of the folders: misspelt built-in names, and a class folder written as an
    instance folder (the same path as typed), which no machine can train as meant."""
    problems = builtin_name_problems(profile)
    if profile.prior.enabled:
        for index, concept in enumerate(profile.concepts):
            owner = _instance_folder_spelled(profile, concept.class_dir)
            if owner is not None:
                problems.append(_instance_folder_problem(index, owner))
    return problems


def path_problems(profile: Profile, *, builtins: bool = True, progress: Callable[[int, int], None] | None = None,
                  run_dir: Path | None = None, decode: bool = False,
                  decode_progress: Callable[[int, int], None] | None = None) -> list[Problem]:
    """What is missing on this machine for this profile to train: folders, files, image files whose header cannot be
    read, the logger's package; and, unless ``builtins`` is false, what is wrong on every machine
    (``every_machine_problems``). ``progress``: told (done, total) as the images' headers are read. ``run_dir``: the
    folder the run trains in (what it made there already is not missing). ``decode``, ``decode_progress``: ``header_problems``'."""
    source = profile.model.pretrained
    problems = every_machine_problems(profile) if builtins else []
    problems += [] if is_builtin(source) else model_source_problems(source, profile.model.vae)
    problems += offline_model_problems(profile.model, run_dir)
    problems += _part_source_problems("model.vae", profile.model.vae) + _part_source_problems("model.tokenizer",
                                                                                             profile.model.tokenizer, source)
    problems += _logger_problems(profile.logging.logger) + _launch_config_problems(profile.launch.config_file)
    problems += _backslash_problems(profile) + _output_dir_problems(profile.saving.output_dir)
    for index, concept in enumerate(profile.concepts):
        if profile.prior.enabled:
            problems += _class_folder_problems(profile, index)
        if is_builtin(concept.instance_dir):
            continue
        problems += _shared_instance_problems(profile, index)
        try:
            problems += _concept_problems(profile, index)
        except OSError as error:  # e.g. a name too long for the file system, or no permission
            problems.append(Problem(f"concepts.{index}.instance_dir", f"cannot read folder '{concept.instance_dir}': "
                                    f"{error.strerror}{_permission_fix(error, concept.instance_dir)}"))
    return problems + header_problems(profile, progress, decode=decode, decode_progress=decode_progress)


def path_inputs(profile: Profile) -> tuple:
    """The settings ``path_problems`` reads: while they are the same, only the disk can change its answer. The class image
    count says how many class images' headers are read."""
    return (profile.model.pretrained, profile.logging.logger, profile.launch.config_file, profile.saving.output_dir,
            profile.prior.enabled, profile.dataset.caption_extension,
            tuple((c.instance_dir, c.class_dir, c.caption_mode, c.num_class_images) for c in profile.concepts))


def _class_folder_problems(profile: Profile, index: int) -> list[Problem]:
    """A class folder that is a file or under one, or reaches an instance folder on this machine (whose photos would then
    be the class images); one written as an instance folder is ``every_machine_problems``' to say."""
    concept = profile.concepts[index]
    if not concept.class_dir or _instance_folder_spelled(profile, concept.class_dir) is not None:
        return []
    folder = Path(concept.class_dir)
    key = f"concepts.{index}.class_dir"
    blocker = None if is_builtin(concept.class_dir) else file_in_the_way(folder)
    if blocker == folder:
        return [Problem(key, f"'{folder}' is a file: give a folder for the class images (it is made if missing)")]
    if blocker is not None:  # a folder above it: the run failed on it only once the model had loaded
        return [Problem(key, f"'{blocker}' is a file, so '{folder}' cannot be made for the class images: give another "
                             "folder, or move that file away")]
    for other, owner in enumerate(profile.concepts):
        if folder_identity(concept.class_dir) == folder_identity(owner.instance_dir):
            return [_instance_folder_problem(index, other)]
    try:  # one the run cannot read stopped it after the model had loaded, blaming the run folder's permissions
        if not is_builtin(concept.class_dir) and folder.is_dir():
            list_images(folder)  # read for its refusal alone
    except OSError as error:
        return [Problem(key, f"cannot read folder '{concept.class_dir}': {error.strerror}"
                             f"{_permission_fix(error, concept.class_dir)}")]
    return []


def _instance_folder_spelled(profile: Profile, class_dir: str | None) -> int | None:
    """The concept whose instance folder ``class_dir`` is as written (as paths: "data/dog/" is "./data/dog"), if any."""
    if not class_dir:
        return None
    spelled = PurePath(os.path.expanduser(class_dir))
    return next((other for other, owner in enumerate(profile.concepts)
                 if PurePath(os.path.expanduser(owner.instance_dir)) == spelled), None)


def _instance_folder_problem(index: int, owner: int) -> Problem:
    whose = "the instance folder" if owner == index else f"the instance folder of {concept_label(owner)}"
    return Problem(f"concepts.{index}.class_dir", f"is {whose}: those subject photos would be this concept's class images, "
                                                  "which defeats prior preservation; give another folder (dbtui generates "
                                                  "the class images there)")


def _shared_instance_problems(profile: Profile, index: int) -> list[Problem]:
    """An instance folder that an earlier concept's reaches by another path (a symlink, an absolute spelling): the
    profile's own rule compares the names only, since the folders may not be on this machine."""
    folder = profile.concepts[index].instance_dir
    for other, owner in enumerate(profile.concepts[:index]):
        if folder_identity(folder) == folder_identity(owner.instance_dir):
            return [Problem(f"concepts.{index}.instance_dir", f"is the instance folder '{owner.instance_dir}' of "
                                                              f"{concept_label(other)} by another path: its photos would "
                                                              "train as two concepts; give each concept its own folder")]
    return []


def _logger_problems(logger: str) -> list[Problem]:
    """A logger whose package is not installed: the trainer would stop on it after the model has loaded."""
    if logger == "none" or importlib.util.find_spec(logger) is not None:
        return []
    return [Problem("logging.logger", f'"{logger}" needs the {logger} package: pip install {logger}, or set logger = "none"')]


def _backslash_problems(profile: Profile) -> list[Problem]:
    """Windows paths not here ('data\\dog': a TOML syntax error's hint says to write them in 'single quotes'): on Linux \\
    is part of a name, so an instance folder was "not there" beside data/dog, and a class or output folder of that one
    name was made."""
    written = [(f"concepts.{index}.{key}", getattr(concept, key)) for index, concept in enumerate(profile.concepts)
               for key in ("instance_dir", "class_dir") if key == "instance_dir" or profile.prior.enabled]
    return [Problem(key, advice) for key, path in [*written, ("saving.output_dir", profile.saving.output_dir)]
            if path and (advice := _windows_path_advice(path))]


def _windows_path_advice(path: str) -> str | None:
    """What to write for a Windows path that is none here, else None. A drive's path ('C:\\runs', 'C:/runs') is not
    made Linux's by turning \\ into /: 'C:/runs' made a folder named C: in the working folder."""
    windows = PureWindowsPath(path)
    drive = bool(re.match(r"[A-Za-z]:[\\/]|\\\\", path))  # '\\\\server\\share' too, but '//tmp' is a path here
    if os.sep == "\\" or not (drive or "\\" in path) or is_builtin(path) or os.path.exists(path):
        return None
    if drive:
        mounted = ""
        if windows.drive[1:] == ":":  # not a server's ('\\\\nas' alone has no drive at all)
            wsl = PurePosixPath("/mnt", windows.drive[0].lower(), windows.relative_to(windows.anchor).as_posix())
            mounted = f", e.g. '{wsl}' under WSL"
        return (f"'{path}' is a path on Windows, whose {windows.drive or path} is a folder's name here: write where that "
                f"folder is on this machine{mounted}")
    return (f"'{path}' holds \\, which is part of a name here, not a folder separator: write the path with /, e.g. "
            f"'{windows.as_posix()}'")


def _output_dir_problems(output_dir: str) -> list[Problem]:
    """A file where the folder of the run folders, or a folder above it, should be: validate said valid, and only
    `run` refused it, having no folder to make."""
    problem = output_dir_in_the_way(output_dir)
    return [] if problem is None else [Problem("saving.output_dir", problem)]


def _launch_config_problems(config_file: str | None) -> list[Problem]:
    """An accelerate config file that is not here: the run started, and `accelerate launch` stopped it with its own
    traceback, advising a `dbtui resume` that failed the same way."""
    if config_file is None or Path(config_file).is_file():
        return []
    what = "is a folder, not a file" if Path(config_file).is_dir() else "does not exist on this machine"
    return [Problem("launch.config_file", f"'{printable(config_file)}' {what}{where_read(config_file)}: give the YAML "
                                          "file `accelerate config` wrote (~/.cache/huggingface/accelerate/"
                                          "default_config.yaml by default), or remove config_file")]


def model_source_problems(source: str, vae: str | None = None) -> list[Problem]:
    """A model named as a local folder or file that is not there, or a folder that is not a model (a hub id is
    looked up when the run starts). ``vae``: model.vae, which stands in for a VAE a single file lacks."""
    if is_builtin(source):
        unknown = known_builtin(source, "model")
        return [Problem("model.pretrained", unknown)] if unknown else []
    if windows := _windows_path_advice(source):  # read as neither a path here nor a hub id
        return [Problem("model.pretrained", windows)]
    if web := web_address_problem(source):  # a file's link reads as a file not here, a page's as a hub id
        return [Problem("model.pretrained", web)]
    kind, path = model_kind(source), local_path(source)
    if kind == "hub" and (wrong := _hub_id_problem(source)):
        return [Problem("model.pretrained", wrong)]
    if kind in ("diffusers", "single-file") and not path.exists():
        return [Problem("model.pretrained", f"'{printable(source)}' does not exist on this machine: give a diffusers folder, a "
                        ".safetensors/.ckpt file, or a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5")]
    if kind == "single-file" and path.is_file():
        from engine.convert.base_model_file import not_a_base_model
        from engine.convert.errors import CheckpointReadError
        from engine.convert.file_format import checkpoint_kind
        from engine.convert.load_checkpoint import pickle_refusal

        try:
            # Its header only: a damaged or half-downloaded file is said before the run loads it.
            kind_of_file = checkpoint_kind(path)
        except CheckpointReadError as error:
            if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:  # a picture, notes: no damaged model
                return [Problem("model.pretrained", f"'{source}' is a file, but not a model file: give a diffusers "
                                                    "folder or a .safetensors/.ckpt file")]
            return [Problem("model.pretrained", str(error))]
        if kind_of_file != "safetensors" and (refused := pickle_refusal(path, kind_of_file == "torch-zip")):
            return [Problem("model.pretrained", refused)]
        if not_trained := not_a_base_model(path, kind_of_file, vae_given=bool(vae)):  # a pickle once found safe
            return [Problem("model.pretrained", not_trained)]
    if kind == "diffusers" and path.is_dir() and (unreadable := _unreadable(path)):
        return [Problem("model.pretrained", f"this user may not read the model folder '{source}' ({unreadable}): let it "
                                            f"(`chmod -R a+rX {shlex.quote(str(path))}`, as its owner or root), or run "
                                            "dbtui as the user who owns it")]
    if kind == "diffusers" and path.is_dir() and not (path / "model_index.json").is_file():
        from engine.convert.run_folder_hint import run_folder_hint

        hint = run_folder_hint(path, "model")
        if hint:
            return [Problem("model.pretrained", hint)]
        if (path.parent / "model_index.json").is_file():
            where = f"it is one part of the diffusers model in '{path.parent}': give that folder"
        else:
            where = "give the folder that holds model_index.json, or a .safetensors/.ckpt file"
        return [Problem("model.pretrained", f"'{source}' is a folder but not a diffusers model (no model_index.json): {where}")]
    return []


def _part_source_problems(key: str, source: str | None, pretrained: str = "") -> list[Problem]:
    """model.vae or model.tokenizer as a local path that is not here, model.vae as a single file, which the VAE's
    loader does not read, or model.tokenizer as a folder without a tokenizer's files: such a profile passed `validate`,
    and the run failed at the load (a VAE file as "a VAE on its own, not a full ... checkpoint", a tokenizer folder not
    here with advice to leave out `--tokenizer`, one without its files once the run folder was made). ``pretrained``'s
    family says which tokenizers' folders the load reads (SDXL's tokenizer_2/ too)."""
    if source and (windows := _windows_path_advice(source)):
        return [Problem(key, windows)]
    if not source or model_kind(source) in ("hub", "builtin"):
        return []
    from engine.model_info import likely_family
    from engine.models.parts import clip_tokenizer_folders, holds_clip_tokenizer, no_clip_tokenizer_message, vae_file_message

    path = local_path(source)
    what = "VAE" if key == "model.vae" else "tokenizer"
    if not path.exists():
        return [Problem(key, f"'{printable(source)}' does not exist on this machine: give a diffusers {what} folder or a hub id")]
    if key == "model.tokenizer":
        missing = [sub for sub in clip_tokenizer_folders(likely_family(pretrained)) if not holds_clip_tokenizer(path, sub)]
        return [Problem(key, no_clip_tokenizer_message(source, missing[0]))] if missing else []
    return [Problem(key, vae_file_message(source))] if key == "model.vae" and path.is_file() else []


def is_on_no_machine(source: str) -> bool:
    """Whether ``model.pretrained`` as ``source`` can name nothing on any machine to rent, which `validate` refuses: a web
    address, or a path on Windows ('C:\\models\\x.safetensors', 'D:/sd/x.ckpt'). No advice or estimate is guessed from its
    name, as it is for a path on the machine to rent."""
    return is_web_address(source) or _windows_path_advice(source) is not None


def _hub_id_problem(source: str) -> str | None:
    """Why ``source``, no file or folder here, is no hub id either (a path in quotes), else None: such a name passed as a
    hub id and failed only once the run tried to download it."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(source)
        return None
    except HFValidationError:
        pass
    return (f"'{source}' is not on this machine, nor a hub id: give a diffusers folder, a .safetensors/.ckpt file, or a "
            "hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5")


def _unreadable(folder: Path) -> str | None:
    """Why this user may not look in ``folder`` (Python 3.11's is_file raises PermissionError there), else None."""
    try:
        (folder / "model_index.json").is_file()
    except OSError as error:
        return error.strerror or str(error)
    return None


def _permission_fix(error: OSError, folder: str) -> str:
    """What to do where ``error`` is a refused permission: listing a folder needs read, opening its files execute."""
    if not isinstance(error, PermissionError):
        return ""
    return f"; {access_fix(folder)}"


def _concept_problems(profile: Profile, index: int) -> list[Problem]:
    key = f"concepts.{index}"
    concept = profile.concepts[index]
    folder = Path(concept.instance_dir)
    if folder.is_file():
        return [Problem(f"{key}.instance_dir", f"'{folder}' is a file: give the folder that holds your subject's images")]
    if _windows_path_advice(concept.instance_dir):
        return []  # _backslash_problems says it
    if not folder.is_dir():
        return [Problem(f"{key}.instance_dir", f"folder '{printable(str(folder))}' does not exist{where_read(folder)}")]
    problems: list[Problem] = []
    images = list_images(folder)
    if not images:
        why = why_no_images(folder)
        problems.append(Problem(f"{key}.instance_dir", f"no images in '{folder}'{why}"))
    if "caption_file" in concept.caption_mode:
        # With no instance prompt to fall back on, a combined mode needs every caption, as caption_file does.
        mode = "caption_file" if captions_alone(concept.caption_mode, concept.instance_prompt) else concept.caption_mode
        problems += caption_problems(key, mode, folder, images, profile.dataset.caption_extension)
    elif concept.caption_mode == "file_name":
        problems += file_name_problems(key, images, concept.instance_prompt)
    return problems
