"""Data preparation for training: captions, buckets, balanced concepts, accumulation, clip skip, and what a run warns of
its data and settings (class images: test_class_images_made.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.data.batches import Batch, epoch_batches, optimizer_steps, process_batches
from engine.data.captions import caption_for
from engine.data.examples import bucket_list, build_examples
from engine.data.images import DataError
from engine.runs.in_process import train
from engine.profile import Profile
from engine.training.trainer import RunResult, Trainer
from tests.training_helpers import tiny_profile


def write_image(path: Path, size: tuple[int, int], colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def test_every_caption_mode(tmp_path: Path) -> None:
    image = write_image(tmp_path / "red_ball_03.png", (8, 8))
    image.with_suffix(".txt").write_text("a red ball on grass\n")
    prompt = "photo of zwx ball"
    assert caption_for(image, "instance_prompt", prompt) == prompt
    assert caption_for(image, "caption_file", prompt) == "a red ball on grass"
    assert caption_for(image, "caption_file_then_prompt", prompt) == "a red ball on grass, photo of zwx ball"
    assert caption_for(image, "prompt_then_caption_file", prompt) == "photo of zwx ball, a red ball on grass"
    assert caption_for(image, "file_name", prompt) == "red ball"
    named = {"r2d2_07": "r2d2", "nikon_x100 (2)": "nikon x100", "0001": prompt, "dog-7": "dog", "dog12": "dog", "x100": "x100"}
    assert {stem: caption_for(tmp_path / f"{stem}.png", "file_name", prompt) for stem in named} == named
    other = write_image(tmp_path / "no_caption.png", (8, 8))
    with pytest.raises(DataError, match="caption file .* is missing"):
        caption_for(other, "caption_file", prompt)


def test_a_file_name_that_is_not_utf8_captions_as_the_user_reads_it(tmp_path: Path, tiny_sd1: Path) -> None:
    """b"caf\\xe9_02.png" (a Windows name): its caption kept Python's lone surrogate, which the tokenizer refused in the
    run (a TypeError, reported as a bug) after validate and the check had passed it."""
    import os

    from transformers import CLIPTokenizer

    from engine.data.captions import training_caption

    image = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9_02.png"))
    mixed = Path(os.fsdecode(bytes(tmp_path) + "/naïve_".encode() + b"\x93quoted\x94.png"))
    assert caption_for(image, "file_name", "p") == training_caption(image, "file_name", "p") == "café"
    assert caption_for(mixed, "file_name", "p") == "naïve “quoted”"  # the UTF-8 part as it was
    CLIPTokenizer.from_pretrained(tiny_sd1 / "tokenizer")(caption_for(image, "file_name", "p"))


def test_a_file_name_holding_a_control_character_is_refused_as_a_caption_file_holding_one_is(tmp_path: Path) -> None:
    """caption_mode = "file_name" trained on "red\\x1b[2Jdog" (and validate passed it) where a caption file holding ESC
    is refused; now the name is refused alike, at validate and in the run."""
    from engine.dataset.profile_paths import path_problems

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (64, 64), "red").save(folder / "red\x1b[2Jdog_1.png")
    Image.new("RGB", (64, 64), "red").save(folder / "plain dog_2.png")
    assert caption_for(folder / "plain dog_2.png", "file_name", "p") == "plain dog"
    with pytest.raises(DataError, match=r"ESC \(U\+001B\) in its name.*rename the file") as raised:
        caption_for(folder / "red\x1b[2Jdog_1.png", "file_name", "p")
    assert "\x1b" not in str(raised.value)  # echoed escaped, never raw
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(folder), "instance_prompt": "photo of zwx dog",
                                                "caption_mode": "file_name"}])
    [problem] = [p for p in path_problems(profile) if p.key == "concepts.0.caption_mode"]
    assert "1 image name(s) cannot be captions" in problem.message


def test_every_caption_that_cannot_be_used_is_named_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a", "b", "c", "d", "e"):
        write_image(folder / f"{name}.png", (8, 8))
    (folder / "a.txt").write_text("zwx ball\n")
    (folder / "c.txt").write_bytes(b"\xff\xfe\x00\x00\x00\x00bad")  # not text in any encoding it could be
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(folder), "instance_prompt": "p",
                                                "caption_mode": "caption_file"}])
    with pytest.raises(DataError) as raised:
        build_examples(profile, [folder], {}, [(64, 64)])
    said = str(raised.value)
    assert said.startswith("4 caption(s) cannot be used: ") and "; and 1 more" in said and "dbtui dataset check" in said
    assert "b.txt" in said and "c.txt" in said


def test_an_empty_second_concept_is_named_as_the_wizard_counts(tmp_path: Path, demo_data: Path) -> None:
    """It said "(concept 1)" for the second concept, whose Dataset step selector says Concept 2: counted from 0."""
    (tmp_path / "empty").mkdir()
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(demo_data / "instance"), "instance_prompt": "a zwx"},
                                               {"instance_dir": str(tmp_path / "empty"), "instance_prompt": "a qrv"}])
    with pytest.raises(DataError, match=r"^no images in '.*empty', the instance folder of concept 2 \(concepts\.1\);"):
        build_examples(profile, [demo_data / "instance", tmp_path / "empty"], {}, [(64, 64)])


def test_examples_take_captions_from_the_concepts_mode(tmp_path: Path, demo_data: Path) -> None:
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(demo_data / "instance"), "instance_prompt": "p",
                                                "caption_mode": "caption_file"}])
    examples = build_examples(profile, [demo_data / "instance"], {}, [(64, 64)])
    assert [e.caption for e in examples] == [e.path.with_suffix(".txt").read_text().strip() for e in examples]


def test_bucketing_puts_images_in_the_right_buckets_and_batches_never_mix(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    for i in range(3):
        write_image(folder / f"wide{i}.png", (200, 100))
        write_image(folder / f"tall{i}.png", (100, 200))
        write_image(folder / f"square{i}.png", (120, 120))
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(folder), "instance_prompt": "zwx"}],
                           dataset={"resolution": 64, "bucketing": True}, training={"train_batch_size": 2, "max_train_steps": 4})
    buckets = bucket_list(64, True, None, 8)
    examples = build_examples(profile, [folder], {}, buckets)
    for example in examples:
        width, height = example.bucket
        if example.path.name.startswith("wide"):
            assert width > height and abs(width / height - 2) < 0.5
        elif example.path.name.startswith("tall"):
            assert height > width and abs(height / width - 2) < 0.5
        else:
            assert width == height
    for epoch in range(3):
        for batch in epoch_batches(examples, 2, seed=1, epoch=epoch, with_classes=False):
            assert len({examples[i].bucket for i in batch.instance}) == 1
    result = train(profile)  # non-square latents really train
    assert result.status == "finished"


def test_multi_concept_batches_take_turns_and_train(tmp_path: Path, demo_data: Path) -> None:
    many = tmp_path / "many"
    for i in range(9):
        write_image(many / f"m{i}.png", (64, 64), (i * 20, 100, 100))
    concepts = [
        {"instance_dir": str(demo_data / "instance"), "instance_prompt": "photo of zwx disc",
         "class_dir": str(demo_data / "class"), "class_prompt": "photo of a disc", "num_class_images": 4},
        {"instance_dir": str(many), "instance_prompt": "photo of qrv square",
         "class_dir": str(demo_data / "class"), "class_prompt": "photo of a square", "num_class_images": 3},
    ]
    # Two steps: one a concept, as they take turns.
    profile = tiny_profile(tmp_path, concepts=concepts, prior={"enabled": True}, training={"max_train_steps": 2})
    classes = {0: sorted((demo_data / "class").glob("*.png"))[:4], 1: sorted((demo_data / "class").glob("*.png"))[:3]}
    examples = build_examples(profile, [demo_data / "instance", many], classes, [(64, 64)])
    batches = epoch_batches(examples, 1, seed=0, epoch=0, with_classes=True)
    concept_order = [examples[b.instance[0]].concept for b in batches]
    assert concept_order[:4] == [0, 1, 0, 1]
    assert concept_order.count(0) == concept_order.count(1) == 9  # the smaller concept repeats
    for batch in batches:
        concept = examples[batch.instance[0]].concept
        assert batch.classes and all(examples[i].is_class and examples[i].concept == concept for i in batch.classes)
        assert examples[batch.classes[0]].caption == concepts[concept]["class_prompt"]
    shards = [process_batches(batches, rank, 2) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) and not set(shards[0]) & set(shards[1]) - {None}
    # Fewer batches than processes (one image, two GPUs): each process still gets one, or their collectives part.
    assert [len(process_batches(batches[:1], rank, 2)) for rank in range(2)] == [1, 1]
    assert [process_batches(batches[:2], rank, 3) for rank in range(3)] == [[batches[0]], [batches[1]], [batches[0]]]
    trained: list[tuple[int, set[int]]] = []  # each step's concept, and the concepts of the run's examples
    concept = lambda trainer, micro_batches: (trainer.examples[micro_batches[0].instance[0]].concept,
                                              {e.concept for e in trainer.examples})
    assert train(profile, trainer_hook=_each_step(trained, concept)).status == "finished"
    assert trained == [(0, {0, 1}), (1, {0, 1})]


def test_batch_order_is_a_pure_function_of_seed_and_epoch(demo_data: Path, tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path)
    examples = build_examples(profile, [demo_data / "instance"], {}, [(64, 64)])
    assert epoch_batches(examples, 2, 5, 3, False) == epoch_batches(examples, 2, 5, 3, False)
    assert epoch_batches(examples, 2, 5, 3, False) != epoch_batches(examples, 2, 5, 4, False)


@dataclass
class DemoRun:
    """The demo's six images trained for 2 epochs at batch 2 with 2 micro-batches a step, a warm-up of 2 steps, clip
    skip 2 and a preview: each setting is one test's, and none changes what another asserts."""

    profile: Profile
    result: RunResult
    events: list
    micro_batches: list[int]  # images each optimizer step trained
    run_dir: Path


def _each_step(seen: list, measure: Callable[[Trainer, list[Batch]], object]) -> Callable[[Trainer], None]:
    """A trainer hook that appends ``measure`` of each optimizer step's micro-batches to ``seen``."""
    def record(trainer: Trainer) -> None:
        step = trainer._optimizer_step

        def counted(micro_batches: list[Batch]) -> float:
            seen.append(measure(trainer, micro_batches))
            return step(micro_batches)

        trainer._optimizer_step = counted

    return record


def _count_micro_batches(seen: list[int]) -> Callable[[Trainer], None]:
    return _each_step(seen, lambda trainer, micro_batches: sum(len(batch.instance) for batch in micro_batches))


ACCUMULATED = {"max_train_steps": None, "num_train_epochs": 2, "train_batch_size": 2, "gradient_accumulation_steps": 2, "seed": 7}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    base = tmp_path_factory.mktemp("demo-run")
    profile = tiny_profile(base, training={**ACCUMULATED, "clip_skip": 2},
                           optimizer={"learning_rate": 1e-4, "lr_scheduler": "constant_with_warmup", "lr_warmup_steps": 2},
                           sampling={"num_images": 1, "steps": 2})
    events: list = []
    seen: list[int] = []
    result = train(profile, base / "run", sinks=[events.append], trainer_hook=_count_micro_batches(seen))
    return DemoRun(profile, result, events, seen, base / "run")


def test_accumulation_trains_every_image_of_an_epoch_with_a_shorter_last_step(demo_run: DemoRun, tmp_path: Path) -> None:
    """The demo's six images at batch 2 are three micro-batches; two a step used to drop the third each epoch."""
    assert optimizer_steps(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert optimizer_steps(list("abcd"), 2) == [["a", "b"], ["c", "d"]]
    assert demo_run.result.total_steps == 4
    assert demo_run.micro_batches == [4, 2, 4, 2]  # each epoch: all six images, the last two as a step of their own

    # A checkpoint of the earlier rule (its manifest says nothing of leftovers) resumes under that rule: exact.
    import json

    from engine.runs.checkpoints import epoch_leftovers

    seen: list[int] = []
    old_rule = train(tiny_profile(tmp_path, training=ACCUMULATED), tmp_path / "old", trainer_hook=_count_micro_batches(seen),
                     epoch_leftovers=False)
    assert old_rule.total_steps == 2
    assert seen == [4, 4]
    for manifest, rule in (({"step": 2}, False), ({"step": 2, "epoch_leftovers": True}, True)):
        checkpoint = tmp_path / f"checkpoint-{rule}"
        checkpoint.mkdir()
        (checkpoint / "manifest.json").write_text(json.dumps(manifest))
        assert epoch_leftovers(checkpoint) is rule
    assert epoch_leftovers(None) is True


def test_clip_skip_uses_the_nth_layer_from_the_end_through_the_final_norm(tiny_sd1: Path) -> None:
    from diffusers import StableDiffusionPipeline

    from engine.data.encoders import TextSource
    from engine.models.sd import StableDiffusion

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    prompt = ["photo of zwx disc"]
    ids = pipe.tokenizer(prompt, padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        states = pipe.text_encoder(ids, output_hidden_states=True).hidden_states
        last, _ = pipe.encode_prompt(prompt, "cpu", 1, False)  # diffusers' own, clip_skip off
        source = lambda n: TextSource(StableDiffusion(), [pipe.tokenizer], [pipe.text_encoder], device=torch.device("cpu"), clip_skip=n,
                                      cache=True).get(prompt)["hidden"]
        assert torch.allclose(source(1), last, atol=1e-6)
        norm = pipe.text_encoder.final_layer_norm
        assert torch.allclose(source(2), norm(states[-2]), atol=1e-6)
        assert torch.allclose(source(3), norm(states[-3]), atol=1e-6)
        assert not torch.allclose(source(1), source(2))


def test_training_and_samples_run_with_clip_skip_2(demo_run: DemoRun) -> None:
    assert demo_run.profile.training.clip_skip == 2
    assert demo_run.result.status == "finished"
    assert (demo_run.run_dir / "samples" / "step-000004" / "grid.png").is_file()


def test_a_batch_size_no_batch_can_reach_is_a_warning(tmp_path: Path) -> None:
    """The demo's six images in one bucket: a batch of 8 holds 6, and scale_lr would count 8."""
    profile = tiny_profile(tmp_path, training={"max_train_steps": 1, "train_batch_size": 8})
    events = []
    train(profile, tmp_path / "run", sinks=[events.append])
    [warning] = [e for e in events if e.kind == "warning" and "train_batch_size" in e.message]
    assert "no batch can hold more than 6 images" in warning.message and "train_batch_size = 6" in warning.advice


def test_a_batch_size_a_batch_can_reach_is_no_warning(demo_run: DemoRun) -> None:
    assert demo_run.profile.training.train_batch_size == 2
    assert demo_run.result.status == "finished"
    assert not [e for e in demo_run.events if e.kind == "warning" and "train_batch_size" in e.message]


@pytest.fixture(scope="module")
def shared_words_warnings(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The warnings of one run: concept 2 has concept 1's identifier in its own prompt, concept 3 concept 1's whole
    prompt (on images of its own)."""
    base = tmp_path_factory.mktemp("shared-words")
    for i in range(2):
        write_image(base / "third" / f"{i}.png", (64, 64), (30, 30 + i * 100, 200))
    profile = tiny_profile(base, training={"max_train_steps": 1},
                           concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc"},
                                     {"instance_dir": "builtin:demo-class", "instance_prompt": "photo of zwx plate"},
                                     {"instance_dir": str(base / "third"), "instance_prompt": "photo of zwx disc"}])
    events = []
    train(profile, base / "run", sinks=[events.append])
    return [e.message for e in events if e.kind == "warning"]


def test_two_concepts_with_one_prompt_are_a_warning_in_the_run(shared_words_warnings: list[str]) -> None:
    """A headless or wizard run says it too, not only `dbtui validate`."""
    [warning] = [message for message in shared_words_warnings if message.startswith("concepts.2.")]
    assert warning.startswith("concepts.2.instance_prompt is the prompt of concept 1 (concepts.0) too")


def test_two_concepts_with_one_identifier_are_a_warning_in_the_run(shared_words_warnings: list[str]) -> None:
    """'photo of zwx disc' beside 'photo of zwx plate': `dbtui validate` warned that one token learns both subjects, a
    run started without it (headless, or the wizard's warning passed by) said nothing, as it says of one whole prompt."""
    [warning] = [message for message in shared_words_warnings if message.startswith("concepts.1.")]
    assert warning.startswith("concepts.1.instance_prompt uses the identifier 'zwx' of concept 1 (concepts.0) too")
    assert len(shared_words_warnings) == 2  # these two alone: one whole prompt shared is not said twice


def test_a_warm_up_as_long_as_the_run_is_a_warning(tmp_path: Path) -> None:
    """sd15-style-native.toml's 100 warm-up steps on six images (a 10-step run) never reach the learning rate set."""
    from engine.training.optim import warmup_warning

    profile = tiny_profile(tmp_path, optimizer={"learning_rate": 1e-6, "lr_scheduler": "constant_with_warmup",
                                                "lr_warmup_steps": 100})
    warning = warmup_warning(profile.optimizer, 10)
    assert warning.message == ("optimizer.lr_warmup_steps is 100 and the run is 10 steps, so the learning rate ends at 9% "
                               "of the 1e-06 set")  # step 10 trains at 9/100 of it: step 1 trains at none
    assert "lr_warmup_steps to about a tenth of the run (1)" in warning.advice
    assert warmup_warning(profile.optimizer, 1000) is None


def test_each_step_reports_the_learning_rate_it_trained_at(demo_run: DemoRun) -> None:
    """The step's event and tracker showed the next step's rate: a warm-up's first step trains at 0, not at 1/warm-up."""
    assert [e.lr for e in demo_run.events if e.kind == "step_ended"] == pytest.approx([0.0, 5e-5, 1e-4, 1e-4])


def test_validate_warns_of_a_warm_up_as_long_as_the_run_where_the_profile_gives_its_steps(capsys) -> None:
    from dbtui.cli import main

    demo = str(Path(__file__).parents[1] / "profiles" / "tiny-demo.toml")
    warm = ["--set", 'optimizer.lr_scheduler="constant_with_warmup"', "--set", "optimizer.lr_warmup_steps=500"]
    assert main(["validate", demo, *warm, "--set", "training.max_train_steps=100"]) == 0
    assert "warning: --set optimizer.lr_warmup_steps=500: is 500 and the run is 100 steps" in capsys.readouterr().out
    # Without a learning rate of its own (the method's default) the warning still says it, without a number.
    assert main(["validate", demo, *warm, "--set", "training.max_train_steps=100", "--set", 'optimizer.learning_rate=""']) == 0
    assert "so the learning rate ends at 20% of its full value" in capsys.readouterr().out
    assert main(["validate", demo, *warm, "--set", "training.max_train_steps=5000"]) == 0
    assert "lr_warmup_steps" not in capsys.readouterr().out


def test_phone_photos_and_tiffs_are_trained_upright_with_their_upright_size(tmp_path: Path) -> None:
    """A JPEG whose EXIF holds one damaged field passed the doctor, then training and prepare refused it (Pillow's
    exif_transpose writes the EXIF back); a TIFF, which Pillow turns upright itself, had its size swapped twice."""
    import numpy as np

    from engine.data.images import image_size, load_rgb
    from engine.dataset.image_probe import probe_image

    upright = np.zeros((160, 96, 3), np.uint8)
    upright[:80] = (255, 0, 0)  # red on top, as a viewer shows it
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # kept landscape, EXIF says turn it
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x0110] = "EOS"
    stored.save(tmp_path / "portrait.tif", exif=exif)
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    data = (tmp_path / "phone.jpg").read_bytes().replace(b"\x01\x10\x00\x02", b"\x01\x40\x00\x02", 1)  # the model tag's type broken
    (tmp_path / "phone.jpg").write_bytes(data)
    for name in ("portrait.tif", "phone.jpg"):
        path = tmp_path / name
        picture = load_rgb(path)
        assert picture.size == (96, 160) and picture.getpixel((48, 10))[0] > 200, name
        assert image_size(path) == (96, 160) and (probe_image(path).width, probe_image(path).height) == (96, 160), name




def test_the_shipped_style_profiles_warm_up_fits_a_small_style_set() -> None:
    """profiles/sd15-style-native.toml warmed up for 100 steps, a run's length in epochs: six images (20 steps) or forty
    (100 steps) never reached its learning rate, and the run warned of its own shipped profile."""
    from engine.data.batches import default_total_steps
    from engine.profile import load_profile
    from engine.profile.schedule_warnings import warmup_shortfall

    profile = load_profile(Path(__file__).parents[1] / "profiles" / "sd15-style-native.toml")
    for images in (6, 40):
        batches = -(-images // profile.training.train_batch_size)
        steps = default_total_steps(profile, images, -(-batches // profile.training.gradient_accumulation_steps))
        assert warmup_shortfall(profile.optimizer, steps) is None, (images, steps)
