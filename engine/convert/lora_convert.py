"""``dbtui convert`` for LoRAs: the converter a file needs, told by the modules it names."""

from __future__ import annotations

from pathlib import Path

from engine.convert._files import Emit, check_file_output
from engine.convert.detect import detect_family
from engine.convert.errors import ConvertError, OutputExistsError
from engine.convert.flux_lora import PREFIX as FLUX_PREFIX
from engine.convert.flux_lora import flux_lora_to_kohya
from engine.convert.load_checkpoint import read_checkpoint
from engine.convert.lora_export import LORA_WEIGHTS, export_lora_kohya
from engine.convert.run_folder_hint import run_folder_hint
from engine.kohya_families import KOHYA_FAMILIES


def lora_to_kohya(lora_dir_or_file: str | Path, out_file: str | Path, *, family: str | None = None,
                  emit: Emit | None = None, overwrite: bool = True) -> Path:
    """A diffusers LoRA (folder or file) as one kohya-format file: Flux's (``transformer.`` names) in the
    original model's layout, SD1.x/SD2.x/SDXL's as the WebUIs name their UNet and text encoders. A file already
    there is replaced only with ``overwrite``. ``family`` (one of KOHYA_FAMILIES): the base model's, which the
    metadata names; None, told from the LoRA's layers where they show it."""
    source = Path(lora_dir_or_file)
    if source.is_dir() and not (source / LORA_WEIGHTS).exists() and (source / "model_index.json").exists():
        raise ConvertError(f"{source} is a whole diffusers model, not a LoRA: give a LoRA folder (one holding "
                           f"{LORA_WEIGHTS}, as a run's outputs/lora/) or that file")
    if not (source / LORA_WEIGHTS).is_file() and source.name != LORA_WEIGHTS:
        # A run folder, or a checkpoint's adapter files (lora/unet.safetensors): said as such, with what to give.
        hint = run_folder_hint(source if source.is_dir() else source.parent, "LoRA")
        if hint:
            raise ConvertError(hint)
        if source.is_dir():  # a run's outputs/, or an empty folder
            found = source / "lora"
            raise ConvertError(f"{source} holds no {LORA_WEIGHTS}: " + (
                f"the LoRA is in {found}" if (found / LORA_WEIGHTS).is_file()
                else "give a diffusers LoRA folder (one holding it, as a run's outputs/lora/) or that file"))
    if Path(out_file).suffix.lower() != ".safetensors":
        # WebUIs list LoRAs by extension, and open a .pt or .ckpt with torch.load, which safetensors bytes fail.
        raise ConvertError(f"{out_file}: a kohya LoRA is one .safetensors file; name it "
                           f"{Path(out_file).with_suffix('.safetensors').name}")
    weights = source / LORA_WEIGHTS if source.is_dir() else source
    if Path(out_file).resolve() == weights.resolve():
        raise ConvertError(f"{out_file} is the LoRA being converted: writing it would replace it; choose another name")
    keys = read_checkpoint(weights).state_dict
    whole = detect_family(keys)
    if whole.supported:
        raise ConvertError(f"{weights} is a full model checkpoint ({whole.description}), not a LoRA: WebUIs load it as "
                           "it is, and `dbtui convert to-diffusers` makes a diffusers folder of it; lora-to-kohya takes "
                           f"a LoRA folder (a run's outputs/lora/) or its {LORA_WEIGHTS}")
    check_file_output(Path(out_file))  # before the conversion, as export_single_file does
    if not overwrite and (Path(out_file).exists() or Path(out_file).is_symlink()):
        raise OutputExistsError(f"{out_file} already exists and is kept: choose another name, or add --overwrite to "
                                "replace it")
    if any(key.startswith(FLUX_PREFIX) for key in keys):
        if family is not None:  # taken in silence, it let the user believe the file was filed under that family
            raise ConvertError(f"{weights} is a Flux LoRA (its layers name Flux's transformer), written in Flux's own "
                               f"kohya layout, which a family (here '{family}', one of SD1/SD2/SDXL's) does not change: "
                               "convert it without --family")
        return flux_lora_to_kohya(source, out_file, emit=emit, overwrite=overwrite)
    if family is not None and family not in KOHYA_FAMILIES:
        raise ConvertError(f"unknown family '{family}'; choose one of: {', '.join(KOHYA_FAMILIES)}")
    told = {} if family is None else {"sdxl": family.startswith("sdxl"), "sd2": family.startswith("sd2"),
                                      "v_prediction": family.endswith("-v")}
    return export_lora_kohya(source, out_file, emit=emit, overwrite=overwrite, **told)
