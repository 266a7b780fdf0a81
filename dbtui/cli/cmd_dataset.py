"""``dbtui dataset check|prepare|caption``: the dataset doctor from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dbtui.cli.common import ExamplesFormatter, add_overrides, finite_at_least, int_in, to_stderr, user_path
from dbtui.cli.dataset_caption import register_caption
from dbtui.cli.dataset_report_print import print_report
from dbtui.cli.first_lines import check_hint, print_first
from dbtui.cli.profile_decides import (RECURSIVE_WITH_PROFILE, folder_without_profile, profile_decides,
                                     profile_values_need_profile, recursive_with_profile)
from dbtui.cli.printable import markup_safe

CAPTION_MODES = ["instance_prompt", "caption_file", "caption_file_then_prompt", "prompt_then_caption_file", "file_name"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="check, prepare and caption training images (originals are never modified)",
        description="The dataset doctor: find what spoils training images, write prepared copies, "
        "and edit or generate captions. Your original files are only ever read.",
    )
    commands = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    _register_check(commands)
    _register_prepare(commands)
    register_caption(commands)


def _register_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check",
        help="list every problem of each image, with what to do about it",
        description="Check each image for what spoils DreamBooth training (unreadable files, low "
        "resolution, blur, transparency, duplicates, missing or over-long captions, a poor "
        "identifier) and summarise the dataset. Exit status 1 when there is any error.",
        epilog="examples:\n  dbtui dataset check photos/ --prompt 'photo of ohwx dog' --identifier ohwx \\\n"
        "      --model ./sd15\n"
        "  dbtui dataset check --profile my.toml\n"
        "  dbtui dataset check --profile my.toml --set concepts.0.instance_dir=photos/v2",
        formatter_class=ExamplesFormatter,
    )
    check.add_argument("folder", nargs="?", type=user_path, help="image folder (default with --profile: each concept's instance_dir)")
    check.add_argument("--profile", type=user_path, help="take resolution, caption mode and extension, prompts, "
                       "bucketing and model from this profile (the options giving those are then refused: change the "
                       "profile's with --set; --model still chooses the tokenizer)")
    check.add_argument("--concept", type=int, help="with --profile: only this concept (0-based), whose settings check a FOLDER given "
                       "(default: the concept whose folder FOLDER is)")
    add_overrides(check)  # with --profile: check the images and settings the run started with these --set values reads
    check.add_argument("--resolution", type=int, help="training resolution in px (default: --model's own size, else 512)")
    # A metavar: argparse's usage never breaks inside an option's choices, whose five made a line of 134 columns at 80.
    check.add_argument("--caption-mode", choices=CAPTION_MODES, metavar="MODE",
                       help="where captions come from: %(choices)s (default: instance_prompt)")
    check.add_argument("--caption-extension", help="caption file extension (default: .txt)")
    check.add_argument("--prompt", help="the instance prompt, e.g. 'photo of ohwx dog'")
    check.add_argument("--identifier", help="the rare word naming your subject, e.g. ohwx")
    check.add_argument("--model", type=user_path, help="model folder (or tokenizer folder, or hub id) whose tokenizer counts tokens "
                                       "and whose size steps make the buckets")
    check.add_argument("--bucketing", action="store_true", help="judge crops as aspect-ratio bucketing would")
    check.add_argument("--blur-threshold", type=finite_at_least(0),
                       help="sharpness (the variance of the Laplacian of a grey copy, the figure a blur finding prints) "
                       "below which an image is called blurry (default: 60)")
    _add_common(check, RECURSIVE_WITH_PROFILE)
    check.add_argument("--all", action="store_true", help="also list notes (info), not only errors and warnings")
    check.set_defaults(handler=_check)


def _register_prepare(commands: argparse._SubParsersAction) -> None:
    prepare = commands.add_parser(
        "prepare",
        help="write training-ready PNG copies (rotated, RGB, cropped, resized) to another folder",
        description="Write a processed copy of every usable image to OUTPUT: EXIF rotation applied, "
        "RGB (transparency flattened), centre-cropped or bucket-fitted to the resolution, PNG; "
        "captions are copied. Originals are never modified; re-running skips up-to-date copies.",
        epilog="examples:\n  dbtui dataset prepare photos/ prepared/ --resolution 768\n"
        "  # buckets in SDXL's size steps:\n"
        "  dbtui dataset prepare photos/ prepared/ --bucketing --model ./sdxl\n"
        "  # at the sizes my.toml trains at:\n"
        "  dbtui dataset prepare photos/ prepared/ --profile my.toml\n"
        "  dbtui dataset prepare photos/ prepared/ --profile my.toml \\\n"
        "      --set dataset.resolution=1024",
        formatter_class=ExamplesFormatter,
    )
    prepare.add_argument("folder", type=user_path, help="folder with the original images")
    prepare.add_argument("output", type=user_path, help="folder for the prepared copies (must differ from the originals')")
    prepare.add_argument("--profile", type=user_path, help="take resolution, bucketing (with its model's bucket sizes), crop and caption "
                                         "extension from this profile (the options giving those are then refused: change "
                                         "the profile's with --set)")
    add_overrides(prepare)  # with --profile: the sizes and crop the run started with these --set values trains at
    prepare.add_argument("--resolution", type=int, help="training resolution in px (default: 512)")
    prepare.add_argument("--bucketing", action="store_true", help="resize to each image's aspect-ratio bucket")
    prepare.add_argument("--model", type=user_path, help="with --bucketing: the model (folder, file or hub id) whose size steps make the "
                                         "buckets, as training will have them (default: SD's 64 px)")
    prepare.add_argument("--no-center-crop", action="store_true",
                         help="keep the whole image, short side at the resolution (for random-crop training)")
    prepare.add_argument("--flatten-color", default="255,255,255", metavar="R,G,B",
                         help="background for transparent pixels (default: %(default)s)")
    prepare.add_argument("--caption-extension", help="caption file extension (default: .txt)")
    _add_common(prepare)
    prepare.set_defaults(handler=_prepare)


def _add_common(parser: argparse.ArgumentParser, recursive: str = "include sub-folders") -> None:
    parser.add_argument("--recursive", "-r", action="store_true", help=recursive)
    # The cap is engine/data/decode_budget.DECODE_BUDGET_BYTES, said here without importing Pillow for --help.
    parser.add_argument("--workers", type=int_in(1), help="worker processes (default and most: one per CPU, fewer "
                        "where as many of the largest picture decoded at once would pass 2 GiB of memory)")


CHECK_SAID = "checking the images, their captions and prompts …"


def _check(args: argparse.Namespace) -> int:
    to_stderr(CHECK_SAID)  # before the checks' imports: over a second, said by nothing; stdout keeps the report
    from engine.dataset import DatasetError, check_dataset
    from engine.dataset.files import checked_folder
    from engine.dataset.profile_settings import shared_class_set

    from dbtui.cli.dataset_check_profile import (checked_concepts, loaded_readers, profile_checks, read_from,
                                                 refuse_missing_folders, run_instance_images)
    from dbtui.cli.unpadded import unpadded_console
    from dbtui.console import PhaseDisplay

    console = unpadded_console()
    runs: list[tuple[str | None, str | None, dict[str, Any]]] = []  # as profile_checks gives them
    run_images = None
    shares: list[tuple[tuple[int, ...], int] | None] = [None]  # each run's class set shared with other concepts
    # Every refusal comes before the tokenizers are read: reading them took seconds before a wrong flag was named (or
    # a missing folder, unless another concept's is there to check: refuse_missing_folders).
    if args.profile:
        from engine.family_sizes import load_profile_with_family_step

        if args.recursive and not args.folder:  # it counted the sub-folders' pictures a run never reads, and hid their warning
            raise DatasetError(recursive_with_profile("the check", "check", " (the check then names the images in sub-folders)"))
        profile = load_profile_with_family_step(args.profile, args.set)
        if args.folder:
            checked_folder(args.folder)
        indices = checked_concepts(profile, args.folder, args.concept)
        missing = [] if args.folder else refuse_missing_folders(profile, indices)
        # The concept checked, FOLDER's own where it is one (its --set told as concepts.0 changed another concept);
        # with several checked, concepts.N: concepts.0 for each of them changed the first alone.
        concept = f"concepts.{indices[0]}" if len(indices) == 1 else "concepts.N"
        profile_decides({"--resolution": ("dataset.resolution", args.resolution),
                          "--caption-mode": (f"{concept}.caption_mode", args.caption_mode),
                          "--caption-extension": ("dataset.caption_extension", args.caption_extension),
                          "--prompt": (f"{concept}.instance_prompt", args.prompt),
                          # The check reads the identifier from the instance prompt: that is the key that changes it.
                          "--identifier": (f"{concept}.instance_prompt", None if args.identifier is None else ""),
                          "--bucketing": ("dataset.bucketing", args.bucketing or None)}, concepts=len(indices))
        for said in missing:  # after every refusal: "the others are checked" is only true once none is left
            console.print(f"[yellow]warning:[/] {markup_safe(said)}; the other concepts are checked first")
        runs = profile_checks(console, profile, args.folder, indices, loaded_readers(console, args.model, profile.model))
        run_images = run_instance_images(profile, args.folder, indices)
        shares = [shared_class_set(profile, index) for index in indices]
    else:
        folder_without_profile(args, "check", "check")
        checked_folder(args.folder)
        readers = loaded_readers(console, args.model) if args.model else None  # all the model's family reads with
        runs.append((None, None, {"folder": args.folder, "resolution": args.resolution if args.resolution is not None else _model_resolution(args.model) or 512,
                     "caption_mode": args.caption_mode,  # None: no caption file is said unread by a mode not told
                     "caption_extension": ".txt" if args.caption_extension is None else args.caption_extension,
                     "instance_prompt": args.prompt,
                     "identifier": args.identifier, "tokenizer": readers[0].tokenizer if readers else None,
                     "readers": readers, "bucketing": args.bucketing, "size_multiple": _model_size_multiple(args.model)}))
    failed, unusable = False, []
    for (key, heading, settings), shared in zip(runs, shares, strict=True):
        if args.blur_threshold is not None:
            settings["blur_threshold"] = args.blur_threshold
        folder = settings.pop("folder")
        bucketing = bool(settings.get("bucketing"))
        if heading:
            console.print(f"[bold]{markup_safe(heading)}[/]")
        try:
            with PhaseDisplay(console=console) as progress:
                report = check_dataset(folder, **settings, recursive=args.recursive, workers=args.workers, emit=progress)
        except DatasetError as error:
            if key is None:
                raise
            unusable.append(f"{key}: {error}{read_from(folder)}")  # the other concepts are checked still, as validate says
            continue
        print_report(console, report, show_info=args.all, profile_counts=bool(args.profile),
                     training=profile.training if args.profile else None, run_images=run_images, bucketing=bucketing,
                     shared=shared)
        failed |= report.has_errors
    if unusable:
        raise DatasetError("\n".join(unusable))
    return 1 if failed else 0


def _model_resolution(model: str | None) -> int | None:
    """The size ``model`` was trained at (a built-in, a folder or a single file); None for a hub id or none."""
    if not model:
        return None
    from engine.model_info import describe_model

    return describe_model(model).resolution


def _model_size_multiple(model: str | None) -> int:
    """The pixel step of ``model``'s buckets (SD's 64 without one), so the buckets shown are the ones it trains in."""
    if not model:
        return 64
    from engine.model_info import size_multiple

    return size_multiple(model)


def _prepare(args: argparse.Namespace) -> int:
    from engine.dataset import prepare_dataset, prepare_settings

    from dbtui.cli.unpadded import unpadded_console
    from dbtui.console import PhaseDisplay

    if args.profile:
        from engine.family_sizes import load_profile_with_family_step

        profile_decides({"--resolution": ("dataset.resolution", args.resolution),
                          "--bucketing": ("dataset.bucketing", args.bucketing or None),
                          "--model": ("model.pretrained", args.model),
                          "--no-center-crop": ("dataset.center_crop", False if args.no_center_crop else None),
                          "--caption-extension": ("dataset.caption_extension", args.caption_extension)})
        options = prepare_settings(load_profile_with_family_step(args.profile, args.set))
    else:
        profile_values_need_profile(args)
        options = {"resolution": 512 if args.resolution is None else args.resolution, "bucketing": args.bucketing,
                   "center_crop": not args.no_center_crop,
                   "caption_extension": ".txt" if args.caption_extension is None else args.caption_extension,
                   "size_multiple": _model_size_multiple(args.model)}
    console = unpadded_console()
    with PhaseDisplay(console=console) as progress:
        result = prepare_dataset(args.folder, args.output, flatten_color=_colour(args.flatten_color),
                                 recursive=args.recursive, workers=args.workers, emit=progress, **options)
    console.print(f"{len(result.written)} written, {len(result.up_to_date)} already up to date, "
                  f"{result.captions_copied} captions copied → {markup_safe(result.destination)}")
    for folder, problem, fix in result.failed_folders:
        console.print(f"[red]skipped[/] {markup_safe(folder)}: {markup_safe(problem)}; {markup_safe(fix)}")
    for source, reason in result.failed:
        console.print(f"[red]skipped[/] {markup_safe(source)}: {markup_safe(reason)}")
    print_first([f"[red]caption not copied[/] {markup_safe(caption)}: {markup_safe(reason)}"
                 for caption, reason in result.caption_failures], console, "caption(s) not copied",
                check_hint(args.folder, options["caption_extension"], args.recursive))
    for caption in result.orphan_captions:
        console.print(f"[yellow]caption not copied[/] {markup_safe(caption)}: no image has its name")
    other, unused = result.other_captions
    if unused:
        read = options["caption_extension"]
        how = (f"set dataset.caption_extension = \"{other}\" in {args.profile}" if args.profile
               else f"give --caption-extension {other}")
        console.print(f"[yellow]captions not used[/] {len(unused)} {other} caption(s) beside the images (such as "
                      f"{markup_safe(unused[0])}) were not copied: prepare reads {markup_safe(read)} captions, and no image "
                      f"has one; to copy those, {markup_safe(how)} and prepare again", soft_wrap=True)
    for caption in result.stale_captions:
        kept = Path(result.set_aside_in) / Path(caption).relative_to(result.destination)
        console.print(f"[yellow]caption set aside[/] {markup_safe(caption)} → {markup_safe(str(kept))}: an earlier "
                      "prepare copied it, and its original caption is gone; move it back to train with it")
    for caption in result.edited_captions:
        console.print(f"[yellow]caption kept[/] {markup_safe(caption)}: written or edited there since dbtui prepared "
                      "it, so its original's text did not replace it; delete it to take the original's again")
    for _, reason in result.kept:
        console.print(f"[red]kept[/] {markup_safe(reason)}")
    if result.origin_not_recorded:
        console.print(f"[yellow]not marked as copies[/] {markup_safe(result.origin_not_recorded)}")
    nested = [copy for copy in (*result.written, *result.up_to_date) if Path(copy).parent != Path(result.destination)]
    if nested:
        console.print(f"[yellow]{len(nested)} {'copy is' if len(nested) == 1 else 'copies are'} in sub-folders of {markup_safe(result.destination)}[/]: training "
                      "reads only the images directly in a concept's folder, so give each sub-folder as a concept of "
                      "its own (concepts.N.instance_dir)", soft_wrap=True)
    for copy in result.without_original:
        console.print(f"[yellow]no original any more[/] {markup_safe(copy)}: an earlier prepare made it; it still "
                      "trains unless you delete it (and its caption)")
    if result.has_failures:
        orphans = f"; {len(result.orphan_captions)} caption(s) without an image were left out" if result.orphan_captions else ""
        if result.failed or result.caption_failures or result.failed_folders:
            folders = f"{len(result.failed_folders)} sub-folder(s), " if result.failed_folders else ""
            console.print(f"[red]{folders}{len(result.failed)} image(s) and {len(result.caption_failures)} caption(s) "
                          f"could not be prepared[/]{orphans}: see above; `dbtui dataset check` explains each")
        if result.kept:
            console.print(f"[red]{len(result.kept)} file(s) in {markup_safe(result.destination)} were not made by dbtui "
                          "and were kept[/], so their images were not prepared: give another (new or empty) output "
                          "folder, or move those files away", soft_wrap=True)
    return 1 if result.has_failures else 0


def _colour(text: str) -> tuple[int, int, int]:
    text = text.strip()
    try:
        if text.startswith("#") and len(text) == 7:
            return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
        values = tuple(int(v) for v in text.split(","))
        if len(values) == 3 and all(0 <= v <= 255 for v in values):
            return values
    except ValueError:
        pass
    from engine.errors import DbtuiError

    raise DbtuiError(f"--flatten-color '{text}' is not R,G,B (each 0–255) or #rrggbb, e.g. 255,255,255 for white")
