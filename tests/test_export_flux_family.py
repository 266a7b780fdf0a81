"""A Flux LoRA's export with model.pretrained edited to an SD1.x model: its record names no family (family_id names
SD's only), so the refusal before the load let it by: it warned "the LoRA files are written all the same", loaded the
model, then refused it with nothing written, from a checkpoint and from RUN/outputs alike. Its weights' transformer
now tells the family, as the record tells an SD run's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.events import Warning
from engine.profile import load_profile, save_profile, validate_data
from engine.runs.folder import RunFolder
from tests.runs_helpers import trained_as_by_dbtui_run
from tests.training_helpers import merge, tiny_profile


@pytest.fixture(scope="module")
def flux_run(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """A Flux LoRA run: step 2 kept as a checkpoint, step 3 in RUN/outputs; its profile then names an SD1.x model."""
    folder = trained_as_by_dbtui_run(tiny_profile(
        tmp_path_factory.mktemp("flux"), model={"pretrained": "builtin:tiny-flux"},
        training={"method": "lora", "max_train_steps": 3}, saving={"every_n_steps": 2, "export": ["lora_diffusers"]}))
    edited = merge(load_profile(folder.profile).model_dump(mode="json"), {"model": {"pretrained": "builtin:tiny-sd1"}})
    save_profile(validate_data(edited), folder.profile)
    return folder


@pytest.mark.parametrize("step", [2, 3])
def test_a_flux_lora_exported_onto_an_sd1_model_is_refused_before_it_loads(flux_run: RunFolder, step: int,
                                                                            monkeypatch) -> None:
    import engine.models.loading
    from engine.runs.base_identity import OtherBaseModelError
    from engine.runs.export import export_checkpoint

    manifest = json.loads(next(flux_run.checkpoints.glob("step-*/manifest.json")).read_text())
    assert manifest["base_model"]["family"] is None  # what let it by: the record names SD families only
    monkeypatch.setattr(engine.models.loading, "load_components", lambda *a, **k: pytest.fail("the model was loaded"))
    events: list[Any] = []
    with pytest.raises(OtherBaseModelError, match="is another model, an SD1.x model, where they are Flux.1's: .* "
                                                  "write builtin:tiny-flux back as model.pretrained"):
        export_checkpoint(flux_run.path, step, emit=events.append)
    assert not [event for event in events if isinstance(event, Warning)]
    assert not (flux_run.path / "exports" / f"step-{step}").exists()
