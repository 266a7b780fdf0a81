"""Model conversion: single-file SD1.x/SD2.x/SDXL checkpoints to and from diffusers folders, and LoRA export.

Everything here works offline and imports torch/diffusers only when a function runs.
"""

from engine.convert.detect import FAMILIES, ModelFamily, detect_family
from engine.convert.errors import (
    CheckpointReadError,
    ConvertError,
    ModelMismatchError,
    NotEnoughDiskError,
    OutputExistsError,
    TokenizerNotFoundError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)
from engine.convert.load_checkpoint import Checkpoint, read_checkpoint
from engine.convert.lora_export import export_lora_diffusers, export_lora_kohya
from engine.convert.to_diffusers import import_single_file
from engine.convert.to_single_file import export_single_file

__all__ = [
    "FAMILIES",
    "Checkpoint",
    "CheckpointReadError",
    "ConvertError",
    "ModelFamily",
    "ModelMismatchError",
    "NotEnoughDiskError",
    "OutputExistsError",
    "TokenizerNotFoundError",
    "UnsafeCheckpointError",
    "UnsupportedModelError",
    "detect_family",
    "export_lora_diffusers",
    "export_lora_kohya",
    "export_single_file",
    "import_single_file",
    "read_checkpoint",
]
