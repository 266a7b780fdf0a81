"""Rounds scored under other [evaluation] settings are not compared: a resume that changes them scores the base model
again (class drift read the old prompt list's base images by prompt number, CLIP-T's start was the old set's), and the
best-step rule and the score plot compare only rounds of the newest base round's settings."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from dbtui.widgets.score_plot import ScoreHistory
from engine.evaluation.best import best_step
from engine.events import RunStarted, SamplesScored, Warning
from engine.models.registry import family_named
from engine.runs.sinks import JsonlSink
from engine.training.preview_rounds import PreviewRounds
from tests.training_helpers import tiny_profile

TINY_SCORERS = {"clip_model": "builtin:tiny-clip", "dino_model": "builtin:tiny-dino"}
OLD = {"prompts": ["photo of zwx disc", "photo of a disc"]}
NEW = {"prompts": ["photo of a cat"] + OLD["prompts"]}  # a prompt inserted first: every prompt's number moves


def picture(prompt: str, seed: int) -> Image.Image:
    """One image per (prompt, seed), the same at every round: the model never changes in these tests."""
    digest = hashlib.sha256(f"{prompt}/{seed}".encode()).digest()
    pixels = torch.randint(0, 256, (64, 64, 3), generator=torch.Generator().manual_seed(int.from_bytes(digest[:4], "big")),
                           dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def rounds_for(tmp_path: Path, demo_data: Path, evaluation: dict, emitted: list) -> PreviewRounds:
    profile = tiny_profile(tmp_path, evaluation={"enabled": True, "images_per_prompt": 1, **TINY_SCORERS, **evaluation})
    trainer = SimpleNamespace(profile=profile, accelerator=SimpleNamespace(is_main_process=True, trackers=[], num_processes=1),
                              run_dir=tmp_path / "run", instance_dirs=[demo_data / "instance"], device=torch.device("cpu"),
                              emit=emitted.append, phase=lambda *a, **k: contextlib.nullcontext(),
                              cancel=threading.Event(),  # as the trainer's: a stop asked in set-up skips the base round
                              components=SimpleNamespace(family=family_named("sd")))  # the tiny model's
    rounds = PreviewRounds(trainer)

    def generate(folder: Path, prompts: list[str], num_images: int, seed: int):
        generated.append(folder)
        folder.mkdir(parents=True, exist_ok=True)
        images = [picture(prompt, seed + k) for prompt in prompts for k in range(num_images)]
        for i, image in enumerate(images):
            image.save(folder / f"prompt{i // num_images:02d}_{i % num_images:02d}.png")
        return [], None, images

    rounds._generate = generate  # type: ignore[method-assign]
    rounds.generated = generated = []  # type: ignore[attr-defined]  # the folders generated into
    return rounds


def test_a_resume_under_other_evaluation_settings_scores_the_base_again(tmp_path: Path, demo_data: Path) -> None:
    first: list = []
    rounds_for(tmp_path, demo_data, OLD, first).score(0)
    assert [e.step for e in first] == [0] and first[0].settings["prompts"] == OLD["prompts"]
    sink = JsonlSink(tmp_path / "run" / "events.jsonl")  # as a run's: a base round it holds no scores of is scored again
    sink(first[0])
    sink.close()

    same: list = []
    rounds_for(tmp_path, demo_data, OLD, same).score_base_again()
    assert same == []  # the base round was scored with these settings: nothing to do again

    resumed: list = []
    rounds = rounds_for(tmp_path, demo_data, NEW, resumed)
    rounds.score_base_again()
    rounds.begin(40)  # after the attempt's run_started
    warning, base = resumed
    assert isinstance(warning, Warning) and "prompts" in warning.message and "not compared" in warning.message
    assert isinstance(base, SamplesScored) and base.step == 0 and base.settings["prompts"] == NEW["prompts"]
    rounds.score(40)  # the model is unchanged: every identifier-free image is its base image
    drift = {row["prompt"]: row["class_drift"] for row in resumed[-1].prompts}
    # Read back by number, "photo of a disc" (now prompt 2) was measured against the old prompt 2's image, or none.
    assert drift["photo of a disc"] == pytest.approx(0.0, abs=1e-5)
    assert drift["photo of a cat"] == pytest.approx(0.0, abs=1e-5)

    growing: list = []
    rounds = rounds_for(tmp_path, demo_data, {**NEW, "images_per_prompt": 2}, growing)
    rounds.score_base_again()
    rounds.begin(40)
    assert "images_per_prompt" in growing[0].message and growing[1].step == 0


def scored(step: int, subject: float, clip_t: float, settings: dict | None) -> SamplesScored:
    return SamplesScored(step=step, scores={"subject": subject, "clip_t": clip_t}, settings=settings)


def test_the_best_step_compares_only_rounds_of_the_newest_base_rounds_settings() -> None:
    old, new = {"prompts": ["a"]}, {"prompts": ["b", "a"]}
    events = [scored(0, 0.4, 0.30, old), scored(20, 0.9, 0.30, old), scored(40, 0.8, 0.30, old),
              scored(0, 0.4, 0.20, new), scored(60, 0.5, 0.19, new)]
    best = best_step(events)
    # Step 20 had the highest subject fidelity on the old scale; the new base's CLIP-T is the start now.
    assert best is not None and (best.step, best.start_clip_t, best.qualifying) == (60, 0.20, (60,))
    assert best_step(events[:3]).step == 20
    # Rounds of an older dbtui record no settings: they are one scale, as before.
    assert best_step([scored(0, 0.4, 0.3, None), scored(10, 0.6, 0.3, None)]).step == 10


def test_the_score_plot_shows_the_newest_scale_only_and_no_infinite_score() -> None:
    history = ScoreHistory()
    for event in (scored(0, 0.4, 0.3, {"a": 1}), scored(20, float("inf"), 0.3, {"a": 1})):
        history.add(event)
    assert history.series("subject") == ([0], [0.4])  # plotext raised ValueError on inf
    history.add(scored(0, 0.5, 0.2, {"a": 2}))
    history.add(scored(40, 0.6, 0.2, {"a": 2}))
    assert history.series("subject") == ([0, 40], [0.5, 0.6])


def test_a_resume_scores_the_base_again_before_its_checkpoint_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only then are the models the base model's: after the load they hold the checkpoint's weights."""
    import engine.runs.supervisor as supervisor_module
    from engine.runs.folder import RunFolder

    done: list[str] = []

    class Checkpointer:
        def __init__(self, trainer, folder) -> None:
            pass

        def load(self, path: Path) -> int:
            done.append("load")
            return 40

    monkeypatch.setattr(supervisor_module, "Checkpointer", Checkpointer)
    supervisor = supervisor_module.Supervisor(RunFolder(tmp_path / "run").create(), main_process=False)
    supervisor.resume = tmp_path / "run" / "checkpoints" / "step-00000040"
    trainer = SimpleNamespace(rounds=SimpleNamespace(score_base_again=lambda: done.append("base")),
                              accelerator=SimpleNamespace(is_main_process=False))
    supervisor.attach(trainer)
    assert done == ["base", "load"]


def test_scorers_that_cannot_load_are_found_out_before_any_image_is_generated(
        tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base images were generated (minutes on SDXL) before the scorers failed, so settings.json was never written,
    and each later resume warned that every setting had changed, deleted the base images and generated them again."""
    import engine.evaluation.scorers as scorers_module

    monkeypatch.setattr(scorers_module, "_hub_reachable", lambda: False)
    offline = {**OLD, "dino_model": "nosuchorg/no-such-dino"}  # offline, and not in the Hugging Face cache
    first: list = []
    rounds = rounds_for(tmp_path, demo_data, offline, first)
    rounds.score(0)
    rounds.score(20)
    assert rounds.generated == []  # type: ignore[attr-defined]
    assert [type(e) for e in first] == [Warning] and "offline, and not in the Hugging Face cache" in first[0].message

    base = tmp_path / "run" / "evaluation" / "step-000000"  # as the earlier dbtui left it: images, no settings.json
    base.mkdir(parents=True)
    (base / "prompt00_00.png").write_bytes(b"png")
    resumed: list = []
    rounds = rounds_for(tmp_path, demo_data, offline, resumed)
    rounds.score_base_again()
    assert rounds.generated == [] and (base / "prompt00_00.png").exists()  # type: ignore[attr-defined]
    assert [type(e) for e in resumed] == [Warning] and "differ" not in resumed[0].message


def older_dbtuis_run(tmp_path: Path, demo_data: Path, events: bool = True) -> Path:
    """A run an older dbtui scored: its base round records no settings, and its rounds' events none either."""
    rounds = rounds_for(tmp_path, demo_data, OLD, [])
    rounds.score(0)
    base = tmp_path / "run" / "evaluation" / "step-000000"
    (base / "settings.json").unlink()
    if events:
        started = RunStarted(run_dir=str(tmp_path / "run"), profile=rounds.trainer.profile.model_dump(mode="json"), hardware={},
                             versions={}, total_steps=60)
        lines = [started, scored(0, 0.4, 0.3, None), scored(20, 0.9, 0.3, None)]
        (tmp_path / "run" / "events.jsonl").write_text("".join(event.to_json() + "\n" for event in lines), encoding="utf-8")
    return base


def test_an_older_dbtuis_base_round_of_this_runs_settings_is_kept_and_recorded(tmp_path: Path, demo_data: Path) -> None:
    """It was deleted and made again, with a warning that every setting had changed, and the rounds scored before were
    no longer compared."""
    base = older_dbtuis_run(tmp_path, demo_data)
    images = {path.name: path.read_bytes() for path in base.glob("*.png")}
    emitted: list = []
    rounds = rounds_for(tmp_path, demo_data, OLD, emitted)
    rounds.score_base_again()
    assert emitted == [] and rounds.generated == []  # type: ignore[attr-defined]
    assert {path.name: path.read_bytes() for path in base.glob("*.png")} == images
    assert json.loads((base / "settings.json").read_text())["prompts"] == OLD["prompts"]
    rounds.score_base_again()  # recorded now: nothing to find out again
    assert emitted == [] and rounds.generated == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("evaluation", "events", "said"), [
    (NEW, True, "differ from those of the profile the base round in"),
    (OLD, False, "records no [evaluation] settings"),  # nothing says what the older dbtui made it with
])
def test_an_older_dbtuis_base_round_is_moved_aside_when_it_is_not_this_runs(
        tmp_path: Path, demo_data: Path, evaluation: dict, events: bool, said: str) -> None:
    """The user's earlier images were deleted (rmtree); they are the report's "before" pictures."""
    base = older_dbtuis_run(tmp_path, demo_data, events)
    images = {path.name: path.read_bytes() for path in base.glob("*.png")}
    emitted: list = []
    rounds = rounds_for(tmp_path, demo_data, evaluation, emitted)
    rounds.score_base_again()
    rounds.begin(40)
    warning, rescored = emitted
    aside = base.with_name("step-000000-earlier-1")
    assert isinstance(warning, Warning) and said in warning.message and str(aside) in warning.message
    assert ("(prompts)" in warning.message) == events
    assert {path.name: path.read_bytes() for path in aside.glob("*.png")} == images
    assert isinstance(rescored, SamplesScored) and rescored.step == 0 and (base / "settings.json").is_file()


def test_an_older_dbtuis_rounds_count_with_the_new_ones_where_the_base_round_was_kept() -> None:
    """They record no settings; the rounds after the resume do: the rule compared only those of the base's (none)."""
    settings = {"prompts": ["a"]}
    kept = [scored(0, 0.4, 0.30, None), scored(20, 0.6, 0.30, None), scored(40, 0.9, 0.30, settings)]
    best = best_step(kept)
    assert best is not None and best.qualifying == (40, 20)
    # Where the resume scored the base model again instead, the older rounds are of another scale.
    again = [*kept[:2], scored(0, 0.4, 0.20, settings), scored(60, 0.5, 0.20, settings)]
    best = best_step(again)
    assert best is not None and (best.step, best.start_clip_t, best.qualifying) == (60, 0.20, (60,))


def test_a_resumes_base_round_is_said_after_its_run_started_and_not_to_the_trackers(tmp_path: Path, demo_data: Path) -> None:
    """Its samples_scored came before the attempt's run_started, and went to TensorBoard/wandb as step 0 after step N
    (wandb drops a step lower than one it logged)."""
    rounds_for(tmp_path, demo_data, OLD, []).score(0)
    emitted: list = []
    rounds = rounds_for(tmp_path, demo_data, NEW, emitted)
    logged: list = []
    rounds.trainer.accelerator.trackers = ["tensorboard"]
    rounds.trainer.accelerator.log = lambda values, step: logged.append(step)
    rounds.score_base_again()  # before the checkpoint loads
    base = tmp_path / "run" / "evaluation" / "step-000000"
    assert [type(e) for e in emitted] == [Warning] and not (base / "settings.json").exists()
    emitted.append("run_started")
    rounds.begin(40)
    assert [getattr(e, "step", e) for e in emitted[1:]] == ["run_started", 0] and logged == []
    assert (base / "settings.json").is_file()  # recorded once its event is in the run's events
    rounds.begin(40)
    rounds.score(50)
    assert [getattr(e, "step", e) for e in emitted[1:]] == ["run_started", 0, 50] and logged == [50]


def started_with(tmp_path: Path, rounds: PreviewRounds, *events: SamplesScored) -> None:
    """events.jsonl as the run's first attempt wrote it: its start, then ``events``."""
    start = RunStarted(run_dir=str(tmp_path / "run"), profile=rounds.trainer.profile.model_dump(mode="json"), hardware={},
                       versions={}, total_steps=60)
    (tmp_path / "run" / "events.jsonl").write_text("".join(e.to_json() + "\n" for e in (start, *events)), encoding="utf-8")


@pytest.mark.parametrize("older", [False, True])
def test_a_base_round_whose_attempt_ended_before_its_start_is_scored_again(
        tmp_path: Path, demo_data: Path, older: bool) -> None:
    """A resume under other settings made their base images and was stopped before its run_started: the next resume,
    under the first settings, took the folder (no settings.json) for an older dbtui's, which the run's starts all said
    was of its settings, and kept the other settings' images as its base round."""
    if older:
        base = older_dbtuis_run(tmp_path, demo_data)
    else:
        first: list = []
        rounds = rounds_for(tmp_path, demo_data, OLD, first)
        rounds.score(0)
        started_with(tmp_path, rounds, *first)
        base = tmp_path / "run" / "evaluation" / "step-000000"
    own = (base / "prompt00_00.png").read_bytes()
    rounds_for(tmp_path, demo_data, {**OLD, "seed": 999}, []).score_base_again()  # never begins
    assert (base / "prompt00_00.png").read_bytes() != own
    emitted: list = []
    rounds = rounds_for(tmp_path, demo_data, OLD, emitted)
    rounds.score_base_again()
    rounds.begin(40)
    warning, rescored = emitted
    assert "was cut short" in warning.message and "only where they were scored under these settings" in warning.message
    assert rounds.generated == [base] and (base / "prompt00_00.png").read_bytes() == own  # type: ignore[attr-defined]
    assert isinstance(rescored, SamplesScored) and json.loads((base / "settings.json").read_text())["seed"] == rescored.settings["seed"]
    assert sorted(p.name for p in base.iterdir()) == ["prompt00_00.png", "prompt01_00.png", "settings.json"]


def test_a_base_round_whose_scorers_failed_after_its_images_is_scored_again(
        tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scorers whose small files were there and weights not: the base images were made, then scoring was skipped."""
    import engine.evaluation.rounds as rounds_module
    from engine.evaluation.scorers import ScorersUnavailableError

    @contextlib.contextmanager
    def no_weights(*args: object, **kwargs: object):
        raise ScorersUnavailableError("cannot load the scorer: offline, and not in the Hugging Face cache")
        yield

    real = rounds_module.loaded_scorers
    monkeypatch.setattr(rounds_module, "loaded_scorers", no_weights)
    first: list = []
    rounds = rounds_for(tmp_path, demo_data, OLD, first)
    rounds.begin(0)
    started_with(tmp_path, rounds)
    assert [type(e) for e in first] == [Warning] and rounds.generated  # type: ignore[attr-defined]
    monkeypatch.setattr(rounds_module, "loaded_scorers", real)
    resumed: list = []
    rounds = rounds_for(tmp_path, demo_data, OLD, resumed)
    rounds.score_base_again()
    rounds.begin(40)
    assert [type(e) for e in resumed] == [Warning, SamplesScored] and "cut short" in resumed[0].message


@pytest.mark.parametrize("recorded", [False, True])
def test_a_base_round_made_again_whose_scorers_fail_puts_the_earlier_one_back(
        tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch, recorded: bool) -> None:
    """Scorers that fail past check_scorers (corrupt weights): each resume set the earlier base round aside as
    step-000000-earlier-N and made it again (minutes on SDXL or Flux), to fail again, piling up copies."""
    import engine.evaluation.rounds as rounds_module
    from engine.evaluation.scorers import ScorersUnavailableError

    @contextlib.contextmanager
    def corrupt(*args: object, **kwargs: object):
        raise ScorersUnavailableError("cannot load the scorer: its weights are damaged")
        yield

    if not recorded:  # the first attempt's scoring failed too: its round is cut short
        monkeypatch.setattr(rounds_module, "loaded_scorers", corrupt)
    rounds = rounds_for(tmp_path, demo_data, OLD, [])
    rounds.begin(0)
    started_with(tmp_path, rounds)
    base = tmp_path / "run" / "evaluation" / "step-000000"
    before = {path.name: path.read_bytes() for path in base.iterdir()}
    monkeypatch.setattr(rounds_module, "loaded_scorers", corrupt)
    for _ in range(2):
        emitted: list = []
        rounds = rounds_for(tmp_path, demo_data, NEW, emitted)
        rounds.score_base_again()
        rounds.begin(40)
        assert rounds.generated == [base] and [type(e) for e in emitted] == [Warning] * 3  # type: ignore[attr-defined]
        assert "the scorers failed" in emitted[-1].message and f"back in {base}" in emitted[-1].message
        assert {path.name: path.read_bytes() for path in base.iterdir()} == before
        assert sorted(path.name for path in base.parent.iterdir()) == ["step-000000"]



def test_the_base_rounds_settings_are_written_after_its_event_is_said(tmp_path: Path, demo_data: Path) -> None:
    """A record without its event: the best-step rule reads the base round's scale from the events."""
    settings = tmp_path / "run" / "evaluation" / "step-000000" / "settings.json"
    recorded: list[bool] = []
    rounds = rounds_for(tmp_path, demo_data, OLD, [])
    rounds.trainer.emit = lambda event: recorded.append(settings.exists())
    rounds.begin(0)
    assert recorded == [False] and settings.is_file()


def test_an_event_naming_run_started_is_no_start(tmp_path: Path, demo_data: Path) -> None:
    """A newer dbtui's event whose value is the words "run_started": the base round was scored again for it."""
    base = older_dbtuis_run(tmp_path, demo_data)
    with (tmp_path / "run" / "events.jsonl").open("a", encoding="utf-8") as events:
        events.write(json.dumps({"event": "stage", "time": 1.0, "after": "run_started"}) + "\n")
    emitted: list = []
    rounds = rounds_for(tmp_path, demo_data, OLD, emitted)
    rounds.score_base_again()
    assert emitted == [] and rounds.generated == [] and (base / "settings.json").is_file()  # type: ignore[attr-defined]


@pytest.mark.parametrize("spoil", ["damaged", "missing"])
def test_a_resume_whose_base_drift_image_is_damaged_or_missing_scores_the_base_again(tmp_path: Path, demo_data: Path,
                                                                                    spoil: str) -> None:
    """Class drift reads the base images back: a damaged one failed the resumed run at its first round (with advice
    to check a dataset), a missing one dropped that prompt's drift without a word."""
    rounds_for(tmp_path, demo_data, OLD, []).score(0)
    image = tmp_path / "run" / "evaluation" / "step-000000" / "prompt01_00.png"  # "photo of a disc": drift's
    if spoil == "damaged":
        image.write_bytes(image.read_bytes()[:100])
    else:
        image.unlink()
    resumed: list = []
    rounds = rounds_for(tmp_path, demo_data, OLD, resumed)
    rounds.score_base_again()
    rounds.begin(40)
    warning, base = resumed
    assert isinstance(warning, Warning) and str(image) in warning.message and spoil in warning.message
    assert "still count" in warning.message and isinstance(base, SamplesScored) and base.step == 0
    rounds.score(40)
    drift = {row["prompt"]: row["class_drift"] for row in resumed[-1].prompts}
    assert drift["photo of a disc"] == pytest.approx(0.0, abs=1e-5)


def test_a_base_round_cut_short_before_its_first_image_is_removed_not_kept_as_earlier_images(
        tmp_path: Path, demo_data: Path) -> None:
    """A double Ctrl-C in a re-scored base round left step-000000/ holding only its unfinished mark: the next resume
    moved it to step-000000-earlier-1 and said "the earlier images are kept in" it, a folder with no image."""
    from engine.evaluation.base_round import UNFINISHED

    base = tmp_path / "run" / "evaluation" / "step-000000"
    base.mkdir(parents=True)
    (base / UNFINISHED).write_text("these images were never scored\n", encoding="utf-8")
    emitted: list = []
    rounds = rounds_for(tmp_path, demo_data, OLD, emitted)
    rounds.score_base_again()
    rounds.begin(40)
    warning, rescored = emitted
    assert "was cut short" in warning.message and "kept in" not in warning.message
    assert not base.with_name("step-000000-earlier-1").exists()
    assert isinstance(rescored, SamplesScored) and sorted(p.name for p in base.iterdir()) == [
        "prompt00_00.png", "prompt01_00.png", "settings.json"]


def test_a_rounds_scoring_reads_the_scorers_small_files_its_check_read_once(
        tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before a round's images reads CLIP's tokenizer and both image processors; its scoring reused them,
    where it read them all again (CLIP's tokenizer alone took 0.6 s)."""
    import engine.evaluation.scorers as scorers_module

    reads: list[str] = []
    load = scorers_module._load

    def counting(loader: object, name: str, **kwargs: object) -> object:
        reads.append(f"{getattr(loader, '__name__', loader)} {name}")
        return load(loader, name, **kwargs)

    monkeypatch.setattr(scorers_module, "_load", counting)
    scorers_module._kept_tokenizer.cache_clear()  # an earlier test of this process read the tokenizer: kept, not read
    emitted: list = []
    rounds_for(tmp_path, demo_data, OLD, emitted).score(0)
    assert [e.step for e in emitted] == [0]
    small = [r for r in reads if r.startswith(("AutoTokenizer", "AutoImageProcessor"))]
    assert sorted(small) == ["AutoImageProcessor builtin:tiny-clip", "AutoImageProcessor builtin:tiny-dino",
                             "AutoTokenizer builtin:tiny-clip"], reads
