"""What a resume changes of its run without being refused, said as warnings once its checkpoint has loaded.

A change of a setting the checkpoint fixes is refused before the trainer starts (resume_point.check_same_model); a
change of what trains the steps still to come (captions, flips, crops, when the text encoder stops) is allowed, but
the steps from the checkpoint on are then trained otherwise than those before it, and the resume is no longer exact:
applied without a word, it looked like the same run.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from engine.evaluation.best import kept_best_steps
from engine.events import Warning
from engine.profile import Profile
from engine.runs.base_identity import moved_base_model
from engine.runs.checkpoints import complete_checkpoints, read_manifest, recorded_profile
from engine.data.trained_images import ImageChanges, ImageRecord, said_image_changes, shared_images
from engine.runs.concept_changes import Pairs, concept_pairs_of, said_profile_changes
from engine.runs.folder import RunFolder
from engine.runs.later_incomplete import later_incomplete_warning
from engine.training.text_encoder_stop import text_encoder_last_step

# What a resume may change without a word, as README "Resume" has it: how long the run trains and what it saves,
# previews, scores and logs; where the data's folders are; how it runs on this machine (memory, attention kernel,
# launcher: the number of processes is warned of on its own); how missing class images are made. The model's paths
# too: another model is refused at launch, and another spelling of the same path is the same model.
MAY_CHANGE = re.compile(r"name|schema_version|training\.(max_train_steps|num_train_epochs)|(saving|sampling|evaluation|"
                         r"logging|launch)\..*|precision\.(gradient_checkpointing|attention)|dataset\.cache_latents|"
                         r"prior\.(sample_batch_size|steps|guidance_scale)|model\.(pretrained|vae|tokenizer)|"
                         r"concepts\[\d+\]\.(instance_dir|class_dir|class_negative_prompt)")
# What trains nothing without prior preservation (a change of its switch is refused, resume_point.py). The text
# encoder's stop needs no such rule: without train_text_encoder (fixed by the run too) a profile must keep it at 1.0.
_UNUSED_WITHOUT_PRIOR = re.compile(r"concepts\[\d+\]\.(class_prompt|num_class_images)")


def _rate_at(profile: Profile, num_processes: int, step: int, total_steps: int) -> float:
    """The schedule's factor of the rate set for the step after ``step`` of a run of ``total_steps``."""
    import torch

    from engine.training.optim import build_lr_scheduler, run_learning_rate

    # At the run's own rate: the polynomial schedule ends at lr_end = 1e-7, a share of the rate set that a probe at
    # 1.0 left out (at 1e-6 it said 33% where the run went to 40%).
    probe = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=run_learning_rate(profile, num_processes))
    return float(build_lr_scheduler(probe, profile.optimizer, total_steps).lr_lambdas[0](step))


def schedule_warning(manifest: dict[str, Any], profile: Profile, num_processes: int, total_steps: int) -> Warning | None:
    """Another total than the checkpoint's lays a decaying schedule out anew, so the rate jumps where the run goes on:
    diffusers' schedules are functions of the total, which a checkpoint's scheduler state does not hold."""
    step, before = manifest.get("step"), manifest.get("total_steps")
    if not isinstance(step, int) or not isinstance(before, int) or before == total_steps:
        return None
    was, now = _rate_at(profile, num_processes, step, before), _rate_at(profile, num_processes, step, total_steps)
    if math.isclose(was, now, rel_tol=0.01, abs_tol=1e-4):
        return None
    return Warning(
        message=f"the {profile.optimizer.lr_scheduler} learning-rate schedule was laid out over {before} steps and is "
                f"now laid out over {total_steps}: at step {step + 1} the learning rate goes from {was * 100:.3g}% to {now * 100:.3g}% "
                "of the rate set at once",
        advice=f"to go on along the schedule the run was on, resume with training.max_train_steps = {before} "
               "(`dbtui stop` ends it sooner, and `dbtui export` writes a checkpoint's model)")


def _fraction_for(step: int, total_steps: int) -> str:
    """A text_encoder_stop_fraction, as written, whose last text-encoder step of ``total_steps`` (over ``step``) is
    ``step``."""
    for fraction in (step / total_steps, (step - 0.5) / total_steps):
        said = f"{fraction:.6g}"
        if text_encoder_last_step(float(said), total_steps) == step:
            return said
    return repr((step - 0.5) / total_steps)


def text_encoder_stop_warning(manifest: dict[str, Any], profile: Profile, total_steps: int) -> Warning | None:
    """The text encoder's stop is a fraction of the total: another total moves it, without a word where the fraction
    stays, and a text encoder that had stopped trained again up to the new stop (0.5 of 6 stops after step 3; resumed
    at step 3 over 8 steps, it trained step 4 too)."""
    step, before_total = manifest.get("step"), manifest.get("total_steps")
    before = recorded_profile(manifest)
    fraction = profile.training.text_encoder_stop_fraction
    was_fraction = before.training.text_encoder_stop_fraction if before else fraction
    if not profile.training.train_text_encoder or not isinstance(step, int) or not isinstance(before_total, int) \
            or min(was_fraction, fraction) >= 1.0:
        return None
    recorded = manifest.get("text_encoder_last_step")
    was = recorded if isinstance(recorded, int) else text_encoder_last_step(was_fraction, before_total)
    now = text_encoder_last_step(fraction, total_steps)
    # A manifest of a version before the record: those before 2026-12-06 multiplied in float arithmetic (0.28 of 25 is
    # 7.000000000000001, so step 8 trained it too), those since by text_encoder_stop.py's rule; the checkpoint does
    # not tell which saved it, so either stop would be a guess, and a resume told to keep one can keep it exactly.
    # Both at or past the resumed run's end train it to the end alike: no guess ("1.0 … after step 8" of 6 steps).
    older = None if isinstance(recorded, int) else math.ceil(was_fraction * before_total)
    if older is not None and min(older, total_steps) != min(was, total_steps) and step < older:
        return _unrecorded_stop_warning(step, (f"{was_fraction!r} of {before_total} steps", f"{fraction!r} of {total_steps}"),
                                        (older, was), now, total_steps)
    if was == now or step >= max(was, now):
        return None
    if step >= was:
        then = f"it trains again at step {step + 1}" if now == step + 1 else f"it trains again at steps {step + 1}-{now}"
    elif step >= now:
        then = f"it stops now, before step {step + 1}"
    else:
        then = f"it trains until step {now}"
    # The fractions as written (a float's repr reads back as itself): `:g` said 0.123456789 as 0.123457.
    return Warning(
        message=f"training.text_encoder_stop_fraction = {was_fraction!r} of {before_total} steps "
                f"{'stopped' if step >= was else 'was to stop'} the text encoder after step {was}, {fraction!r} of "
                f"{total_steps} stops it after step {now}: {then}",
        advice=f"to stop it after step {was} as the run did, resume with training.text_encoder_stop_fraction = "
               f"{_fraction_for(was, total_steps)}" if was < total_steps else
               "to train it to the end as the run did, resume with training.text_encoder_stop_fraction = 1.0")


def _keeping(last: int, total_steps: int) -> str:
    """The text_encoder_stop_fraction, as written, that stops the text encoder after step ``last`` of ``total_steps``."""
    return _fraction_for(last, total_steps) if last < total_steps else "1.0"


def _unrecorded_stop_warning(step: int, settings: tuple[str, str], stops: tuple[int, int], now: int,
                             total_steps: int) -> Warning:
    """The warning of a resume at ``step`` whose checkpoint's run (``settings[0]``) stopped the text encoder after step
    ``stops[0]`` or ``stops[1]`` (a version before 2026-12-06 or one since: its manifest does not say), and this resume
    (``settings[1]``) after step ``now``."""
    (was, resumed), (older, since) = settings, stops
    then = f"it now, before step {step + 1}" if step >= now else f"it after step {now}"
    message = (f"the checkpoint of step {step} does not record where its run stops the text encoder: "
               f"training.text_encoder_stop_fraction = {was} stops it after step {older} in versions of dbtui before "
               f"2026-12-06 (in float arithmetic) and after step {since} in those since; {resumed} stops {then}")
    if now == min(older, total_steps):  # the fraction advised is set: advised again, it read as if it were not
        return Warning(message=f"{message}, as the earlier versions did",
                       advice=f"nothing to do if the checkpoint was saved by a dbtui from before 2026-12-06; if by a later "
                              f"one, resume with training.text_encoder_stop_fraction = {_keeping(since, total_steps)} to "
                              f"stop it after step {since} as its run did")
    advice = (f"if the checkpoint was saved by a dbtui from before 2026-12-06, resume with "
              f"training.text_encoder_stop_fraction = {_keeping(older, total_steps)} to stop it after step {older} as its run did")
    if since != now:
        advice += f"; if by a later one, with {_keeping(since, total_steps)} to stop it after step {since}"
    return Warning(message=message + (", as the later versions do" if now == min(since, total_steps) else ""),
                   advice=advice)


def resume_warnings(manifest: dict[str, Any], profile: Profile, num_processes: int, total_steps: int,
                    base_model: dict[str, Any] | None = None, folder: RunFolder | None = None,
                    images: ImageRecord | None = None, recorded_images: Any = None) -> list[Warning]:
    """The warnings of a resume of the checkpoint whose manifest is ``manifest`` with ``profile`` on ``num_processes``
    processes for ``total_steps``: the same base model read from another place than the checkpoint's (``base_model``:
    the record of the one this resume loaded), another number of processes than made it, a learning-rate schedule laid
    out over another total, and the settings that train the steps to come otherwise. ``folder``: the run's, whose
    older checkpoints a resume without optimizer state is told of; ``images``: the concepts' instance images this resume
    trains (engine/data/trained_images.py), told where they are not the checkpoint's (``recorded_images``, its record)."""
    step = manifest.get("step")
    moved = moved_base_model(manifest.get("base_model"), base_model) if base_model else None
    warnings = [moved] if moved else []
    schedule = schedule_warning(manifest, profile, num_processes, total_steps)
    if schedule:
        warnings.append(schedule)
    stop = text_encoder_stop_warning(manifest, profile, total_steps)
    if stop:
        warnings.append(stop)
    lost = ": its steps {first}-{last} are lost, and the run goes on from step {first}"
    if folder is not None and isinstance(step, int) and (
            passed := later_incomplete_warning(folder, step, "resuming from", lost, "cannot be resumed from")):
        warnings.append(passed)
    if manifest.get("reason") == "export" and isinstance(step, int) and step < total_steps:
        warnings.append(Warning(  # saved as the final export failed, after the optimizer's state was freed for it
            message=f"the checkpoint of step {step} holds no optimizer state (it was saved as the run's final export "
                    "failed): the steps after it start the optimizer's moments afresh, and the resume is not exact",
            advice=_whole_checkpoint_before(folder, step)))
    made_by = manifest.get("num_processes")
    if isinstance(made_by, int) and made_by != num_processes:
        # Warned of, not refused as another train_batch_size is: going on with fewer GPUs after a machine was lost (or
        # with more once it is back) is a fair need; the run goes on, only no longer as it would have.
        per_process = profile.training.train_batch_size * profile.training.gradient_accumulation_steps
        warnings.append(Warning(
            message=f"the checkpoint of step {step} was made by {made_by} process(es), this resume runs {num_processes}: "
                    f"the batch per step changes ({made_by * per_process} → {num_processes * per_process} images) and "
                    "the resume is not exact",
            advice=f"to continue the run exactly, resume it with launch.num_processes = {made_by}"))
    unkept = best_no_longer_kept(folder, profile) if folder is not None else None
    if unkept:
        warnings.append(unkept)
    before = recorded_profile(manifest)  # None for a manifest of another version's: the launcher checked what it could
    # A stop warning names both fractions already: the changed fraction is not said a second time.
    apart = {"training.text_encoder_stop_fraction"} if stop else set()
    # Concepts whose folders moved are paired by the images they share before their place: in a reordered list, each was
    # told as the other changed, its images all removed and the other's added. Paired once, for the settings and images.
    pairs = concept_pairs_of(before.concepts, profile.concepts, shared_images(recorded_images, images)) if before else None
    said = _said_changes(before, profile, apart, pairs) if before else []
    if said:
        warnings.append(Warning(
            message=f"changed since step {step}: {'; '.join(said)}",
            advice=f"the steps after step {step} are trained with these settings, those up to it with the checkpoint's (its "
                   "manifest.json holds them): the run is no longer one run of either; to continue it as it was, stop "
                   "it and resume with the checkpoint's settings"))
    folders = [concept.instance_dir for concept in profile.concepts]
    changes = said_image_changes(recorded_images, images, pairs[0], folders) if pairs and images else None
    if changes and changes.said:
        warnings.append(_images_changed(step, changes))
    return warnings


def _images_changed(step: object, changes: ImageChanges) -> Warning:
    """The warning of the images or captions that differ from the checkpoint's record. A file whose time alone changed
    may hold the same photo (copied again without its time): its advice does not send the user to restore it."""
    told = f"since step {step}: {'; '.join(changes.said)}"
    restore = "the files named" + (" (of those whose time alone changed, the ones edited: one only copied again holds the "
                                   "same photo)" if changes.retimed else "")
    if changes.sure:
        return Warning(message=f"the {changes.what} changed {told}",
                       advice=f"the steps after step {step} train on the {changes.what} there now, those up to it on the "
                              "checkpoint's, so the resume is not exact: if the change is meant, there is nothing to do; "
                              f"to train on as the checkpoint did, stop the run, restore {restore} and resume it")
    return Warning(message=f"the {changes.what} may have changed {told}",
                   advice="if they were only copied again, they hold the same photos and there is nothing to do; if they "
                          f"were edited, the steps after step {step} train on them as they are now, those up to it as "
                          "they were, so the resume is not exact: if the edit is meant, there is nothing to do; to train "
                          "on as the checkpoint did, stop the run, restore the files edited and resume it")


def _said_changes(before: Profile, profile: Profile, apart: set[str], pairs: Pairs | None = None) -> list[str]:
    """``key: before → now`` of each setting a resume changes that trains the steps to come otherwise, but those of
    ``apart`` (said in a warning of their own); the concepts' changes where the first concept's would stand, one part a
    concept where they were reordered, removed or added."""
    def kept(key: str) -> bool:
        return not MAY_CHANGE.fullmatch(key) and key not in apart and (profile.prior.enabled or
                                                                      not _UNUSED_WITHOUT_PRIOR.fullmatch(key))

    return said_profile_changes(before, profile, kept, pairs)


def best_no_longer_kept(folder: RunFolder, profile: Profile) -> Warning | None:
    """Another evaluation.prompt_fidelity_tolerance chooses the best step anew: the checkpoint the run named as the one
    to keep is then no longer kept beside the latest ones (engine/runs/rotation.py), and its rotation deleted it without
    a word, the only copy of that model."""
    steps = [saved for saved, _ in complete_checkpoints(folder)]
    tolerance = profile.evaluation.prompt_fidelity_tolerance
    lost = sorted(kept_best_steps(folder.events, steps) - kept_best_steps(folder.events, steps, tolerance))
    if not lost:
        return None
    said = ", ".join(map(str, lost))
    # The tolerance as written (a float's repr reads back as itself), as text_encoder_stop_warning's fractions: `:g`
    # said 0.1100001 as 0.11.
    return Warning(
        message=f"the checkpoint of step {said}, kept until now as the best step's, is no longer kept under "
                f"evaluation.prompt_fidelity_tolerance = {tolerance!r}, which chooses the best step anew: it is deleted "
                "once it is not among the latest saving.keep_last_n",
        advice=" and ".join(f"`dbtui export {shlex.quote(str(folder.path))} --step {step}`" for step in lost)
               + " keeps that model now; or resume with the tolerance the run had")


def _whole_checkpoint_before(folder: RunFolder | None, step: int) -> str:
    """The command that trains on exactly from the run's latest checkpoint before ``step`` with its optimizer state (the
    export's deletes none, Checkpointer.save); "" where it keeps none."""
    whole = [(saved, path) for saved, path in complete_checkpoints(folder) if saved < step
             and read_manifest(path).get("reason") != "export"] if folder is not None else []
    if not whole:
        return ""
    saved = whole[-1][0]
    again = f"step {step}" if saved + 1 == step else f"steps {saved + 1}-{step}"
    return (f"the checkpoint of step {saved} ({whole[-1][1]}) holds its optimizer state: to train on exactly ({again} "
            f"again among them), stop this run and resume it with `dbtui resume {shlex.quote(str(folder.path))} --from "
            f"{saved}`")
