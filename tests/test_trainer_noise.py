"""The trainer process's stderr is its run's log (RUN/logs/trainer.log), whose last lines `dbtui run` shows when a
run fails: the libraries' bars of loading and saving models ("Loading weights", "Writing model shards") filled it, and
that tail, while dbtui's own phases say what loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training_helpers import tiny_profile

BARS = ("Loading weights", "Writing model shards", "Loading pipeline components")


def test_a_run_writes_no_library_progress_bar_on_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import huggingface_hub.utils as hub
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from engine.runs.in_process import train

    # As a fresh trainer process has them (another test of this process may have turned them off).
    diffusers_logging.enable_progress_bar()
    transformers_logging.enable_progress_bar()
    result = train(tiny_profile(tmp_path, training={"max_train_steps": 2}, sampling={"num_images": 1},
                                saving={"every_n_steps": 2, "export": ["diffusers"]}), tmp_path / "run")
    assert result.step == 2
    err = capfd.readouterr().err
    assert not [bar for bar in BARS if bar in err], err[-2000:]
    assert not hub.are_progress_bars_disabled()  # a download's bars stay: dbtui has no progress of its own for it
