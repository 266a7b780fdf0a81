"""What `dbtui dataset caption` says of the folder or --extension when they are likely not what was meant: no images
there, or images whose captions have another extension (a mistyped --extension)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dbtui.cli.printable import markup_safe

if TYPE_CHECKING:  # the CLI's commands import the engine when they run, not when the parser is built
    from engine.dataset import CaptionStore


def refuse_edit_of_another_extension(store: CaptionStore, args: argparse.Namespace) -> None:
    """A CaptionError (status 2) for a bulk edit where no image has a caption of --extension but some have another's:
    mistyped (.txtt, or .caption for images captioned in .txt), --remove-tag, --replace, --dedupe and --trim changed
    nothing and exited 0 with a hint, and --add-tag put a new caption holding the tag alone beside each image (it
    may, with --new-captions). Not for --frequency, which only reads, nor --undo, which follows its journal."""
    from engine.dataset.errors import CaptionError
    from engine.dataset.prepare_captions import captions_of_other_extensions

    if args.add_tag is not None and args.new_captions:
        return
    images = store.images()
    # --add-tag names each caption differing only in letter case itself, and creates none beside it.
    found = captions_of_other_extensions(images, store.extension, letter_case=args.add_tag is None)
    if not found:
        return
    ext, most = store.extension, next(iter(found))
    have = " and ".join(f"{len(paths)} of the {len(images)} {'has' if len(paths) == 1 else 'have'} {other} captions" for other, paths in found.items())
    if args.add_tag is not None:
        raise CaptionError(f"no image has a {ext} caption, but {have}: --add-tag would create a {ext} caption holding "
                           f"the tag alone beside each image, not add it to those; {_other_extension(args, most)} to add "
                           f"it to them, or --new-captions to start {ext} captions anyway")
    edits = {"--remove-tag": args.remove_tag is not None, "--replace": args.replace is not None, "--dedupe": args.dedupe}
    edit = next((option for option, given in edits.items() if given), "--trim")
    raise CaptionError(f"no image has a {ext} caption, but {have}: {edit} would change none; "
                       f"{_other_extension(args, most)} to edit those")


def say_none_read(console, store: CaptionStore, args: argparse.Namespace) -> None:
    """Why a caption command found nothing to read or change, where it is the folder (no images) or the extension
    (the images' captions have another): else a mistyped folder or --extension said only '0 caption(s) changed'.
    The edits are refused for both before they start (refuse_no_images, refuse_edit_of_another_extension), so this
    is said for --frequency, which only reads, and for --add-tag where it is let through (--new-captions, or captions
    that differ from --extension only in letter case)."""
    from engine.data.images import images_in_sub_folders
    from engine.dataset.prepare_captions import captions_of_other_extensions
    from engine.support.prepared_marks import prepared_sub_folders

    images = store.images()
    if not images:
        # -r passes over dbtui's prepared copies: advised where they alone are below, it read none either.
        below = not args.recursive and images_in_sub_folders(store.folder, tuple(prepared_sub_folders(store.folder)))
        console.print(f"[yellow]no images in {markup_safe(str(store.folder))}[/]: captions are read beside their images; "
                      + ("its sub-folders hold some: give -r to read those" if below else "give the folder that holds them"),
                      soft_wrap=True)
        return
    other, found = next(iter(captions_of_other_extensions(images, store.extension).items()), ("", []))
    if found:
        console.print(f"[yellow]no {markup_safe(store.extension)} captions[/]: {len(found)} of the {len(images)} images "
                      f"have {other} captions instead; {markup_safe(_other_extension(args, other))} to read those", soft_wrap=True)


def _other_extension(args: argparse.Namespace, other: str) -> str:
    """How to read the captions of extension ``other``: --extension, or with --profile (which refuses it) the profile's
    key, as `dataset prepare` says it."""
    if args.profile:
        return f"set dataset.caption_extension = \"{other}\" in {args.profile} (or --set dataset.caption_extension={other})"
    return f"give --extension {other}"
