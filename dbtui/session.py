"""The wizard's state: one plain object handed to every screen (no globals).

The draft profile is a plain dict so that it can be invalid while the user types; it becomes
a ``Profile`` only through ``validate()``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pydantic costs ~0.3 s: import it after the first screen is up
    from engine.profile import Problem, Profile

STEPS = ("hardware", "model", "dataset", "parameters", "training")

_MISSING = object()


def new_profile_data() -> dict[str, Any]:
    """A fresh draft: one empty concept for the user to fill in."""
    return {"name": "my-subject", "model": {"pretrained": "stable-diffusion-v1-5/stable-diffusion-v1-5"},
            "concepts": [{"instance_dir": "", "instance_prompt": "photo of zwx person"}]}


def demo_profile_data(output_dir: str = "runs") -> dict[str, Any]:
    """The shipped demo profile (tiny built-in model and dataset), writing its runs under ``output_dir``."""
    import tomllib

    from engine.builtin import demo_profile_text

    data = tomllib.loads(demo_profile_text())
    data["saving"]["output_dir"] = output_dir
    return data


class Review(NamedTuple):
    """The draft as its checks found it: what ``dbtui validate`` says of it (engine.profile_checks)."""

    profile: Profile | None  # None while there is a problem
    problems: list[Problem]  # what stops a save or a run: the schema's, and what is wrong on any machine
    missing_here: list[Problem]  # what this machine lacks (an empty images folder): it stops a run here, not a save
    warnings: list[Problem]  # settings that run, likely not as meant


@dataclass
class Session:
    """Draft profile plus what the screens learned along the way."""

    data: dict[str, Any] = field(default_factory=new_profile_data)
    path: Path | None = None  # where the profile was last opened or saved
    written_path: Path | None = None  # the file this session wrote itself: saving there again needs no question
    profiles_dir: Path = Path("profiles")
    demo: bool = False
    hardware: Any = None  # engine_facade.HardwareReport once probed
    model_info: Any = None  # engine_facade.ModelInfo once checked
    reports: dict[int, Any] = field(default_factory=dict)  # concept index → dataset report
    # concept index → (its images folder, its last check's report), kept when ``reports`` drops the report (captions
    # changed): the findings are no longer current, but Next still holds that folder to what they found
    checked: dict[int, tuple[str, Any]] = field(default_factory=dict)
    # concept index → (the prepared folder, findings of what the last Prepare left out of it: a check of it cannot see them)
    left_out: dict[int, tuple[str, tuple]] = field(default_factory=dict)
    run_folder: Path | None = None  # the run the dashboard follows
    step: int = 0  # index into STEPS
    adopted_resolution: int | None = None  # dataset.resolution as taken from the model, until the user changes it
    aside: dict[str, Any] = field(default_factory=dict)  # values that do not apply now, kept to restore (field_rules)
    # The parameters screen's own inputs, kept as typed when the user goes back a step and returns: a Save as path
    # typed over the one the screen offers (None: the offered one), and the fit test's price per hour.
    typed_save_as: str | None = None
    price_text: str = ""
    # dotted key → (the draft's value before the last tier preset applied, the value it put), for each setting
    # it put: the next tier preset puts the first back where it sets none (dbtui/presets.py preset_values)
    preset_left: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # the family of the model the Model step last checked ("" for none read), and each dotted key the user set by hand:
    # another family moves a setting left at the last one's default to its own, a hand-set one stays (family_defaults)
    checked_family: str | None = None
    user_set: set[str] = field(default_factory=set)
    # dotted key → each path holding a control character of the run's profile this session was opened from (from_run),
    # as the run recorded it: the draft is read in the run's stored context while it still holds them (stored_paths)
    run_paths: dict[str, str] = field(default_factory=dict)
    # (the settings the folder checks read, what they found): each edit re-reads the disk only when those change
    _missing_here: tuple[tuple, list[Problem]] | None = field(default=None, repr=False)

    @classmethod
    def for_demo(cls, output_dir: str = "runs") -> Session:
        return cls(data=demo_profile_data(output_dir), demo=True)

    @classmethod
    def from_file(cls, path: str | Path) -> Session:
        """A session editing an existing profile (raises ProfileError when it is invalid; an empty file's refusal says
        how to make one here, not to run `dbtui`)."""
        from engine.family_sizes import load_profile_with_family_step  # the Open screen tells a Flux profile's 70 px as the CLI does
        from engine.profile import profile_data

        profile = load_profile_with_family_step(path, or_else="or press Esc, then n, to make a new one step by step")
        return cls(data=profile_data(profile), path=Path(path))

    @classmethod
    def from_run(cls, folder: Path) -> Session:
        """A session holding the profile the run in ``folder`` keeps, as `dbtui resume` reads it (run_profile), with
        no path: a save goes to profiles/ (raises ProfileError when it cannot be read)."""
        from engine.profile import profile_data
        from engine.profile.stored_paths import control_texts
        from engine.runs.folder import RunFolder
        from engine.runs.stored_profile import run_profile

        data = profile_data(run_profile(RunFolder(folder)))
        return cls(data=data, run_paths=control_texts(data))

    def adopt_model(self, info: Any) -> None:
        """Remember what the model step found. A draft that names no resolution, or the one taken
        from the model checked before, takes this model's own (SD1 512, SDXL 1024), so the dataset
        doctor judges image sizes before the parameters step; a size the user chose stays."""
        self.model_info = info
        current = self.get("dataset.resolution")
        guess = self._name_guess()  # a hub id not downloaded: its name's family's size, as the meter estimates it
        resolution = info.resolution or (guess[1] if guess else None)
        if resolution and (current is None or current == self.adopted_resolution):
            self.set("dataset.resolution", resolution)
            self.adopted_resolution = resolution

    @property
    def family_id(self) -> str | None:
        """The family of the model the draft names ("sd", "sdxl"), once the model step checked it."""
        info = self.model_info
        if info is None or info.source != self.get("model.pretrained"):
            return None
        return info.family_id

    @property
    def guessed_family(self) -> str | None:
        """The family of a model the model step checked without reading one (a hub id not downloaded), from its name
        as the memory meter guesses it; None where the family was read, or the name says none."""
        guess = self._name_guess()
        return guess[0] if guess else None

    @property
    def guessed_size(self) -> int | None:
        """The image size of ``guessed_family`` (its family's usual one), which a new draft takes (``adopt_model``); None
        where the model's files gave its family, or its name says none."""
        guess = self._name_guess()
        return guess[1] if guess else None

    @property
    def advised_family(self) -> str | None:
        """The family the presets and the hardware advice are for: the one the model step read, else its name's guess."""
        return self.family_id or self.guessed_family

    @property
    def trains_prior(self) -> bool:
        """Whether the draft trains with prior preservation (unset: the schema's default, off): the hardware advice and
        the preset labels judge the presets so, as `dbtui hardware --profile` does for a profile."""
        from engine.profile.schema import PriorSection

        value = self.get("prior.enabled")
        return value if isinstance(value, bool) else PriorSection.model_fields["enabled"].default

    @property
    def trains_at(self) -> int | None:
        """The draft's dataset.resolution for the hardware advice (an SD draft is judged at the measured size that holds
        it: engine.hardware.machine.sized_family); None where unset or typed as no whole number ("768px", which the
        profile check marks): compared with 512, that ended the wizard on a TypeError."""
        value = self.get("dataset.resolution")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def model_load_problems(self) -> list[Problem]:
        """What stops the draft's model from loading, in `dbtui validate`'s words (engine.model_problems, which `dbtui
        hardware --profile` asks): no preset is advised for it. Read from the draft's model section alone, valid before
        its concepts are; none where that section is invalid (the form marks it) or the model is not on this machine."""
        from pydantic import ValidationError

        from engine.model_problems import model_load_problems
        from engine.profile.schema import ModelSection

        try:
            model = ModelSection.model_validate(self.data.get("model") or {})
        except ValidationError:
            return []
        return model_load_problems(model)

    def _name_guess(self) -> tuple[str, int] | None:
        info, source = self.model_info, self.get("model.pretrained")
        if info is None or info.source != source or info.family_id is not None or not info.supported:
            return None
        from engine.model_info import guessed_by_name

        return guessed_by_name(source)

    # -- dotted access into the draft -------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node

    def set(self, key: str, value: Any = _MISSING) -> None:
        """Set ``key``; without a value (or with None) the key is removed, so the default applies."""
        parts = key.split(".")
        node: Any = self.data
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _MISSING or value is None:
            node.pop(last, None)
            self._drop_empty(parts[:-1])
        else:
            node[last] = value

    def edit(self, key: str, value: Any = _MISSING) -> None:
        """The user's own edit of ``key`` (a form field): set as ``set`` does, and no longer the last tier preset's
        nor the model family's to move, even at the value they put (they would take it for untouched)."""
        self.set(key, value)
        self.preset_left.pop(key, None)
        self.user_set.add(key)

    def _drop_empty(self, parts: list[str]) -> None:
        """Remove sections emptied by a removal: an empty [training.lora] is not the same as none."""
        while parts:
            parent: Any = self.data
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent.get(part)
            if not isinstance(parent, dict) or parent.get(parts[-1]) != {}:
                return
            del parent[parts[-1]]
            parts = parts[:-1]

    def merge(self, values: dict[str, Any]) -> None:
        """Apply a preset: nested dicts merge, other values replace, None removes; a section emptied by the
        removals goes too, as with ``set``."""
        def into(target: dict[str, Any], source: dict[str, Any]) -> None:
            for key, value in source.items():
                if isinstance(value, dict):
                    if not isinstance(target.get(key), dict):
                        target[key] = {}
                    into(target[key], value)
                    if value and not target[key]:
                        del target[key]
                elif value is None:
                    target.pop(key, None)
                else:
                    target[key] = copy.deepcopy(value)
        into(self.data, values)

    # -- validation and files ---------------------------------------------------------
    def validate(self) -> tuple[Profile | None, list[Problem]]:
        """(the draft as a valid profile or None, what stops a save or a run), as ``review`` finds them."""
        review = self.review()
        return review.profile, review.problems

    def review(self, *, fresh: bool = False) -> Review:
        """The draft checked as ``dbtui validate`` checks it (engine.profile_checks), the model's family taken from the
        model step where it read one. What this machine lacks is read from the disk again when ``fresh``, else only when
        the settings it depends on change (each keystroke reviews the draft)."""
        from engine.dataset.profile_paths import path_inputs, path_problems
        from engine.profile import ProfileError
        from engine.profile_checks import check_profile

        try:
            profile = self.profile()
        except ProfileError as error:
            return Review(None, error.problems, [], [])
        inputs = path_inputs(profile)
        if fresh or self._missing_here is None or self._missing_here[0] != inputs:
            self._missing_here = (inputs, path_problems(profile, builtins=False))
        errors, missing_here, warnings = check_profile(profile, self.family_id, self._missing_here[1])
        return Review(None if errors else profile, errors, missing_here, warnings)

    def profile(self) -> Profile:
        """The draft as a valid profile; raises ProfileError listing every problem."""
        from engine.family_sizes import family_size_problems
        from engine.profile import ProfileError, validate_data

        try:
            return validate_data(self.data, recorded=self.run_paths or None)
        except ProfileError as error:
            raise ProfileError(family_size_problems(error.problems, self.data, self.family_id)) from None

    def class_sets_profile(self) -> Profile | None:
        """The draft's model, prior and concepts as a profile, its other sections at their defaults: which concepts share
        a class set (engine.dataset.profile_settings.class_sharers) reads no more, so it is told while a setting of
        another step has a problem; None where those sections have one themselves."""
        from engine.profile import ProfileError, validate_data

        part = {key: self.data[key] for key in ("schema_version", "model", "prior", "concepts") if key in self.data}
        try:
            return validate_data(part, recorded=self.run_paths or None)
        except ProfileError:
            return None

    def default_path(self) -> Path:
        return self.path or self.profiles_dir / f"{self.data.get('name') or 'profile'}.toml"

    def save(self, path: str | Path | None = None) -> Path:
        """Write the draft; raises ProfileError listing every problem, its model family's refusals among them."""
        from engine.profile import ProfileError, save_profile

        profile, problems = self.validate()
        if profile is None:
            raise ProfileError(problems)
        self.path = save_profile(profile, Path(path) if path else self.default_path())
        self.written_path = self.path
        return self.path
