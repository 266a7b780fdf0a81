"""Names other DreamBooth tools give our settings (diffusers' train_dreambooth.py flags, kohya's sd-scripts
options), so that a key written from habit is pointed to its place here rather than to a near spelling
(``lr`` is closer to ``lora`` as letters than to ``learning_rate``)."""

from __future__ import annotations

OTHER_TOOLS_NAMES: dict[str, str] = {
    "lr": "optimizer.learning_rate",
    "unet_lr": "optimizer.learning_rate",
    "optimizer_type": "optimizer.name",
    "batch_size": "training.train_batch_size",
    "max_train_epochs": "training.num_train_epochs",
    "epochs": "training.num_train_epochs",
    "network_dim": "training.lora.rank",
    "lora_rank": "training.lora.rank",
    "network_alpha": "training.lora.alpha",
    "lora_alpha": "training.lora.alpha",
    "pretrained_model_name_or_path": "model.pretrained",
    "instance_data_dir": "concepts.N.instance_dir",
    "class_data_dir": "concepts.N.class_dir",
    "with_prior_preservation": "prior.enabled",
    "prior_loss_weight": "prior.loss_weight",
    "save_every_n_steps": "saving.every_n_steps",
    "checkpointing_steps": "saving.every_n_steps",
    "sample_every_n_steps": "sampling.every_n_steps",
    # kohya's and diffusers' Flux scripts
    "discrete_flow_shift": "training.flow.shift",
    "fp8_base": "model.quantize",
}

# Names that mean one of our keys only in their place (list items as N): a model's "path" is model.pretrained, a
# concept's "path" its instance_dir. Written anywhere else they are left to the nearest spelling.
PLACED_NAMES: dict[str, str] = {
    "path": "model.pretrained",
    "model_path": "model.pretrained",
    "model.path": "model.pretrained",
    "model.model": "model.pretrained",
    "model.model_path": "model.pretrained",
    "model.file": "model.pretrained",
    "model.checkpoint": "model.pretrained",
    "model.id": "model.pretrained",
    "model.repo": "model.pretrained",
    "concepts.N.path": "concepts.N.instance_dir",
    "concepts.N.dir": "concepts.N.instance_dir",
    "concepts.N.prompt": "concepts.N.instance_prompt",
    # Those scripts' --guidance_scale for training Flux.1 [dev]; elsewhere guidance_scale is ours (sampling., prior.).
    "training.guidance_scale": "training.flow.guidance",
    "training.flow.guidance_scale": "training.flow.guidance",
}

# Names of ours that more than one section holds, which another tool gives one more key of ours: each is offered with
# what it does, none picked (a top-level guidance_scale = 3.5 may be for previews, class images, or Flux's training).
ALSO_NAMED: dict[str, dict[str, str]] = {
    "guidance_scale": {"training.flow.guidance": "Flux.1 [dev]'s guidance while training, which diffusers' and kohya's "
                                                 "Flux scripts call guidance_scale"},
}

# diffusers' --weighting_scheme names the timestep sampling by two of its values and the loss weighting by the others.
TIMESTEP_SCHEMES = ("logit_normal", "mode")


def other_tools_key(name: str, value: object) -> str | None:
    """Our key for another tool's name ``name`` given ``value``; None where it is none of theirs."""
    if name == "weighting_scheme":
        return "training.flow.timestep_sampling" if value in TIMESTEP_SCHEMES else "training.flow.loss_weighting"
    return OTHER_TOOLS_NAMES.get(name)
