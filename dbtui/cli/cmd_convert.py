"""``dbtui convert``: single-file checkpoints to and from diffusers folders, and LoRAs both ways."""

from __future__ import annotations

import argparse
from pathlib import Path

from dbtui.cli.common import ExamplesFormatter, user_file, user_path
from engine.kohya_families import KOHYA_FAMILIES

IMPORT_HELP = """\
Convert a single-file Stable Diffusion checkpoint (.safetensors, or a .ckpt/.pt pickle) into a
diffusers folder that dbtui trains from. SD1.x, SD2.x (512, epsilon), SD2.x-v (768,
v-prediction), their inpainting variants, and SDXL with its fine-tunes (v-prediction ones too)
are detected from the weights; the SDXL refiner is refused (it cannot be DreamBooth-trained).
Works offline: the model configs and the CLIP tokenizers ship with dbtui.

A Flux.1 [dev] or [schnell] transformer in Black Forest Labs' layout (flux1-dev.safetensors, as
ComfyUI and Forge use it; fp8 files too) holds the transformer alone. Its VAE, CLIP-L and T5 come
from the files ComfyUI users have beside it (--vae ae.safetensors, --clip-l clip_l.safetensors,
--t5 t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn.safetensors; fp8 is widened to bf16), from the
transformer file itself where it holds them (ComfyUI's all-in-one checkpoints), or else from
--components, a diffusers Flux folder or hub id (default: the variant's own repository, from the
Hugging Face cache or downloaded without its transformer). Each file is recognised by its keys;
one of another part or size is refused, saying what it holds. The tokenizers and the scheduler
always come from --components: a folder, the hub cache, or a download of a few MB when the three
files are given (only the parts' configs and no weights are fetched for those).

An SD file saved without its VAE (a "pruned, no VAE" download) converts whole with --vae: a diffusers VAE
folder, a model folder with a vae/ part, or a hub id (stabilityai/sd-vae-ft-mse for SD1.x and SD2.x,
madebyollin/sdxl-vae-fp16-fix for SDXL), as model.vae takes it at training; given for a file that has a
VAE, it replaces that VAE.

What an SD model predicts (epsilon or v) is read from a same-named .yaml beside the file (as AUTOMATIC1111 keeps
one: model.params.parameterization "v"), else from the file's metadata (dbtui's exports record it), else, for
SD2.x, guessed from the weights, which the output says; --prediction-type settles it.

A .ckpt is read with PyTorch's weights-only loader: a file that would run code is refused.

Wherever a model folder goes (--components, --config, --tokenizer), a builtin: model does too
(builtin:tiny-flux), built on first use as in a profile.
"""

IMPORT_EPILOG = """\
examples:
  dbtui convert to-diffusers v1-5-pruned-emaonly.safetensors models/sd15
  dbtui convert to-diffusers sd_xl_base_1.0.safetensors models/sdxl
  dbtui convert to-diffusers my-sd15-finetune.ckpt models/mine \\
      --tokenizer models/sd15
  dbtui convert to-diffusers pruned-no-vae.safetensors models/mine \\
      --vae stabilityai/sd-vae-ft-mse
  dbtui convert to-diffusers flux1-dev-fp8.safetensors models/flux \\
      --components models/FLUX.1-dev
  dbtui convert to-diffusers flux1-dev.safetensors models/flux \\
      --vae ae.safetensors --clip-l clip_l.safetensors \\
      --t5 t5xxl_fp16.safetensors
"""

EXPORT_HELP = """\
Write a diffusers folder (SD1.x, SD2.x or SDXL) as one checkpoint in the original Stable
Diffusion layout, which AUTOMATIC1111's WebUI, ComfyUI, Forge and most other clients load.
SD2.x-v models also get a same-named .yaml beside the file so AUTOMATIC1111 knows they predict
v; v-prediction SDXL files carry the v_pred marker those clients read.
"""

EXPORT_EPILOG = """\
examples:
  dbtui convert to-single-file runs/zwx/outputs/diffusers zwx.safetensors --half
  dbtui convert to-single-file runs/zwx/outputs/diffusers zwx.ckpt \\
      --base-model sd15
"""

LORA_HELP = """\
Convert a diffusers-format LoRA (a folder with pytorch_lora_weights.safetensors, or that file)
into one kohya-format .safetensors for AUTOMATIC1111's WebUI, ComfyUI and Forge. SD1.x, SD2.x,
SDXL and Flux.1 LoRAs are told apart by the modules they name; a Flux LoRA is written in the
original model's layout (lora_unet_double_blocks_0_img_attn_qkv…, q, k and v fused).
"""

LORA_BACK_HELP = """\
Convert a Flux.1 LoRA in kohya sd-scripts' or ComfyUI's layout (lora_unet_double_blocks_…,
diffusion_model.double_blocks.…) into a diffusers LoRA folder, which FluxPipeline.load_lora_weights
and the profile's outputs use. diffusers' own reader splits the fused modules and folds each
alpha into the weights.
"""

LORA_EPILOG = """\
examples:
  dbtui convert lora-to-kohya runs/zwx/outputs/lora zwx-lora.safetensors
  dbtui convert lora-to-kohya \\
      runs/zwx/outputs/lora/pytorch_lora_weights.safetensors \\
      zwx-lora.safetensors --overwrite
"""

LORA_BACK_EPILOG = """\
examples:
  dbtui convert lora-to-diffusers my-flux-lora.safetensors loras/my-flux-lora
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert checkpoints between single files and diffusers folders",
        description="Convert Stable Diffusion (SD1.x, SD2.x, SDXL) and Flux.1 checkpoints and LoRAs between single "
                    "files and diffusers folders. Run a sub-command with --help for details.",
    )
    commands = parser.add_subparsers(dest="convert_command", metavar="SUBCOMMAND", required=True)
    raw = ExamplesFormatter

    to_diffusers = commands.add_parser(
        "to-diffusers", help="single file (.safetensors/.ckpt) → diffusers folder",
        description=IMPORT_HELP, epilog=IMPORT_EPILOG, formatter_class=raw,
    )
    to_diffusers.add_argument("input", type=user_file, help="the .safetensors or .ckpt file")
    to_diffusers.add_argument("output", type=user_file, help="the diffusers folder to create (must not exist or be empty)")
    to_diffusers.add_argument("--tokenizer", type=user_file, metavar="PATH",
                              help="a CLIP tokenizer folder, or a diffusers model folder that has tokenizer/ "
                                   "(default: the CLIP tokenizer that ships with dbtui)")
    to_diffusers.add_argument("--config", type=user_file, metavar="DIR",
                              help="a diffusers folder whose configs describe a non-standard architecture")
    to_diffusers.add_argument("--ema", action="store_true", help="use the EMA weights stored in the file")
    to_diffusers.add_argument("--prediction-type", choices=["epsilon", "v_prediction"],
                              help="what the model predicts, over what the file says or its weights suggest "
                                   "(SD2.x-base and SD2.x-v files look alike: the output says when it is a guess)")
    to_diffusers.add_argument("--components", type=user_path, metavar="DIR_OR_HUB_ID",
                              help="for a Flux transformer file: the diffusers Flux folder, hub id or builtin: model "
                                   "whose VAE, text encoders and tokenizers go with it (default: black-forest-labs/FLUX.1-dev or "
                                   "-schnell, as the file is); with --vae, --clip-l and --t5 it gives only the "
                                   "tokenizers and the scheduler")
    to_diffusers.add_argument("--vae", type=user_file, metavar="FILE_OR_DIR",
                              help="the VAE: for an SD file, a diffusers VAE folder, a model folder with vae/ or a hub "
                                   "id, as model.vae takes it (it gives a file saved without a VAE one, and replaces "
                                   "the VAE of one with it); for a Flux transformer file, Black Forest Labs' "
                                   "ae.safetensors (or a diffusers VAE's weights)")
    part_files = to_diffusers.add_argument_group(
        "Flux part files", "for a Flux transformer file: single files that replace the components' parts\n"
                           "(the architecture comes from the components' config, else Flux.1's own)")
    part_files.add_argument("--clip-l", type=user_file, metavar="FILE", help="CLIP-L: ComfyUI's clip_l.safetensors")
    part_files.add_argument("--t5", type=user_file, metavar="FILE",
                            help="T5-XXL: t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn(_scaled).safetensors")
    to_diffusers.set_defaults(handler=_to_diffusers)

    to_single = commands.add_parser(
        "to-single-file", help="diffusers folder → single file for AUTOMATIC1111/ComfyUI",
        description=EXPORT_HELP, epilog=EXPORT_EPILOG, formatter_class=raw,
    )
    to_single.add_argument("input", type=user_file, help="the diffusers model folder")
    to_single.add_argument("output", type=user_file, help="the file to write (.safetensors or .ckpt)")
    to_single.add_argument("--half", action="store_true", help="store fp16 weights: half the size, same images")
    to_single.add_argument("--format", choices=["safetensors", "ckpt"],
                           help="file format (default: from OUTPUT's extension, else safetensors)")
    to_single.add_argument("--base-model", metavar="NAME", help="record the base model's name in the file's metadata")
    to_single.add_argument("--profile", type=user_file, metavar="TOML", help="record this training profile in the file's metadata")
    to_single.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (it is kept otherwise)")
    to_single.set_defaults(handler=_to_single_file)

    lora = commands.add_parser(
        "lora-to-kohya", help="diffusers LoRA → kohya LoRA for AUTOMATIC1111/ComfyUI",
        description=LORA_HELP, epilog=LORA_EPILOG, formatter_class=raw,
    )
    lora.add_argument("input", type=user_file, help="a diffusers LoRA folder or its .safetensors file")
    lora.add_argument("output", type=user_file, help="the kohya-format .safetensors to write")
    lora.add_argument("--family", choices=KOHYA_FAMILIES,
                      help="the base model's family, which the file's metadata names (WebUIs hide a LoRA of another "
                           "version; -v: it predicts v). Default: as RUN/outputs/base_model.json records it for a "
                           "run's LoRA, else told from the layers, which a warning says where they cannot. Not for a Flux "
                           "LoRA, whose kohya layout is its own")
    lora.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (it is kept otherwise)")
    lora.set_defaults(handler=_lora_to_kohya)

    back = commands.add_parser(
        "lora-to-diffusers", help="kohya/ComfyUI Flux LoRA → diffusers LoRA folder",
        description=LORA_BACK_HELP, epilog=LORA_BACK_EPILOG, formatter_class=raw,
    )
    back.add_argument("input", type=user_file, help="the kohya- or ComfyUI-format Flux LoRA .safetensors")
    back.add_argument("output", type=user_file, help="the diffusers LoRA folder to create (must not exist or be empty)")
    back.set_defaults(handler=_lora_to_diffusers)


def _run(work) -> int:
    from dbtui.console import PhaseDisplay
    from engine.runs.library_noise import hide_library_progress_bars

    hide_library_progress_bars()
    with PhaseDisplay() as display:
        result = work(display)
    print(f"wrote {result}")
    return 0


def _to_diffusers(args: argparse.Namespace) -> int:
    from engine.convert import check_new_folder, import_single_file
    from engine.convert.flux_part_files import FluxPartFiles
    from engine.convert.load_checkpoint import checked_kind

    check_new_folder(args.output)  # before "reading …": a taken or unwritable output is said at once
    if not args.input.is_dir():  # a folder is told what it is by the conversion (a run's, a diffusers model)
        # From its first bytes and header: a text file, a picture or a cut-off download is refused in a second, before
        # the conversion imports torch and diffusers (11-20 s).
        checked_kind(args.input)
    _check_part_files(args)
    print(f"reading {args.input} …", flush=True)
    part_files = FluxPartFiles(vae=args.vae, clip_l=args.clip_l, t5=args.t5)
    return _run(lambda emit: import_single_file(
        args.input, args.output, tokenizer=args.tokenizer, use_ema=args.ema, emit=emit, config=args.config,
        components=args.components, part_files=part_files, prediction_type=args.prediction_type,
    ))


def _check_part_files(args: argparse.Namespace) -> None:
    """The files given as --vae, --clip-l and --t5 checked as the main file is, before the heavy imports, each refusal
    naming its option; a --vae folder or hub id (an SD file's VAE) is left to the conversion."""
    from engine.convert.flux_part_files import FluxPartFiles, check_part_files
    from engine.profile.model_source import model_kind

    vae = args.vae if args.vae is not None and model_kind(str(args.vae)) == "single-file" else None
    check_part_files(FluxPartFiles(vae=vae, clip_l=args.clip_l, t5=args.t5))


def _to_single_file(args: argparse.Namespace) -> int:
    from engine.convert import ConvertError, export_single_file

    suffix = args.output.suffix.lower()
    if not args.format and suffix not in (".safetensors", ".ckpt", ".pt") and not args.output.is_dir():
        raise ConvertError(f"{args.output}: name the file .safetensors or .ckpt, or give --format, so that the format is plain")
    named = {".safetensors": "safetensors", ".ckpt": "ckpt", ".pt": "ckpt"}.get(suffix)
    if args.format and named and named != args.format:
        # Loaders go by the extension: a pickle named .safetensors fails in every UI that opens it.
        raise ConvertError(f"{args.output}: the name says {named}, --format says {args.format}; name it "
                           f"{args.output.with_suffix('.' + args.format).name}, or drop --format")
    _keep_existing(args.output, args.overwrite)
    fmt = args.format or ("ckpt" if suffix in (".ckpt", ".pt") else "safetensors")
    metadata = {}
    if args.base_model:
        metadata["dbtui.base_model"] = args.base_model
    if args.profile:
        from engine.profile import read_profile_text

        metadata["dbtui.profile"] = read_profile_text(args.profile)  # TOML (a README or a model file is said as such)
    return _run(lambda emit: export_single_file(
        args.input, args.output, half=args.half, fmt=fmt, metadata=metadata, emit=emit, overwrite=args.overwrite,
    ))


def _keep_existing(output: Path, overwrite: bool) -> None:
    """A file the user already has is replaced only when they say so (the input's own files never: the converters
    refuse those)."""
    from engine.convert import ConvertError

    if output.is_file() and not overwrite:
        raise ConvertError(f"{output} already exists and is kept: choose another name, or add --overwrite to replace it")


def _lora_to_kohya(args: argparse.Namespace) -> int:
    from engine.convert import lora_to_kohya
    from engine.runs.base_identity import recorded_family

    _keep_existing(args.output, args.overwrite)
    family = args.family or recorded_family(args.input)
    return _run(lambda emit: lora_to_kohya(args.input, args.output, family=family, emit=emit, overwrite=args.overwrite))


def _lora_to_diffusers(args: argparse.Namespace) -> int:
    from engine.convert import ConvertError, flux_lora_to_diffusers

    if args.output.suffix.lower() in (".safetensors", ".ckpt"):
        raise ConvertError(f"{args.output}: a diffusers LoRA is a folder (holding pytorch_lora_weights.safetensors); "
                           f"give a folder name, e.g. {args.output.with_suffix('')}")
    return _run(lambda emit: flux_lora_to_diffusers(args.input, args.output, emit=emit))
