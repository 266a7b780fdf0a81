"""What the Model step says: its help, the terminal command for a conversion it cannot run, and a model's native size."""

from __future__ import annotations

import re
import shlex

from engine.profile.model_source import read_source

SOURCE_HELP = ("A diffusers folder (with model_index.json), a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5, "
               "a .safetensors/.ckpt file (converted to a diffusers folder here), or builtin:tiny-sd1 for the demo.")
FLUX_PARTS_HELP = ("A Flux transformer file holds the transformer alone. Its VAE, CLIP-L and T5 come from the files you "
                   "name here (as ComfyUI has them), else from the components: a diffusers Flux folder or hub id, which "
                   "also gives the tokenizers and the scheduler (a few MB). Used when you convert here.")
# (input id, label, placeholder, the engine's name for what is typed there)
FLUX_PART_FIELDS = (
    ("model-components", "Components", "the file's own: black-forest-labs/FLUX.1-dev or -schnell", "components"),
    ("model-vae", "VAE file", "optional: ae.safetensors", "vae"),
    ("model-clip-l", "CLIP-L file", "optional: clip_l.safetensors", "clip_l"),
    ("model-t5", "T5 file", "optional: t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn.safetensors", "t5"),
)


def terminal_command(said: str, source: str, out_dir: str) -> str | None:
    """The command for a conversion the engine's message asks to run with --config or --prediction-type, which the
    wizard does not pass, with this file and folder filled in; None when it asks neither."""
    options = ["--config FOLDER"] if "--config" in said else []
    prediction = re.search(r"--prediction-type (epsilon|v_prediction)", said)
    if prediction:
        options.append(prediction.group(0))
    elif "--prediction-type" in said:
        options.append("--prediction-type epsilon|v_prediction")
    if not options:
        return None
    command = " ".join([shlex.join(["dbtui", "convert", "to-diffusers", source, out_dir]), *options])
    return f"In a terminal: {command}\nthen give that folder as the base model above."


def size_line(native: int, trains: int | None) -> str:
    """What the model's native size means for this profile."""
    if trains in (None, native):
        return f"Made for {native} px images: the dataset step checks yours at that size."
    return f"Made for {native} px images; this profile trains at {trains} px (dataset.resolution in Parameters)."


def on_disk(source: str) -> str:
    """The file ``source`` names, ``~`` and ``$VAR`` read as the profile reads them, for a command the user copies: a
    shell given '$MODELS/x.safetensors' in quotes passes it on as typed. (The engine calls read the draft themselves.)"""
    return str(read_source(source))
