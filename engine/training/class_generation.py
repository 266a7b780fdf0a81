"""The base model generating class images, with as little on the device at once as it can.

The class prompts are encoded first, with the text encoders on the device; the encoders leave it
before the denoiser (quantized when the profile trains on a quantized base) and the VAE arrive, and
the pipeline, which has no text encoders, gets the prompts as embeddings. So the moment holds the
encoders or the denoiser, never both: for Flux, T5 (9 GB in bf16) or the NF4 transformer (7 GB),
where together they would not fit a 16 GB card. The prompts are encoded by the family, as previews
are, at ``clip_skip`` 1: the base model as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.data.images import unused_class_images
from engine.events import Warning
from engine.models.family import Components, TextEmbeddings, embeddings_to, guidance_for, stack_embeddings, zero_embeddings
from engine.profile.concept_warnings import warned_before_class_images
from engine.training.class_images import ClassRequest, ensure_class_images, missing_count, settings_of
from engine.training.class_images_moved import reused_sets
from engine.training.distributed import made_by_the_main_process, main_process_says
from engine.training.model_weights import WeightDigests, model_identity
from engine.training.precision import without_conv_benchmark
from engine.training.trainable import quantize_frozen_base, trained_text_encoders, vae_dtype, weights_trained


class ClassImageModel:
    """``pipeline`` (what ``ensure_class_images`` calls when images are missing) and ``prompt_kwargs`` (the
    embeddings of one request, for the pipeline); ``release`` takes the denoiser off the GPU again."""

    def __init__(self, components: Components, profile: Any, device: torch.device, dtype: torch.dtype, prompts: list[str]):
        self.components = components
        self.profile = profile
        self.device = device
        self.dtype = dtype
        self.prompts = sorted(set(prompts))
        self.embeddings: dict[str, TextEmbeddings] = {}

    @torch.no_grad()
    def _encode_prompts(self) -> None:
        """Every prompt's embeddings onto the host, with the encoders on the device for that moment only.

        Parts whose weights train keep their weights as loaded (a cast to half precision and back would
        round the weights the whole run starts from); the autocast around generation gives the maths.
        """
        components = self.components
        _, train_text_encoder = weights_trained(self.profile.training)
        trained = trained_text_encoders(components.family, self.profile.training)
        places = [next(encoder.parameters()).device for encoder in components.text_encoders]
        for index, encoder in enumerate(components.text_encoders):
            encoder.to(self.device, None if train_text_encoder and index in trained else self.dtype)
        encoded = components.family.encode_text(components.tokenizers, list(components.text_encoders), self.prompts, 1, self.device)
        self.embeddings = {prompt: {name: tensor[i].cpu() for name, tensor in encoded.items()} for i, prompt in enumerate(self.prompts)}
        for encoder, place in zip(components.text_encoders, places):
            encoder.to(place)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def pipeline(self) -> Any:
        from engine.training.sampling import sampling_pipeline

        self._encode_prompts()
        components = self.components
        train_unet, _ = weights_trained(self.profile.training)
        quantize_frozen_base(components, self.profile, self.device, self.dtype)
        components.unet.to(self.device, None if train_unet else self.dtype)
        components.vae.to(self.device, vae_dtype(self.dtype))
        return sampling_pipeline(components, components.unet, None)

    def prompt_kwargs(self, prompt: str, negative_prompt: str | None, count: int) -> dict[str, Any]:
        def batch(text: str) -> TextEmbeddings:
            return embeddings_to(stack_embeddings([self.embeddings[text]] * count), self.device)

        positive = batch(prompt)
        negative = zero_embeddings(positive) if negative_prompt is None else batch(negative_prompt)
        return self.components.family.prompt_kwargs(positive, negative)

    def release(self) -> None:
        """The denoiser back on the host (bitsandbytes' quantized layers move as they are), so the caching
        pass after this has the device to the encoders."""
        if self.device.type == "cuda":
            self.components.unet.to("cpu")
            torch.cuda.empty_cache()


def run_class_images(trainer: Any) -> dict[int, list[Path]] | None:
    """Each concept's class images for ``trainer``'s run: the main process generates what is missing while the
    others wait, then every process reads the result the same way. None when the run was stopped meanwhile."""
    profile = trainer.profile
    # A negative prompt the family does not read makes the same images: it does not make a fresh set of them.
    family = trainer.components.family
    takes_negative = family.takes_negative_prompt
    zeroes = family.zeroes_empty_negative(trainer.model_folder)
    requests = [
        ClassRequest(i, folder, c.class_prompt or "", c.class_negative_prompt if takes_negative else "", c.num_class_images,
                     zero_negative=zeroes and takes_negative and not c.class_negative_prompt)
        for i, (c, folder) in enumerate(zip(profile.concepts, trainer.class_dirs))
    ]
    kwargs: dict[str, Any] = dict(
        resolution=profile.dataset.resolution,
        seed=profile.training.seed,
        steps=profile.prior.steps,
        guidance=guidance_for(trainer.components.family, profile.prior.guidance_scale),
    )
    weights = WeightDigests(profile.model, trainer.model_folder, trainer.emit)

    def decide() -> tuple[Any, list[ClassRequest], list[str]]:
        identity = model_identity(profile.model, trainer.model_folder)
        return (identity, *reused_sets(requests, model=identity, any_negative=not takes_negative, weights=weights,
                                       **kwargs))

    if trainer.accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        # Machine 0's: its class images are the run's (shared, or copied to the other machines), another machine's
        # copy of the model has its own file times, and it hashes the model where that tells, once for all.
        decided = broadcast_object_list([decide() if trainer.accelerator.is_main_process else None])[0]
    else:
        decided = decide()
    kwargs["model"], requests, reused = decided
    base = ClassImageModel(trainer.components, profile, trainer.device, trainer.dtype,
                           [r.prompt for r in requests] + [r.negative_prompt for r in requests if not r.zero_negative])
    if trainer.accelerator.is_main_process:
        for problem in warned_before_class_images(profile):  # about what generating costs: said before it
            trainer.emit(Warning(message=f"{problem.key} {problem.message}"))
        for message in reused:
            trainer.emit(Warning(message=message))
        concept_dirs = (*trainer.instance_dirs, *(folder for folder in trainer.class_dirs if folder))
        for message in unused_class_image_warnings(requests, concept_dirs, **kwargs):
            trainer.emit(Warning(message=message))
        # Without cuDNN's benchmark: its search held 129 GB of an H200 for a moment here, which the fit test's
        # peak then reported as what the run needs.
        with trainer.half_precision(), without_conv_benchmark():
            ensure_class_images(
                requests,
                make_pipeline=base.pipeline,
                prompt_kwargs=base.prompt_kwargs,
                family=trainer.components.family,
                batch_size=profile.prior.sample_batch_size,
                emit=trainer.emit,
                should_stop=trainer.cancel.is_set,
                weights=weights,
                **kwargs,
            )
        base.release()
    trainer.accelerator.wait_for_everyone()
    if main_process_says(trainer.accelerator, trainer.cancel.is_set()):
        return None
    return ensure_class_images(requests, make_pipeline=made_by_the_main_process("class images"), prompt_kwargs=base.prompt_kwargs,
                               batch_size=1, generates=False, **kwargs)


def unused_class_image_warnings(requests: list[ClassRequest], concept_dirs: tuple[Path, ...] = (),
                                **settings: Any) -> list[str]:
    """Each class folder's pictures that are not used as class images (links out of it, sub-folders' images other than
    ``concept_dirs``, the concepts' instance and class folders): without a word, the run generated class images in place of the user's own. ``settings``:
    ``settings_of``'s, which tell whether any are generated."""
    said: list[str] = []
    # A folder concepts share, however each spells it: said once.
    for place in dict.fromkeys(request.folder.resolve() for request in requests):
        sharing = [request for request in requests if request.folder.resolve() == place]
        folder = sharing[0].folder
        count, why = unused_class_images(folder, concept_dirs)
        if not count:
            continue
        missing = max(missing_count(request, settings_of(request, **settings)) for request in sharing)
        what = ("class images are generated in their place" if missing else
                f"none are needed: the class images already there make the {max(r.count for r in sharing)} wanted")
        said.append(f"concepts.{sharing[0].concept}.class_dir: {count} picture(s) in '{folder}' are not used as "
                    f"class images{why}; {what}")
    return said
