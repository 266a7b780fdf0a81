"""RUN/report.html: written by the trainer at the end of a run and by `dbtui report`, self-contained
(inline SVG curves, base64 pictures, no network), opened in a headless browser; and how to keep the
best step (engine/runs/keep.py), which the report and the wizard both say."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from engine.evaluation.best import BestStep, best_step_of_run
from engine.events import RunFinished, RunStarted, StepEnded
from engine.runs.folder import RunFolder
from engine.runs.keep import how_to_keep, nearest_step
from engine.runs.report import IMAGE_CAP, REPORT, write_report, write_report_at_end
from engine.runs.report_chart import nice_ticks
from engine.runs.sinks import JsonlSink
from tests.chromium import installed_chromium
from tests.shared_runs import PlainRun

class Page(HTMLParser):
    """What a test needs from a page: tags, attributes, text, and the series each chart draws."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.images: list[str] = []
        self.series: list[str] = []
        self.charts = 0
        self.texts: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = {name: value or "" for name, value in attrs}
        self.attributes += list(values.items())
        if tag == "img":
            self.images.append(values["src"])
        elif tag == "polyline":
            self.series.append(values["data-name"])
        elif tag == "svg":
            self.charts += 1

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


@pytest.fixture(scope="module")
def scored_run(plain_scored_run: PlainRun) -> RunFolder:
    """The tiny scored run of `dbtui run` (tests/shared_runs.py): previews and scores at steps 2 and 4 (and the base
    model), a checkpoint at step 2. Read only: a test that changes it works on a copy."""
    assert plain_scored_run.returncode == 0, plain_scored_run.out
    return RunFolder(plain_scored_run.run)


def test_the_trainer_writes_a_self_contained_report(scored_run: RunFolder) -> None:
    report = scored_run.path / REPORT
    assert report.is_file()  # written by the trainer process, not by this test
    text = report.read_text(encoding="utf-8")
    page = Page(text)
    assert page.charts == 2  # the loss, the scores
    scores = {"subject fidelity", "DINO", "CLIP-I", "CLIP-T (prompt fidelity)", "class drift"}
    assert {"loss", "smoothed", *scores} <= set(page.series)
    # The preview grids of steps 2 and 4, and the evaluation images of steps 0, 2 and 4.
    assert len(page.images) == 5
    for src in page.images:
        assert src.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as picture:
            assert max(picture.size) <= IMAGE_CAP
    assert {"step 2", "step 4", "step 0 (base model)"} <= {t.strip() for t in page.texts}
    # Nothing to fetch: no scripts, styles or frames from elsewhere, no address anywhere.
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    assert not [value for _, value in page.attributes if value.startswith(("http:", "https:", "//"))]
    assert "http://" not in text and "https://" not in text
    best = best_step_of_run(scored_run.events)
    if best is None:
        assert "No step qualifies: " in page.text  # the run is over: no "yet"
    else:
        assert f"Which step to keep: step {best.step}Subject fidelity {best.subject:.3f}, CLIP-T" in page.text
        assert f"dbtui export {scored_run.path} --step {best.step}" in page.text or "run's last" in page.text
    assert 'instance_prompt = "photo of zwx disc"' in page.text  # the resolved profile
    assert "preview grid, one row per sample prompt: “photo of zwx disc”" in page.text  # the prompt it was made from
    assert "status" in page.text and "finished" in page.text


def test_the_report_opens_in_a_headless_browser(scored_run: RunFolder, tmp_path: Path) -> None:
    url = (scored_run.path / REPORT).as_uri()
    # An unusable proxy: the page would fail to load anything from a network.
    browser = [installed_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
               "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=20).stdout
    page = Page(dom)
    assert page.charts == 2 and "smoothed" in page.series and len(page.images) == 5
    assert "Which step to keep" in page.text
    shot = tmp_path / "report.png"
    subprocess.run([*browser, "--window-size=1000,1400", f"--screenshot={shot}", url], capture_output=True, timeout=20)
    with Image.open(shot) as picture:
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 100  # curves, text and pictures drawn, not a blank page


def test_dbtui_report_writes_it_again(scored_run: RunFolder, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dbtui.cli import main

    crashed = RunFolder(tmp_path / "crashed")
    shutil.copytree(scored_run.path, crashed.path, ignore=shutil.ignore_patterns("checkpoints", "outputs", "cache", REPORT))
    # A run that died after step 3: its log stops there and its state file is gone.
    lines = crashed.events.read_text(encoding="utf-8").splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if json.loads(line)["event"] == "step_ended" and json.loads(line)["step"] == 3)
    crashed.events.write_text("".join(lines[:last + 1]), encoding="utf-8")
    crashed.state_file.unlink()
    assert main(["report", str(crashed.path)]) == 0
    assert capsys.readouterr().out.strip() == str(crashed.path / REPORT)
    page = Page((crashed.path / REPORT).read_text(encoding="utf-8"))
    assert "crashed" in page.text and "output:" not in page.text  # its events end without a last word
    assert "3 of 4" in page.text  # the steps it reached
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_wizard_lists_and_exports_the_best_step(scored_run: RunFolder, tmp_path: Path) -> None:
    """The facade the wizard calls: the best step in the run list, the kept checkpoints, the export."""
    from dbtui.engine_facade import RealEngine

    run = RunFolder(tmp_path / "runs" / "t")
    shutil.copytree(scored_run.path, run.path)  # the export writes into the run: this test's own copy
    engine = RealEngine()
    best = best_step_of_run(run.events)
    [summary] = engine.list_runs(str(run.path.parent))
    assert summary.best_step == (best.step if best else None)
    assert engine.checked_checkpoints(run.path) == ([2], [])  # the last step's model is outputs/, not a checkpoint
    events = []
    outputs = engine.export_checkpoint(run.path, 2, emit=events.append)
    assert outputs["diffusers"] == str(run.path / "exports" / "step-2" / "diffusers")
    assert (run.path / "exports" / "step-2" / "diffusers" / "model_index.json").is_file()
    assert any(event.kind == "phase_started" for event in events)


# -- from a folder made here (no training) --------------------------------------------------------


def fake_run(tmp_path: Path, grid_size: tuple[int, int] | None = None) -> RunFolder:
    """An unscored run folder: 20 steps of loss, and a preview grid of ``grid_size`` at step 20."""
    folder = RunFolder(tmp_path / "plain").create()
    folder.profile.write_text('schema_version = 1\nname = "plain"\n', encoding="utf-8")
    sink = JsonlSink(folder.events)
    sink(RunStarted(time=100.0, run_dir=str(folder.path), profile={"model": {"pretrained": "m"}}, hardware={}, versions={},
                    total_steps=20))
    for step in range(1, 21):
        sink(StepEnded(time=100.0 + step, step=step, total_steps=20, epoch=0, loss=1 / step, smoothed_loss=1 / step, lr=1e-4,
                       it_per_s=1.0, eta_s=None))
    sink(RunFinished(time=130.0, step=20, outputs={"diffusers": "outputs/diffusers"}, seconds=30.0))
    sink.close()
    if grid_size:
        (folder.samples / "step-000020").mkdir(parents=True)
        noise = Image.effect_noise(grid_size, 60).convert("RGB")
        noise.save(folder.samples / "step-000020" / "grid.png")
    return folder


def test_an_unscored_run_has_its_loss_and_says_it_was_not_scored(tmp_path: Path) -> None:
    folder = fake_run(tmp_path)
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert page.charts == 1 and set(page.series) == {"loss", "smoothed"}
    assert "This run was not scored" in page.text and "No preview was saved" in page.text
    assert "output: diffusers" in page.text and "20 of 20" in page.text


def test_a_report_asked_from_inside_the_run_folder_names_the_run(tmp_path: Path, monkeypatch) -> None:
    # `dbtui report .` in the run folder wrote an empty title and heading ("." has no name), "from ..." at the end.
    folder = fake_run(tmp_path)
    monkeypatch.chdir(folder.path)
    text = write_report(Path(".")).read_text(encoding="utf-8")
    assert f"<title>dbtui report: {folder.path.name}</title>" in text and f"<h1>{folder.path.name}</h1>" in text
    assert f"from {folder.path}. " in Page(text).text


def test_a_profile_edited_in_another_encoding_is_shown(tmp_path: Path) -> None:
    # A Latin-1 "café" in RUN/profile.toml made `dbtui report` fail as a bug of dbtui (UnicodeDecodeError).
    folder = fake_run(tmp_path)
    folder.profile.write_bytes(b'name = "t"\n# caf\xe9\n')
    assert "# caf\ufffd" in Page(write_report(folder.path).read_text(encoding="utf-8")).text


@pytest.mark.parametrize(("steps", "said"), [([7], "step 7: `dbtui export {run} --step 7` writes its model"),
                                              ([7, 13], "steps 7, 13: `dbtui export {run} --step N` writes one’s model")])
def test_the_checkpoints_kept_are_named_with_the_command_that_exports_them(steps: list[int], said: str,
                                                                           tmp_path: Path) -> None:
    # A checkpoint asked for with `dbtui save` (or any, in an unscored run) was named nowhere in the page: the score
    # table's "kept" names only scored steps.
    folder = fake_run(tmp_path)
    for step in steps:
        checkpoint = folder.checkpoints / f"step-{step:08d}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "optimizer.bin").write_bytes(b"x")
        (checkpoint / "manifest.json").write_text(json.dumps({"step": step, "files": {"optimizer.bin": 1}}))
    text = Page(write_report(folder.path).read_text(encoding="utf-8")).text
    assert "checkpoints kept" + said.format(run=folder.path) in text


def test_a_damaged_step_line_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A step_ended line with a null step, a loss that is text (a hand edit) or a whole number past a float's range
    crashed `dbtui report` (exit 3)."""
    from dbtui.cli import main

    folder = fake_run(tmp_path)
    with folder.events.open("a", encoding="utf-8") as events:
        for step, loss in ((None, 0.1), (30, "0.1"), (True, 0.1), (30, 10**400)):
            line = StepEnded(step=30, total_steps=20, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0,
                             eta_s=None).to_dict()
            events.write(json.dumps({**line, "step": step, "loss": loss}) + "\n")
    assert main(["report", str(folder.path)]) == 0
    page = Page((folder.path / REPORT).read_text(encoding="utf-8"))
    assert page.charts == 1 and "20 of 20" in page.text


def test_a_run_whose_scorers_would_not_load_points_to_the_warning(tmp_path: Path) -> None:
    from engine.events import Warning

    folder = fake_run(tmp_path)
    lines = folder.events.read_text(encoding="utf-8").splitlines()
    started = json.loads(lines[0])
    started["profile"]["evaluation"] = {"enabled": True}
    scorer_warning = Warning(time=101.0, message="cannot load the scorer 'x'; scoring is skipped", advice="set evaluation.clip_model")
    folder.events.write_text("\n".join([json.dumps(started), scorer_warning.to_json(), *lines[1:]]) + "\n", encoding="utf-8")
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert "Scoring was on, but no round was scored: where the warnings below name the scorer models" in page.text
    assert "enabled = true" not in page.text and "set evaluation.clip_model" in page.text


def test_a_run_whose_prompts_name_no_subject_says_why_no_step_is_chosen(tmp_path: Path) -> None:
    from engine.events import SamplesScored

    folder = fake_run(tmp_path)
    with folder.events.open("a", encoding="utf-8") as events:
        for step in (0, 10, 20):
            scores = {"dino": None, "clip_i": None, "subject": None, "clip_t": None, "class_drift": 0.1 * step}
            events.write(SamplesScored(time=101.0 + step, step=step, scores=scores, prompts=[]).to_json() + "\n")
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert "No round scored the subject: none of the evaluation prompts names a concept's identifier" in page.text
    assert "No step qualifies" not in page.text


def scored_fake_run(tmp_path: Path, rounds: list[tuple[int, float, float]]) -> RunFolder:
    """``fake_run`` (finished at step 20) with a scored round of (step, subject fidelity, CLIP-T) each."""
    from engine.events import SamplesScored

    folder = fake_run(tmp_path)
    with folder.events.open("a", encoding="utf-8") as events:
        for step, subject, clip_t in rounds:
            scores = {"dino": subject, "clip_i": subject, "subject": subject, "clip_t": clip_t, "class_drift": 0.01}
            events.write(SamplesScored(time=131.0 + step, step=step, scores=scores, prompts=[]).to_json() + "\n")
    return folder


def test_a_finished_run_where_every_step_lost_prompt_fidelity_says_what_to_change(tmp_path: Path) -> None:
    """It said "No step qualifies yet" of a run that was over, and not why none did."""
    folder = scored_fake_run(tmp_path, [(0, 0.4, 0.30), (10, 0.7, 0.25), (20, 0.8, 0.20)])
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert ("No step qualifies: every scored step's CLIP-T fell more than 0.02 (evaluation.prompt_fidelity_tolerance) "
            "below the start, 0.300, so each is likely overfit; train with a lower learning rate, or raise "
            "evaluation.prompt_fidelity_tolerance to accept more drift. Compare the previews below.") in page.text
    assert "qualifies yet" not in page.text


def test_the_best_step_is_named_once_and_a_score_that_is_no_number_is_a_dash(tmp_path: Path) -> None:
    """The heading read "Which step to keep: step 10 step 10: subject fidelity…", and the table "nan"."""
    folder = scored_fake_run(tmp_path, [(0, float("nan"), 0.30), (10, 0.7, 0.295), (20, float("inf"), 0.29)])
    text = write_report(folder.path).read_text(encoding="utf-8")
    page = Page(text)
    assert "Which step to keep: step 10Subject fidelity 0.700, CLIP-T 0.295 (start 0.300, allowed drop 0.02)." in page.text
    assert page.text.count("step 10:") == 0
    table = text[text.index('<table class="scores">'):]
    assert "nan" not in table and "inf" not in table
    assert "<td>0 (base model)</td><td>–</td>" in table


def test_large_grids_are_scaled_down(tmp_path: Path) -> None:
    folder = fake_run(tmp_path, grid_size=(3072, 1024))
    report = write_report(folder.path)
    [src] = Page(report.read_text(encoding="utf-8")).images
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as picture:
        assert picture.size == (IMAGE_CAP, IMAGE_CAP // 3)
    assert report.stat().st_size < 600_000  # a 3072 px PNG of noise is ~9 MB


def test_a_grid_past_pillows_decompression_bomb_limit_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fake_run(tmp_path, grid_size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64×64 is past twice this: Pillow raises, not warns
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert page.images == [] and "grid.png could not be read, or is too large to show here" in page.text


def test_a_report_that_cannot_be_written_never_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_report_at_end(tmp_path / "not-a-run")  # no exception: the trainer's exit status stays its own
    assert "report.html was not written" in capsys.readouterr().err


def test_chart_ticks_are_round_and_cover_the_data() -> None:
    assert nice_ticks(0, 60) == [0, 20, 40, 60]
    assert nice_ticks(0.193, 0.912) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(3, 3)
    assert ticks[0] <= 3 <= ticks[-1] and len(ticks) > 1


# -- how to keep the best step --------------------------------------------------------------------


def best_at(step: int) -> BestStep:
    return BestStep(step, subject=0.7, clip_t=0.29, start_clip_t=0.3, tolerance=0.02)


def test_the_best_step_is_kept_by_its_checkpoint_or_the_nearest_one() -> None:
    assert how_to_keep(best_at(400), [200, 400, 600]).export_step == 400
    nearest = how_to_keep(best_at(500), [400, 600, 800])
    assert nearest.export_step == 400 and not nearest.exact  # a tie: the earlier, less trained one
    assert "the nearest kept one is step 400: `dbtui export runs/x --step 400`" in nearest.advice("runs/x")
    assert how_to_keep(best_at(500), []).export_step is None
    # checkpoints/ deleted or moved by hand: told only to set saving.every_n_steps next time.
    assert "no checkpoint of this run was kept, so step 500 cannot be exported; put back any moved out of " \
           "runs/x/checkpoints/, or set saving.every_n_steps" in how_to_keep(best_at(500), []).advice("runs/x")
    assert nearest_step([], 3) is None


def test_a_finished_runs_last_step_is_kept_by_its_outputs() -> None:
    last = how_to_keep(best_at(800), [600, 800], finished_at=800)
    assert last.in_outputs and last.export_step is None and "runs/x/outputs/" in last.advice("runs/x")
    near_end = how_to_keep(best_at(780), [400], finished_at=800)  # the outputs are nearer than any checkpoint
    assert near_end.in_outputs and near_end.step == 800 and not near_end.exact
    assert how_to_keep(best_at(800), [600, 800]).export_step == 800  # stopped, not finished: export it


def test_the_cli_names_the_run_to_export_by_its_absolute_path(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui attach runs/x` said "keep it with `dbtui export runs/x --step 20`", while its other paths are absolute:
    a shell opened elsewhere later (in ~ after an SSH drop) finds no runs/x."""
    import engine.runs.keep
    from dbtui.cli.watch import print_best

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engine.runs.keep, "keep_of_run", lambda folder: how_to_keep(best_at(20), [20]))
    print_best(RunFolder(Path("runs/x")), ended=False)
    assert f"keep it with `dbtui export {tmp_path / 'runs' / 'x'} --step 20`" in capsys.readouterr().out


def test_a_resume_from_an_earlier_checkpoint_drops_the_branch_it_left_everywhere(tmp_path: Path, capsys, monkeypatch) -> None:
    """The set-aside branch's round at step 40 was the best step in `dbtui runs`, attach and the report, and its loss
    points stayed in the curves."""
    from dbtui.cli import main
    from dbtui.console import RichDashboard
    from dbtui.widgets.loss_plot import LossHistory
    from dbtui.widgets.score_plot import ScoreHistory
    from engine.events import SamplesScored
    from engine.runs.sinks import read_events

    folder = fake_run(tmp_path)  # steps 1-20, finished: trained on here to 40, then resumed from 20
    lines = folder.events.read_text(encoding="utf-8").splitlines()[:-1]
    folder.events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sink = JsonlSink(folder.events)

    def steps(first: int, last: int, loss: float) -> None:
        for step in range(first, last + 1):
            sink(StepEnded(step=step, total_steps=60, epoch=0, loss=loss, smoothed_loss=loss, lr=1e-4, it_per_s=1.0, eta_s=None))

    def scored(step: int, subject: float) -> None:
        sink(SamplesScored(step=step, scores={"subject": subject, "clip_t": 0.3, "dino": subject, "clip_i": subject}, prompts=[]))

    scored(0, 0.1)
    scored(20, 0.5)
    steps(21, 40, 9.0)
    scored(40, 0.9)  # the branch set aside: its best round
    sink(RunFinished(step=40, outputs={}, seconds=1.0, status="stopped"))
    sink(RunStarted(run_dir=str(folder.path), profile={}, hardware={}, versions={}, total_steps=60, resumed_from_step=20))
    steps(21, 25, 0.5)
    sink(RunFinished(step=25, outputs={}, seconds=1.0, status="stopped"))
    sink.close()
    for step in (20, 40):
        (folder.samples / f"step-{step:06d}").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(folder.samples / f"step-{step:06d}" / "grid.png")

    assert best_step_of_run(folder.events).step == 20
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert ("id", "step-20") in page.attributes and ("id", "step-40") not in page.attributes
    assert "25 of 60" in page.text and "Which step to keep: step 20" in page.text
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["runs", "--dir", str(folder.path.parent)]) == 0
    assert [line.split("│")[5].strip() for line in capsys.readouterr().out.splitlines() if str(folder.path) in line] == ["20"]
    assert main(["attach", str(folder.path), "--plain"]) == 0
    assert "best step: 20 — subject fidelity 0.500" in capsys.readouterr().out  # ended: not one "so far"

    events = list(read_events(folder.events))
    dashboard, losses, scores = RichDashboard("t"), LossHistory(), ScoreHistory()
    for event in events:
        dashboard(event)
        if isinstance(event, StepEnded):
            losses.append(event.step, event.loss, event.smoothed_loss)
        elif isinstance(event, RunStarted):
            losses.forget_after(event.resumed_from_step)
        if isinstance(event, (RunStarted, SamplesScored)):
            scores.add(event)
    assert list(dashboard.losses) == list(range(1, 26)) and dashboard.losses[25] == 0.5
    assert losses.steps == list(range(1, 26)) and losses.loss[-1] == 0.5
    assert sorted(scores.rounds) == [0, 20] and scores.best.step == 20


def test_a_run_given_with_a_detour_is_named_without_it(tmp_path: Path, monkeypatch, capsys) -> None:
    """`dbtui report plain/../plain` printed `plain/../plain/report.html`, and the page said the best step's model was
    in `/…/plain/../plain/outputs/`: each command and page now names the run as `plain`, absolute where it was."""
    from dbtui.cli import main

    folder = scored_fake_run(tmp_path, [(0, 0.4, 0.30), (10, 0.7, 0.295), (20, 0.8, 0.299)])
    monkeypatch.chdir(tmp_path)
    assert main(["report", "plain/../plain"]) == 0
    assert capsys.readouterr().out.strip() == f"plain/{REPORT}"
    text = Page((folder.path / REPORT).read_text(encoding="utf-8")).text
    assert f"its model is already in {folder.path}/outputs/" in text and "/../" not in text
    assert main(["report", f"{tmp_path}/plain/../plain"]) == 0  # absolute as given
    assert capsys.readouterr().out.strip() == str(folder.path / REPORT)
    assert main(["stop", "plain/../plain"]) == 2
    assert "no trainer is running in plain (status: finished)" in capsys.readouterr().err
    assert main(["runs", "plain/.."]) == 0
    assert "../" not in capsys.readouterr().out
    write_report(Path("plain/../plain"))  # as the trainer writes it at the end, for a saving.output_dir with a `..`
    text = Page((folder.path / REPORT).read_text(encoding="utf-8")).text
    assert f"its model is already in {folder.path}/outputs/" in text and "/../" not in text


def test_a_preview_grid_is_captioned_with_its_prompts(tmp_path: Path) -> None:
    """Its caption said 'one row per sample prompt' and named none, where the scoring grid's named each of its own."""
    from engine.events import SampleSaved

    folder = fake_run(tmp_path, grid_size=(128, 64))
    prompts = ["photo of zwx disc", "a zwx disc <on> the beach"]
    with folder.events.open("a", encoding="utf-8") as events:
        events.write(SampleSaved(step=20, paths=[], grid=str(folder.samples / "step-000020" / "grid.png"),
                                 prompts=prompts).to_json() + "\n")
    text = write_report(folder.path).read_text(encoding="utf-8")
    assert "preview grid, one row per sample prompt: “photo of zwx disc”, “a zwx disc &lt;on&gt; the beach”" in text


def test_a_resume_that_turned_scoring_off_says_its_steps_were_not_scored(tmp_path: Path) -> None:
    """Resumed at step 10 with evaluation.enabled = false, the page said "Which step to keep: step 10 … Past it,
    DreamBooth usually trades prompts for copies of the training pictures", as if steps 11–20 had been scored worse."""
    folder = scored_fake_run(tmp_path, [(0, 0.4, 0.30), (10, 0.7, 0.30)])
    sink = JsonlSink(folder.events)
    sink(RunStarted(time=150.0, run_dir=str(folder.path), profile={"evaluation": {"enabled": False}}, hardware={},
                    versions={}, total_steps=20, resumed_from_step=10))
    sink(RunFinished(time=160.0, step=20, outputs={"diffusers": "outputs/diffusers"}, seconds=10.0))
    sink.close()
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert ("Steps after 10 were not scored (the resume from step 10 turned [evaluation] off), so the best step is chosen "
            "among the steps scored up to it; compare the later previews by eye.") in page.text


@pytest.mark.parametrize("clip_model, random", [("builtin:tiny-clip", True), ("openai/clip-vit-base-patch32", False)])
def test_the_scores_table_says_what_each_score_means(clip_model: str, random: bool, tmp_path: Path) -> None:
    """The table headed DINO, CLIP-I and class drift and said no more: a reader could not tell whether a rising drift
    was good, nor that the demo's random-weight scorers give numbers that mean nothing."""
    folder = scored_fake_run(tmp_path, [(0, 0.4, 0.30), (10, 0.7, 0.30)])
    sink = JsonlSink(folder.events)
    sink(RunStarted(time=150.0, run_dir=str(folder.path), hardware={}, versions={}, total_steps=20, resumed_from_step=20,
                    profile={"evaluation": {"enabled": True, "clip_model": clip_model, "dino_model": "facebook/dino-vits16"}}))
    sink.close()
    page = Page(write_report(folder.path).read_text(encoding="utf-8"))
    assert "Class drift: how far images of prompts without the identifier moved from the base model’s" in page.text
    assert "CLIP-T, prompt fidelity: how well each image matches its prompt" in page.text
    assert ("Scored by builtin:tiny-clip, random-weight scorers built offline: these numbers show the mechanics, not "
            "quality" in page.text) is random


def test_the_scores_table_names_the_finished_steps_model_in_outputs(tmp_path: Path) -> None:
    """The checkpoint column was blank at the step the run finished at, whose model outputs/ holds and `dbtui export
    --step` writes; it read as a step that could not be kept."""
    folder = scored_fake_run(tmp_path, [(0, 0.4, 0.30), (10, 0.7, 0.30), (20, 0.6, 0.30)])
    text = write_report(folder.path).read_text(encoding="utf-8")
    table = text[text.index('<table class="scores">'):text.index("</table>", text.index('<table class="scores">'))]
    rows = table.split("<tr")
    assert [row for row in rows if row.startswith("><td>20</td>")][0].endswith("<td>in outputs/</td></tr>")
    assert [row for row in rows if "<td>10</td>" in row][0].endswith("<td></td></tr>")
