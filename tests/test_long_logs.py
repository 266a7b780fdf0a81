"""A long run's events log (a line a step, hundreds of MB after days) is read a block at a time: attach's replay and
`dbtui runs`'s best step hold a block of it in memory, not the log."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.events import RunFinished, RunStarted, SamplesScored, StepEnded
from engine.runs.folder import RunFolder
from engine.runs.follow import follow_events
from engine.runs.sinks import JsonlSink

STEPS = 3000


def _long_run(run: Path, profile: dict[str, Any] | None = None, finished: bool = True) -> RunFolder:
    """A run of STEPS steps, scored every 500 (best at 1500), resumed once from 1000, ended by a finish; each start of
    ``profile`` (none: {}), on a bf16 GPU, of torch 2.1 then 2.2."""
    sink = JsonlSink(run / "events.jsonl")
    for resumed, end in ((0, 1200), (1000, STEPS)):
        sink(RunStarted(run_dir=str(run), profile=profile or {}, hardware={"gpus": [{"name": "GPU", "bf16": True}]},
                        versions={"torch": f"2.{1 + bool(resumed)}"}, total_steps=STEPS, resumed_from_step=resumed))
        for step in range(resumed + 1, end + 1):
            sink(StepEnded(step=step, total_steps=STEPS, epoch=0, loss=0.1, smoothed_loss=0.1, lr=1e-4, it_per_s=1.0,
                           eta_s=float(STEPS - step)))
            if step % 500 == 0:
                subject = 0.9 - abs(step - 1500) / 10000
                sink(SamplesScored(step=step, scores={"dino": subject, "clip_i": subject, "subject": subject, "clip_t": 0.3}))
    if finished:
        sink(RunFinished(step=STEPS, outputs={}, seconds=1.0))
    sink.close()
    return RunFolder(run)


def _peak(read: Callable[[], Any]) -> tuple[Any, int]:
    """What ``read`` gives and the most memory it held, past what its first call builds once (pydantic's checks)."""
    read()
    tracemalloc.start()
    try:
        value = read()
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_attach_replays_a_long_log_a_block_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _long_run(tmp_path / "run")
    size = folder.events.stat().st_size
    monkeypatch.setattr("engine.runs.follow.READ_BLOCK", 8192, raising=False)
    steps, peak = _peak(lambda: sum(event.kind == "step_ended" for event in follow_events(folder, follow=False)))
    assert steps == 1200 + STEPS - 1000  # every line, the blocks' edges included
    assert peak < size / 4, f"{peak} bytes held to replay a log of {size}"


def test_the_best_step_and_the_finish_of_a_long_log_read_a_block_at_a_time(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.evaluation.best import best_step_of_run
    from engine.runs.last_events import last_finish

    folder = _long_run(tmp_path / "run")
    size = folder.events.stat().st_size
    monkeypatch.setattr("engine.events.LOG_BLOCK", 8192, raising=False)
    best, peak = _peak(lambda: best_step_of_run(folder.events))
    assert best is not None and best.step == 1500
    assert peak < size / 4, f"{peak} bytes held to find the best step in a log of {size}"
    finish, peak = _peak(lambda: last_finish(folder.events))
    assert finish is not None and finish.step == STEPS
    assert peak < size / 4, f"{peak} bytes held to find the finish in a log of {size}"


@pytest.mark.parametrize("block", [100, 333, 4096])
def test_lines_across_blocks_are_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Blocks shorter than a line, or ending mid-line, and a last line cut off (the trainer killed mid-write)."""
    from engine.evaluation.best import scoring_events

    folder = _long_run(tmp_path / "run")
    with folder.events.open("ab") as file:
        file.write(b'{"event": "samples_scored", "step": 3000, "sco')
    monkeypatch.setattr("engine.events.LOG_BLOCK", block)
    events = scoring_events(folder.events)
    assert [event.kind for event in events].count("samples_scored") == 6
    assert [event.kind for event in events].count("run_started") == 2
    assert events[-1].kind == "run_finished"


def test_the_report_reads_a_long_log_an_event_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runs.report import read_run

    folder = _long_run(tmp_path / "run")
    size = folder.events.stat().st_size
    monkeypatch.setattr("engine.events.LOG_BLOCK", 8192)  # the finish and best step, read apart
    record, peak = _peak(lambda: read_run(folder.path))
    assert sorted(record.losses) == list(range(1, STEPS + 1)) and record.best is not None and record.best.step == 1500
    # What it keeps (a loss a step) and no more: not every event of the log.
    assert peak < size * 0.75, f"{peak} bytes held to report on a log of {size}"


def test_the_readers_of_a_runs_starts_and_last_step_read_a_block_at_a_time(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost state file's last step, the base round's earlier settings, a checkpoint's library versions and the
    final weights' precision: each read a line or few of a long log."""
    from engine.evaluation.base_round import attempt_scales, round_settings
    from engine.runs.export_finished import _trained_in_bf16
    from engine.runs.last_events import last_step
    from engine.runs.load_failure import _versions_of_the_start
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, evaluation={"enabled": True})
    folder = _long_run(tmp_path / "run", profile.model_dump(mode="json"), finished=False)
    size = folder.events.stat().st_size
    monkeypatch.setattr("engine.events.LOG_BLOCK", 8192)
    for read, expected in ((lambda: last_step(folder.events), STEPS),
                           (lambda: attempt_scales(folder.events), [round_settings(profile)] * 2),
                           (lambda: _versions_of_the_start(folder.events, 1000), {"torch": "2.1"}),
                           (lambda: _versions_of_the_start(folder.events, 2000), {"torch": "2.2"}),
                           (lambda: _trained_in_bf16(folder, {"profile": {"precision": {
                               "mixed_precision": "bf16", "bf16_weights": True}}}), True)):
        value, peak = _peak(read)
        assert value == expected
        assert peak < size / 4, f"{peak} bytes held to read a log of {size}"


@pytest.mark.parametrize("block", [50, 333, 4096])
def test_lines_read_from_the_end_are_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Blocks shorter than a line or ending mid-line, and a last line cut off: each line whole, last first."""
    from engine.events import marked_lines_from_the_end

    folder = _long_run(tmp_path / "run")
    with folder.events.open("ab") as file:
        file.write(b'{"event": "samples_scored", "step": 3000, "sco')
    monkeypatch.setattr("engine.events.LOG_BLOCK", block)
    markers = (b'"samples_scored"', b'"run_started"')
    expected = [line for line in folder.events.read_bytes().split(b"\n") if any(m in line for m in markers)]
    assert list(marked_lines_from_the_end(folder.events, markers)) == expected[::-1]


def _bytes_read() -> int:
    """This process's bytes read so far (Linux's rchar: every read, cached or not)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _best_and_bytes(events: Path) -> tuple[int | None, int]:
    from engine.evaluation.best import best_step_of_run

    before = _bytes_read()
    best = best_step_of_run(events)
    return (best.step if best else None), _bytes_read() - before


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts bytes read by Linux's /proc/self/io")
def test_runs_best_step_reads_only_what_the_log_gained_since_it_was_last_read(tmp_path: Path) -> None:
    """`dbtui runs` again, a run that went on, one edited or copied without its times, an index damaged: each right, and
    only a log that changed is read whole again."""
    import os
    import shutil

    folder = _long_run(tmp_path / "run", finished=False)
    size = folder.events.stat().st_size
    assert _best_and_bytes(folder.events)[0] == 1500  # an older dbtui's run: no index, read whole
    best, read = _best_and_bytes(folder.events)
    assert best == 1500 and read < size / 10, f"{read} bytes read again of an unchanged log of {size}"

    sink = JsonlSink(folder.events)  # the run goes on: a better round
    sink(SamplesScored(step=3500, scores={"dino": 0.95, "clip_i": 0.95, "subject": 0.95, "clip_t": 0.3}))
    sink.close()
    best, read = _best_and_bytes(folder.events)
    assert best == 3500 and read < size / 10, f"{read} bytes read of a log of {size} that gained a line"

    copy = Path(shutil.copytree(folder.path, tmp_path / "copy", copy_function=shutil.copyfile))  # new times
    data = folder.events.read_bytes()
    worse = data.replace(b'"clip_i": 0.95, "subject": 0.95', b'"clip_i": 0.95, "subject": 0.15')
    (copy / "events.jsonl").write_bytes(worse)  # the round edited in place: the same length
    assert len(worse) == len(data) and _best_and_bytes(copy / "events.jsonl")[0] == 1500
    (copy / "events.jsonl").write_bytes(data)  # copied with its times (cp -p): its index stands
    (copy / ".scored-lines.json").write_bytes((folder.path / ".scored-lines.json").read_bytes())
    os.utime(copy / "events.jsonl", ns=(0, folder.events.stat().st_mtime_ns))
    best, read = _best_and_bytes(copy / "events.jsonl")
    assert best == 3500 and read < size / 10, f"{read} bytes read of a copied log of {size}"
    (copy / ".scored-lines.json").write_text('{"end": "x"}')
    assert _best_and_bytes(copy / "events.jsonl")[0] == 3500
    (copy / "events.jsonl").write_bytes(data.split(b'{"event": "samples_scored", "time": ')[0])  # cut short
    assert _best_and_bytes(copy / "events.jsonl")[0] is None


def test_runs_says_it_reads_long_logs_it_has_not_read_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A first listing of long runs took minutes and said nothing; a later one reads only what they gained, silently."""
    from dbtui.cli import main

    for name in ("one", "two"):
        _long_run(tmp_path / "runs" / name)
    monkeypatch.setattr("dbtui.cli.runs_listing.LONG_READ", 1 << 20, raising=False)  # two logs of 0.9 MB
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "GB of the runs' event logs for their best steps" in capsys.readouterr().err
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().err == ""


def test_runs_says_it_reads_long_logs_again_where_it_cannot_keep_what_it_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """In another user's runs folder no index can be written: the line said "once: later listings read only what they
    gained" at every listing."""
    from dbtui.cli import main

    _long_run(tmp_path / "runs" / "one")
    monkeypatch.setattr("dbtui.cli.runs_listing.LONG_READ", 1 << 19, raising=False)
    monkeypatch.setattr("dbtui.cli.runs_listing.os.access", lambda path, mode: False)
    assert main(["runs", str(tmp_path / "runs")]) == 0
    said = capsys.readouterr().err
    assert "again at each listing" in said and "once" not in said
