"""``dbtui export RUN [--step N]``: a kept checkpoint's outputs, in the run profile's export formats."""

from __future__ import annotations

import argparse
import shlex
from typing import Literal

from dbtui.cli.common import ExamplesFormatter
from engine.errors import DbtuiError


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="write the outputs of any kept checkpoint, not only the last step's",
        description="Write the model at a kept checkpoint of RUN into RUN/exports/step-N/, in the formats "
        "saving.export lists in RUN/profile.toml (diffusers folder, single file, LoRA): edit that list there to "
        "choose them. The model is built with the settings the checkpoint was trained with (its manifest.json), "
        "from the base model model.pretrained names in RUN/profile.toml (with its model.vae and model.tokenizer; "
        "the run's name names the files). The step where the run finished, when no checkpoint was kept there, is "
        "built from its final weights in RUN/outputs (its LoRA, or its diffusers folder), which stay as they are: "
        "a full fine-tune that wrote single files only is refused with the `dbtui convert` command that makes its "
        "diffusers folder. Use it on the step whose "
        "previews look best: DreamBooth often overfits before the last step. Exporting a step again keeps what it "
        "wrote before as one copy beside the new (diffusers.previous/, NAME.previous.safetensors): each can be "
        "gigabytes, so delete them once the new one is right.",
        epilog="examples:\n  dbtui export runs/my-run --step 800\n  dbtui export my-run          # the latest checkpoint\n"
        "  dbtui export my-run --step 1000   # where it ended, in saving.export's formats\n"
        "  dbtui export my-run --step best   # the best-scored step ([evaluation] on)",
        formatter_class=ExamplesFormatter)
    export.add_argument("run", help="run folder or name under runs/")
    export.add_argument("--dir", default="runs", help="where to look for run names (default: %(default)s)")
    export.add_argument("--step", type=checkpoint_step, metavar="STEP",
                        help="the checkpoint's step (800) or its folder's name in RUN/checkpoints (step-00000800), as "
                        "`dbtui resume --from` takes them (not its path), or the step the run finished at, or best: the "
                        "best-scored step of a scored run, where its checkpoint is kept (else refused, naming the best "
                        "kept step that qualifies) (default: the latest kept checkpoint)")
    export.set_defaults(handler=_export)


def checkpoint_step(text: str) -> int | Literal["best"]:
    """A step as ``resume --from`` takes it by number or by folder name: a user who resumed ``--from step-00000800``
    gave export the same and was refused as "invalid int value"; or "best", the best-scored step `dbtui runs` names."""
    if text.strip().lower() == "best":
        return "best"
    digits = text.strip().removeprefix("step-")
    if not (digits.isascii() and digits.isdigit()):  # '٣' and '²' are digits to str.isdigit
        # `dbtui runs`, named here before, lists no kept steps: the folders are where a user finds them.
        raise argparse.ArgumentTypeError(f"{text!r} is not a checkpoint: give its step (800), best (the best-scored "
                                         "step), or its folder's name in RUN/checkpoints (step-00000800), not its path; "
                                         "the folders there are the kept checkpoints")
    return int(digits)


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dbtui.cli.cmd_runs import find_run
    from dbtui.format import profile_gone, resume_hint
    from dbtui.console import PhaseDisplay
    from dbtui.cli.export_replaced import kept_copies, replaced_said
    from engine.runs.checkpoints import complete_checkpoints
    from engine.runs.export import export_checkpoint
    from engine.runs.keep import best_elsewhere, best_step_to_export
    from engine.runs.library_noise import hide_library_progress_bars

    hide_library_progress_bars()
    folder = find_run(args.run, args.dir)
    if gone := profile_gone(folder):  # told as "not a run folder", or as a profile lacking model.pretrained and concepts
        kept = folder.outputs / "profile.toml"  # a finished run's, as it was trained
        source = shlex.quote(str(kept)) if kept.is_file() else "PROFILE"
        raise DbtuiError(f"{folder.profile} is {gone}, and an export reads there the base model's place, the run's name "
                         f"and its [saving] section: put back the profile the run was trained with (`cp {source} "
                         f"{shlex.quote(str(folder.profile))}`" + (")" if kept.is_file() else
                                                                   ", with the run's --set overrides written in)"))
    if ended := _ended_before_training(folder):
        raise DbtuiError(f"{folder.path} has nothing to export: {ended}. {resume_hint(folder)}")
    step = best_step_to_export(folder) if args.step == "best" else args.step
    # Read before the export: a live run may save a later checkpoint during its minutes.
    latest = complete_checkpoints(folder) if step is None else []
    kept = kept_copies(Path(folder.path))
    with PhaseDisplay() as display:
        outputs = export_checkpoint(Path(folder.path), step, emit=display)
    for fmt, path in outputs.items():
        print(f"{fmt}: {path}")
    if said := replaced_said(kept, list(outputs.values())):
        print(said)
    # The default stays the latest checkpoint (an unscored run has no other); a scored run's best is said beside it.
    if latest and (note := best_elsewhere(folder, latest[-1][0])):
        print(note)
    if latest and (note := _finished_later(folder, latest[-1][0])):
        print(note)
    return 0


def _finished_later(folder, exported: int) -> str | None:
    """Where the run finished after ``exported``, the latest kept checkpoint that `dbtui export RUN` wrote: that step's
    model is in RUN/outputs. Said only by the paths (exports/step-2/), the older step was taken for the run's result."""
    from engine.runs.export_finished import finished_refusal

    finished = folder.finished_step()
    if finished is None or finished <= exported:
        return None
    said = (f"exported step {exported}, the latest kept checkpoint; the run finished at step {finished}, whose model is "
            f"in {folder.outputs}")
    if finished_refusal(folder, finished) is None:
        said += f": `dbtui export {shlex.quote(str(folder.path))} --step {finished}` writes it in these formats"
    return said


def _ended_before_training(folder) -> str | None:
    """How a run that ended before its first training step (stopped while it generated class images, say) ended, in
    words; None for any other: it was told "saving.every_n_steps decides when they are kept", a setting that never had
    a step to save."""
    from engine.runs.checkpoints import complete_checkpoints
    from engine.runs.control import trained_since

    if folder.is_live() or complete_checkpoints(folder) or folder.finished_step() is not None:
        return None
    if trained_since(folder.events, 0.0):  # a step trained (or a log not read): the export says what it finds
        return None
    return f"the run {folder.status()} before its first training step"
