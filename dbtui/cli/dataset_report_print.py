"""How ``dbtui dataset check`` prints a folder's report: its findings' table and the summary under it."""

from __future__ import annotations

from dbtui.cli.printable import markup_safe
from dbtui.finding_name import finding_name

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def print_report(console, report, show_info: bool, profile_counts: bool = False, training=None,
                 run_images: tuple[int, int] | None = None, bucketing: bool = True,
                 shared: tuple[tuple[int, ...], int] | None = None) -> None:
    """``training``: the profile's [training], whose run length, where it sets one, is said in place of the rule's.
    ``shared``: (the concepts whose class images are one set with this one's, the most of them any asks for).
    ``run_images``: (concepts, instance images) of a profile of several, whose run counts its default length of all.
    ``bucketing``: whether the images checked train in aspect-ratio buckets (--bucketing, dataset.bucketing)."""
    from rich.table import Table

    from engine.dataset.profile_settings import to_generate_said, unusable_said
    from engine.dataset.report import (CLASS_IMAGES_PER_IMAGE, MAX_CLASS_IMAGES, MIN_CLASS_IMAGES, RULE_MAX_IMAGES,
                                       STEPS_PER_IMAGE)

    shown = [f for f in report.findings if show_info or f.severity != "info"]
    if shown:
        table = Table(title=markup_safe(report.folder), show_lines=False, expand=False)
        table.add_column("File", overflow="fold")
        table.add_column("Severity")
        table.add_column("Problem", overflow="fold")
        table.add_column("What to do", overflow="fold")
        for finding in shown:
            name = finding_name(finding.path, report.folder)
            style = SEVERITY_STYLE[finding.severity]
            table.add_row(markup_safe(name), f"[{style}]{finding.severity}[/]", markup_safe(finding.message),
                          markup_safe(finding.fix))
        console.print(table)
    s = report.summary
    counts = ", ".join(f"{n} {severity}(s)" for severity, n in s.counts.items())
    copies = f" ({s.copies} of them exact copies)" if s.copies else ""
    console.print(f"[bold]{s.images} images, {s.usable} usable[/]{copies} — {counts}"
                  + ("" if show_info or not s.counts.get("info") else " (--all lists the notes)"))
    if s.sub_folder_images:
        # -r reads them for their findings; counted as usable they made the suggestions of a set no run trains.
        console.print(f"[yellow]{s.sub_folder_images} image(s) in sub-folders[/] of {markup_safe(report.folder)} were "
                      "checked, as -r asks, and are not counted as usable nor in the figures below: a run reads only "
                      "the images directly in a concept's instance_dir, so move them up into it or make each "
                      "sub-folder a concept of its own (concepts.N.instance_dir)", soft_wrap=True)
    if s.buckets:
        sizes = ", ".join(f"{w}×{h}: {n}" for (w, h), n in s.buckets.items())
        # Without bucketing every image trains center-cropped to a square: the buckets, said as the run's under the
        # crop warnings, read as if it trained them.
        turn_on = "dataset.bucketing = true" if profile_counts else "--bucketing"
        console.print(f"Buckets with aspect-ratio bucketing: {sizes}" if bucketing else
                      f"With {turn_on}, the images would train in these buckets: {sizes} (now each is cropped to a "
                      f"{report.resolution}×{report.resolution} square)")
    # With training.max_train_steps and num_train_epochs both empty, training runs the rule's figure uncapped and
    # of every file, exact copies too (engine.data.batches.default_total_steps): said where the suggestion is less.
    by_rule = STEPS_PER_IMAGE * s.usable
    cap = (f" up to {RULE_MAX_IMAGES} images: the rule is for a subject's small set of about 3–{RULE_MAX_IMAGES}"
           if STEPS_PER_IMAGE * (s.usable - s.copies) > s.suggested_steps else "")
    runs = (f"; set training.max_train_steps: with it and training.num_train_epochs both empty, training runs {by_rule} "
            "steps" if by_rule > s.suggested_steps else "")
    if training is not None and (training.max_train_steps or training.num_train_epochs):
        # A style run of epochs was told 100 steps per image, a subject's rule, beside the length its profile sets.
        key, value = (("max_train_steps", training.max_train_steps) if training.max_train_steps
                      else ("num_train_epochs", training.num_train_epochs))
        console.print(f"Training steps: set by the profile (training.{key} = {value}), not by the rule of "
                      f"{STEPS_PER_IMAGE} per image (the rule is the length only where neither key is set)")
    elif run_images is not None:
        # Each concept was told its own folder's rule, half a two-concept run's length (engine.data.batches).
        concepts, images = run_images
        console.print(f"Training steps: {STEPS_PER_IMAGE * images}, {STEPS_PER_IMAGE} per instance image of the "
                      f"{concepts} concepts' {images} together, as the run counts them (training.max_train_steps sets "
                      "another length)")
    else:
        uncounted = f", its {s.copies} exact copies not counted" if s.copies else ""
        console.print(f"Suggested training steps: {s.suggested_steps} ({STEPS_PER_IMAGE} per usable image{uncounted}{cap}{runs})")
    earlier = (f", {s.class_images_generated} generated earlier in {markup_safe(s.class_images_generated_in)} (reused unless the "
               "model's files changed)" if s.class_images_generated else "")
    unused = (f" ({s.class_images_unused} more picture(s) in the folder not used: see its warning)"
              if s.class_images_unused else "")
    present = ("" if s.class_images_present is None
               else f", {s.class_images_present} present{unusable_said(s)}{unused}{earlier}, {to_generate_said(s, shared, first_number=0)}")
    # Without a profile the figure is a suggestion; with one it is the concept's num_class_images.
    rule = "" if profile_counts else (f" (a suggestion: {CLASS_IMAGES_PER_IMAGE} per usable image, at least {MIN_CLASS_IMAGES} "
                                      f"and at most {MAX_CLASS_IMAGES}; a profile sets it as concepts.N.num_class_images)")
    console.print(f"Class images for prior preservation: {s.class_images_wanted} wanted{present}{rule}")
