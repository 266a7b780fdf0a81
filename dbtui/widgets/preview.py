"""A picture of the selected image, drawn with textual-image (renderer chosen by the app)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

from engine.data.images import IMAGE_SUFFIXES, load_rgb

PREVIEW_SIDE = 768  # px: more than any terminal shows, far less than a camera's picture to decode and scale


def image_class(renderer: str):
    """textual-image's widget for ``renderer`` ("auto", "halfcell", "unicode", "sixel", "tgp"), or None."""
    if renderer == "none":
        return None
    import textual_image.widget as images

    return {"halfcell": images.HalfcellImage, "unicode": images.UnicodeImage, "sixel": images.SixelImage,
            "tgp": images.TGPImage}.get(renderer, images.Image)


class ImagePreview(Container):
    DEFAULT_CSS = """
    ImagePreview { height: 10; border: round $panel; }
    ImagePreview > Static { color: $text-muted; content-align: center middle; height: 1fr; }
    ImagePreview > .image { width: auto; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path: Path | None = None

    def compose(self) -> ComposeResult:
        yield Static("no image selected")

    def show(self, path: str | Path | None) -> None:
        path = Path(path) if path else None
        if path == self.path:
            return
        self.path = path
        self.border_title = escape(path.name) if path else None
        self.remove_children()
        widget_class = image_class(getattr(self.app, "image_renderer", "auto"))
        if path is None:
            self.mount(Static("no image selected"))
        elif path.is_dir():  # a finding of the whole folder (it has no images, say)
            self.mount(Static(f"{path.name}/ is a folder: no picture to show", markup=False))
        elif path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            self.mount(Static(f"{path.name}: not an image file", markup=False))
        elif widget_class is None:
            self.mount(Static(path.name, markup=False))
        else:
            try:
                # The picture as training reads it (upright, colour profile applied), not the stored one.
                self.mount(widget_class(load_rgb(path, PREVIEW_SIDE), classes="image"))
            except Exception as error:  # noqa: BLE001 - a broken picture must not break the screen
                self.mount(Static(f"cannot show {path.name}: {error}", markup=False))
