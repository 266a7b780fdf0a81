"""Flux.1 [dev] and [schnell] as the meter builds them: their published configs, written here.

The hub repositories are gated (a licence to accept, then a token), and the meter must answer on
any machine, offline, before anything is downloaded: so the configs of
black-forest-labs/FLUX.1-dev and FLUX.1-schnell (transformer/, text_encoder/, text_encoder_2/,
vae/, scheduler/) are kept here, defaults left out. [schnell] differs only in having no guidance
embedding and a fixed, unshifted schedule.
"""

from __future__ import annotations


from engine.memory.architecture import Architecture, Parts

# transformer/config.json is FluxTransformer2DModel's defaults (19 double-stream and 38 single-stream
# blocks of 24 heads × 128, T5-XXL's 4096-wide joint attention, CLIP-L's 768 pooled) but guidance_embeds.
# text_encoder/config.json: CLIP ViT-L/14's text tower.
CLIP_L = {
    "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
    "max_position_embeddings": 77, "vocab_size": 49408, "projection_dim": 768, "hidden_act": "quick_gelu",
    "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
}
# text_encoder_2/config.json: the encoder of T5 v1.1 XXL (4.8 B parameters).
T5_XXL = {
    "d_model": 4096, "d_ff": 10240, "d_kv": 64, "num_heads": 64, "num_layers": 24, "vocab_size": 32128,
    "feed_forward_proj": "gated-gelu", "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
    "tie_word_embeddings": False, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
}
# vae/config.json: SD's 8× VAE widened to 16 latent channels, without the quant convolutions.
VAE = {
    "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4, "latent_channels": 16, "layers_per_block": 2, "sample_size": 1024,
    "scaling_factor": 0.3611, "shift_factor": 0.1159, "use_quant_conv": False, "use_post_quant_conv": False,
}
# scheduler/scheduler_config.json: [dev] shifts σ by the image's token count; [schnell] does not shift.
SCHEDULERS = {
    "dev": {"shift": 3.0, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15,
            "base_image_seq_len": 256, "max_image_seq_len": 4096},
    "schnell": {"shift": 1.0, "use_dynamic_shifting": False},
}
HUB_IDS = {"black-forest-labs/FLUX.1-dev": "dev", "black-forest-labs/FLUX.1-schnell": "schnell"}


def flux_architecture(variant: str) -> Architecture:
    """Flux.1 ``variant`` ("dev" or "schnell") at its real size, built from the configs above."""
    from engine.models.registry import family_named

    def build() -> Parts:
        from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
        from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

        return Parts(
            unet=FluxTransformer2DModel(guidance_embeds=variant == "dev"),
            vae=AutoencoderKL(**VAE),
            text_encoders=[CLIPTextModel(CLIPTextConfig(**CLIP_L)), T5EncoderModel(T5Config(**T5_XXL))],
            scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULERS[variant]),
        )

    return Architecture(f"Flux.1 [{variant}] architecture", family_named("flux"), build)
