"""``dbtui dataset caption``: generate captions with a model, or edit every caption of a folder at once."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dbtui.cli.caption_extension_hint import refuse_edit_of_another_extension, say_none_read
from dbtui.cli.caption_options import refuse_stray_options
from dbtui.cli.common import ExamplesFormatter, add_overrides, user_path
from dbtui.cli.first_lines import NAMED, check_hint, print_first
from dbtui.cli.printable import markup_safe
from dbtui.cli.profile_decides import (RECURSIVE_WITH_PROFILE, folder_without_profile, profile_decides,
                                     recursive_with_profile)

if TYPE_CHECKING:
    from engine.dataset import CaptionStore


# A tag longer than this is a sentence or pasted text, not a tag: a 10,000-word caption filled the terminal.
SHOWN_TAG_CHARS = 100


def _shown_tag(tag: str) -> str:
    """``tag`` as --frequency lists it: its start and its length where it is longer than ``SHOWN_TAG_CHARS``."""
    return tag if len(tag) <= SHOWN_TAG_CHARS else f"{tag[:SHOWN_TAG_CHARS].rstrip()}… ({len(tag):,} characters)"


def register_caption(commands: argparse._SubParsersAction) -> None:
    caption = commands.add_parser(
        "caption",
        help="generate captions (BLIP, WD14) or edit them in bulk, with undo",
        description="Generate missing captions with a model, or edit every caption of a folder at once. "
        "Each rewritten caption keeps its previous version in .dbtui-captions-history/, and "
        "--undo reverts the last bulk edit.",
        epilog="examples:\n  dbtui dataset caption photos/ --auto blip\n"
        "  dbtui dataset caption photos/ --add-tag ohwx\n  dbtui dataset caption photos/ --undo\n"
        "  dbtui dataset caption --profile my.toml --frequency\n"
        "  dbtui dataset caption --profile my.toml --concept 1 --add-tag ohwx",
        formatter_class=ExamplesFormatter,
    )
    caption.add_argument("folder", nargs="?", type=user_path, help="image folder, captions beside the images (default with "
                         "--profile: each concept's instance_dir)")
    caption.add_argument("--profile", type=user_path, help="caption each concept's instance_dir, with the profile's "
                         "caption extension (dataset.caption_extension)")
    caption.add_argument("--concept", type=int, help="with --profile: only this concept's instance_dir (0-based)")
    add_overrides(caption)  # with --profile: the folders and extension the run started with these --set values reads
    action = caption.add_mutually_exclusive_group(required=True)
    action.add_argument("--auto", choices=["blip", "wd14"], help="caption images with a model")
    action.add_argument("--add-tag", metavar="TAG",
                        help="add a tag to every caption that does not already say it as a word (at the front; --back for "
                             "the end), and create a caption of the tag for each image that has none")
    action.add_argument("--remove-tag", metavar="TAG", help="remove a tag from every caption")
    action.add_argument("--replace", nargs=2, metavar=("FIND", "REPLACEMENT"), help="find and replace text in every caption")
    action.add_argument("--dedupe", action="store_true", help="remove repeated tags")
    action.add_argument("--trim", action="store_true", help="tidy spaces and drop empty tags")
    action.add_argument("--undo", action="store_true", help="revert the last bulk edit")
    action.add_argument("--frequency", action="store_true", help="list tags by how many captions have them")
    caption.add_argument("--back", action="store_true", help="with --add-tag: add at the end")
    caption.add_argument("--new-captions", action="store_true",
                         help="with --add-tag: create --extension captions though the images have captions of another")
    caption.add_argument("--model", type=user_path, help="with --auto: local folder or hub id (default: the backend's usual model)")
    caption.add_argument("--overwrite", action="store_true", help="with --auto: also replace existing captions")
    caption.add_argument("--extension", help="caption file extension (default: .txt; with --profile, which refuses it, "
                         "the profile's dataset.caption_extension, changed with --set)")
    caption.add_argument("--recursive", "-r", action="store_true", help=RECURSIVE_WITH_PROFILE)
    caption.set_defaults(handler=_caption, usage_error=caption.error)


def _caption(args: argparse.Namespace) -> int:
    from engine.dataset import CaptionStore
    from engine.dataset.no_images import NOTHING_TO_EDIT, refuse_no_images

    from dbtui.cli.unpadded import unpadded_console

    refuse_stray_options(args, args.usage_error)
    folders, extension = _folders(args)
    console = unpadded_console()
    # Listed once here for the refusal below and the edit: each listing of 10,000 images takes 0.3 s.
    stores = [CaptionStore(folder, extension, recursive=args.recursive, list_once=True) for _, folder in folders]
    if args.auto:
        return _autocaption(console, args, folders, stores)
    if not (args.frequency or args.undo):  # --frequency only reads; --undo may revert captions of images since removed
        for store in stores:  # every folder before an edit, as _folders refuses them before any is done
            refuse_no_images(store, NOTHING_TO_EDIT)
            refuse_edit_of_another_extension(store, args)
    code = 0
    for (heading, folder), store in zip(folders, stores):
        if heading:
            console.print(f"[bold]{markup_safe(heading)}[/]")
        code = max(code, _caption_folder(console, argparse.Namespace(**{**vars(args), "folder": folder, "extension": extension}),
                                         store))
    return code


def _autocaption(console, args: argparse.Namespace, folders: list[tuple[str | None, str]],
                 stores: list[CaptionStore]) -> int:
    """--auto on every folder, each planned once: the plan that decides whether the captioner loads (a download of a
    GB) is the one written, so "nothing to caption" and the captions written come from the same look."""
    from engine.dataset.autocaption import plan_autocaption, write_captions

    from dbtui.console import PhaseDisplay

    plans = [plan_autocaption(store, args.overwrite) for store in stores]  # every folder refused before the load
    captioner = None
    if any(plan.todo for plan in plans):  # once for every folder: each concept's loaded the model again
        from engine.dataset import load_captioner

        captioner = load_captioner(args.auto, args.model)
    code = 0
    for (heading, _), plan in zip(folders, plans):
        if heading:
            console.print(f"[bold]{markup_safe(heading)}[/]")
        with PhaseDisplay(console=console) as progress:
            result = write_captions(plan, captioner, backend=args.auto, emit=progress)
        if result.written or result.failed or not result.skipped:
            console.print(f"{len(result.written)} captions written, {len(result.skipped)} kept (use --overwrite to redo)")
        else:
            console.print(f"nothing to caption: all {len(result.skipped)} images have captions; use --overwrite to "
                          "redo them")
        for image, reason in result.failed:
            console.print(f"[red]failed[/] {markup_safe(image)}: {markup_safe(reason)}")
        code = max(code, 1 if result.failed else 0)
    return code


def _folders(args: argparse.Namespace) -> tuple[list[tuple[str | None, str]], str]:
    """(a heading naming the concept where several are captioned, the folder) for each folder captioned, and the
    caption extension: FOLDER and --extension, else (--profile) each concept's instance_dir (--concept: that one's)
    and the profile's dataset.caption_extension. Every folder is refused before any is captioned: one missing
    stopped the command with the concepts before it edited."""
    if not args.profile:
        from engine.dataset.options import checked_caption_extension

        # Refused here, before --auto loads its model: once the load moved ahead of the folders, `--extension .png`
        # was said only after a download of the captioner (offline, its failure was said instead).
        extension = ".txt" if args.extension is None else checked_caption_extension(args.extension)
        return [(None, folder_without_profile(args, "caption", "caption"))], extension
    from engine.builtin import is_builtin, resolve_dir
    from engine.dataset import DatasetError
    from engine.family_sizes import load_profile_with_family_step

    from dbtui.cli.dataset_check_profile import checked_concepts, missing_folders

    profile_decides({"--extension": ("dataset.caption_extension", args.extension)})
    if args.recursive and not args.folder:  # a concept's folder inside another's had its captions edited twice
        raise DatasetError(recursive_with_profile("`dataset caption`", "caption"))
    profile = load_profile_with_family_step(args.profile, args.set)
    extension = profile.dataset.caption_extension
    if args.folder:
        if args.concept is not None:  # the extension, all FOLDER takes of the profile, is every concept's
            raise DatasetError("--concept chooses the concept whose instance_dir is captioned: give FOLDER or --concept, "
                               "not both")
        return [(None, args.folder)], extension
    indices = checked_concepts(profile, None, args.concept)
    if not (args.frequency or args.undo):  # the demo's pictures sit in dbtui's cache, shared by every profile naming them
        for index in indices:
            if is_builtin(name := profile.concepts[index].instance_dir):
                raise DatasetError(f"concepts.{index}.instance_dir is {name}, dbtui's own demo pictures, which every "
                                   f"profile naming it shares: copy {resolve_dir(name)} to a folder of your own and "
                                   "point instance_dir there to caption them")
    if missing := missing_folders(profile, indices):
        raise DatasetError("\n".join(missing))
    folders = [resolve_dir(profile.concepts[index].instance_dir) for index in indices]
    return [(f"concepts.{index}: {folder}" if len(indices) > 1 else None, folder)
            for index, folder in zip(indices, folders)], extension


def _caption_folder(console, args: argparse.Namespace, store: CaptionStore) -> int:
    """``args``' caption edit (or --frequency, --undo) on ``store``, ``args.folder``'s captions of ``args.extension``;
    1 where any was left alone."""
    if args.frequency:
        for tag, count in (tags := store.tag_frequency()):
            console.print(f"{count:6d}  {markup_safe(_shown_tag(tag))}", highlight=False)
        if not tags:
            say_none_read(console, store, args)
        _report_unreadable(console, (*store.unread_folders(), *store.unreadable()), args)
        return 0  # it only reads: the captions it could not count are named, and nothing was left undone
    if args.undo:
        changes = store.undo()
    elif args.add_tag is not None:  # an empty tag is the store's to refuse, not a trim
        changes = store.add_tag(args.add_tag, front=not args.back)
    elif args.remove_tag is not None:
        changes = store.remove_tag(args.remove_tag)
    elif args.replace is not None:
        changes = store.replace(*args.replace)
    elif args.dedupe:
        changes = store.dedupe_tags()
    else:
        changes = store.trim()
    counts = changes.counts_said("had no caption file")
    undoes = " (--undo reverts)" if len(changes) and not args.undo else ""  # nothing changed: the journal stays
    console.print(markup_safe(f"{changes.operation}: {counts}") + undoes, soft_wrap=True)
    for item in changes.still_said:
        console.print(f"[yellow]still said[/] {markup_safe(item.reason)}")
    if not len(changes) and not args.undo:
        say_none_read(console, store, args)
    unread = () if args.undo else store.unread_folders()  # undo follows its journal, not the listing
    return _report_unreadable(console, (*unread, *changes.skipped), args)


def _report_unreadable(console, skipped, args: argparse.Namespace) -> int:
    """Print the caption files (and sub-folders) a caption command left alone or did not create, and why; 1 when there
    was any."""
    # `dataset check` names unreadable captions, not one edited since an undo, a link to no file or a file no picture.
    hint = all(item.kind == "unreadable" for item in skipped[NAMED:])
    print_first([f"[red]skipped[/] {markup_safe(item.reason)}" for item in skipped], console, "skipped",
                check_hint(args.folder, args.extension, args.recursive) if hint else "")
    return 1 if skipped else 0
