"""Which LoRA keys ComfyUI would apply to a model, by the naming rules of its ``comfy/lora.py`` key maps
(``model_lora_keys_unet``, ``model_lora_keys_clip``) and ``comfy/utils.py`` (``unet_to_diffusers``,
``flux_to_diffusers``), re-expressed here over diffusers models so that a test can ask of an exported file:
does every key reach a real weight, of the shape its matrices make? A key ComfyUI has no name for is only
warned of ("lora key not loaded") and its weights are silently unused.

Written from ComfyUI's rules, not from dbtui's converters, so that it checks them rather than repeats them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# ComfyUI's CLIP map: the encoder layers' linear modules (kohya spelling with underscores).
CLIP_LAYER_MODULES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")
# The parts of one module that ComfyUI's LoRA loader reads (kohya's and diffusers/peft's spellings).
KOHYA_PARTS = ("lora_up.weight", "lora_down.weight")
PEFT_PARTS = ("lora_B.weight", "lora_A.weight")
RESNET = {"conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
ATTENTION = ("proj_in", "proj_out")
TRANSFORMER_BLOCK = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k",
                     "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")
UNET_TOP = {"conv_in": "input_blocks.0.0", "conv_out": "out.2", "time_embedding.linear_1": "time_embed.0",
            "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
            "add_embedding.linear_2": "label_emb.0.2"}

# A target: (the weight's shape, the rows a module's LoRA patches: (first, count), or None for all).
Target = tuple[tuple[int, ...], tuple[int, int] | None]


def _as_list(value: Any, count: int) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [value] * count


def unet_original_names(config: Mapping[str, Any]) -> dict[str, str]:
    """{diffusers UNet module: original (SGM) module} for the modules ComfyUI's UNet table holds."""
    levels = len(config["block_out_channels"])
    per_level = _as_list(config["layers_per_block"], levels)
    depth = _as_list(config.get("transformer_layers_per_block", 1), levels)
    names: dict[str, str] = dict(UNET_TOP)

    def resnet(diffusers: str, original: str) -> None:
        names.update({f"{diffusers}.{k}": f"{original}.{v}" for k, v in RESNET.items()})

    def attention(diffusers: str, original: str, transformers: int) -> None:
        names.update({f"{diffusers}.{k}": f"{original}.{k}" for k in ATTENTION})
        names.update({f"{diffusers}.transformer_blocks.{t}.{k}": f"{original}.transformer_blocks.{t}.{k}"
                      for t in range(transformers) for k in TRANSFORMER_BLOCK})

    n = 1
    for level, kind in enumerate(config["down_block_types"]):
        for i in range(per_level[level]):
            resnet(f"down_blocks.{level}.resnets.{i}", f"input_blocks.{n}.0")
            if "CrossAttn" in kind:
                attention(f"down_blocks.{level}.attentions.{i}", f"input_blocks.{n}.1", depth[level])
            n += 1
        if level < levels - 1:
            names[f"down_blocks.{level}.downsamplers.0.conv"] = f"input_blocks.{n}.0.op"
            n += 1
    resnet("mid_block.resnets.0", "middle_block.0")
    attention("mid_block.attentions.0", "middle_block.1", depth[-1])
    resnet("mid_block.resnets.1", "middle_block.2")
    up_depth, up_layers = list(reversed(depth)), list(reversed(per_level))
    n = 0
    for level, kind in enumerate(config["up_block_types"]):
        for i in range(up_layers[level] + 1):
            resnet(f"up_blocks.{level}.resnets.{i}", f"output_blocks.{n}.0")
            if "CrossAttn" in kind:
                attention(f"up_blocks.{level}.attentions.{i}", f"output_blocks.{n}.1", up_depth[level])
            if i == up_layers[level] and level < levels - 1:
                names[f"up_blocks.{level}.upsamplers.0.conv"] = f"output_blocks.{n}.{2 if 'CrossAttn' in kind else 1}.conv"
            n += 1
    return names


def _weights(model: Any) -> dict[str, tuple[int, ...]]:
    """{module: its weight's shape} of every module with a weight."""
    return {key[:-len(".weight")]: tuple(value.shape) for key, value in model.state_dict().items() if key.endswith(".weight")}


def _clip_targets(encoder: Any, kohya_prefixes: tuple[str, ...], diffusers_prefix: str) -> dict[str, Target]:
    weights = {k.removeprefix("text_model."): v for k, v in _weights(encoder).items()}
    out: dict[str, Target] = {}
    for layer in range(encoder.config.num_hidden_layers):
        for module in CLIP_LAYER_MODULES:
            shape = weights[f"encoder.layers.{layer}.{module}"]
            name = f"text_model.encoder.layers.{layer}.{module}"
            out.update({prefix + name.replace(".", "_"): (shape, None) for prefix in kohya_prefixes})
            out[f"{diffusers_prefix}.{name}"] = (shape, None)
    return out


def sd_targets(unet: Any, text_encoders: list[Any], *, sdxl: bool) -> dict[str, Target]:
    """{LoRA module name ComfyUI applies: target} of an SD1/SD2 or SDXL model (diffusers parts)."""
    weights = _weights(unet)
    out: dict[str, Target] = {}
    for diffusers, original in unet_original_names(unet.config).items():
        if diffusers not in weights:
            continue
        target = (weights[diffusers], None)
        out["lora_unet_" + original.replace(".", "_")] = target
        out["lora_unet_" + diffusers.replace(".", "_")] = target
        # ComfyUI's diffusers spelling of the UNet: attention projections under "processor", to_out without ".0".
        spelled = diffusers.replace(".to_", ".processor.to_")
        spelled = spelled[:-2] if spelled.endswith(".to_out.0") else spelled
        out[spelled] = out["unet." + spelled] = target
    if text_encoders:
        first = ("lora_te_", "lora_te1_")
        out.update(_clip_targets(text_encoders[0], first, "text_encoder"))
        if sdxl:
            second = text_encoders[1]
            out.update(_clip_targets(second, ("lora_te2_",), "text_encoder_2"))
            out["lora_te2_text_projection"] = (tuple(second.text_projection.weight.shape), None)
    return out


def flux_targets(transformer: Any, clip_l: Any = None) -> dict[str, Target]:
    """{LoRA module name ComfyUI applies: target} of a Flux model: kohya's ``lora_unet_<original>``, diffusers'
    ``transformer.<module>`` (q, k, v and a single block's MLP input as rows of the fused weight), CLIP-L."""
    weights = _weights(transformer)
    hidden = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    out: dict[str, Target] = {}

    def add(original: str, diffusers: dict[str, tuple[int, int] | None], shape: tuple[int, ...]) -> None:
        out["lora_unet_" + original.replace(".", "_")] = (shape, None)
        out.update({"transformer." + module: (shape, rows) for module, rows in diffusers.items()})

    def qkv(prefix: str, names: tuple[str, str, str], extra: str | None = None) -> tuple[dict[str, Any], tuple[int, ...]]:
        rows = {f"{prefix}.{name}": (place * hidden, hidden) for place, name in enumerate(names)}
        total = 3 * hidden
        if extra is not None:
            mlp = weights[f"{prefix.rsplit('.', 1)[0]}.{extra}"][0]
            rows[f"{prefix.rsplit('.', 1)[0]}.{extra}"] = (total, mlp)
            total += mlp
        return rows, (total, hidden)

    for i in range(len(transformer.transformer_blocks)):
        block, original = f"transformer_blocks.{i}", f"double_blocks.{i}"
        add(f"{original}.img_attn.qkv", *qkv(f"{block}.attn", ("to_q", "to_k", "to_v")))
        add(f"{original}.txt_attn.qkv", *qkv(f"{block}.attn", ("add_q_proj", "add_k_proj", "add_v_proj")))
        for module, name in (("attn.to_out.0", "img_attn.proj"), ("attn.to_add_out", "txt_attn.proj"),
                             ("ff.net.0.proj", "img_mlp.0"), ("ff.net.2", "img_mlp.2"), ("ff_context.net.0.proj", "txt_mlp.0"),
                             ("ff_context.net.2", "txt_mlp.2"), ("norm1.linear", "img_mod.lin"),
                             ("norm1_context.linear", "txt_mod.lin")):
            add(f"{original}.{name}", {f"{block}.{module}": None}, weights[f"{block}.{module}"])
    for i in range(len(transformer.single_transformer_blocks)):
        block, original = f"single_transformer_blocks.{i}", f"single_blocks.{i}"
        add(f"{original}.linear1", *qkv(f"{block}.attn", ("to_q", "to_k", "to_v"), extra="proj_mlp"))
        for module, name in (("proj_out", "linear2"), ("norm.linear", "modulation.lin")):
            add(f"{original}.{name}", {f"{block}.{module}": None}, weights[f"{block}.{module}"])
    top = {"x_embedder": "img_in", "context_embedder": "txt_in", "proj_out": "final_layer.linear",
           "norm_out.linear": "final_layer.adaLN_modulation.1"}
    for embedder, name in (("timestep_embedder", "time_in"), ("guidance_embedder", "guidance_in"), ("text_embedder", "vector_in")):
        top.update({f"time_text_embed.{embedder}.linear_1": f"{name}.in_layer",
                    f"time_text_embed.{embedder}.linear_2": f"{name}.out_layer"})
    for module, name in top.items():
        if module in weights:
            add(name, {module: None}, weights[module])
    if clip_l is not None:
        out.update(_clip_targets(clip_l, ("lora_te_", "lora_te1_"), "text_encoder"))
    return out


def unapplied(lora: Mapping[str, Any], targets: Mapping[str, Target]) -> list[str]:
    """What ComfyUI would not apply as written, one line each: keys of no module it names (its "lora key not
    loaded"), a module missing half its matrices, matrices or alphas of the wrong shape."""
    problems: list[str] = []
    modules: dict[str, dict[str, Any]] = {}
    for key, value in lora.items():
        part = next((p for p in (*KOHYA_PARTS, *PEFT_PARTS, "alpha") if key.endswith("." + p)), None)
        module = key[:-len(part) - 1] if part else key
        if part is None or module not in targets:
            problems.append(f"not loaded: {key}")
        else:
            modules.setdefault(module, {})[part] = value
    for module, parts in sorted(modules.items()):
        shape, rows = targets[module]
        up, down = (parts.get("lora_up.weight"), parts.get("lora_down.weight")) if "lora_up.weight" in parts or \
            "lora_down.weight" in parts else (parts.get("lora_B.weight"), parts.get("lora_A.weight"))
        if up is None or down is None:
            problems.append(f"{module}: an up or down matrix missing")
            continue
        out_rows = rows[1] if rows else shape[0]
        in_size = 1
        for size in shape[1:]:
            in_size *= size
        if up.shape[0] != out_rows or down.flatten(1).shape[1] != in_size or up.flatten(1).shape[1] != down.shape[0]:
            problems.append(f"{module}: up {tuple(up.shape)} · down {tuple(down.shape)} do not make its {out_rows}×{in_size}")
        if "alpha" in parts and parts["alpha"].numel() != 1:
            problems.append(f"{module}: alpha is not one number")
    return problems
