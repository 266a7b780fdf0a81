"""Model conversion: single-file SD1.x/SD2.x/SDXL checkpoints to and from diffusers folders, Flux.1
transformer files into diffusers folders, and LoRA files in both directions.

Everything here works offline and imports torch/diffusers only when a function runs.
"""

from engine.convert._files import check_new_folder
from engine.convert.detect import FAMILIES, ModelFamily, checkpoint_family, detect_family, is_flux_transformer
from engine.convert.errors import (
    CheckpointReadError,
    ConvertError,
    IntegerWeightsError,
    ModelMismatchError,
    NotEnoughDiskError,
    OutputExistsError,
    TokenizerNotFoundError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)
from engine.convert.flux_lora import flux_lora_to_kohya
from engine.convert.flux_lora_import import flux_lora_to_diffusers
from engine.convert.load_checkpoint import Checkpoint, read_checkpoint
from engine.convert.lora_convert import lora_to_kohya
from engine.convert.lora_export import export_lora_diffusers, export_lora_kohya
from engine.convert.to_diffusers import import_single_file
from engine.convert.to_single_file import export_single_file

__all__ = [
    "FAMILIES",
    "Checkpoint",
    "CheckpointReadError",
    "ConvertError",
    "IntegerWeightsError",
    "ModelFamily",
    "ModelMismatchError",
    "NotEnoughDiskError",
    "OutputExistsError",
    "TokenizerNotFoundError",
    "UnsafeCheckpointError",
    "UnsupportedModelError",
    "check_new_folder",
    "checkpoint_family",
    "detect_family",
    "export_lora_diffusers",
    "export_lora_kohya",
    "export_single_file",
    "flux_lora_to_diffusers",
    "flux_lora_to_kohya",
    "import_single_file",
    "is_flux_transformer",
    "lora_to_kohya",
    "read_checkpoint",
]
