"""Auto-captioning plumbing with a tiny random BLIP and a tiny ONNX tagger, both built here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_fixture import textured

from engine.dataset import CaptionerUnavailableError, CaptionStore, autocaption
from engine.events import PhaseFinished, PhaseProgress, PhaseStarted


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    folder = tmp_path_factory.mktemp("tiny-blip")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "dog", "red", "on", "grass"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})  # BLIP starts decoding from [DEC]
    ids = {"bos_token_id": tokenizer.bos_token_id, "sep_token_id": tokenizer.sep_token_id,
           "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id}
    small = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2}
    config = BlipConfig(
        text_config={**small, **ids, "vocab_size": len(tokenizer), "encoder_hidden_size": 32, "max_position_embeddings": 64},
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=32,
    )
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for i in range(5):
        textured(i, (48, 40)).save(tmp_path / f"{i}.png")
    (tmp_path / "0.txt").write_text("my own caption\n")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    return tmp_path


def test_blip_fills_only_missing_captions_then_overwrites_keeping_the_old(tiny_blip: Path, images: Path) -> None:
    events = []
    result = autocaption(images, backend="blip", model=str(tiny_blip), batch_size=2, emit=events.append)
    store = CaptionStore(images)
    assert sorted(Path(p).name for p in result.written) == ["1.txt", "2.txt", "3.txt", "4.txt"]
    assert [Path(p).name for p in result.skipped] == ["0.png"]
    assert [Path(p).name for p, _ in result.failed] == ["broken.jpg"]
    assert store.read("0.png") == "my own caption"
    assert all(store.read(f"{i}.png") for i in range(1, 5))  # some (random-weight) words
    assert isinstance(events[0], PhaseStarted) and events[0].total == 5 and isinstance(events[-1], PhaseFinished)
    assert [e.done for e in events if isinstance(e, PhaseProgress)][-1] == 5
    again = autocaption(images, backend="blip", model=str(tiny_blip), overwrite=True)
    assert len(again.written) == 5 and store.previous("0.png") == "my own caption\n"


def test_blip_from_a_folder_that_is_no_model_says_what_to_give(images: Path) -> None:
    with pytest.raises(CaptionerUnavailableError, match="save_pretrained"):
        autocaption(images, backend="blip", model=str(images))


def test_wd14_without_onnxruntime_says_to_install_it(images: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(CaptionerUnavailableError, match=r"pip install onnxruntime \(or use --auto blip\)"):
        autocaption(images, backend="wd14", model=str(images))


def _tiny_tagger(folder: Path) -> Path:
    """A WD14-layout folder: a tiny ONNX model of 4 outputs and its selected_tags.csv."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    # Mean colour (BGR, 0-255) of the NHWC input → 4 logits → sigmoid. With weights ±0.02 the
    # probabilities for a mid-grey-ish picture are far above or below every threshold.
    weights = np.array([[0.02, -0.02, 0.02, 0.02]] * 3, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input_1", "axes"], ["mean"], keepdims=0),
         helper.make_node("MatMul", ["mean", "w"], ["logits"]),
         helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"])],
        "tiny-tagger",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["batch", 16, 16, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    (folder / "selected_tags.csv").write_text(
        "tag_id,name,category,count\n1,blue_sky,0,10\n2,no_humans,0,10\n3,some_character,4,10\n4,general,9,10\n")
    return folder


def test_wd14_tagger_plumbing_with_a_tiny_onnx_model(images: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = _tiny_tagger(tmp_path_factory.mktemp("wd14"))
    result = autocaption(images, backend="wd14", model=str(folder), batch_size=3)
    assert len(result.written) == 4
    assert CaptionStore(images).read("1.png") == "some character, blue sky"  # character first; rating dropped


@pytest.mark.parametrize("backend", ["blip", "wd14"])
def test_a_hub_captioner_that_cannot_be_had_offline_is_a_message(backend: str, images: Path, monkeypatch) -> None:
    """Offline, a hub id is looked up in the cache once and refused, never retried for minutes."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(images / "empty-hf-home"))
    with pytest.raises(CaptionerUnavailableError, match="not in the Hugging Face cache, and cannot be downloaded") as raised:
        autocaption(images, backend=backend, model="someone/not-cached-captioner")
    # Said in commands, since the wizard that shows it has no field for the model's folder.
    assert f"dbtui dataset caption FOLDER --auto {backend} --model MODEL_FOLDER" in str(raised.value)


def test_autocaption_in_a_folder_it_cannot_write_is_a_caption_error(tiny_blip: Path, images: Path, monkeypatch) -> None:
    """As a user without write access meets it (root writes anyway, so the refusal is the OS's own error)."""
    import errno

    from engine.dataset import CaptionError, caption_files, captions

    def refused(path, data) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(caption_files, "atomic_write_bytes", refused)
    monkeypatch.setattr(captions, "atomic_write_bytes", refused)  # a caption's own bytes are written from there
    with pytest.raises(CaptionError, match=f"cannot write captions in {images}: Permission denied"):
        autocaption(images, backend="blip", model=str(tiny_blip), batch_size=2)


def test_blip_weights_that_do_not_fit_or_another_models_folder_are_messages(tiny_blip: Path, tiny_sd1: Path,
                                                                             images: Path, tmp_path: Path, capfd) -> None:
    """transformers raised a RuntimeError (reported as a bug) after logging a table of every weight; a CLIP text
    encoder's folder loaded as a BLIP of random weights and wrote noise as captions."""
    import json
    import shutil

    mismatched = shutil.copytree(tiny_blip, tmp_path / "mismatched")
    config = json.loads((mismatched / "config.json").read_text())
    config["text_config"]["intermediate_size"] += 1
    (mismatched / "config.json").write_text(json.dumps(config))
    with pytest.raises(CaptionerUnavailableError, match="its weights do not fit its config.json"):
        autocaption(images, backend="blip", model=str(mismatched))
    assert "LOAD REPORT" not in capfd.readouterr().err
    with pytest.raises(CaptionerUnavailableError, match="holds a clip_text_model model, not a BLIP captioner"):
        autocaption(images, backend="blip", model=str(tiny_sd1 / "text_encoder"))
    assert not list(images.glob("[1-4].txt"))


def test_a_damaged_wd14_tagger_is_a_message(images: Path, tmp_path: Path) -> None:
    """A git-lfs pointer for model.onnx raised onnxruntime's InvalidProtobuf; a tag list without the columns, a KeyError."""
    folder = _tiny_tagger(tmp_path / "tagger")
    (folder / "selected_tags.csv").write_text("tag,kind\nblue_sky,0\n")
    with pytest.raises(CaptionerUnavailableError, match="selected_tags.csv is not a WD14 tag list .* columns name and category"):
        autocaption(images, backend="wd14", model=str(folder))
    (folder / "model.onnx").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    with pytest.raises(CaptionerUnavailableError, match="model.onnx cannot be loaded as a WD14 tagger .*git lfs pull"):
        autocaption(images, backend="wd14", model=str(folder))


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_caption_written_while_the_captioner_runs_is_kept_and_named(images: Path, monkeypatch,
                                                                      overwrite: bool) -> None:
    """The wizard's editor stays open while auto-caption runs: a caption saved there meanwhile is the user's."""
    module = sys.modules["engine.dataset.autocaption"]  # the package's ``autocaption`` is the function

    class TypedMeanwhile:
        def __init__(self, model: str):
            pass

        def __call__(self, pictures: list) -> list[str]:
            CaptionStore(images).write("2.png", "typed by hand meanwhile")
            return ["a photo"] * len(pictures)

    monkeypatch.setattr(module, "_Blip", TypedMeanwhile)
    result = autocaption(images, backend="blip", model="unused", batch_size=10, overwrite=overwrite)
    assert CaptionStore(images).read("2.png") == "typed by hand meanwhile"
    assert str(images / "2.png") in result.skipped and str(images / "2.txt") not in result.written
    assert len(result.written) == (4 if overwrite else 3)


class _SaysAPhoto:
    """A captioner that says "a photo" of every picture."""

    def __init__(self, model: str):
        pass

    def __call__(self, pictures: list) -> list[str]:
        return ["a photo"] * len(pictures)


def test_a_caption_file_two_images_share_is_written_or_kept_once(tmp_path: Path, monkeypatch) -> None:
    """a.png's caption a.txt, just written for a.jpg, was counted as kept (given while the captioner ran); c.txt,
    which c.jpg and c.png share, was counted as kept twice; a web page saved as d.jpg left the picture d.png
    uncaptioned only when it came first, and was named as not captioned though d.txt was written."""
    module = sys.modules["engine.dataset.autocaption"]
    for name in ("a.jpg", "a.png", "c.jpg", "c.png", "d.png"):
        textured(len(name), (48, 40)).save(tmp_path / name)
    (tmp_path / "c.txt").write_text("my own caption\n")
    (tmp_path / "d.jpg").write_text("<!DOCTYPE html><html><body>404</body></html>")
    (tmp_path / "e.jpg").write_bytes(b"")
    (tmp_path / "e.png").write_bytes(b"")

    monkeypatch.setattr(module, "_Blip", _SaysAPhoto)
    events: list = []
    result = autocaption(tmp_path, backend="blip", model="unused", batch_size=2, emit=events.append)
    assert sorted(Path(p).name for p in result.written) == ["a.txt", "d.txt"]
    assert [Path(p).name for p in result.skipped] == ["c.jpg"]
    assert [Path(p).name for p, _ in result.failed] == ["e.jpg", "e.png"]
    assert (tmp_path / "d.txt").read_text() == "a photo\n" and (tmp_path / "c.txt").read_text() == "my own caption\n"
    assert events[0].total == 3 and [e.done for e in events if isinstance(e, PhaseProgress)] == [2, 3]


def test_a_caption_linked_to_another_is_captioned_once_through_the_link(tmp_path: Path, monkeypatch) -> None:
    """--overwrite wrote a.txt for a.jpg, then named b.jpg (its b.txt a link to a.txt) as kept, given a caption while
    the captioner ran: it was the caption just written."""
    module = sys.modules["engine.dataset.autocaption"]
    for name in ("a.jpg", "b.jpg"):
        textured(len(name), (48, 40)).save(tmp_path / name)
    (tmp_path / "a.txt").write_text("old\n")
    (tmp_path / "b.txt").symlink_to("a.txt")

    monkeypatch.setattr(module, "_Blip", _SaysAPhoto)
    result = autocaption(tmp_path, backend="blip", model="unused", batch_size=1, overwrite=True)
    assert [Path(p).name for p in result.written] == ["a.txt"] and not result.skipped and not result.failed
    assert (tmp_path / "b.txt").is_symlink() and (tmp_path / "a.txt").read_text() == "a photo\n"


@pytest.mark.parametrize("overwrite", [False, True])
def test_no_caption_is_written_to_hide_a_misnamed_one_or_over_a_link_to_nothing(tmp_path: Path, monkeypatch,
                                                                                overwrite: bool) -> None:
    """img.txt was written beside the user's img.jpg.txt (Photo.txt beside photo.TXT), so training read the captioner's
    words and never the user's; a link c.txt to no file was replaced by a file. A bulk edit creates neither."""
    module = sys.modules["engine.dataset.autocaption"]
    for index, name in enumerate(("img.jpg", "Photo.png", "c.png")):
        textured(index, (48, 40)).save(tmp_path / name)
    (tmp_path / "img.jpg.txt").write_text("my tagger's tags\n")
    (tmp_path / "photo.TXT").write_text("mine\n")
    (tmp_path / "c.txt").symlink_to("gone.txt")

    monkeypatch.setattr(module, "_Blip", _SaysAPhoto)
    result = autocaption(tmp_path, backend="blip", model="unused", overwrite=overwrite)
    assert not result.written
    reasons = {Path(image).name: reason for image, reason in result.failed}
    assert "rename img.jpg.txt to img.txt" in reasons["img.jpg"] and "rename photo.TXT to Photo.txt" in reasons["Photo.png"]
    assert "link to 'gone.txt', which does not exist" in reasons["c.png"]
    assert not (tmp_path / "img.txt").exists() and not (tmp_path / "Photo.txt").exists()
    assert (tmp_path / "c.txt").is_symlink()
