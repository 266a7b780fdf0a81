"""Which family a checkpoint is (Stable Diffusion, or a Flux.1 transformer), from a single file's keys and
shapes or a folder's index.

SD2.x-base (512, epsilon) and SD2.x-v (768, v-prediction) have identical keys and shapes. The
clients tell them apart by a sidecar ``.yaml`` (AUTOMATIC1111) or by a weight statistic
(ComfyUI); we use, in order: an explicit hint (sidecar or file metadata), then the statistic.
SDXL fine-tunes that predict v (NoobAI-XL v-pred and the like) carry an empty ``v_pred`` tensor,
and ``ztsnr`` when trained with zero terminal SNR: the marker ComfyUI and AUTOMATIC1111 read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.convert.flux_layout import FLUX_KEY, strip_prefix

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
SD1_TEXT = "cond_stage_model.transformer."
SD2_TEXT = "cond_stage_model.model."
SDXL_PREFIX = "conditioner.embedders."
SDXL_CLIP_TEXT = "conditioner.embedders.0.transformer."  # CLIP-L, transformers names
SDXL_OPEN_CLIP_TEXT = "conditioner.embedders.1.model."  # OpenCLIP bigG, OpenCLIP names
REFINER_TEXT = "conditioner.embedders.0.model."  # the refiner's only encoder is bigG
LABEL_EMB = "model.diffusion_model.label_emb.0.0.weight"  # SDXL's size/pooled-text embedding
# An original-layout UNet's keys without its model.diffusion_model. prefix.
BARE_UNET = ("input_blocks.", "middle_block.", "output_blocks.")
V_PRED_KEY = "v_pred"
ZERO_SNR_KEY = "ztsnr"
EMA_PREFIX = "model_ema."
# ComfyUI (supported_models.SD20.model_type): v-prediction models have a wide spread in the
# last output block's first norm bias; epsilon models stay below this.
V_PREDICTION_STD = 0.09
REFINER_ADVICE = "the SDXL refiner cannot be DreamBooth-trained; use the SDXL base model or a fine-tune of it"
# The diffusers configs of each family's architecture (ModelFamily.config_name), which a single file converts with.
CONFIGS = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class ModelFamily:
    """A detected checkpoint family; ``id`` is stable, ``description`` is for people."""

    id: str
    description: str
    supported: bool = True
    prediction_type: str = "epsilon"
    inpainting: bool = False
    resolution: int = 512  # the family's native training size, in pixels

    def __str__(self) -> str:
        return self.description

    @property
    def xl(self) -> bool:
        """Two text encoders and the original SDXL layout (``conditioner.embedders``)."""
        return self.id.startswith("sdxl")

    @property
    def flux(self) -> bool:
        """A Flux.1 transformer in Black Forest Labs' layout (engine/convert/flux_single_file.py)."""
        return self.id.startswith("flux")

    @property
    def trains_as(self) -> str:
        """The id of the model family (engine/models) that trains it once converted: sd, sdxl or flux."""
        return "flux" if self.flux else "sdxl" if self.xl else "sd"

    @property
    def config_name(self) -> str:
        """The folder under configs/ that describes this family's architecture (an SD1.x v-prediction fine-tune has
        SD1.x's: only what its scheduler predicts differs, and that is the family's)."""
        return "sdxl" if self.xl else "sd1" if self.id == "sd1-v" else self.id


SD1 = ModelFamily("sd1", "Stable Diffusion 1.x (512 px, epsilon)")
SD1_V = ModelFamily("sd1-v", "Stable Diffusion 1.x, v-prediction (512 px)", prediction_type="v_prediction")
SD1_INPAINT = ModelFamily("sd1-inpaint", "Stable Diffusion 1.x inpainting (512 px)", inpainting=True)
SD2 = ModelFamily("sd2", "Stable Diffusion 2.x base (512 px, epsilon)")
SD2_V = ModelFamily("sd2-v", "Stable Diffusion 2.x-v (768 px, v-prediction)", prediction_type="v_prediction",
                    resolution=768)
SD2_INPAINT = ModelFamily("sd2-inpaint", "Stable Diffusion 2.x inpainting (512 px)", inpainting=True)
SDXL = ModelFamily("sdxl", "Stable Diffusion XL (1024 px, epsilon)", resolution=1024)
SDXL_V = ModelFamily("sdxl-v", "Stable Diffusion XL, v-prediction (1024 px)", prediction_type="v_prediction",
                     resolution=1024)
SDXL_REFINER = ModelFamily("sdxl-refiner", f"Stable Diffusion XL refiner: {REFINER_ADVICE}", supported=False,
                           resolution=1024)
FAMILIES = {f.id: f for f in (SD1, SD1_V, SD1_INPAINT, SD2, SD2_V, SD2_INPAINT, SDXL, SDXL_V)}
# A Flux.1 transformer file holds the transformer alone; its VAE and text encoders come from elsewhere.
FLUX_DEV = ModelFamily("flux-dev", "Flux.1 [dev] transformer (1024 px, flow matching)", prediction_type="flow_matching",
                       resolution=1024)
FLUX_SCHNELL = ModelFamily("flux-schnell", "Flux.1 [schnell] transformer (1024 px, flow matching)",
                           prediction_type="flow_matching", resolution=1024)
FLUX_IN_CHANNELS = 64  # 16 latent channels packed 2×2; Fill (384) and Depth (128) take more
# Later models that share Flux.1's block names, by a weight only they have (diffusers' loader tells them apart so).
FLUX_RELATIVES = {
    "single_stream_modulation.lin.weight": "Flux.2",
    "early_stream_modulations.image.lin.weight": "a later Flux",
    "distilled_guidance_layer.in_proj.bias": "Chroma",
}
FLUX_ADVICE = "dbtui trains Flux.1 [dev] and [schnell]"


def unknown(what: str) -> ModelFamily:
    return ModelFamily("unknown", what, supported=False)


def _extra_unet_prefix(keys: Iterable[str]) -> ModelFamily | None:
    """A whole checkpoint whose UNet's keys have something before ``model.diffusion_model.`` (the prefix saved twice
    by a script): its other parts told it "a VAE on its own", or SDXL's took it for a whole SDXL model."""
    for key in keys:
        extra, found, rest = key.rpartition("model.diffusion_model.")
        if found and extra and rest.startswith(BARE_UNET):
            return unknown(f"a checkpoint whose UNet's keys have '{extra}' before 'model.diffusion_model.' ({key}), "
                           f"as no Stable Diffusion client saves it: get the original checkpoint")
    return None


def _not_sd(keys: list[str]) -> ModelFamily:
    """Name what the file is, when it is not a full SD checkpoint, so the user knows what to do."""
    if any("lora_" in k or ".lora_A." in k or ".lora.down" in k for k in keys):
        return unknown("a LoRA, not a full model: load it on top of its base model instead of converting it")
    # A diffusers UNet, transformer (Flux's: a fine-tune shared as its transformer/ file), text encoder or VAE file
    # (vae/diffusion_pytorch_model.safetensors: encoder.down_blocks.…).
    diffusers_prefixes = ("down_blocks.", "unet.", "text_model.", "encoder.layers.", "encoder.down_blocks.",
                          "decoder.up_blocks.", "transformer_blocks.", "single_transformer_blocks.")
    if any(k.startswith(diffusers_prefixes) for k in keys):
        return unknown("one component in diffusers format, not a single-file checkpoint: use its whole diffusers folder")
    if any(k.startswith(BARE_UNET) for k in keys):
        # ComfyUI's models/unet/ files are so; a whole file so saved was told "a VAE on its own" by its other parts.
        if any(k.startswith(("first_stage_model.", "cond_stage_model.", SDXL_PREFIX)) for k in keys):
            return unknown("a checkpoint whose UNet's keys lack the 'model.diffusion_model.' prefix (input_blocks.…), "
                           "as no Stable Diffusion client saves it: get the original checkpoint")
        return unknown("a UNet on its own (original layout, as ComfyUI's models/unet/ holds), not a full Stable "
                       "Diffusion checkpoint: get the full checkpoint, with its VAE and text encoders")
    if any(k.startswith(("encoder.down.", "first_stage_model.", "decoder.up.")) for k in keys):
        return unknown("a VAE on its own, not a full Stable Diffusion checkpoint")
    if any(k.startswith("model.diffusion_model.joint_blocks") for k in keys):
        return unknown("a newer model family (SD3): not supported")
    if any(k.startswith(("model.diffusion_model.double_blocks.", "double_blocks.")) for k in keys):
        return unknown(f"Flux-like, but without the attention norms every Flux.1 transformer has ({FLUX_KEY}): "
                       f"incomplete, or another model; {FLUX_ADVICE}")
    return unknown("not a Stable Diffusion checkpoint")


def _context_dim(state_dict: Mapping[str, Any]) -> int | None:
    for key, value in state_dict.items():
        if key.startswith("model.diffusion_model.") and key.endswith("attn2.to_k.weight"):
            return int(value.shape[1])
    return None


def v_bias_key(keys: Iterable[str]) -> str | None:
    """The one tensor whose values tell an SD2.x-v UNet from an SD2.x-base one: its last output block's first norm
    bias; None where the UNet has none."""
    biases = [k for k in keys
              if k.startswith("model.diffusion_model.output_blocks.") and k.endswith(".1.transformer_blocks.0.norm1.bias")]
    return max(biases, key=lambda k: int(k.split(".")[3]), default=None)


def _looks_v_prediction(state_dict: Mapping[str, Any]) -> bool:
    import torch

    key = v_bias_key(state_dict)
    return key is not None and float(torch.std(state_dict[key].float(), unbiased=False)) > V_PREDICTION_STD


def _sdxl_family(state_dict: Mapping[str, Any], prediction_type: str | None) -> ModelFamily:
    if any(k.startswith(REFINER_TEXT) for k in state_dict):
        return SDXL_REFINER
    if not any(k.startswith(SDXL_PREFIX) for k in state_dict) and _context_dim(state_dict) == 1280:
        return SDXL_REFINER  # a UNet-only refiner: bigG's width alone, where the base has 2048
    in_channels = int(state_dict[UNET_IN].shape[1]) if UNET_IN in state_dict else 4
    if in_channels == 9:
        return unknown("an SDXL inpainting model: not supported; use the SDXL base model or a fine-tune of it")
    if in_channels != 4:
        return unknown(f"an SDXL variant with {in_channels} input channels: not supported")
    # The marker is what ComfyUI goes by, so it outranks a sidecar .yaml or metadata.
    return SDXL_V if V_PRED_KEY in state_dict or prediction_type == "v_prediction" else SDXL


def is_flux_transformer(state_dict: Mapping[str, Any]) -> bool:
    """Whether the keys are a Flux-style transformer's in Black Forest Labs' layout (bare or under ComfyUI's prefix)."""
    return FLUX_KEY in state_dict or "model.diffusion_model." + FLUX_KEY in state_dict


def _flux_family(state_dict: Mapping[str, Any]) -> ModelFamily:
    transformer = strip_prefix(state_dict)
    relative = next((name for key, name in FLUX_RELATIVES.items() if key in transformer), None)
    if relative:
        return unknown(f"a {relative} transformer: not supported; {FLUX_ADVICE}")
    in_channels = int(transformer["img_in.weight"].shape[1]) if "img_in.weight" in transformer else FLUX_IN_CHANNELS
    if in_channels != FLUX_IN_CHANNELS:
        return unknown(f"a Flux.1 variant with {in_channels} input channels (Fill or Depth?): not supported; {FLUX_ADVICE}")
    return FLUX_DEV if "guidance_in.in_layer.weight" in transformer else FLUX_SCHNELL


def detect_family(state_dict: Mapping[str, Any], *, prediction_type: str | None = None) -> ModelFamily:
    """The family of an original-layout state dict; ``prediction_type`` overrides the v guess."""
    if is_flux_transformer(state_dict):
        return _flux_family(state_dict)
    keys = list(state_dict)
    if UNET_IN not in state_dict and (misplaced := _extra_unet_prefix(keys)):
        return misplaced
    sd_text = any(k.startswith("cond_stage_model.") for k in keys)
    if any(k.startswith(SDXL_PREFIX) for k in keys) or (LABEL_EMB in state_dict and not sd_text):
        return _sdxl_family(state_dict, prediction_type)
    if UNET_IN not in state_dict:
        return _not_sd(keys)
    in_channels = int(state_dict[UNET_IN].shape[1])
    if any(k.startswith(SD2_TEXT) for k in keys):
        sd2 = True
    elif any(k.startswith(SD1_TEXT) for k in keys):
        sd2 = False
    else:
        sd2 = _context_dim(state_dict) == 1024
    if in_channels == 9:
        return SD2_INPAINT if sd2 else SD1_INPAINT
    if in_channels != 4:
        return unknown(f"a Stable Diffusion variant with {in_channels} input channels (depth or upscaler?): not supported")
    if not sd2:
        # SD1.x has no statistic to tell v by; a file that says it predicts v (dbtui writes it so) is taken at its word.
        return SD1_V if prediction_type == "v_prediction" else SD1
    if prediction_type is not None:
        return SD2_V if prediction_type == "v_prediction" else SD2
    return SD2_V if _looks_v_prediction(state_dict) else SD2


def with_text_model_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """CLIP-L keys written under transformers 5 by naive exporters lack ``text_model.``; restore it."""
    def fixed(key: str) -> str:
        for prefix in (SD1_TEXT, SDXL_CLIP_TEXT):
            if key.startswith(prefix) and not key.startswith(prefix + "text_model."):
                return prefix + "text_model." + key[len(prefix):]
        return key

    return {fixed(k): v for k, v in state_dict.items()}


def header_shapes(path: Path) -> dict[str, Any]:
    """Each tensor of a .safetensors file as an object with its ``shape``, from the header alone (no gigabytes read),
    as ``detect_family`` and the part finders take a state dict."""
    from engine.support.safetensors_header import read_header

    return as_state_dict(read_header(path).shapes)


def as_state_dict(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """A header's shapes as a state dict of objects with their ``shape``, which is all ``detect_family`` reads."""
    from types import SimpleNamespace

    return {key: SimpleNamespace(shape=shape) for key, shape in shapes.items()}


PREDICTION_TYPES = ("epsilon", "v_prediction")
# The same architecture predicting the other way: what a user's --prediction-type turns a detected family into.
_OTHER_PREDICTION = {SD1.id: SD1_V, SD1_V.id: SD1, SD2.id: SD2_V, SD2_V.id: SD2, SDXL.id: SDXL_V, SDXL_V.id: SDXL}


def with_prediction(family: ModelFamily, prediction_type: str) -> ModelFamily | None:
    """``family`` predicting ``prediction_type`` (the user's word, over the file's), or None where that family
    cannot (inpainting models and Flux have one way)."""
    if family.prediction_type == prediction_type:
        return family
    other = _OTHER_PREDICTION.get(family.id)
    return other if other is not None and other.prediction_type == prediction_type else None


def prediction_guessed(family: ModelFamily, hint: str | None) -> bool:
    """Whether what ``family`` predicts was guessed from the weights: SD2.x-base and SD2.x-v files have the same
    keys and shapes, and nothing (no sidecar .yaml, no metadata) said which this is."""
    return hint is None and family.id in (SD2.id, SD2_V.id)


def folder_family(folder: Path) -> ModelFamily | None:
    """SDXL (or its refiner) for a diffusers SDXL folder, from model_index.json; None for any other folder.

    What an SDXL folder predicts is its scheduler's setting, not told here.
    """
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or not str(index.get("_class_name", "")).startswith("StableDiffusionXL"):
        return None
    # The refiner's pipeline has no first text encoder and conditions on an aesthetic score.
    if not (index.get("text_encoder") or [None])[0] or index.get("requires_aesthetics_score"):
        return SDXL_REFINER
    return SDXL


def prediction_hint(path: Path, metadata: Mapping[str, str]) -> str | None:
    """"v_prediction"/"epsilon" when the file says so: a sidecar .yaml, or safetensors metadata."""
    sidecar = path.with_suffix(".yaml")
    if sidecar.is_file():
        import yaml

        try:
            config = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
            params = config.get("model", {}).get("params", {})
        except (yaml.YAMLError, AttributeError, UnicodeDecodeError):
            params = None
        if isinstance(params, dict):
            return "v_prediction" if params.get("parameterization") == "v" else "epsilon"
    for key in ("dbtui.prediction_type", "modelspec.prediction_type"):
        value = metadata.get(key)
        if value:
            return "v_prediction" if value in ("v", "v_prediction", "v-prediction") else "epsilon"
    return None


def checkpoint_family(checkpoint: Any) -> ModelFamily:
    """The family of a read ``Checkpoint``, predicting what its sidecar .yaml or its metadata says, as the import
    converts it: what a model check shows must be what training will get."""
    return detect_family(checkpoint.state_dict, prediction_type=prediction_hint(checkpoint.path, checkpoint.metadata))


def has_ema(state_dict: Mapping[str, Any]) -> bool:
    return any(k.startswith(EMA_PREFIX) and k not in ("model_ema.decay", "model_ema.num_updates") for k in state_dict)
