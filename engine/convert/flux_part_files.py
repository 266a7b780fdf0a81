"""Flux.1's VAE, CLIP-L and T5 from single files (ComfyUI's ``ae.safetensors``, ``clip_l.safetensors``,
``t5xxl_fp16.safetensors``…) as the models of a diffusers Flux folder.

Each file is recognised by its keys (engine/convert/flux_part_keys.py), so a file given as the wrong part,
or the right part at other sizes (CLIP-G given as CLIP-L), is refused naming what it holds. A part's
architecture comes from the components' config when they have one, else from Flux.1's published
configs kept in the package (engine/memory/flux_architecture.py): no hub call. The VAE's original names
go through diffusers' own ``convert_ldm_vae_checkpoint``; the text encoders are in transformers' own
names already. fp8 weights are widened to bf16 as the transformer's are; other dtypes are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.convert.errors import CheckpointReadError, ModelMismatchError
from engine.convert.flux_fp8 import widened
from engine.convert.flux_part_keys import FoundPart, describe_file, find_parts, part_weights
from engine.convert.load_checkpoint import checked_kind


class WrongPartFileError(ModelMismatchError):
    """A part file that holds another part, or this part at sizes the Flux model does not have."""


@dataclass(frozen=True)
class FluxPartFiles:
    """Single files that replace parts of the components: any of the three may be left out."""

    vae: Path | None = None
    clip_l: Path | None = None
    t5: Path | None = None

    def given(self) -> dict[str, Path]:
        """{slot name: file} for the files given."""
        return {f.name: Path(getattr(self, f.name)).expanduser() for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class PartSlot:
    """One replaceable part: where it goes in the diffusers folder and how people name it and its file."""

    name: str  # the FluxPartFiles field
    subfolder: str
    kind: str  # flux_part_keys' kind
    label: str
    option: str  # the CLI option that takes its file
    usual_file: str

    @property
    def the_label(self) -> str:
        """The label as a sentence names the part: "the VAE", "CLIP-L"."""
        return f"the {self.label}" if self.label == "VAE" else self.label


SLOTS = {
    "vae": PartSlot("vae", "vae", "vae", "VAE", "--vae", "ae.safetensors (Black Forest Labs' VAE)"),
    "clip_l": PartSlot("clip_l", "text_encoder", "clip", "CLIP-L", "--clip-l", "clip_l.safetensors"),
    "t5": PartSlot("t5", "text_encoder_2", "t5", "T5", "--t5", "t5xxl_fp16.safetensors or t5xxl_fp8_e4m3fn.safetensors"),
}


def check_part_files(part_files: FluxPartFiles) -> None:
    """Each file given refused from its first bytes and header where it is missing or no model file, naming its option:
    a mistyped name went on to a crash as the output's size was counted, and a text file to the loader's words."""
    for name, path in part_files.given().items():
        try:
            checked_kind(path)
        except CheckpointReadError as error:
            raise CheckpointReadError(f"{SLOTS[name].option}: {error}") from None


def _known_config(slot: PartSlot) -> dict[str, Any]:
    """Flux.1's published config of the part ([dev] and [schnell] share them)."""
    from engine.memory.flux_architecture import CLIP_L, T5_XXL, VAE

    return dict({"vae": VAE, "clip_l": CLIP_L, "t5": T5_XXL}[slot.name])


def part_config(slot: PartSlot, components: Path | None) -> tuple[Any, str]:
    """(the part's config, whose it is in words): the components' when they have one, else Flux.1's."""
    own = components / slot.subfolder / "config.json" if components is not None else None
    if own is not None and own.is_file():
        config, where = json.loads(own.read_text(encoding="utf-8")), f"the components' {slot.label} ({slot.subfolder}/config.json)"
    else:
        config, where = _known_config(slot), f"Flux.1's {slot.label}"
    if slot.name == "vae":
        return config, where
    from transformers import CLIPTextConfig, T5Config

    return (CLIPTextConfig if slot.name == "clip_l" else T5Config).from_dict(config), where


def _expected(slot: PartSlot, config: Any) -> FoundPart:
    """The part the config describes, as if found in a file (for the same words in messages)."""
    if slot.name == "vae":
        return FoundPart("vae", "", "diffusers", int(config["latent_channels"]), len(config["block_out_channels"]))
    if slot.name == "clip_l":
        return FoundPart("clip", "", "transformers", config.hidden_size, config.num_hidden_layers)
    return FoundPart("t5", "", "transformers", config.d_model, config.num_layers)


def _advice(slot: PartSlot) -> str:
    return f"give {slot.option} {slot.usual_file}, or leave {slot.option} out to take {slot.the_label} from the components"


def choose_part(state_dict: dict[str, Any], slot: PartSlot, config: Any, where: str, name: str) -> FoundPart:
    """The file's part for ``slot`` (of the config's sizes, where a file holds several); raises naming what
    the file holds when it has none, or none of those sizes."""
    found = [part for part in find_parts(state_dict) if part.kind == slot.kind]
    if not found:
        holds = describe_file(state_dict)
        hint = "; a Flux transformer file is converted as the model itself" if "Flux transformer" in holds else ""
        raise WrongPartFileError(f"{name} was given as {slot.the_label} ({slot.option}) but holds {holds}: {_advice(slot)}{hint}")
    expected = _expected(slot, config)
    for part in found:
        if (part.width, part.layers) == (expected.width, expected.layers):
            return part
    raise WrongPartFileError(f"{name} holds {found[0].describe()}, but {where} is {expected.describe()}: {_advice(slot)}")


def _fill(model: Any, weights: dict[str, Any], slot: PartSlot, where: str, name: str, holds: str) -> Any:
    """``model`` (built on the meta device) holding ``weights``, which must be exactly its own."""
    expected = model.state_dict()
    wrong = [k for k, v in weights.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if wrong or missing or extra:
        details = [f"{len(keys)} {what}, e.g. {keys[0]}" for keys, what in
                   ((missing, "missing"), (extra, "not in it"), (wrong, "of other shapes")) if keys]
        raise WrongPartFileError(f"{name} holds {holds}, but its weights do not fit {where} ({'; '.join(details)}): the "
                                 f"file is incomplete or of another model; {_advice(slot)}")
    model.load_state_dict(weights, strict=True, assign=True)
    return model


def _vae(weights: dict[str, Any], part: FoundPart, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    if part.layout == "original":
        weights = convert_ldm_vae_checkpoint(weights, config)
    return AutoencoderKL.from_config(config), weights


def _clip(weights: dict[str, Any], config: Any) -> tuple[Any, dict[str, Any]]:
    from transformers import CLIPTextModel

    model = CLIPTextModel(config)
    # Older transformers nest the model under text_model.; the weights were taken from below it.
    nested = any(key.startswith("text_model.") for key in model.state_dict())
    weights = {("text_model." if nested else "") + k: v for k, v in weights.items() if not k.endswith("position_ids")}
    return model, weights


def _t5(weights: dict[str, Any], config: Any) -> tuple[Any, dict[str, Any]]:
    from transformers import T5EncoderModel

    model = T5EncoderModel(config)
    if "encoder.embed_tokens.weight" not in weights and "shared.weight" in weights:
        # The encoder reads its tokens through the shared table; files keep that table once.
        weights = {**weights, "encoder.embed_tokens.weight": weights["shared.weight"].clone()}
    return model, weights


def load_part(slot: PartSlot, state_dict: dict[str, Any], name: str, components: Path | None) -> Any:
    """The ``slot`` model from a file's weights, in the architecture of the components' config or Flux.1's."""
    from accelerate import init_empty_weights

    config, where = part_config(slot, components)
    part = choose_part(state_dict, slot, config, where, name)
    weights = widened(part_weights(state_dict, part))
    with init_empty_weights():  # no memory spent on a random init that the file's weights replace
        if slot.name == "vae":
            model, weights = _vae(weights, part, config)
        elif slot.name == "clip_l":
            model, weights = _clip(weights, config)
        else:
            model, weights = _t5(weights, config)
    model = _fill(model, weights, slot, where, name, part.describe())
    if slot.name == "t5" and getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    return model.eval()
