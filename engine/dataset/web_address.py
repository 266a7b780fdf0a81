"""What to give instead of a web address pasted as ``model.pretrained``, which dbtui does not download.

A hub page's address or a link to one of a hub model's files (its config, a part's weights) is answered with the
repository's hub id; only a single-file checkpoint's link with the command that downloads that file, since a config
or a UNet's weights downloaded alone are no model to train. civitai's model page is no download link, and its
download links often want an API token.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from urllib.parse import unquote

from engine.profile.model_source import SINGLE_FILE_SUFFIXES

# A web address: no machine holds it as a folder, a file or a hub id, whichever page or download link it is. Matched
# whatever its case: a phone's keyboard writes "Https://", which was told it is no hub id.
WEB_ADDRESS = r"https?://"
_HUB = WEB_ADDRESS + r"(?:www\.)?(?:huggingface\.co|hf\.co)/"
_CIVITAI = WEB_ADDRESS + r"(?:www\.)?civitai\.com/"
# A link's revision: a pull request's ref as it is written unescaped (refs/pr/3), else one part (main, a tag, a commit,
# refs%2Fpr%2F3): refs/pr/3 was read as the revision "refs".
_REVISION = r"refs/pr/\d+|[^/?#]+"
# A diffusers part's weights (unet/diffusion_pytorch_model.fp16.safetensors, text_encoder/model-00001-of-00002...):
# no model on their own, unlike a checkpoint kept in a sub-folder of a repository of checkpoints.
_PART_WEIGHTS = r"(?:diffusion_pytorch_model|pytorch_model|model)(?:\.\w+)?(?:-\d+-of-\d+)?\.\w+"


def _matched(pattern: str, source: str) -> re.Match[str] | None:
    return re.match(pattern, source, re.IGNORECASE)


def is_web_address(source: str) -> bool:
    """Whether ``source`` is a web address (a hub page's, a file's download link)."""
    return _matched(WEB_ADDRESS, source) is not None


def web_address_problem(source: str) -> str | None:
    """What to give for the web address ``source``, else None where it is none."""
    if not is_web_address(source):
        return None
    return _hub_problem(source) or _civitai_problem(source) or _download_advice(source)


def _hub_problem(source: str) -> str | None:
    """A Hugging Face address's advice: a checkpoint's link, its download command; a model's page or any other link
    into its repository, the hub id (and revision) to give; a dataset's or Space's page, that it is no model's."""
    if _matched(_HUB, source) is None:
        return None
    other = _matched(_HUB + r"(datasets|spaces)/", source)
    link = _matched(_HUB + r"([\w.-]+/[\w.-]+)(?:/(resolve|blob|tree)/(" + _REVISION + r")(?:/([^?#]*))?)?", source)
    if other or link is None:  # "datasets/o" is no model's hub id; nor an owner's page, nor a search's
        page = other.group(1).lower() if other else ""
        what = {"datasets": "a dataset's", "spaces": "a Space's (an app's)"}.get(page, "a")
        return (f"'{source}' is {what} page on the Hugging Face hub, not a model's: give a model's hub id (its page is "
                "huggingface.co/OWNER/NAME), a diffusers folder, or a .safetensors/.ckpt file")
    repo, kind, written_revision, written_name = link.groups()
    kind, name = (kind or "").lower(), unquote(written_name or "")  # "v1-5%20pruned.ckpt" is the file "v1-5 pruned.ckpt"
    revision = None if written_revision in (None, "main") else unquote(written_revision)
    if kind in ("resolve", "blob") and name and _is_checkpoint(name):
        from engine.support.hub_snapshot import download_command

        command = download_command(repo, file=name, revision=revision)
        return (f"'{source}' is a file's web address on the Hugging Face hub, which dbtui does not download: download it "
                f"onto this machine (`{command}`) and give its path, FOLDER/{name}")
    with_revision = f", with model.revision = \"{revision}\"" if revision else ""
    if kind in ("resolve", "blob") and name:  # a config, a README, a part's weights: no model on its own
        return (f"'{source}' is the web address of one file of the hub model {repo}, which dbtui reads whole: give its "
                f"hub id, {repo}{with_revision}")
    return f"'{source}' is a web page's address: give its hub id, {repo}{with_revision}"


def _is_checkpoint(name: str) -> bool:
    """Whether the repository's file ``name`` can be a single-file checkpoint: weights at its top level, or in a
    sub-folder under a checkpoint's own name (a part's, such as unet/diffusion_pytorch_model.safetensors, are not a
    whole model)."""
    path = PurePosixPath(name)
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        return False
    return len(path.parts) == 1 or re.fullmatch(_PART_WEIGHTS, path.name, re.IGNORECASE) is None


def _civitai_problem(source: str) -> str | None:
    """A civitai model page, which is no download link; a civitai download link, which may want an API token."""
    if _matched(_CIVITAI + r"models/\d+", source):
        return (f"'{source}' is a model's page on civitai, not its file: download the file onto this machine by the "
                "link of the page's Download button (`wget --content-disposition 'LINK'`) and give its path")
    if _matched(_CIVITAI + r"api/download/", source):
        token = ("&" if "?" in source else "?") + "token=YOUR_TOKEN"
        return (f"{_download_advice(source)}; if civitai refuses it, add {token} to the link, with an API key made in "
                "your civitai account settings")
    return None


def _download_advice(source: str) -> str:
    return (f"'{source}' is a web address, which dbtui does not download: download the file onto this machine "
            f"(`wget --content-disposition {shlex.quote(source)}`) and give its path")
