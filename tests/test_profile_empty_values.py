"""An empty setting whose default is a value (saving.every_n_steps: empty saves no checkpoints, the default 500) stays
empty through every file and draft it passes: TOML has no null, and a key left out brings the default back."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import tomli_w
from pydantic import BaseModel
from textual.widgets import Input

from dbtui.app import make_app
from dbtui.session import Session
from dbtui.widgets.profile_form import field_specs, parse_text
from engine.profile import Profile, ProfileError, load_profile, loads_profile, profile_data, save_profile, validate_data
from engine.profile.io import dumps_profile
from training_helpers import tiny_profile
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle


def _sections(annotation: Any) -> list[type[BaseModel]]:
    kinds = get_args(annotation) or (annotation,)
    return [k for kind in kinds for k in (kind, *get_args(kind)) if isinstance(k, type) and issubclass(k, BaseModel)]


def empty_is_not_default(model: type[BaseModel] = Profile, prefix: str = "") -> list[str]:
    """Every optional setting whose default is a value, dotted (a list's first item for a list of sections)."""
    keys = []
    for name, field in model.model_fields.items():
        args = get_args(field.annotation)
        optional = get_origin(field.annotation) in (Union, types.UnionType) and type(None) in args
        if optional and field.get_default(call_default_factory=True) is not None:
            keys.append(prefix + name)
        for section in _sections(field.annotation):
            listed = get_origin(field.annotation) is list
            keys += empty_is_not_default(section, f"{prefix}{name}.{'0.' if listed else ''}")
    return keys


KEYS = empty_is_not_default()


def _with_empty(key: str, tmp_path: Path) -> Profile:
    data = profile_data(tiny_profile(tmp_path))
    node: Any = data
    *parents, last = key.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[last] = ""
    return validate_data(data)


def test_the_schema_has_such_settings() -> None:
    assert "saving.every_n_steps" in KEYS  # the walk finds them: an empty list would test nothing


@pytest.mark.parametrize("key", KEYS)
def test_an_empty_setting_stays_empty_through_a_file_and_the_wizards_draft(key: str, tmp_path: Path) -> None:
    profile = _with_empty(key, tmp_path)
    assert _value(profile, key) is None
    assert _value(loads_profile(dumps_profile(profile)), key) is None
    path = save_profile(profile, tmp_path / "p.toml")
    assert _value(load_profile(path), key) is None
    session = Session.from_file(path)
    assert _value(session.profile(), key) is None
    assert _value(load_profile(session.save(tmp_path / "again.toml")), key) is None
    spec = {spec.key: spec for spec in field_specs()}.get(key)
    if spec is not None:  # a form field: clearing it keeps the key, read as empty
        session.edit(key, parse_text(spec, ""))
        assert _value(session.profile(), key) is None


def _value(profile: Profile, key: str) -> Any:
    node: Any = profile
    for part in key.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


async def test_clearing_every_n_steps_in_the_form_saves_no_checkpoints_and_shows_empty_again(tmp_path: Path,
                                                                                            monkeypatch) -> None:
    """Cleared, the demo's 150 became the default 500: saved so, and shown as 500 on coming back."""
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(), Session.for_demo(), image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#sec-saving").collapsed = False
        await settle(pilot)
        screen.query_one("#f-saving--every_n_steps", Input).value = ""
        await settle(pilot)
        assert app.session.profile().saving.every_n_steps is None
        assert load_profile(app.session.save(tmp_path / "p.toml")).saving.every_n_steps is None
        screen = await at_step(app, pilot, 3, "ParametersScreen")
        screen.query_one("#sec-saving").collapsed = False
        await settle(pilot)
        assert screen.query_one("#f-saving--every_n_steps", Input).value == ""


def test_a_run_with_checkpoints_off_trains_with_none_through_the_launcher_and_the_worker(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """The launcher writes RUN/profile.toml and the worker trains what it reads there: the default 500 came back."""
    from engine.events import RunStarted
    from engine.runs.launcher import start_run
    from engine.runs.sinks import read_events
    from tests.runs_helpers import TrainerHere

    profile = tiny_profile(tmp_path, training={"max_train_steps": 1}, saving={"every_n_steps": ""})
    trainer = TrainerHere(monkeypatch)  # the file is what passes between them, not the process
    started = start_run(profile, run_dir=tmp_path / "runs" / "off")
    assert trainer.train() == 0
    assert load_profile(started.folder.profile).saving.every_n_steps is None
    trained = [event.profile for event in read_events(started.folder.events) if isinstance(event, RunStarted)]
    assert [p["saving"]["every_n_steps"] for p in trained] == [None]


def _empty(tmp_path: Path, key: str, evaluating: bool) -> dict[str, Any]:
    section, name = key.split(".")
    data = profile_data(tiny_profile(tmp_path, evaluation={"enabled": evaluating}))
    data.setdefault(section, {})[name] = ""
    return data


@pytest.mark.parametrize("key", ["saving.output_dir", "evaluation.clip_model", "evaluation.dino_model"])
def test_an_empty_text_where_a_folder_or_model_must_be_named_is_an_error(key: str, tmp_path: Path, capsys) -> None:
    """Empty, output_dir put the run folder in whatever folder dbtui ran in, and an empty scorer left an evaluating run
    unscored; `dbtui validate` and the wizard's panel both called such a profile valid."""
    from dbtui.cli import main
    from engine.profile_checks import check_profile

    data = _empty(tmp_path, key, evaluating=True)
    profile = loads_profile(tomli_w.dumps(data))  # read as it is: older versions wrote such files
    [problem] = check_profile(profile).errors
    assert (problem.key, problem.message.split(";")[0]) == (key, "is empty")
    assert [p.key for p in Session(data=data).review().problems] == [key]  # the panel says what validate says
    path = tmp_path / "p.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert f"{key}: is empty" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["evaluation.clip_model", "evaluation.dino_model"])
def test_an_empty_scorer_is_fine_while_evaluation_is_off(key: str, tmp_path: Path) -> None:
    """Nothing reads it then, and the wizard stored "" where such a field was cleared."""
    from engine.profile_checks import check_profile

    data = _empty(tmp_path, key, evaluating=False)
    assert check_profile(validate_data(data)).errors == []
    assert Session(data=data).review().problems == []


def test_a_new_run_from_an_empty_output_dir_is_refused_before_it_makes_a_folder(tmp_path: Path, monkeypatch) -> None:
    from engine.runs.inputs_check import RunInputsMissingError
    from engine.runs.launcher import start_run

    monkeypatch.chdir(tmp_path)
    profile = validate_data(_empty(tmp_path, "saving.output_dir", evaluating=False))
    with pytest.raises(RunInputsMissingError, match="saving.output_dir: is empty; give the folder that holds the run"):
        start_run(profile)
    assert not (tmp_path / profile.name).exists()
