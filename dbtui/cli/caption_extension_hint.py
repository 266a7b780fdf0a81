"""What `dbtui dataset caption` says of the folder or --extension when they are likely not what was meant: no images
there, or images whose captions have another extension (a mistyped --extension)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dbtui.cli.printable import markup_safe

if TYPE_CHECKING:  # the CLI's commands import the engine when they run, not when the parser is built
    from engine.dataset import CaptionStore


def refuse_new_captions_beside_others(store: CaptionStore, args: argparse.Namespace) -> None:
    """--add-tag creates a caption of the tag for each image without one: with --extension mistyped (.caption for
    images captioned in .txt), it edited none of their captions and put a new file holding the tag alone beside each.
    Refused when no image has a caption of the extension but some have another's, unless --new-captions says so."""
    from engine.dataset.errors import CaptionError
    from engine.dataset.prepare_captions import captions_of_another_extension

    if args.add_tag is None or args.new_captions:
        return
    images = store.images()
    other, found = captions_of_another_extension(images, store.extension)
    if found:
        ext = store.extension
        raise CaptionError(f"no image has a {ext} caption, but {len(found)} of the {len(images)} have {other} captions: "
                           f"--add-tag would create a {ext} caption holding the tag alone beside each image, not add it "
                           f"to those; {_other_extension(args, other)} to add it to them, or --new-captions to start {ext} "
                           "captions anyway")


def say_none_read(console, store: CaptionStore, args: argparse.Namespace) -> None:
    """Why a caption command found nothing to read or change, where it is the folder (no images) or the extension
    (the images' captions have another): else a mistyped folder or --extension said only '0 caption(s) changed'."""
    from engine.data.images import images_in_sub_folders
    from engine.dataset.prepare_captions import captions_of_another_extension
    from engine.support.prepared_marks import prepared_sub_folders

    images = store.images()
    if not images:
        # -r passes over dbtui's prepared copies: advised where they alone are below, it read none either.
        below = not args.recursive and images_in_sub_folders(store.folder, tuple(prepared_sub_folders(store.folder)))
        console.print(f"[yellow]no images in {markup_safe(str(store.folder))}[/]: captions are read beside their images; "
                      + ("its sub-folders hold some: give -r to read those" if below else "give the folder that holds them"),
                      soft_wrap=True)
        return
    other, found = captions_of_another_extension(images, store.extension)
    if found:
        console.print(f"[yellow]no {markup_safe(store.extension)} captions[/]: {len(found)} of the {len(images)} images "
                      f"have {other} captions instead; {markup_safe(_other_extension(args, other))} to read those", soft_wrap=True)


def _other_extension(args: argparse.Namespace, other: str) -> str:
    """How to read the captions of extension ``other``: --extension, or with --profile (which refuses it) the profile's
    key, as `dataset prepare` says it."""
    if args.profile:
        return f"set dataset.caption_extension = \"{other}\" in {args.profile} (or --set dataset.caption_extension={other})"
    return f"give --extension {other}"
