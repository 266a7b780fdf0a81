"""A web address as model.pretrained: a link to one of a hub model's files other than a single-file checkpoint (its
config, README, a part's folder or weights) was told to download that one file, no model to train; it is told the hub
id, with the revision the link names. civitai's model page was given wget advice though it is no download link, and
its download links were not said to want an API token."""

from __future__ import annotations

import pytest

from engine.dataset.profile_paths import model_source_problems

HUB_ID = "give its hub id, o/n"


def _said(source: str) -> str:
    (problem,) = model_source_problems(source)
    assert problem.key == "model.pretrained"
    return problem.message


@pytest.mark.parametrize("link", [
    "https://huggingface.co/o/n/resolve/main/model_index.json", "https://huggingface.co/o/n/blob/main/unet/config.json",
    "https://huggingface.co/o/n/blob/main/README.md", "https://huggingface.co/o/n/tree/main",
    "https://huggingface.co/o/n/tree/main/unet",
    "https://hf.co/o/n/resolve/main/unet/diffusion_pytorch_model.safetensors?download=true"])
def test_a_link_into_a_hub_model_that_is_no_checkpoint_is_told_its_hub_id(link: str) -> None:
    said = _said(link)
    assert said.endswith(HUB_ID) and "hf download" not in said, said


@pytest.mark.parametrize(("link", "revision"), [("https://huggingface.co/o/n/tree/fp16/unet", "fp16"),
                                                ("https://huggingface.co/o/n/blob/refs%2Fpr%2F3/vae/config.json",
                                                 "refs/pr/3")])
def test_a_link_at_another_revision_than_main_is_told_it_as_model_revision(link: str, revision: str) -> None:
    assert _said(link).endswith(f'{HUB_ID}, with model.revision = "{revision}"')


@pytest.mark.parametrize(("link", "command"), [
    ("https://huggingface.co/o/n/resolve/main/v1-5.ckpt?download=true", "hf download o/n v1-5.ckpt --local-dir FOLDER"),
    ("https://huggingface.co/o/n/blob/fp16/model.SafeTensors",
     "hf download o/n model.SafeTensors --revision fp16 --local-dir FOLDER")])
def test_a_top_level_checkpoints_link_is_told_how_to_download_it(link: str, command: str) -> None:
    assert f"(`{command}`) and give its path" in _said(link)


def test_a_civitai_model_page_is_told_the_download_buttons_link() -> None:
    said = _said("https://civitai.com/models/4201/realistic-vision")
    assert "model's page on civitai, not its file" in said and "Download button" in said and "give its path" in said
    assert "civitai.com/models" not in said.split("`")[1], said  # the page is no link to wget


@pytest.mark.parametrize(("link", "token"), [("https://civitai.com/api/download/models/12345", "?token=YOUR_TOKEN"),
                                             ("https://civitai.com/api/download/models/1?type=Model", "&token=YOUR_TOKEN")])
def test_a_civitai_download_link_is_told_wget_and_the_token_civitai_may_ask_for(link: str, token: str) -> None:
    said = _said(link)
    assert "wget --content-disposition" in said and f"add {token} to the link" in said, said


def test_another_sites_link_is_told_wget_without_civitais_token() -> None:
    said = _said("https://example.com/models/1/x.safetensors")
    assert "wget --content-disposition" in said and "token" not in said, said


@pytest.mark.parametrize(("link", "command", "path"), [
    # A repository of checkpoints keeps them in sub-folders: its hub id is no model to train.
    ("https://huggingface.co/o/n/resolve/main/fav/realisticVision_v51.safetensors?download=true",
     "hf download o/n fav/realisticVision_v51.safetensors --local-dir FOLDER", "FOLDER/fav/realisticVision_v51.safetensors"),
    # The link writes a space as %20: the file downloaded is named with the space, the command quotes it.
    ("https://huggingface.co/o/n/resolve/main/v1-5%20pruned.ckpt", "hf download o/n 'v1-5 pruned.ckpt' --local-dir FOLDER",
     "FOLDER/v1-5 pruned.ckpt"),
    # A pull request's ref written unescaped is the revision whole, not "refs".
    ("https://huggingface.co/o/n/blob/refs/pr/3/x.safetensors",
     "hf download o/n x.safetensors --revision refs/pr/3 --local-dir FOLDER", "FOLDER/x.safetensors")])
def test_a_checkpoints_link_is_told_the_file_to_download_as_the_hub_names_it(link: str, command: str, path: str) -> None:
    said = _said(link)
    assert said.endswith(f"(`{command}`) and give its path, {path}"), said


@pytest.mark.parametrize("link", ["https://huggingface.co/o/n/resolve/main/unet/diffusion_pytorch_model.fp16.safetensors",
                                  "https://huggingface.co/o/n/blob/main/text_encoder_2/model-00001-of-00002.safetensors"])
def test_a_parts_weights_in_any_variant_are_told_the_hub_id(link: str) -> None:
    assert _said(link).endswith(HUB_ID)


@pytest.mark.parametrize("link", ["Https://huggingface.co/o/n", "HTTPS://HuggingFace.co/o/n/tree/main"])
def test_a_link_written_in_capitals_is_a_web_address_still(link: str) -> None:
    assert _said(link).endswith(HUB_ID)


@pytest.mark.parametrize("link", ["https://huggingface.co/o", "https://huggingface.co/models?search=sdxl"])
def test_a_hub_page_of_no_model_is_not_told_to_be_downloaded(link: str) -> None:
    said = _said(link)
    assert "page on the Hugging Face hub, not a model's" in said and "wget" not in said, said
