"""A hub id this machine has no copy of, with HF_HUB_OFFLINE=1: `dbtui run` made its run folder, started the trainer and
failed at the load (exit 1, "a failed run"), where it can be refused before anything starts (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from dbtui.cli import main
from engine.dataset.offline_model import offline_model_problems

DEMO = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"


@pytest.mark.parametrize("model", ["models/sd15", "nobody/no-such-model"])
def test_an_uncached_hub_id_offline_is_refused_before_the_run_starts(model: str, tmp_path: Path, capsys,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    assert main(["run", str(DEMO), "--set", f'model.pretrained="{model}"', "--set", f'saving.output_dir="{runs}"']) == 2
    said = capsys.readouterr().err
    assert f"cannot start the run: model.pretrained: model '{model}' is not a local folder" in said
    assert f"`hf download {model} --local-dir FOLDER`" in said
    assert not runs.exists()


@pytest.mark.parametrize(("variable", "value"), [("HF_HUB_OFFLINE", "true"), ("TRANSFORMERS_OFFLINE", "1")])
def test_offline_as_huggingface_hub_reads_it_is_refused_too(variable: str, value: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=true (or TRANSFORMERS_OFFLINE=1), which huggingface_hub takes as offline too, was not refused
    here: the run made its folder and failed at the load (OfflineModeIsEnabled)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(variable, value)
    problems = offline_model_problems(SimpleNamespace(pretrained="nobody/no-such-model", revision=None, vae=None, tokenizer=None))
    assert [problem.key for problem in problems] == ["model.pretrained"]
    assert "`hf download nobody/no-such-model --local-dir FOLDER`" in problems[0].message


def test_a_hub_id_in_the_cache_offline_or_not_cached_online_is_left_to_the_run(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    commit = "0" * 40
    repo = tmp_path / "models--someone--model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "model_index.json").write_text("{}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offline_model_problems(SimpleNamespace(pretrained="someone/model", revision=None, vae=None, tokenizer=None)) == []
    monkeypatch.delenv("HF_HUB_OFFLINE")  # online: downloaded by the run, which this check must not ask the hub about
    assert offline_model_problems(SimpleNamespace(pretrained="nobody/no-such-model", revision=None, vae=None, tokenizer=None)) == []


@pytest.mark.parametrize("key", ["vae", "tokenizer"])
def test_an_uncached_hub_id_as_vae_or_tokenizer_offline_is_refused_before_the_run_starts(
        key: str, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, model.vae or model.tokenizer as a hub id not cached started the run, which failed at the load (the
    tokenizer's with an OverflowError called a bug of dbtui)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runs = tmp_path / "runs"
    assert main(["run", str(DEMO), "--set", f'model.{key}="nobody/no-such-{key}"', "--set", f'saving.output_dir="{runs}"']) == 2
    said = capsys.readouterr().err
    assert f"model.{key}: model 'nobody/no-such-{key}' is not a local folder" in said
    assert f"set model.{key} to its path." in said
    assert not runs.exists()


def _closed_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    """The hub's address as a local port nothing listens on."""
    import socket

    from huggingface_hub import constants

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read when huggingface_hub was imported, maybe offline
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    return endpoint


@pytest.mark.parametrize("hub", ["closed", "silent"])
def test_an_uncached_hub_id_online_where_the_hub_does_not_answer_is_refused_before_the_run_starts(
        hub: str, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Online, a hub id not cached on a machine that cannot reach the hub made the run folder, started the trainer and
    exited 1 with the load's failure."""
    import time

    endpoint = _closed_hub(monkeypatch) if hub == "closed" else request.getfixturevalue("silent_hub")
    runs = tmp_path / "runs"
    started = time.monotonic()
    assert main(["run", str(DEMO), "--set", 'model.pretrained="nobody/no-such-model"', "--set", 'model.vae="nobody/vae"',
                 "--set", f'saving.output_dir="{runs}"']) == 2
    assert time.monotonic() - started < 15  # the silent hub is waited on once (1 s), not once per hub id
    said = capsys.readouterr().err
    cause = "ConnectError" if hub == "closed" else "ReadTimeout"
    assert f"model.pretrained: model 'nobody/no-such-model' is not in the Hugging Face cache, and the hub ({endpoint}) did not answer ({cause})" in said
    assert "set HF_ENDPOINT to a mirror" in said and "`hf download nobody/no-such-model --local-dir FOLDER`" in said
    assert f"model.vae: model 'nobody/vae' is not in the Hugging Face cache, and the hub ({endpoint}) did not answer" in said
    assert not runs.exists()


def test_a_hub_that_answers_is_asked_once_and_left_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    import requests
    from huggingface_hub.errors import HfHubHTTPError

    from engine.dataset.offline_model import unreachable_model_problems

    asked: list[str] = []

    def repo_info(self: object, repo: str, **kwargs: object) -> None:
        asked.append(repo)
        if repo == "nobody/busy":  # an answer, if not the one hoped for: the run says what it is
            busy = requests.Response()
            busy.status_code, busy.url = 503, "https://huggingface.co/api/models/nobody/busy"
            raise HfHubHTTPError("503", response=busy)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    model = SimpleNamespace(pretrained="someone/model", revision=None, vae="nobody/busy", tokenizer="builtin:tiny-sd1")
    assert unreachable_model_problems(model) == []
    assert asked == ["someone/model", "nobody/busy"]


@pytest.fixture
def answering_hub(monkeypatch: pytest.MonkeyPatch):
    """The hub as a local HTTP server answering each repo's request with the status and X-Error-Code its
    ``answers[repo]`` says. Yields (endpoint, answers)."""
    from http.server import BaseHTTPRequestHandler

    from local_hub import serving_as_hub

    answers: dict[str, tuple[int, str]] = {}

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, code = next((answer for repo, answer in answers.items() if f"/{repo}" in self.path), (404, "RepoNotFound"))
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serving_as_hub(Hub, monkeypatch) as endpoint:
        yield endpoint, answers


def test_a_hub_id_the_hub_has_not_is_refused_before_the_run_starts(answering_hub, tmp_path: Path, capsys) -> None:
    """A wrong, private or gated hub id started the run, which then said "the hub cannot be reached
    (RepositoryNotFoundError)": the hub was reached, and answered it has no such repo for this machine."""
    endpoint, answers = answering_hub
    # A private repo, asked without a token that may read it, is answered 401 RepoNotFound.
    answers.update({"nobody/misspelt": (404, "RepoNotFound"), "someone/private": (401, "RepoNotFound"),
                    "someone/gated": (403, "GatedRepo")})
    runs = tmp_path / "runs"
    assert main(["run", str(DEMO), "--set", 'model.pretrained="nobody/misspelt"', "--set", 'model.vae="someone/private"',
                 "--set", 'model.tokenizer="someone/gated"', "--set", f'saving.output_dir="{runs}"']) == 2
    said = capsys.readouterr().err
    assert (f"model.pretrained: model 'nobody/misspelt' is not on the hub ({endpoint}) (RepositoryNotFoundError): check "
            "the spelling of model.pretrained") in said
    assert f"model.vae: model 'someone/private' is not on the hub ({endpoint})" in said
    assert "log in with `hf auth login` for a gated or private repo" in said
    assert f"model.tokenizer: model 'someone/gated' is a gated repo on the hub ({endpoint}): accept its terms" in said
    assert "cannot be reached" not in said
    assert not runs.exists()


def test_the_hub_s_answer_is_not_said_to_be_listed_by_validate(answering_hub, tmp_path: Path, capsys) -> None:
    """The refusal ended "`dbtui validate PROFILE` lists these too", where validate asks the hub nothing."""
    _, answers = answering_hub
    answers["nobody/misspelt"] = (404, "RepoNotFound")
    runs = tmp_path / "runs"
    given = ["run", str(DEMO), "--set", 'model.pretrained="nobody/misspelt"', "--set", f'saving.output_dir="{runs}"']
    assert main(given) == 2
    assert "dbtui validate" not in capsys.readouterr().err
    assert main([*given, "--set", f'concepts.0.instance_dir="{tmp_path / "gone"}"']) == 2
    said = capsys.readouterr().err
    assert "gone" in said and said.rstrip().endswith("`dbtui validate PROFILE` lists the others too.")


def _cached_repo(cache: Path, repo: str, files: dict[str, str], listed: list[str] | None = None) -> None:
    """``repo`` in the Hugging Face cache at ``cache``, laid out as huggingface_hub lays it out, holding ``files``;
    ``listed``: the repo's files as huggingface_hub (1.x on) records them once it has listed the repo."""
    commit = "1" * 40
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    if listed is not None:
        (folder / "trees").mkdir()
        (folder / "trees" / f"{commit}.json").write_text(json.dumps(
            {"format_version": 1, "files": {name: {"size": 2, "blob_id": "0" * 40} for name in listed}}))
    for name, text in files.items():
        (folder / "snapshots" / commit / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "snapshots" / commit / name).write_text(text)


def test_a_hub_id_whose_configs_alone_are_cached_is_asked_of_the_hub_before_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A memory estimate downloads a model's configs only: the pre-run check took it for cached, and with the hub out of
    reach the run started and failed at the load."""
    from huggingface_hub import constants

    from engine.dataset.offline_model import unreachable_model_problems

    configs = {"model_index.json": "{}", "unet/config.json": "{}", "vae/config.json": "{}",
               "scheduler/scheduler_config.json": "{}"}
    weights = {"unet/diffusion_pytorch_model.safetensors": "", "vae/diffusion_pytorch_model.safetensors": ""}
    _cached_repo(tmp_path, "someone/configs-only", configs)
    _cached_repo(tmp_path, "someone/whole", {**configs, **weights})
    _cached_repo(tmp_path, "someone/vae-configs", {"config.json": "{}"})
    _cached_repo(tmp_path, "someone/vae", {"config.json": "{}", "diffusion_pytorch_model.safetensors": ""})
    _cached_repo(tmp_path, "someone/tokenizer", {"tokenizer/vocab.json": "{}", "tokenizer/merges.txt": ""})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _closed_hub(monkeypatch)
    model = SimpleNamespace(pretrained="someone/configs-only", revision=None, vae="someone/vae-configs",
                            tokenizer="someone/whole")  # a model repo's configs hold no tokenizer
    assert [p.key for p in unreachable_model_problems(model)] == ["model.pretrained", "model.vae", "model.tokenizer"]
    model = SimpleNamespace(pretrained="someone/whole", revision=None, vae="someone/vae", tokenizer="someone/tokenizer")
    assert unreachable_model_problems(model) == []


@pytest.mark.parametrize("hub", ["closed", "silent", "offline"])
def test_the_wizards_token_check_of_an_uncached_hub_id_asks_the_hub_once_and_quietly(
        hub: str, capfd, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The wizard's Dataset step loads the hub model's tokenizer: with no internet and HF_HUB_OFFLINE unset,
    huggingface_hub tried each tokenizer file 5 times with back-off (minutes) and wrote "Retrying in 8s…" to stderr,
    over the Textual screen."""
    import time

    from dbtui.engine_facade import RealEngine
    from engine.dataset.errors import TokenizerError
    from engine.dataset.tokens import load_tokenizer

    endpoint = _closed_hub(monkeypatch) if hub == "closed" else request.getfixturevalue("silent_hub")
    if hub == "offline":  # an empty tokenizer: "not judged: this model's tokenizer spells every word letter by letter"
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(TokenizerError) as error:
        load_tokenizer("nobody/no-such-model")
    assert time.monotonic() - started < 10
    said = "HF_HUB_OFFLINE forbids downloading it" if hub == "offline" else f"the hub ({endpoint}) did not answer"
    assert said in str(error.value)
    with pytest.raises(TokenizerError):
        RealEngine().identifier_tokens("nobody/no-such-model", "zwx")
    assert capfd.readouterr().err == ""


def test_the_token_check_reads_a_cached_hub_tokenizer_without_the_hub(
        tiny_sd1: Path, tmp_path: Path, capfd, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub model in the cache is read from it: transformers' update check waited on the silent hub as well."""
    import shutil

    from huggingface_hub import constants

    from engine.dataset.tokens import load_tokenizer

    snapshot = tmp_path / "models--someone--cached-sd" / "snapshots" / "0123"
    shutil.copytree(tiny_sd1 / "tokenizer", snapshot / "tokenizer")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _closed_hub(monkeypatch)
    assert load_tokenizer("someone/cached-sd").tokenize("photo") and capfd.readouterr().err == ""


def test_the_token_check_of_a_hub_id_the_hub_has_not_says_so(answering_hub) -> None:
    """The hub answering it has no such repo is said as such, not as a hub that did not answer."""
    from engine.dataset.errors import TokenizerError
    from engine.dataset.tokens import load_tokenizer

    endpoint, answers = answering_hub
    answers["nobody/misspelt"] = (404, "RepoNotFound")
    with pytest.raises(TokenizerError, match=r"'nobody/misspelt' is not on the hub .*check the spelling"):
        load_tokenizer("nobody/misspelt")


def test_a_cached_model_whose_unread_part_has_no_safetensors_is_left_to_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A part the run never reads (an SD1 repo's safety_checker/, its weights a pytorch_model.bin that the download
    leaves out) counted as one whose weights were missing: with the hub out of reach the run was refused as uncached,
    though its load read the whole model from the cache."""
    from huggingface_hub import constants

    from engine.dataset.offline_model import unreachable_model_problems

    _cached_repo(tmp_path, "someone/sd1", {
        "model_index.json": "{}", "scheduler/scheduler_config.json": "{}", "tokenizer/vocab.json": "{}",
        "unet/config.json": "{}", "unet/diffusion_pytorch_model.safetensors": "",
        "vae/config.json": "{}", "vae/diffusion_pytorch_model.safetensors": "",
        "text_encoder/config.json": "{}", "text_encoder/model.safetensors": "", "safety_checker/config.json": "{}"})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _closed_hub(monkeypatch)
    model = SimpleNamespace(pretrained="someone/sd1", revision=None, vae=None, tokenizer=None)
    assert unreachable_model_problems(model) == []


def test_a_model_repo_as_tokenizer_is_cached_where_the_tokenizers_the_run_reads_are(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An SDXL repo as model.tokenizer of an SD1 run: its load downloads tokenizer/ alone, but the pre-run check asked
    for */vocab.json, which huggingface_hub's record of the repo's files matched in tokenizer_2/ too: with the hub out
    of reach the run was refused as not cached, though its load read the tokenizer from the cache."""
    from huggingface_hub import constants

    from engine.dataset.offline_model import unreachable_model_problems

    names = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
    listed = ["model_index.json", "unet/config.json", *(f"{where}/{name}" for where in ("tokenizer", "tokenizer_2")
                                                         for name in names)]
    _cached_repo(tmp_path, "someone/sdxl", {f"tokenizer/{name}": "{}" for name in names}, listed)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _closed_hub(monkeypatch)
    for pretrained in ("builtin:tiny-sd1", "builtin:tiny-flux"):  # Flux's tokenizer_2/ is its T5's, never replaced
        model = SimpleNamespace(pretrained=pretrained, revision=None, vae=None, tokenizer="someone/sdxl")
        assert unreachable_model_problems(model) == []
    # An SDXL run reads tokenizer_2/ too, which this cache lacks.
    model = SimpleNamespace(pretrained="builtin:tiny-sdxl", revision=None, vae=None, tokenizer="someone/sdxl")
    assert [p.key for p in unreachable_model_problems(model)] == ["model.tokenizer"]


def test_a_hub_id_whose_configs_alone_are_cached_is_refused_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, a hub id whose snapshot held only the configs a memory estimate downloads was taken for cached: the run
    started and failed at the load."""
    from huggingface_hub import constants

    configs = {"model_index.json": "{}", "unet/config.json": "{}", "vae/config.json": "{}"}
    _cached_repo(tmp_path, "someone/configs-only", configs)
    _cached_repo(tmp_path, "someone/whole", {**configs, "unet/diffusion_pytorch_model.safetensors": "",
                                             "vae/diffusion_pytorch_model.safetensors": ""})
    _cached_repo(tmp_path, "someone/vae-configs", {"config.json": "{}"})
    _cached_repo(tmp_path, "someone/tokenizer", {"tokenizer/vocab.json": "{}", "tokenizer/merges.txt": ""})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = SimpleNamespace(pretrained="someone/configs-only", revision=None, vae="someone/vae-configs",
                            tokenizer="someone/whole")  # a model repo's configs hold no tokenizer
    problems = offline_model_problems(model)
    assert [problem.key for problem in problems] == ["model.pretrained", "model.vae", "model.tokenizer"]
    assert "`hf download someone/configs-only --local-dir FOLDER`" in problems[0].message
    model = SimpleNamespace(pretrained="someone/whole", revision=None, vae=None, tokenizer="someone/tokenizer")
    assert offline_model_problems(model) == []
    # A malformed id is model_source_problems' to say
    assert offline_model_problems(SimpleNamespace(pretrained="some--one/model", revision=None, vae=None, tokenizer=None)) == []
