"""``dbtui demo``: the whole pipeline on the built-in tiny model and dataset."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from dbtui.cli.common import ExamplesFormatter, add_overrides, launch_waited, user_path
from engine.errors import DbtuiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.profile import Profile
    from engine.runs.folder import RunFolder


class DemoProfileExistsError(DbtuiError):
    """The profile file the demo would write already exists."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train the built-in tiny model on the demo dataset (CPU, a minute or two)",
        description="Build the tiny built-in Stable Diffusion model and a synthetic dataset, then run "
        "the whole pipeline on them: class images, caching, training, samples, checkpoints and outputs. "
        "Needs no GPU and no downloads. The tiny model is pre-trained on coloured shapes but has never "
        "seen the demo's subject, the zwx disc (a blue star in red and yellow rings): within the run it turns "
        "from a white shape (evaluation/step-000000/ in the run folder: the model before training) to its rings "
        "around a blue centre in some of the last step's four previews (samples/; the tiny model learns unevenly, "
        "so another machine's may show fewer or more).",
        epilog="examples:\n  dbtui demo\n  dbtui demo --plain --set training.max_train_steps=150  # done sooner",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("--workdir", type=user_path, default="dbtui-demo", help="folder for the demo's profile and runs (default: %(default)s)")
    parser.add_argument("--plain", action="store_true", help="plain log lines instead of the live dashboard")
    add_overrides(parser)
    parser.set_defaults(handler=_demo)


def demo_name(workdir: Path) -> str:
    """The first of tiny-demo, tiny-demo-2, … that names neither a run in WORKDIR/runs nor a profile
    WORKDIR/NAME.toml: a demo writes over no earlier run, and over no profile the user has edited."""
    from engine.runs.folder import RunFolder

    return first_free("tiny-demo", lambda name: RunFolder(workdir / "runs" / name).events.exists()
                      or (workdir / f"{name}.toml").exists())


def first_free(name: str, taken: Callable[[str], bool]) -> str:
    """The first of NAME, NAME-2, … that is not ``taken``."""
    candidate, n = name, 1
    while taken(candidate):
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def builtins_built(profile: Profile) -> bool:
    """Whether every built-in the demo's profile names (model, images, scorers) is built already."""
    from engine.builtin import built

    names = [profile.model.pretrained, *(folder for c in profile.concepts for folder in (c.instance_dir, c.class_dir) if folder)]
    if profile.evaluation.enabled:
        names += [profile.evaluation.clip_model, profile.evaluation.dino_model]
    return all(built(name) for name in names)


def _demo(args: argparse.Namespace) -> int:
    from dbtui.cli.boundary import EXIT_INTERRUPTED
    from dbtui.cli.output_closed import run_goes_on_if_output_closed, say_before_start
    from dbtui.cli.watch import print_best, watch
    from dbtui.format import resume_hint
    from dbtui.console import make_display
    from engine.builtin import demo_profile_text
    from engine.profile import loads_profile, save_profile
    from engine.profile.fields import written_path
    from engine.runs.folder import unusable_folder
    from engine.runs.launcher import start_run

    workdir = Path(args.workdir)  # `--workdir=~/demo`, which the shell leaves alone, expanded by user_path
    runs = workdir / "runs"
    name = demo_name(workdir)
    # The override is read as the profile's text is: a "$" of the workdir's name is doubled, not taken for a variable.
    # A TOML text, as JSON writes one: Python's repr of it, 'a\\b' or 'it\'s "x"', is no TOML text of that name.
    output_dir = json.dumps(written_path(str(runs)), ensure_ascii=False)
    profile = loads_profile(demo_profile_text(), [f"saving.output_dir={output_dir}", f"name={name!r}", *args.set])
    path = workdir / f"{profile.name}.toml"
    if profile.name != name and path.exists():  # a name given with --set: its profile may be the user's own
        raise DemoProfileExistsError(f"{path} exists, and the demo keeps it as it is; give the demo another name "
                                     f"(--set name=...) or leave --set name out")
    try:
        save_profile(profile, path)
    except OSError as error:
        raise unusable_folder(workdir, error, setting="--workdir") from None
    say_before_start(f"demo profile: {path}" + ("" if builtins_built(profile) else
                                                "\nbuilding the tiny model and demo images on first use (seconds)…"),
                     left=f"; it wrote the demo profile {path}")
    started = start_run(profile, given_as=shlex.quote(str(path)), waiting=launch_waited)
    folder = started.folder
    with run_goes_on_if_output_closed(folder):
        watched = watch(folder, make_display(profile.name, plain=args.plain, every=5), started.process,
                        started.events_offset, started.log_offset, started.own_session)
    last = watched.last
    if last is not None and last.kind == "run_finished" and last.status == "stopped":
        print_best(folder, ended=True)
        print(resume_hint(folder))  # the display said the step
    if last is None or last.kind != "run_finished" or last.status != "finished":
        return EXIT_INTERRUPTED if watched.interrupted else 1
    print(closing_words(profile, folder, path))
    return 0


def closing_words(profile: Profile, folder: RunFolder, path: Path) -> str:
    """Where a finished demo's results are, the report first; and what its scores are worth when the demo's
    random-weight scorers made them."""
    from engine.runs.report import REPORT
    from engine.runs.score_words import best_of_run_said

    lines = ["", "the demo ran end to end.", f"  report:  {folder.path / REPORT} (open it in a browser)",
             f"  model:   {_model_of(profile, folder)}", f"  samples: {folder.samples}"]
    evaluation = profile.evaluation
    if evaluation.enabled:
        lines.append(f"  before:  {folder.path / 'evaluation' / 'step-000000'} (the model before training)")
    lines.append(f"  events:  {folder.events}")
    best = best_of_run_said(folder, ended=True) if evaluation.enabled else None
    if best:
        lines.append(best)
    random = [name for name in (evaluation.clip_model, evaluation.dino_model) if name.startswith("builtin:")]
    if evaluation.enabled and random:
        lines.append(f"its scores come from random-weight scorers ({', '.join(random)}): they show how scoring "
                     "works, not how good the model is")
    # The first with no folder: an earlier demo's hint, once followed, made another-run's run, and a run is never
    # started over a finished one.
    again = first_free("another-run", lambda name: (folder.path.parent / name).exists())
    lines.append(f"train it again headless under a new name: dbtui run {shlex.quote(str(path))} --set name={again}")
    return "\n".join(lines)


def _model_of(profile: Profile, folder: RunFolder) -> Path:
    """Where the finished demo's model is: outputs/diffusers only where saving.export asks for it (a --set that lists
    single files alone writes none), else its single file, else (a LoRA's formats alone) its LoRA."""
    export = profile.saving.export
    if "diffusers" in export:
        return folder.outputs / "diffusers"
    single = next((fmt for fmt in ("safetensors", "ckpt") if fmt in export), None)
    return folder.outputs / (f"{profile.name}.{single}" if single else "lora")
