"""A hub repository's files: from the Hugging Face cache, else downloaded; one failure for callers to explain."""

from __future__ import annotations

import os
import shlex
from pathlib import Path


# huggingface_hub's command line, as its 0.34 and later spell it: 1.0 (which transformers 5 needs) has no
# `huggingface-cli`, so advice naming that one sent users to "command not found".
LOGIN_COMMAND = "hf auth login"


def download_command(repo: str, *, into_cache: bool = False, file: str | None = None, revision: str | None = None) -> str:
    """The command that downloads ``repo`` into a folder of its own, to copy to a machine without internet; with
    ``into_cache``, into this machine's Hugging Face cache, where dbtui finds a hub id with HF_HUB_OFFLINE set (which
    the command itself obeys, refusing to download). ``file``: that one of its files alone; ``revision``: not main's."""
    # Quoted: a file's name may hold a space ("v1-5 pruned.ckpt"), which split the command in two.
    what = shlex.join([repo, *([file] if file else []), *(["--revision", revision] if revision else [])])
    return f"HF_HUB_OFFLINE=0 hf download {what}" if into_cache else f"hf download {what} --local-dir FOLDER"


def relative_folder_hint(name: str) -> str:
    """Where a relative folder is read from, for a name that reads as a hub id ("models/mine"): a folder given
    from another working folder is otherwise only said to be a hub id that cannot be downloaded."""
    if "/" not in name or Path(name).is_absolute():
        return ""
    return f" If '{name}' is a folder, it is read from the folder dbtui runs in ({Path.cwd()}): run dbtui there, or give its full path."


def is_hub_id(name: str) -> bool:
    """Whether ``name`` can be a hub id (owner/name, or name): "data/models/sd15" or "my models/sd15" is a folder only."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def offline_model_advice(name: str, key: str = "model.pretrained") -> str:
    """What to do with the model ``name``, a hub id neither cached here nor downloadable, that the setting ``key``
    names."""
    return (
        f"model '{name}' is not a local folder and is not in the Hugging Face cache, and the hub "
        f"cannot be reached. Download it where there is internet (`{download_command(name)}`), "
        f"{_downloaded_copy(name, key)}"
    )


def _downloaded_copy(name: str, key: str) -> str:
    """How the setting ``key`` takes a copy of the hub id ``name`` downloaded elsewhere (model.vae and model.tokenizer
    take a folder, no single file)."""
    single_file = ", or use a .safetensors file" if key == "model.pretrained" else ""
    return f"copy FOLDER here and set {key} to its path{single_file}.{relative_folder_hint(name)}"


def unreachable_hub_advice(name: str, key: str, cause: str) -> str:
    """What to do with the hub id ``name``, not in the cache here, where the hub gave no answer (``cause``: the error's
    type name, ConnectError or ReadTimeout)."""
    from huggingface_hub import constants

    return (f"model '{name}' is not in the Hugging Face cache, and the hub ({constants.ENDPOINT}) did not answer "
            f"({cause}): check this machine's network (or its proxy, HTTPS_PROXY), or set HF_ENDPOINT to a mirror it "
            f"can reach; or download the model on a machine with access (`{download_command(name)}`), "
            f"{_downloaded_copy(name, key)}")


def hub_offline() -> bool:
    """Whether huggingface_hub forbids downloading: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1, true, yes or on,
    as it reads them; read now, where its own reading is of when it was imported."""
    said = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return said.upper() in ("1", "ON", "YES", "TRUE")


class HubUnavailable(Exception):
    """Neither cached nor downloadable. ``cause``: "offline" (HF_HUB_OFFLINE=1 forbids downloading) or
    the error's type name ("HFValidationError" for a malformed id, "GatedRepoError", "ConnectionError"…).
    Callers turn it into their own advice."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


def hub_snapshot(repo: str, *, allow_patterns: list[str], ignore_patterns: list[str] | None = None,
                 revision: str | None = None) -> Path:
    """The folder of ``repo``'s files that match the patterns."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    kwargs = dict(revision=revision, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)
    try:
        return Path(snapshot_download(repo, local_files_only=True, **kwargs))
    except HFValidationError:
        raise HubUnavailable("HFValidationError") from None
    except Exception:  # noqa: BLE001 - not cached: download below
        pass
    if hub_offline():
        raise HubUnavailable("offline")
    try:
        _reach(repo, revision)
        return Path(snapshot_download(repo, **kwargs))
    except Exception as error:  # noqa: BLE001 - any network or hub failure: the caller's advice
        raise HubUnavailable(type(error).__name__) from None


def cached_snapshot(repo: str, revision: str | None, allow_patterns: list[str],
                    ignore_patterns: list[str] | None = None) -> Path | None:
    """``repo``'s folder in the Hugging Face cache at ``revision``, as the run's own lookup reads it (no network); None
    where it is not cached, or where huggingface_hub's record of the repo's files names one the patterns match that
    is not there. The folder may still lack files (an older huggingface_hub keeps no such record): see its caller."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True, allow_patterns=allow_patterns,
                                      ignore_patterns=ignore_patterns))
    except Exception:  # noqa: BLE001 - not cached, not all cached, or a malformed id
        return None


# The hub's answer where it has no repo of that id this machine may read: a wrong id, or a private or gated repo (a
# private one is answered as not found without a token that may read it).
NOT_ON_HUB = ("RepositoryNotFoundError", "GatedRepoError")


def hub_answer(repo: str, revision: str | None) -> str | None:
    """The type name of the error the hub answered about ``repo`` within HF_HUB_ETAG_TIMEOUT: one of ``NOT_ON_HUB``, or
    where it gave no answer ConnectError, ReadTimeout…; None where it has the repo, answered another error (the run
    says which), or where ``repo`` is no valid id (model_source_problems says so)."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        _reach(repo, revision)
    except HfHubHTTPError as error:
        return type(error).__name__ if type(error).__name__ in NOT_ON_HUB else None
    except HFValidationError:
        return None
    except Exception as error:  # noqa: BLE001 - any failure to hear from the hub
        return type(error).__name__
    return None


def not_on_hub_advice(name: str, key: str, cause: str) -> str:
    """What to do with the hub id ``name`` (the setting ``key``) that the hub answered has no repo this machine may
    read (``cause``, one of ``NOT_ON_HUB``)."""
    from huggingface_hub import constants

    if cause == "GatedRepoError":
        return (f"model '{name}' is a gated repo on the hub ({constants.ENDPOINT}): accept its terms on its page "
                f"({constants.ENDPOINT}/{name}) and log in as that user with `{LOGIN_COMMAND}` (or set HF_TOKEN to a "
                f"token of theirs)")
    return (f"model '{name}' is not on the hub ({constants.ENDPOINT}) ({cause}): check the spelling of {key} (owner/name, "
            f"as on the model's page), or log in with `{LOGIN_COMMAND}` for a gated or private repo.{relative_folder_hint(name)}")


def unavailable_advice(name: str, key: str, cause: str) -> str:
    """What to do with the hub id ``name`` (the setting ``key``) that hub_snapshot could not get (``cause``, as
    HubUnavailable's; not "HFValidationError", which callers say their own way)."""
    if cause in NOT_ON_HUB:
        return not_on_hub_advice(name, key, cause)
    return offline_model_advice(name, key) + ("" if cause == "offline" else f" ({cause})")


def _reach(repo: str, revision: str | None) -> None:
    """Ask the hub for ``repo`` with a time limit first: snapshot_download asks with none, so on a machine whose
    firewall drops or holds the connection a run or an estimate waited minutes (a held one, for ever)."""
    from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url

    info = HfApi().repo_info(repo, revision=revision, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    if getattr(info, "gated", False):
        # A gated repo's page is public, its files not until its terms are accepted: repo_info answers either way, so one
        # of its files is asked (raising GatedRepoError as the download would): a config the run downloads, not the
        # README.md (or LICENSE) the hub shows all.
        configs = [entry.rfilename for entry in info.siblings or () if entry.rfilename.endswith(".json")]
        if configs:
            get_hf_file_metadata(hf_hub_url(repo, configs[0], revision=revision), timeout=constants.HF_HUB_ETAG_TIMEOUT)
