"""A random-weight Flux.1 pipeline built offline in seconds: ``builtin:tiny-flux``.

It has what makes Flux differ from Stable Diffusion, at the tiny models' scale: a 16-channel VAE
with a shift factor, latents packed 2×2 into a token sequence for a transformer of double- and
single-stream blocks with rotary position ids and a guidance embedding (as [dev] has), CLIP-L's
pooled output and T5's hidden states as the prompt. It trains at the demo's 64 px.

CLIP tokenizes with the real CLIP vocabulary shipped with dbtui (engine/builtin/clip_tokenizer.py).
T5's SentencePiece vocabulary is not shipped, so a small one is built here with the ``tokenizers``
library: a Unigram model over printable characters plus T5's special tokens, with T5's pad, end
and unknown ids (0, 1, 2) and its end-of-sequence template.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from engine.convert.older_readers import write_for_older_readers

RESOLUTION = 64
TEXT_WIDTH = 32  # CLIP's hidden size (its pooled output) and T5's d_model: Flux's pooled and joint widths
T5_MAX_LENGTH = 512  # as Flux.1's own T5 tokenizer
SPECIAL = ("<pad>", "</s>", "<unk>")


def t5_tokenizer() -> Any:
    """A ``T5TokenizerFast`` over characters: pad 0, ``</s>`` 1 (appended to every text), unknown 2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [(token, 0.0) for token in SPECIAL]
    pieces += [("▁", -1.0)] + [(char, -2.0) for char in string.printable.strip()]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           model_max_length=T5_MAX_LENGTH, extra_ids=0)


def build_flux_pipeline(seed: int = 0) -> Any:
    """A tiny random-weight ``FluxPipeline``; the same seed gives the same weights.

    The global random state is left as it was: a run that builds the model on first use must draw
    the same LoRA initialisation and noise as a run that finds it built.
    """
    import torch

    with torch.random.fork_rng(devices=[]):  # built on the CPU
        torch.manual_seed(seed)
        return _build()


def _build() -> Any:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from engine.builtin.clip_tokenizer import clip_tokenizer

    tokenizer = clip_tokenizer()
    tokenizer_2 = t5_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=TEXT_WIDTH, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, hidden_act="quick_gelu",
        max_position_embeddings=77, vocab_size=len(tokenizer), projection_dim=TEXT_WIDTH,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer_2), d_model=TEXT_WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0,
    ))
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=2, attention_head_dim=16, num_attention_heads=4,
        joint_attention_dim=TEXT_WIDTH, pooled_projection_dim=TEXT_WIDTH, guidance_embeds=True, axes_dims_rope=(4, 6, 6),
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=16, layers_per_block=1, sample_size=RESOLUTION,
        scaling_factor=0.3611, shift_factor=0.1159,  # Flux.1's VAE factors
        use_quant_conv=False, use_post_quant_conv=False,
    )
    # Flux.1 [dev]'s scheduler settings: the shift grows with the image's token count.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    return FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer)


def save_tiny_flux(folder: Path, seed: int = 0) -> Path:
    """Save the tiny Flux as a diffusers folder; returns the folder."""
    build_flux_pipeline(seed).save_pretrained(folder)
    write_for_older_readers(folder)
    return Path(folder)
