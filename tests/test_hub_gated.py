"""A gated hub repo whose terms this machine's token has not accepted: the hub answers its repo_info (the model page's
facts are public) and refuses its files (403 GatedRepo), so the pre-run check took it for downloadable and the run
made its folder, started the trainer and failed at the download."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from dbtui.cli import main
from local_hub import serving_as_hub

DEMO = Path(__file__).resolve().parents[1] / "profiles" / "tiny-demo.toml"


@pytest.fixture
def gated_hub(monkeypatch: pytest.MonkeyPatch):
    """The hub as a local HTTP server holding gated repos: ``files[repo]`` answers a file's HEAD with that status
    (403: terms not accepted, 200: accepted). Yields (endpoint, files)."""
    from http.server import BaseHTTPRequestHandler

    files: dict[str, int] = {}

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            repo = self.path.split("/api/models/", 1)[-1].split("?")[0].split("/revision/")[0]
            body = json.dumps({"id": repo, "sha": "1" * 40, "gated": "auto", "private": False,
                               "siblings": [{"rfilename": name} for name in (".gitattributes", "LICENSE.md", "README.md", "model_index.json")]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            status = next((code for repo, code in files.items() if self.path.startswith(f"/{repo}/")), 404)
            self.send_response(status)
            if status == 403:
                self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("X-Repo-Commit", "1" * 40)
            self.send_header("ETag", '"abc"')
            self.send_header("Content-Length", "2")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serving_as_hub(Hub, monkeypatch) as endpoint:
        yield endpoint, files


def test_a_gated_repo_whose_terms_are_not_accepted_is_refused_before_the_run_starts(gated_hub, tmp_path: Path,
                                                                                     capsys) -> None:
    endpoint, files = gated_hub
    files["someone/gated"] = 403
    runs = tmp_path / "runs"
    assert main(["run", str(DEMO), "--set", 'model.pretrained="someone/gated"', "--set", f'saving.output_dir="{runs}"']) == 2
    said = capsys.readouterr().err
    assert f"model.pretrained: model 'someone/gated' is a gated repo on the hub ({endpoint}): accept its terms" in said
    assert "HF_TOKEN" in said
    assert not runs.exists()


def test_a_gated_repo_whose_terms_are_accepted_is_left_to_the_run(gated_hub) -> None:
    from engine.dataset.offline_model import unreachable_model_problems

    _, files = gated_hub
    files["someone/accepted"] = 200
    model = SimpleNamespace(pretrained="someone/accepted", revision=None, vae=None, tokenizer=None)
    assert unreachable_model_problems(model) == []


def test_the_memory_estimate_of_a_gated_repo_says_to_accept_its_terms(gated_hub) -> None:
    """The estimate said the configs were "neither in the Hugging Face cache nor downloadable here; download the model
    (`hf download …`)", which the gated repo refuses the same way."""
    from engine.memory.architecture import ArchitectureUnavailableError, architecture_of

    endpoint, files = gated_hub
    files["someone/gated"] = 403
    with pytest.raises(ArchitectureUnavailableError, match=r"'someone/gated' is a gated repo on the hub .*accept its terms"):
        architecture_of("someone/gated")
