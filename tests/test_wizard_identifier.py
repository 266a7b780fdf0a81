"""The dataset step's identifier line names the identifier the run, `validate` and the dataset doctor read (the engine's
guess): its own looser guess named the class noun or a filler as the identifier where they found none."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle


@pytest.mark.parametrize(("instance_prompt", "class_prompt", "said"), [
    ("photo of zwx disc", "disc", "Identifier 'zwx'"),
    # The class prompt names 'zwx': no word tells the identifier (the wizard said 'disc', the class noun).
    ("photo of zwx disc", "a zwx", "No identifier found: the instance prompt should be the class prompt"),
    ("a dog named zwx", "a dog", "No identifier found"),  # the wizard said 'named'
    ("image of zwx dog", "photo of a dog", "No identifier found"),  # the wizard said 'image'
    ("a portrait of ohwx", None, "No identifier found: write the instance prompt"),  # the wizard said 'portrait'
])
async def test_the_identifier_line_names_the_identifier_the_run_reads(tmp_path: Path, monkeypatch, instance_prompt: str,
                                                                      class_prompt: str | None, said: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "photos" / "ok.png")
    session = Session.for_demo()
    session.data["prior"] = {"enabled": False}
    concept = {"instance_dir": str(tmp_path / "photos"), "instance_prompt": instance_prompt}
    session.data["concepts"] = [concept | ({"class_prompt": class_prompt} if class_prompt else {})]
    app = make_app(FakeEngine(), session, image_renderer="none")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await at_step(app, pilot, 2, "DatasetScreen")
        await settle(pilot)
        line = str(screen.query_one("#ds-tokens").render())
        assert line.startswith(said), line


@pytest.mark.parametrize(("caption_mode", "trains"), [("caption_file", "each image's own caption"),
                                                      ("file_name", "each image's file name")])
def test_a_concept_trained_on_its_captions_alone_is_not_told_to_write_an_identifier(caption_mode: str,
                                                                                    trains: str) -> None:
    """profiles/sd15-style-native.toml (captions alone, no identifier) opened in the wizard: the dataset step told it
    'No identifier found: write the instance prompt as a rare word before the class word', a prompt it never trains."""
    from dbtui.screens.dataset_advice import no_identifier_said

    said = no_identifier_said({"instance_prompt": "", "caption_mode": caption_mode})
    assert "write the instance prompt" not in said and trains in said
    assert "write the instance prompt" in no_identifier_said({"instance_prompt": "", "caption_mode": "instance_prompt"})
    assert "the class prompt with one rare word" in no_identifier_said({"instance_prompt": "a dog", "class_prompt": "a dog"})
