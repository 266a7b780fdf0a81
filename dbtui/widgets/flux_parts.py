"""The Model step's Flux parts: where a Flux transformer file's VAE, CLIP-L and T5 (and the rest) come from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

from dbtui.widgets.ordered_keys import OrderedInput

# Three rows at 80 columns: with the fields under it, the Model step shows Convert without scrolling at 80x24.
FLUX_PARTS_HELP = ("A Flux transformer file holds the transformer alone: its VAE, CLIP-L and T5 come from the files named "
                   "here (as ComfyUI has them), else from Components, a diffusers Flux folder or hub id. Used by Convert.")
# (input id, label, placeholder, the engine's name for what is typed there)
FLUX_PART_FIELDS = (
    ("model-components", "Components", "the file's own: black-forest-labs/FLUX.1-dev or -schnell", "components"),
    ("model-vae", "VAE file", "optional: ae.safetensors", "vae"),
    ("model-clip-l", "CLIP-L file", "optional: clip_l.safetensors", "clip_l"),
    ("model-t5", "T5 file", "optional: t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn.safetensors", "t5"),
)


class FluxParts(Vertical):
    """The help and a labelled field per part; the Model step's model.tcss lays them out."""

    def __init__(self) -> None:
        super().__init__(id="model-flux-parts")

    def compose(self) -> ComposeResult:
        yield Static(FLUX_PARTS_HELP, classes="help")
        for input_id, label, placeholder, _ in FLUX_PART_FIELDS:
            with Horizontal(classes="model-part-row"):
                yield Static(label, classes="model-part-label")
                yield OrderedInput(placeholder=placeholder, id=input_id, compact=True)

    def sources(self) -> dict:
        """The engine's keywords for where a Flux file's other parts come from, as typed (blank: the default)."""
        typed = {name: self.query_one(f"#{input_id}", Input).value.strip() for input_id, _, _, name in FLUX_PART_FIELDS}
        components = typed.pop("components")
        return {"components": components or None, "part_files": {name: value for name, value in typed.items() if value}}

    def named(self) -> bool:
        """Whether any part is typed: a profile names the file alone, so only Convert uses them."""
        parts = self.sources()
        return bool(parts["components"] or parts["part_files"])
