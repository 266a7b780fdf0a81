"""Text encoders load only when a caption needs encoding: a re-run or a resume with every caption cached
never loads them, keys its cache from fingerprints remembered beside it, trains exactly as the first run,
and exports the base's own encoders; new weights in the model folder are noticed and encoded again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.data.part_fingerprints import FingerprintBook, files_key
from engine.models.deferred_parts import DeferredParts
from engine.runs.in_process import train
from tests.training_helpers import tiny_profile


@pytest.fixture
def text_encoder_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every text encoder a family loads while the test runs, by index."""
    from engine.models.flux import Flux
    from engine.models.sd import StableDiffusion
    from engine.models.sdxl import StableDiffusionXL

    loads: list[int] = []
    for family in (StableDiffusion, StableDiffusionXL, Flux):
        def counting_load(self: Any, folder: Path, index: int, dtype: torch.dtype | None = None, *,
                          load: Any = family.load_text_encoder) -> Any:
            loads.append(index)
            return load(self, folder, index, dtype)

        monkeypatch.setattr(family, "load_text_encoder", counting_load)
    return loads


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(next(folder.glob("*.safetensors")))


def _loading_phases(run_dir: Path) -> int:
    from engine.runs.sinks import read_events

    return sum(1 for e in read_events(run_dir / "events.jsonl") if e.kind == "phase_started" and e.phase == "load_text_encoders")


def _run(profile: Any, run_dir: Path, loads: list[int]) -> dict[str, Any]:
    """Train; what setup loaded and left loaded, and the trained UNet's weights."""
    seen: dict[str, Any] = {}

    def after_setup(trainer: Any) -> None:
        seen["loads_at_setup"] = len(loads)
        seen["loaded_after_setup"] = trainer.components.text_encoder_parts.is_loaded
        seen["trainer"] = trainer

    assert train(profile, run_dir, trainer_hook=after_setup).status == "finished"
    seen["unet"] = {name: tensor.clone() for name, tensor in seen.pop("trainer").components.unet.state_dict().items()}
    return seen


def test_a_rerun_with_every_caption_cached_never_loads_the_text_encoder_and_trains_the_same(
        tmp_path: Path, text_encoder_loads: list[int], encode_calls: dict[str, int]) -> None:
    from transformers import CLIPTextModel, CLIPTokenizer

    from engine.builtin import resolve_model
    from engine.data.cache_keys import module_fingerprint, text_key

    # Previews every step: they use the cached prompts, never the encoder.
    profile = tiny_profile(tmp_path, training={"max_train_steps": 2}, sampling={"num_images": 1, "every_n_steps": 1, "steps": 2})
    run_dir = tmp_path / "run"
    first = _run(profile, run_dir, text_encoder_loads)
    # The first run loads it to encode the captions and drops it once they are cached; the full export
    # reads it again from the base model.
    assert first["loads_at_setup"] == 1 and not first["loaded_after_setup"]
    assert len(text_encoder_loads) == 2 and encode_calls["text"] > 0
    assert _loading_phases(run_dir) == 1  # a phase of its own, outside the caching pass's
    assert (run_dir / "cache" / "fingerprints.json").is_file()
    # The keys are the ones a run made before encoders were deferred (fingerprinted as prepared), so those caches stay valid.
    base_model = Path(resolve_model("builtin:tiny-sd1"))
    encoder = CLIPTextModel.from_pretrained(base_model, subfolder="text_encoder").requires_grad_(False).eval()
    tokenizer = CLIPTokenizer.from_pretrained(base_model, subfolder="tokenizer")
    key = text_key("photo of zwx disc", "sd", 1, [module_fingerprint(encoder)], [tokenizer])
    assert (run_dir / "cache" / "text" / f"{key}.safetensors").is_file()

    text_encoder_loads.clear()
    encode_calls.update(text=0)
    again = _run(profile, run_dir, text_encoder_loads)
    assert again["loads_at_setup"] == 0 and not again["loaded_after_setup"]
    assert text_encoder_loads == [0] and encode_calls["text"] == 0  # the export's read only
    assert _loading_phases(run_dir) == 1
    assert again["unet"].keys() == first["unet"].keys()
    assert all(torch.equal(again["unet"][name], first["unet"][name]) for name in first["unet"])

    exported, original = _weights(run_dir / "outputs" / "diffusers" / "text_encoder"), _weights(base_model / "text_encoder")
    assert exported.keys() == original.keys() and all(torch.equal(exported[k], original[k]) for k in original)


@pytest.mark.parametrize(("model", "training", "export", "export_loads"), [
    ("builtin:tiny-sdxl", {"method": "full"}, ["diffusers"], [0, 1]),
    ("builtin:tiny-flux", {"method": "lora"}, ["lora_diffusers"], []),
])
def test_sdxl_and_flux_reruns_load_none_of_their_text_encoders(
        tmp_path: Path, text_encoder_loads: list[int], model: str, training: dict, export: list[str], export_loads: list[int]) -> None:
    profile = tiny_profile(tmp_path, model={"pretrained": model}, training={**training, "max_train_steps": 2},
                           optimizer={"learning_rate": 1e-3}, saving={"export": export})
    run_dir = tmp_path / "run"
    first = _run(profile, run_dir, text_encoder_loads)
    assert first["loads_at_setup"] == 2 and text_encoder_loads == [0, 1, *export_loads]
    text_encoder_loads.clear()
    again = _run(profile, run_dir, text_encoder_loads)
    assert again["loads_at_setup"] == 0 and not again["loaded_after_setup"] and text_encoder_loads == export_loads
    assert all(torch.equal(again["unet"][name], first["unet"][name]) for name in first["unet"])


def test_new_text_encoder_weights_in_the_model_folder_are_noticed_and_encoded_again(
        tmp_path: Path, text_encoder_loads: list[int], encode_calls: dict[str, int]) -> None:
    from transformers import CLIPTextModel

    from engine.builtin import resolve_model

    model = Path(shutil.copytree(resolve_model("builtin:tiny-sd1"), tmp_path / "model"))
    profile = tiny_profile(tmp_path, model={"pretrained": str(model)}, training={"max_train_steps": 1}, saving={"export": ["diffusers"]})
    run_dir = tmp_path / "run"
    _run(profile, run_dir, text_encoder_loads)
    assert len(list((run_dir / "cache" / "text").glob("*.safetensors"))) == 1

    tuned = CLIPTextModel.from_pretrained(model, subfolder="text_encoder")
    with torch.no_grad():
        tuned.get_input_embeddings().weight.mul_(1.5)
    tuned.save_pretrained(model / "text_encoder")  # in place, as a merge or a fine-tune would
    text_encoder_loads.clear()
    encode_calls.update(text=0)
    again = _run(profile, run_dir, text_encoder_loads)
    assert again["loads_at_setup"] == 1 and encode_calls["text"] == 1
    assert len(list((run_dir / "cache" / "text").glob("*.safetensors"))) == 2


def test_a_cache_entry_lost_mid_run_is_encoded_again_by_the_encoder_prepared_on_the_host(
        tmp_path: Path, text_encoder_loads: list[int], encode_calls: dict[str, int]) -> None:
    profile = tiny_profile(tmp_path, training={"max_train_steps": 2}, saving={"export": ["diffusers"]})
    run_dir = tmp_path / "run"
    seen: dict[str, Any] = {}

    def lose_the_text_cache(trainer: Any) -> None:
        seen["loads"] = len(text_encoder_loads)
        for entry in (run_dir / "cache" / "text").glob("*.safetensors"):
            entry.unlink()
        seen["trainer"] = trainer

    encode_calls.update(text=0)
    assert train(profile, run_dir, trainer_hook=lose_the_text_cache).status == "finished"
    [encoder] = seen["trainer"].components.text_encoders
    # Caching, the lost entry, and the whole pipeline every full fine-tune writes.
    assert seen["loads"] == 1 and len(text_encoder_loads) == 3 and encode_calls["text"] > 0
    assert encoder.device.type == "cpu" and not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    assert list((run_dir / "cache" / "text").glob("*.safetensors"))  # written again


def test_the_book_remembers_a_fingerprint_while_the_files_and_their_use_are_unchanged(tmp_path: Path) -> None:
    part = tmp_path / "text_encoder"
    part.mkdir()
    weights = part / "model.safetensors"
    weights.write_bytes(b"weights")
    (part / "config.json").write_text("{}")
    computed: list[str] = []

    def compute() -> str:
        computed.append("x")
        return f"fingerprint-{len(computed)}"

    usage = {"family": "sd", "index": 0, "dtype": "torch.float32"}
    book = FingerprintBook(tmp_path / "cache" / "fingerprints.json")
    assert book.fingerprint(part, usage, compute) == "fingerprint-1"
    assert book.fingerprint(part, usage, compute) == "fingerprint-1"
    assert FingerprintBook(tmp_path / "cache" / "fingerprints.json").fingerprint(part, usage, compute) == "fingerprint-1"
    assert len(computed) == 1

    assert book.fingerprint(part, {**usage, "dtype": "torch.float16"}, compute) == "fingerprint-2"  # another use
    stat = weights.stat()
    weights.write_bytes(b"weights")  # the same bytes, written again: ctime moves
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert book.fingerprint(part, usage, compute) == "fingerprint-3"

    reader = FingerprintBook(tmp_path / "elsewhere.json", writes=False)
    reader.fingerprint(part, usage, compute)
    assert not (tmp_path / "elsewhere.json").exists()
    (tmp_path / "cache" / "fingerprints.json").write_text("{not json")
    assert FingerprintBook(tmp_path / "cache" / "fingerprints.json").fingerprint(part, usage, compute) == "fingerprint-5"
    assert files_key(tmp_path / "missing", usage) is None
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    unwritable = FingerprintBook(blocked / "fingerprints.json")  # its folder cannot be made
    assert unwritable.fingerprint(part, usage, compute) == "fingerprint-6"


def test_deferred_parts_load_once_at_first_use_and_again_after_release() -> None:
    made: list[int] = []

    def load() -> list[Any]:
        made.append(1)
        return [torch.nn.Linear(2, 2)]

    parts = DeferredParts(load)
    assert not parts.is_loaded and parts.loaded() == [] and made == []
    first = parts.get()
    assert parts.get() is first and parts.loaded() is first and made == [1]
    parts.release()
    assert not parts.is_loaded and parts.get() is not first and made == [1, 1]
    ready = DeferredParts.ready(first)
    ready.release()
    assert ready.get() is first
