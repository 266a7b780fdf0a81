"""Class images for prior preservation: made once and reused, made again where their settings or model changed, made in
half precision without touching the weights that train, and a stop while they are made."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.runs.in_process import train
from engine.runs.sinks import read_events
from engine.training.class_images import ClassRequest, ensure_class_images, generated_folder, settings_of
from tests.training_helpers import tiny_profile


def _class_pipeline(tiny_sd1: Path, calls: list[int]):
    def make():
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

        calls.append(1)
        pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return make


def _as_strings(prompt: str, negative_prompt: str, count: int) -> dict[str, list[str]]:
    return {"prompt": [prompt] * count, "negative_prompt": [negative_prompt] * count}


def test_class_images_are_generated_once_reused_and_regenerated_on_change(tmp_path: Path, tiny_sd1: Path) -> None:
    folder = tmp_path / "class"
    own = folder / "mine.png"
    folder.mkdir()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(own)
    own_bytes = own.read_bytes()
    calls: list[int] = []
    kwargs = dict(model="builtin:tiny-sd1", resolution=64, seed=1, steps=2, guidance=5.0, batch_size=2, prompt_kwargs=_as_strings)
    request = ClassRequest(0, folder, "photo of a disc", "blurry", 4)
    events = []
    result = ensure_class_images([request], make_pipeline=_class_pipeline(tiny_sd1, calls), emit=events.append, **kwargs)
    assert len(result[0]) == 4 and own in result[0] and calls == [1]
    settings = settings_of(request, model="builtin:tiny-sd1", resolution=64, seed=1, steps=2, guidance=5.0)
    generated = generated_folder(folder, settings)
    manifest = (generated / "manifest.json").read_text()
    assert '"prompt": "photo of a disc"' in manifest and '"negative_prompt": "blurry"' in manifest
    assert len(list(generated.glob("*.png"))) == 3
    assert [e.kind for e in events].count("phase_progress") == 2

    again = ensure_class_images([request], make_pipeline=_class_pipeline(tiny_sd1, calls), **kwargs)
    assert again == result and calls == [1]  # reused: the model was not even loaded

    changed = ClassRequest(0, folder, "photo of a round disc", "blurry", 4)
    other = ensure_class_images([changed], make_pipeline=_class_pipeline(tiny_sd1, calls), **kwargs)
    assert calls == [1, 1]
    assert not set(other[0]) & set(result[0]) - {own}
    assert len(list(generated.glob("*.png"))) == 3  # the old set is untouched
    assert own.read_bytes() == own_bytes


def test_a_deleted_class_image_is_made_again_under_its_own_number(tmp_path: Path, tiny_sd1: Path) -> None:
    """Deleting class_00001 made the next run overwrite class_00003 and list it twice."""
    folder = tmp_path / "class"
    # One image a batch: the same batches both times, so the same bytes whatever the CPU's batched maths.
    kwargs = dict(model="m", resolution=64, seed=1, steps=2, guidance=5.0, batch_size=1, prompt_kwargs=_as_strings)
    request = ClassRequest(0, folder, "photo of a disc", "", 4)
    calls: list[int] = []
    first = ensure_class_images([request], make_pipeline=_class_pipeline(tiny_sd1, calls), **kwargs)[0]
    made = {path.name: path.read_bytes() for path in first}
    first[1].unlink()
    again = ensure_class_images([request], make_pipeline=_class_pipeline(tiny_sd1, calls), **kwargs)[0]
    assert sorted(path.name for path in again) == sorted(made) and calls == [1, 1]
    assert {path.name: path.read_bytes() for path in again} == made  # image 1 from its own seed, the others untouched


def test_concepts_sharing_a_class_folder_make_its_images_once(tmp_path: Path, tiny_sd1: Path) -> None:
    folder = tmp_path / "class"
    kwargs = dict(model="m", resolution=64, seed=1, steps=2, guidance=5.0, batch_size=2, prompt_kwargs=_as_strings)
    events = []
    result = ensure_class_images([ClassRequest(0, folder, "photo of a disc", "", 2), ClassRequest(1, folder, "photo of a disc", "", 3)],
                                 make_pipeline=_class_pipeline(tiny_sd1, []), emit=events.append, **kwargs)
    [started] = [e for e in events if e.kind == "phase_started"]
    assert started.total == 3 and [e.done for e in events if e.kind == "phase_progress"][-1] == 3
    assert len(result[0]) == 2 and len(result[1]) == 3 and set(result[0]) < set(result[1])


def test_class_images_are_keyed_by_the_model_files_and_vae_not_only_the_models_name(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from engine.models.loading import CONVERTED_FROM
    from engine.training.model_weights import model_identity

    model = tmp_path / "model"
    (model / "unet").mkdir(parents=True)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"1" * 10)
    (model / "unet" / "config.json").write_text("{}")
    settings = SimpleNamespace(pretrained="model", revision=None, vae=None, quantize=None)
    before = model_identity(settings, model)
    assert before["files"]["model"] == [["unet/diffusion_pytorch_model.safetensors", 10, weights.stat().st_mtime_ns]]
    weights.write_bytes(b"2" * 11)  # the model replaced in place, under the same name
    assert model_identity(settings, model) != before
    vae = tmp_path / "vae.safetensors"
    vae.write_bytes(b"v")
    with_vae = model_identity(SimpleNamespace(pretrained="model", revision=None, vae=str(vae), quantize=None), model)
    assert with_vae["files"]["vae"] == [["vae.safetensors", 1, vae.stat().st_mtime_ns]]

    # A model converted from a single file, in each run's folder anew: the file it came from is what counts.
    for run in ("run-a", "run-b"):
        converted = tmp_path / run / "model" / "base-diffusers"
        (converted / "unet").mkdir(parents=True)
        (converted / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"1" * (10 if run == "run-a" else 12))
        (converted / CONVERTED_FROM).write_text('{"path": "/models/base.safetensors", "size": 5, "mtime_ns": 1}')
    assert model_identity(settings, tmp_path / "run-a" / "model" / "base-diffusers") == \
        model_identity(settings, tmp_path / "run-b" / "model" / "base-diffusers")


def test_half_precision_class_images_leave_the_weights_that_train_as_loaded(
    tmp_path: Path, tiny_sd1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mixed precision on a GPU generates class images in half precision. The UNet and text
    encoder that then train in full must start from the weights as loaded, not rounded through
    half precision. A CPU trains in fp32, so the GPU's weight dtype is put in by hand (bf16, which
    CPU autocast runs)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    import engine.training.trainer as trainer_module
    from engine.training.trainer import Trainer

    monkeypatch.setattr(trainer_module, "weight_dtype", lambda precision: torch.bfloat16)
    concept = {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
               "class_dir": str(tmp_path / "class"), "class_prompt": "photo of a disc", "num_class_images": 2}
    profile = tiny_profile(tmp_path, concepts=[concept], training={"train_text_encoder": True},
                           prior={"enabled": True, "steps": 2, "sample_batch_size": 2})
    trainer = Trainer(profile, tmp_path / "run")
    trainer.setup()

    assert len(list((tmp_path / "class").glob("generated-*/*.png"))) == 2
    loaded = {
        "unet": UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet"),
        "text_encoder": CLIPTextModel.from_pretrained(tiny_sd1, subfolder="text_encoder"),
    }
    for name, model in (("unet", trainer.components.unet), ("text_encoder", trainer.components.text_encoder)):
        expected = dict(loaded[name].named_parameters())
        params = dict(model.named_parameters())
        assert params.keys() == expected.keys()
        changed = [key for key, param in params.items() if param.dtype != torch.float32 or not torch.equal(param, expected[key])]
        assert changed == [], f"{name}: {len(changed)} of {len(params)} weights differ from the loaded model"


def test_a_stop_while_class_images_are_generated_ends_the_run_stopped_not_failed(tmp_path: Path) -> None:
    """Ctrl-C during class images used to fail the run, blaming a second machine's disk."""
    import threading

    cancel = threading.Event()

    def stop_at_the_first_class_image(event) -> None:
        if event.kind == "phase_progress" and event.phase == "class_images":
            cancel.set()

    profile = tiny_profile(tmp_path, prior={"enabled": True, "steps": 2, "sample_batch_size": 1},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                      "class_dir": str(tmp_path / "class"), "class_prompt": "photo of a disc",
                                      "num_class_images": 4}])
    result = train(profile, tmp_path / "run", sinks=[stop_at_the_first_class_image], cancel=cancel)
    assert (result.status, result.step) == ("stopped", 0)
    kinds = [event.kind for event in read_events(tmp_path / "run" / "events.jsonl")]
    assert kinds[-1] == "run_finished" and "run_failed" not in kinds
    assert 1 <= len(list((tmp_path / "class").rglob("*.png"))) < 4  # what was made is kept for the resume


def test_a_run_with_no_class_images_to_make_says_so_in_words() -> None:
    """The log said "[class_images] started 0 class images to generate"."""
    from engine.events import PhaseStarted
    from engine.training.class_images import ensure_class_images

    events: list = []
    ensure_class_images([], make_pipeline=lambda: None, prompt_kwargs=lambda request: {}, model=None, resolution=64, seed=0,
                        steps=1, guidance=1.0, batch_size=1, emit=events.append)
    assert [event.description for event in events if isinstance(event, PhaseStarted)] == ["no class images to generate"]


def test_class_images_stopped_part_way_are_said_stopped_not_done(tmp_path: Path, tiny_sd1: Path) -> None:
    """A stop during generation printed '[class_images] done in 4.9s' right after '24/60'."""
    from dbtui.console import describe

    kwargs = dict(model="m", resolution=64, seed=1, steps=2, guidance=5.0, batch_size=1, prompt_kwargs=_as_strings)
    events: list = []
    asked = iter([False, True])
    result = ensure_class_images([ClassRequest(0, tmp_path / "class", "photo of a disc", "", 3)],
                                 make_pipeline=_class_pipeline(tiny_sd1, []), emit=events.append,
                                 should_stop=lambda: next(asked, True), **kwargs)
    assert len(result[0]) == 1
    [finished] = [e for e in events if e.kind == "phase_finished"]
    assert finished.stopped and describe(finished).startswith("[class_images] stopped after ")
    events.clear()
    ensure_class_images([ClassRequest(0, tmp_path / "class", "photo of a disc", "", 3)],
                        make_pipeline=_class_pipeline(tiny_sd1, []), emit=events.append, **kwargs)
    [finished] = [e for e in events if e.kind == "phase_finished"]
    assert not finished.stopped and describe(finished).startswith("[class_images] done in ")


def test_a_stop_before_a_sets_first_image_leaves_no_empty_set(tmp_path: Path, tiny_sd1: Path) -> None:
    """Stopped after the first concept's first image, the second concept's generated-<hash>/ stayed empty, with no
    manifest: once its class settings changed, nothing would ever use or remove it. The first's, holding an image, stays."""
    kwargs = dict(model="m", resolution=64, seed=1, steps=2, guidance=5.0, batch_size=1, prompt_kwargs=_as_strings)
    requests = [ClassRequest(0, tmp_path / "dogs", "photo of a dog", "", 3),
                ClassRequest(1, tmp_path / "cats", "photo of a cat", "", 3)]
    asked = iter([False, True])
    result = ensure_class_images(requests, make_pipeline=_class_pipeline(tiny_sd1, []),
                                 should_stop=lambda: next(asked, True), **kwargs)
    assert len(result[0]) == 1 and result[1] == []
    [kept] = (tmp_path / "dogs").glob("generated-*")
    assert sorted(path.name for path in kept.iterdir()) == ["class_00000.png", "manifest.json"]
    assert list((tmp_path / "cats").iterdir()) == []


def test_a_failed_model_load_leaves_no_empty_sets(tmp_path: Path) -> None:
    def fail():
        raise OSError("no model there")

    kwargs = dict(model="m", resolution=64, seed=1, steps=2, guidance=5.0, batch_size=1, prompt_kwargs=_as_strings)
    with pytest.raises(OSError, match="no model there"):
        ensure_class_images([ClassRequest(0, tmp_path / "dogs", "photo of a dog", "", 3)], make_pipeline=fail, **kwargs)
    assert list((tmp_path / "dogs").iterdir()) == []


def test_a_set_another_run_began_and_left_empty_is_made_again_by_the_run_writing_into_it(tmp_path: Path,
                                                                                          tiny_sd1: Path) -> None:
    """Run A began a set and failed to load its model while run B (another terminal, or machine) found the set there
    and loaded its own: A's removal of the set it left empty failed B at its first image, 'removed meanwhile'."""
    import threading

    kwargs = dict(model="m", resolution=64, seed=1, steps=2, guidance=5.0, batch_size=1, prompt_kwargs=_as_strings)
    request = ClassRequest(0, tmp_path / "dogs", "photo of a dog", "", 2)
    b_loads, a_ended = threading.Event(), threading.Event()
    ended: dict[str, object] = {}

    def run_b() -> None:
        try:
            ended["b"] = ensure_class_images([request], make_pipeline=b_pipeline, **kwargs)
        except Exception as error:  # noqa: BLE001 - what B met, asserted below
            ended["b"] = error

    b = threading.Thread(target=run_b)

    def a_pipeline():
        b.start()  # B starts once A's set is there
        assert b_loads.wait(60)
        raise OSError("no model there")

    def b_pipeline():
        b_loads.set()
        assert a_ended.wait(60)
        return _class_pipeline(tiny_sd1, [])()

    with pytest.raises(OSError, match="no model there"):
        ensure_class_images([request], make_pipeline=a_pipeline, **kwargs)
    a_ended.set()
    b.join(120)
    assert isinstance(ended.get("b"), dict), ended
    [made] = (tmp_path / "dogs").glob("generated-*")
    assert sorted(path.name for path in made.iterdir()) == ["class_00000.png", "class_00001.png", "manifest.json"]
