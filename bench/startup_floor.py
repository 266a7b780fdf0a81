"""The least start-up any trainer built on diffusers' UNet pays: a fresh process that imports torch,
accelerate and diffusers' UNet2DConditionModel, loads the model's UNet and scheduler, and takes one
AdamW step on random latents and text embeddings of the model's shapes (a re-run reads those from
its cache). Nothing else: no profile, events, tokenizer, text encoder or VAE.

    python bench/startup_floor.py --model medium

Prints `key: value` lines: seconds from process start to the imports' end, to the model loaded, and
to the first step's end, plus peak RSS. `bench_train.py --rerun` and `compare_reference.py --rerun`
put dbtui's and diffusers' re-run start-up beside it (README, "Re-run start-up and memory").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import MODELS, high_water_kb, seconds_since_process_start  # noqa: E402
from engine.support.deferred_import import defer_seldom_used  # noqa: E402

# As the trainer's process does (engine/runs/in_process.py): diffusers imports bitsandbytes and scipy.stats, which few
# runs use.
defer_seldom_used()

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from diffusers import DDPMScheduler, UNet2DConditionModel  # noqa: E402


def main() -> int:
    imported = seconds_since_process_start()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["medium", "sd15", "tiny"], default="medium", help="an SD1 model of bench_train.py's")
    args = parser.parse_args()
    from engine.builtin import resolve_model

    folder = resolve_model(MODELS[args.model][0])
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
    loaded = seconds_since_process_start()

    optimizer = torch.optim.AdamW(unet.parameters(), lr=5e-6)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    unet.train()
    config = accelerator.unwrap_model(unet).config
    # An instance and a class image per batch, as a prior-preservation step, at the model's own size
    # (bench_train.py's resolution).
    latents = torch.randn(2, config.in_channels, config.sample_size, config.sample_size, device=accelerator.device)
    text = torch.randn(2, 77, config.cross_attention_dim, device=accelerator.device)
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (2,), device=accelerator.device)
    prediction = unet(scheduler.add_noise(latents, noise, timesteps), timesteps, text).sample
    accelerator.backward(torch.nn.functional.mse_loss(prediction, noise))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    print(f"imports_s: {imported:.3f}")
    print(f"model_loaded_s: {loaded:.3f}")
    print(f"start_to_first_step_s: {seconds_since_process_start():.3f}")
    print(f"peak_rss_mb: {high_water_kb() / 1024:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
