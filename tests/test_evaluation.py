"""Scoring preview rounds (issue 17): the metric maths, the evaluation set, the best-step rule, and
tiny runs with scoring on (events at each round, weights bit-identical to a run without, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.evaluation.best import best_step, best_step_of_run
from engine.evaluation.metrics import mean_similarity, paired_similarity
from engine.evaluation.prompts import concept_words, evaluation_prompts, without_identifiers
from engine.events import RunFinished, RunStarted, SamplesScored
from tests.training_helpers import tiny_profile

TINY_SCORERS = {"clip_model": "builtin:tiny-clip", "dino_model": "builtin:tiny-dino"}
CONCEPT = {"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_prompt": "photo of a disc"}


@pytest.fixture(scope="module")
def scorers(_isolated_cache: Path):
    from engine.evaluation.scorers import loaded_scorers

    with loaded_scorers(TINY_SCORERS["clip_model"], TINY_SCORERS["dino_model"], torch.device("cpu")) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def disc(demo_data: Path) -> Image.Image:
    from engine.data.images import list_images, load_rgb

    return load_rgb(list_images(demo_data / "instance")[0])


def noise_image(seed: int) -> Image.Image:
    pixels = torch.randint(0, 256, (64, 64, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


# -- the maths -----------------------------------------------------------------------


def test_identical_images_score_one_and_unrelated_ones_lower(scorers, disc: Image.Image) -> None:
    for features in (scorers.dino_features, scorers.clip_image_features):
        real = features([disc, disc, disc])
        same = mean_similarity(features([disc, disc]), real)
        other = mean_similarity(features([noise_image(1), noise_image(2)]), real)
        assert same == pytest.approx(1.0, abs=1e-5)
        assert other < same - 1e-3


def test_paired_similarity_compares_image_i_with_image_i() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert paired_similarity(a, a.clone()) == pytest.approx(1.0)
    assert paired_similarity(a, a.flip(0)) == pytest.approx(0.0)  # swapped rows: every pair orthogonal
    assert mean_similarity(a, a) == pytest.approx(0.5)  # all pairs: the paper's DINO/CLIP-I mean


# -- the evaluation set ----------------------------------------------------------------


def test_default_prompts_are_instance_recontextualisations_and_class(tmp_path: Path) -> None:
    profile = tiny_profile(tmp_path, concepts=[CONCEPT])
    prompts = evaluation_prompts(profile)
    assert [p.prompt for p in prompts] == [
        "photo of zwx disc", "a zwx disc on the beach", "a zwx disc in the snow", "a zwx disc in the jungle", "photo of a disc",
    ]
    assert [p.is_subject for p in prompts] == [True, True, True, True, False]
    assert [p.scored_prompt for p in prompts][:2] == ["photo of disc", "a disc on the beach"]
    assert all("zwx" not in p.scored_prompt for p in prompts)


def test_identifier_and_class_noun_come_from_the_prompts() -> None:
    assert concept_words("a photo of ohwx dog", "a photo of a dog") == ("ohwx", "dog")
    assert concept_words("a photo of ohwx", "a photo of a dog") == ("ohwx", "dog")  # the noun from the class prompt
    assert concept_words("painting in zwx style", None) == (None, None)
    assert concept_words("a photo of zwx dog", None) == ("zwx", "dog")  # no class prompt (prior preservation off)
    # Without one, only an identifier beside its noun is taken: these named 'portrait', 'style', 'painting', 'closeup'.
    for prompt in ("a portrait of ohwx", "in the style of zwx", "painting of zwx", "closeup photo of ohwx"):
        assert concept_words(prompt, None) == (None, None), prompt
    # A possessive goes with its identifier (the prompt names the concept); 'zwxy' is another word.
    assert without_identifiers("zwx's zwx dog next to a zwxy", ["zwx"]) == "dog next to a zwxy"
    assert without_identifiers("zwx’s dog", ["zwx"]) == "dog"  # a typographic apostrophe too
    assert without_identifiers("a T-rex toy at REX speed", ["rex"]) == "a T-rex toy at speed"  # 'T-rex' is another word


def test_an_identifier_is_recognised_in_any_case_and_as_a_possessive(tmp_path: Path) -> None:
    from engine.evaluation.prompt_problems import evaluation_problems

    texts = ["a ZWX disc on the beach", "Zwx disc", "photo of zwx's disc"]
    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "prompts": texts, **TINY_SCORERS})
    prompts = evaluation_prompts(profile)
    assert [(p.concept, p.scored_prompt) for p in prompts] == [(0, "a disc on the beach"), (0, "disc"), (0, "photo of disc")]
    upper_only = tiny_profile(tmp_path, evaluation={"enabled": True, "prompts": texts[:1], **TINY_SCORERS})
    assert evaluation_problems(upper_only) == []


def test_evaluation_prompts_naming_a_concept_without_a_class_prompt_are_no_problem(tmp_path: Path) -> None:
    from engine.evaluation.prompt_problems import evaluation_problems

    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "prompts": ["a zwx disc on the beach"], **TINY_SCORERS})
    assert profile.concepts[0].class_prompt is None and evaluation_problems(profile) == []
    assert [p.is_subject for p in evaluation_prompts(profile)] == [True]


@pytest.mark.parametrize(("instance_prompt", "class_prompt"), [
    ("photo of zwx disc", "disc"), ("photo of zwx disc", "a disc"), ("a zwx", "disc"), ("a photo of zwx", "photo of disc"),
])
def test_a_class_prompt_without_the_instance_prompts_fillers_still_tells_the_identifier(
        tmp_path: Path, instance_prompt: str, class_prompt: str) -> None:
    """'photo of' or 'a' the class prompt lacks are no second word it lacks: the prompts naming 'zwx' were said to name
    no concept, and no round scored the subject."""
    from engine.evaluation.prompt_problems import evaluation_problems

    concept = {"instance_dir": "builtin:demo-instance", "instance_prompt": instance_prompt, "class_prompt": class_prompt}
    profile = tiny_profile(tmp_path, concepts=[concept],
                           evaluation={"enabled": True, "prompts": ["a zwx disc on the beach"], **TINY_SCORERS})
    assert concept_words(instance_prompt, class_prompt)[0] == "zwx"
    assert evaluation_problems(profile) == [] and [p.is_subject for p in evaluation_prompts(profile)] == [True]
    assert concept_words("photo of zwx disc", "a zwx") == (None, None)  # that class prompt names the identifier


def test_clip_t_reads_the_prompt_without_the_identifier(tmp_path: Path, scorers, disc: Image.Image) -> None:
    from engine.evaluation.rounds import Evaluation

    profile = tiny_profile(tmp_path, concepts=[CONCEPT], evaluation={"enabled": True, "images_per_prompt": 2, **TINY_SCORERS})
    evaluation = Evaluation(profile, tmp_path, [Path(__file__)], torch.device("cpu"), emit=lambda event: None)
    evaluation._instances[0] = (scorers.dino_features([disc]), scorers.clip_image_features([disc]))
    images = [disc, noise_image(3)]
    row = evaluation._score_prompt(0, evaluation.prompts[0], images, scorers, base=None)
    clip_images = scorers.clip_image_features(images)

    def clip_t(text: str) -> float:
        return paired_similarity(clip_images, scorers.clip_text_features([text]).expand(2, -1))

    assert row["scored_prompt"] == "photo of disc"
    assert row["clip_t"] == pytest.approx(clip_t("photo of disc"), abs=1e-6)
    assert abs(clip_t("photo of zwx disc") - clip_t("photo of disc")) > 1e-4  # the identifier would change the score


def test_instance_photos_are_shrunk_as_they_are_read_and_score_alike(tmp_path: Path, scorers, disc: Image.Image) -> None:
    from engine.evaluation.rounds import SCORING_SIDE, Evaluation

    photos = tmp_path / "photos"
    photos.mkdir()
    big = disc.resize((1800, 1200), Image.Resampling.BICUBIC)
    big.save(photos / "big.png")
    seen: list[tuple[int, int]] = []

    class Recording:
        def dino_features(self, images):
            seen.extend(image.size for image in images)
            return scorers.dino_features(images)

        def clip_image_features(self, images):
            return scorers.clip_image_features(images)

    profile = tiny_profile(tmp_path, concepts=[CONCEPT], evaluation={"enabled": True, **TINY_SCORERS})
    evaluation = Evaluation(profile, tmp_path, [photos], torch.device("cpu"), emit=lambda event: None)
    dino, clip = evaluation._instance_features(0, Recording())
    assert seen == [(SCORING_SIDE * 3 // 2, SCORING_SIDE)]
    assert mean_similarity(dino, scorers.dino_features([big])) > 0.99
    assert mean_similarity(clip, scorers.clip_image_features([big])) > 0.99


def test_instance_photos_are_embedded_in_batches(tmp_path: Path, scorers, disc: Image.Image) -> None:
    """A concept's photos went through each scorer in one pass: 200 photos held at once on the device."""
    from engine.evaluation.rounds import SCORING_BATCH, Evaluation

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(SCORING_BATCH + 3):
        disc.save(photos / f"{i:02d}.png")
    batches: dict[str, list[int]] = {"dino": [], "clip": []}

    class Recording:
        def dino_features(self, images):
            batches["dino"].append(len(images))
            return scorers.dino_features(images)

        def clip_image_features(self, images):
            batches["clip"].append(len(images))
            return scorers.clip_image_features(images)

    profile = tiny_profile(tmp_path, concepts=[CONCEPT], evaluation={"enabled": True, **TINY_SCORERS})
    evaluation = Evaluation(profile, tmp_path, [photos], torch.device("cpu"), emit=lambda event: None)
    dino, clip = evaluation._instance_features(0, Recording())
    assert batches == {"dino": [SCORING_BATCH, 3], "clip": [SCORING_BATCH, 3]}
    assert dino.shape[0] == clip.shape[0] == SCORING_BATCH + 3


# -- the best-step rule ----------------------------------------------------------------


def scored(step: int, subject: float, clip_t: float) -> SamplesScored:
    return SamplesScored(step=step, scores={"subject": subject, "clip_t": clip_t, "dino": subject, "clip_i": subject, "class_drift": 0.0})


def test_best_step_is_the_highest_subject_fidelity_while_prompt_fidelity_holds() -> None:
    events = [scored(0, 0.40, 0.300), scored(10, 0.60, 0.290), scored(20, 0.80, 0.250), scored(30, 0.65, 0.285)]
    best = best_step(events)
    assert best is not None and (best.step, best.start_clip_t) == (30, 0.300)  # 20 fell 0.05 below the start
    loose = RunStarted(run_dir="r", profile={"evaluation": {"prompt_fidelity_tolerance": 0.1}}, hardware={}, versions={}, total_steps=30)
    assert best_step([loose, *events]).step == 20
    assert best_step([scored(0, 0.4, 0.3)]) is None  # the base model alone is no step to keep
    assert best_step([*events, scored(30, 0.9, 0.1)]).step == 10  # step 30 scored again after a resume: the latest counts


def test_a_resume_or_a_stop_at_an_earlier_step_drops_the_later_rounds() -> None:
    """Rounds of a branch that a resume from an earlier checkpoint set aside counted for the best step."""
    events = [scored(0, 0.40, 0.300), scored(10, 0.60, 0.290), scored(20, 0.80, 0.295)]
    resumed = RunStarted(run_dir="r", profile={}, hardware={}, versions={}, total_steps=30, resumed_from_step=10)
    assert best_step(events).step == 20 and best_step([*events, resumed]).step == 10
    # A resume stopped before its first step says its checkpoint's step; 0 was said before it did, and drops nothing.
    assert best_step([*events, RunFinished(step=10, outputs={}, seconds=1.0, status="stopped")]).step == 10
    assert best_step([*events, RunFinished(step=0, outputs={}, seconds=1.0, status="stopped")]).step == 20


# -- tiny runs ---------------------------------------------------------------------------


def run_profile(tmp_path: Path, name: str, evaluation: dict) -> object:
    return tiny_profile(
        tmp_path, name=name, concepts=[CONCEPT],
        training={"max_train_steps": 4},
        sampling={"num_images": 1, "steps": 2, "every_n_steps": 2}, logging={"logger": "tensorboard"},
        evaluation={"prompts": ["photo of zwx disc", "photo of a disc"], "images_per_prompt": 1, **TINY_SCORERS, **evaluation},
    )


def train_recording_rng(profile) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Train; the global RNG state and the trainer's generator state after every step (rounds included)."""
    from engine.runs.in_process import train

    states: list[tuple[torch.Tensor, torch.Tensor]] = []
    train(profile, step_hooks=[lambda trainer, step: states.append((torch.random.get_rng_state(), trainer.generator.get_state()))])
    return states


def events_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def unet_weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "outputs" / "diffusers" / "unet" / "diffusion_pytorch_model.safetensors")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path, demo_data: Path):
    """The same tiny run with scoring on and off: (run folder, rng states) each. The built-in model and
    images are built first: building them draws from the global RNG, which would tell the runs apart."""
    tmp = tmp_path_factory.mktemp("eval-runs")
    torch.manual_seed(0)
    on = train_recording_rng(run_profile(tmp, "on", {"enabled": True}))
    torch.manual_seed(0)
    off = train_recording_rng(run_profile(tmp, "off", {"enabled": False}))
    return (tmp / "runs" / "on", on), (tmp / "runs" / "off", off)


def test_a_tiny_run_scores_every_round_and_names_the_best_step(two_runs) -> None:
    (run, _), _ = two_runs
    rounds = [e for e in events_of(run) if e["event"] == "samples_scored"]
    assert [e["step"] for e in rounds] == [0, 2, 4]  # the base model, the preview round, the end
    for event in rounds:
        assert set(event["scores"]) == {"dino", "clip_i", "subject", "clip_t", "class_drift"}
        assert [p["prompt"] for p in event["prompts"]] == ["photo of zwx disc", "photo of a disc"]
        assert event["prompts"][0]["scored_prompt"] == "photo of disc"
        assert all(-1.0 <= event["scores"][k] <= 1.0 for k in ("dino", "clip_i", "clip_t"))
        assert (Path(event["folder"]) / "prompt01_00.png").exists()
    assert rounds[0]["scores"]["class_drift"] == pytest.approx(0.0, abs=1e-5)  # the base against itself
    assert not any(e["event"] == "warning" for e in events_of(run))
    start = rounds[0]["scores"]["clip_t"]
    eligible = [e for e in rounds[1:] if e["scores"]["clip_t"] >= start - 0.02]
    best = best_step_of_run(run / "events.jsonl")
    if eligible:
        expected = max(eligible, key=lambda e: (e["scores"]["subject"], -e["step"]))
        assert best is not None and best.step == expected["step"]
    else:
        assert best is None


def test_scores_reach_tensorboard(two_runs) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run, _), _ = two_runs
    steps, tags = [], set()
    for log in (run / "logs").rglob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(log))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
        if "eval/subject" in accumulator.Tags()["scalars"]:
            steps += [s.step for s in accumulator.Scalars("eval/subject")]
    assert sorted(steps) == [0, 2, 4]
    assert {"eval/dino", "eval/clip_i", "eval/clip_t", "eval/class_drift", "loss"} <= tags


def test_scoring_never_changes_the_weights_or_the_rng_stream(two_runs) -> None:
    (run_on, states_on), (run_off, states_off) = two_runs
    assert not (run_off / "evaluation").exists() and (run_on / "evaluation" / "step-000000").is_dir()
    on, off = unet_weights(run_on), unet_weights(run_off)
    assert on.keys() == off.keys()
    assert all(torch.equal(on[k], off[k]) for k in on)
    assert len(states_on) == len(states_off) == 4
    for (cpu_on, gen_on), (cpu_off, gen_off) in zip(states_on, states_off):
        assert torch.equal(cpu_on, cpu_off) and torch.equal(gen_on, gen_off)


def test_offline_without_cached_scorers_warns_once_and_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from engine.runs.in_process import train

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    profile = run_profile(tmp_path, "offline", {"enabled": True, "clip_model": "openai/clip-vit-base-patch32",
                                                "dino_model": "facebook/dino-vits16"})
    result = train(profile)
    events = events_of(tmp_path / "runs" / "offline")
    warnings = [e for e in events if e["event"] == "warning"]
    assert result.status == "finished" and events[-1]["event"] == "run_finished"
    assert len(warnings) == 1 and "openai/clip-vit-base-patch32" in warnings[0]["message"]
    assert "evaluation.clip_model" in warnings[0]["advice"]
    assert not any(e["event"] == "samples_scored" for e in events)


def test_runs_and_attach_show_the_best_step(two_runs, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from dbtui.cli import main

    (run, _), (run_off, _) = two_runs
    best = best_step_of_run(run / "events.jsonl")
    assert best is not None  # the tiny run's rounds are expected to keep prompt fidelity within 0.02 of the start
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", "--dir", str(run.parent)]) == 0
    table = capsys.readouterr().out
    assert "best step" in table
    rows = {line.split("│")[1].strip(): line.split("│")[5].strip() for line in table.splitlines() if str(run.parent) in line}
    assert rows == {str(run): str(best.step), str(run_off): "-"}
    assert main(["attach", str(run), "--plain"]) == 0
    out = capsys.readouterr().out
    assert f"best step: {best.step} — subject fidelity" in out  # the run is over: no "so far"
    # The advice the wizard and the report give: never an export of a checkpoint that was not kept.
    from engine.runs.checkpoints import complete_checkpoints
    from engine.runs.folder import RunFolder
    from engine.runs.keep import how_to_keep

    finished_at = json.loads((run / "events.jsonl").read_text().splitlines()[-1])["step"]
    keep = how_to_keep(best, [step for step, _ in complete_checkpoints(RunFolder(run))], finished_at)
    assert keep.advice(str(run)) in " ".join(out.split())
    if keep.export_step is None:
        assert "dbtui export" not in out
