"""A picture of the selected image, drawn with textual-image (renderer chosen by the app)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual import work
from textual.app import ComposeResult
from textual.containers import Container
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from engine.data.images import IMAGE_SUFFIXES, load_rgb
from engine.dataset.files import file_problem

PREVIEW_SIDE = 768  # px: more than any terminal shows, far less than a camera's picture to decode and scale


def image_class(renderer: str):
    """textual-image's widget for ``renderer`` ("auto", "halfcell", "unicode", "sixel", "tgp"), or None."""
    if renderer == "none":
        return None
    import textual_image.widget as images

    return {"halfcell": images.HalfcellImage, "unicode": images.UnicodeImage, "sixel": images.SixelImage,
            "tgp": images.TGPImage}.get(renderer, images.Image)


def _shut_out(path: Path) -> str | None:
    """Why this user may not look at ``path`` (a folder above it lets them not in, where Python 3.11's is_dir raises:
    a class folder's finding there crashed the Dataset step), else None."""
    try:
        path.stat()
    except PermissionError as error:
        return error.strerror
    except OSError:  # not there, or a broken link: said below
        return None
    return None


class ImagePreview(Container):
    """The picture of ``show``'s path. Decoding a camera's picture takes seconds, so it is loaded in a thread: moving
    through a list cancels the loads of the pictures passed over, and only the latest path's picture is shown."""

    DEFAULT_CSS = """
    ImagePreview { height: 10; border: round $panel; }
    ImagePreview > Static { color: $text-muted; content-align: center middle; height: 1fr; }
    ImagePreview > .image { width: auto; height: 1fr; }
    """

    class Loaded(Message):
        """A picture decoded for ``path`` (``picture``), or why it could not be (``error``)."""

        def __init__(self, path: Path, picture: Image.Image | None, error: str = "") -> None:
            super().__init__()
            self.path, self.picture, self.error = path, picture, error

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
        self.border_title = Content(path.name) if path else None  # a name is no markup: "C:\\x\\" or "[$x]" as it is
        widget_class = image_class(getattr(self.app, "image_renderer", "auto"))
        if path is None:
            self._put(Static("no image selected"))
        elif (shut := _shut_out(path)) is not None:  # its finding says which folder to open, and how
            self._put(Static(f"{path.name}: nothing to show ({shut})", markup=False))
        elif path.is_dir():  # a finding of the whole folder (it has no images, say)
            self._put(Static(f"{path.name}/ is a folder: no picture to show", markup=False))
        elif not path.exists():  # the doctor calls it a broken link (or it went since the check): not "not an image"
            problem = file_problem(str(path)) if path.is_symlink() else None  # the doctor's words: missing, or a loop
            self._put(Static(f"{path.name}: {f'a broken link: {problem[1]}' if problem else 'no longer there'}",
                             markup=False))
        elif path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            self._put(Static(f"{path.name}: not an image file", markup=False))
        elif widget_class is None:
            self._put(Static(path.name, markup=False))
        else:
            self._put(Static(f"loading {path.name}…", markup=False))
            self._load(path)
            return
        self.workers.cancel_group(self, "preview")  # a load still running is for a path no longer shown

    def _put(self, widget: Widget) -> None:
        self.remove_children()
        self.mount(widget)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _load(self, path: Path) -> None:
        try:
            # The picture as training reads it (upright, colour profile applied), not the stored one.
            picture, error = load_rgb(path, PREVIEW_SIDE), ""
        except Exception as failure:  # noqa: BLE001 - a broken picture must not break the screen
            picture, error = None, str(failure)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(path, picture, error))

    def on_image_preview_loaded(self, message: Loaded) -> None:
        message.stop()
        if message.path != self.path:  # a load that finished after another path was chosen
            return
        if message.picture is None:
            self._put(Static(f"cannot show {message.path.name}: {message.error}", markup=False))
        else:  # loads start only where the app draws pictures: there is a widget class
            self._put(image_class(getattr(self.app, "image_renderer", "auto"))(message.picture, classes="image"))
