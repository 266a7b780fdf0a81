"""The profile: every choice a user makes, as one frozen, typed, versioned model.

Sections mirror the wizard's steps. Each field's docstring is the help text the wizard shows.
Cross-field rules live in ``rules.py`` so that they can be reported together with field errors.
The sections on how the model trains are in ``training_sections.py``, what every section shares in ``section.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from engine.profile.fields import CaptionExtension, FolderPath, ModelSource, PathText, PromptText, RunName
from engine.profile.section import MAX_INTERVAL, Section, Seed
from engine.profile.training_sections import FlowSection, LoraSection, OptimizerSection, PrecisionSection, TrainingSection
from engine.support.multiples import nearest_text

SCHEMA_VERSION = 1

CaptionMode = Literal[
    "instance_prompt", "caption_file", "caption_file_then_prompt", "prompt_then_caption_file", "file_name"
]
ExportFormat = Literal["diffusers", "safetensors", "ckpt", "lora_diffusers", "lora_kohya"]
# SD1.x/SD2.x/SDXL's single-file layouts (engine/convert/to_single_file.py), which Flux refuses (engine/models/flux.py).
SINGLE_FILE_EXPORTS = ("safetensors", "ckpt")


class ModelSection(Section):
    pretrained: ModelSource
    """Base model to train: a diffusers folder, a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5, a .safetensors/.ckpt file, or builtin:tiny-sd1 for the demo."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of the base model."""
    vae: PathText | None = None
    """Use this VAE (folder or hub id) instead of the model's own."""
    tokenizer: PathText | None = None
    """Use this tokenizer folder instead of the model's own."""
    quantize: Literal["nf4", "int8", "fp8"] | None = None
    """Keep the frozen denoiser (Flux's transformer, or a UNet) in 4-bit NF4 or 8-bit int8 with bitsandbytes, or stored in fp8 (e4m3, upcast layer by layer to the weight dtype; any GPU), while a LoRA trains on it in full precision: about a quarter (nf4) or half (int8, fp8) of its memory. Empty keeps it in the weight dtype. Only with training.method = "lora"."""


class ConceptSection(Section):
    instance_dir: FolderPath
    """Folder with the images of your subject (like every path here: no NUL character, at most 4096 characters)."""
    instance_prompt: PromptText
    """Prompt naming your subject with its identifier, e.g. 'photo of zwx dog' (like every prompt: at most 1000 characters, since CLIP reads only 77 tokens)."""
    caption_mode: CaptionMode = "instance_prompt"
    """Where each image's caption comes from: the instance prompt, its .txt file, both, or its file name."""
    class_dir: PathText | None = None
    """Folder with (or for generated) images of the general class, for prior preservation."""
    class_prompt: PromptText | None = None
    """Prompt for the general class without the identifier, e.g. 'photo of a dog'."""
    class_negative_prompt: PromptText = ""
    """Negative prompt used when generating class images."""
    num_class_images: int = Field(100, ge=0, le=100_000)
    """How many class images this concept needs; missing ones are generated."""


def concept_label(index: int) -> str:
    """How messages name the concept at ``index`` of ``[[concepts]]``: counted from 1 as the wizard's Dataset step
    does, with its key path (``concepts.1``) as ``--set`` and the other messages' keys count, from 0."""
    return f"concept {index + 1} (concepts.{index})"


def _multiple_of_8(value: int) -> int:
    # Checked after the bounds (pydantic's multiple_of comes before them): 99999 is told as too big, not as not a multiple.
    if value % 8:
        raise ValueError(f"must be a multiple of 8, not {value}: {nearest_text(value, 8)}")
    return value


class DatasetSection(Section):
    resolution: Annotated[int, Field(ge=32, le=4096), AfterValidator(_multiple_of_8)] = 512
    """Training resolution in pixels (SD1.x/SD2-base: 512, SD2-768: 768)."""
    center_crop: bool = True
    """Crop images at the centre (on) or at a random place each epoch (off)."""
    hflip: bool = False
    """Randomly mirror images; do not use for asymmetric subjects (text, parted hair)."""
    caption_extension: CaptionExtension = ".txt"
    """File extension of per-image caption files (.txt, .caption; the dot may be left out)."""
    bucketing: bool = False
    """Aspect-ratio bucketing: train non-square images without cropping them square."""
    buckets: list[tuple[int, int]] | None = None
    """Bucket sizes (width, height); empty means the standard list scaled to the resolution."""
    cache_latents: bool = True
    """Encode every image with the VAE once before training instead of at every step."""


class PriorSection(Section):
    enabled: bool = False
    """Prior preservation: also train on class images so the class is not forgotten (how many: concepts' num_class_images)."""
    loss_weight: float = Field(1.0, ge=0.0, le=10.0)
    """Weight of the class-image loss against the instance loss."""
    sample_batch_size: int = Field(4, ge=1, le=64)
    """Batch size when generating class images."""
    steps: int = Field(25, ge=1, le=1000)
    """Sampling steps for generated class images."""
    guidance_scale: float | None = Field(None, ge=0.0, le=30.0)
    """Guidance for generated class images; empty: the model family's usual value (7.5; Flux.1 [dev] 3.5)."""


class SamplingSection(Section):
    prompts: list[PromptText] = []
    """Prompts for preview images; empty means each concept's instance prompt."""
    negative_prompt: PromptText = ""
    """Negative prompt for preview images."""
    num_images: int = Field(2, ge=0, le=64)
    """Images per prompt at each sampling point (0 turns samples off)."""
    steps: int = Field(25, ge=1, le=1000)
    """Sampling steps for preview images."""
    guidance_scale: float | None = Field(None, ge=0.0, le=30.0)
    """Guidance for preview images; empty: the model family's usual value (7.5; Flux.1 [dev] 3.5)."""
    seed: Seed = 1234
    """Seed for preview images, fixed so previews are comparable across steps."""
    every_n_steps: int | None = Field(None, ge=1, le=MAX_INTERVAL)
    """Sample every N steps; empty means at every checkpoint and at the end."""


class EvaluationSection(Section):
    enabled: bool = False
    """Score every preview round (DreamBooth's DINO, CLIP-I and CLIP-T) and name the best step; off by default because the scorers are a download (about 700 MB) and each round adds image generation."""
    prompts: list[PromptText] = []
    """Evaluation prompts; empty means, per concept, its instance prompt, three recontextualisations ('a zwx dog on the beach') and its class prompt."""
    images_per_prompt: int = Field(2, ge=1, le=16)
    """Images generated per evaluation prompt at each round (one fixed seed each)."""
    seed: Seed = 2024
    """First seed of the evaluation images; image i uses seed + i at every round, so rounds compare alike."""
    clip_model: PathText = "openai/clip-vit-base-patch32"
    """CLIP for CLIP-I and CLIP-T: a hub id (downloaded once to the Hugging Face cache), a local folder, or builtin:tiny-clip."""
    dino_model: PathText = "facebook/dino-vits16"
    """DINO (a ViT such as facebook/dino-vits16, or DINOv2) for subject fidelity: a hub id, a local folder, or builtin:tiny-dino."""
    prompt_fidelity_tolerance: float = Field(0.02, ge=0.0, le=2.0)
    """The best step is the one with the highest subject fidelity whose CLIP-T stays within this much of the base model's."""


class SavingSection(Section):
    output_dir: PathText = "runs"
    """Folder that holds one run folder per run."""
    every_n_steps: int | None = Field(500, ge=1, le=MAX_INTERVAL)
    """Save a resumable checkpoint every N steps before the last, whose model the outputs hold; empty saves none (the final model is saved either way)."""
    keep_last_n: int = Field(2, ge=1, le=1000)
    """Keep this many latest checkpoints; older ones are deleted, except in a scored run the best step's (the best-ranked scored step that has one), kept besides."""
    unet_half: bool = False
    """Save the trained UNet (the denoiser) in fp16, half the size; the single files (safetensors, ckpt) are written all in fp16, VAE and text encoders too, as WebUIs' fp16 checkpoints are."""
    export: list[ExportFormat] = Field(["diffusers"], min_length=1)
    """Final outputs: diffusers folder, single-file safetensors/ckpt, LoRA (diffusers or kohya)."""

    @field_validator("export")
    @classmethod
    def _each_format_once(cls, formats: list[str]) -> list[str]:
        # A format listed twice (a hand-edited list) is one output, written once.
        return list(dict.fromkeys(formats))


class LoggingSection(Section):
    logger: Literal["none", "tensorboard", "wandb"] = "none"
    """Experiment tracker, through accelerate (must be installed)."""
    every_n_steps: int = Field(10, ge=1, le=MAX_INTERVAL)
    """Log a progress line every N steps in plain (non-terminal) output."""


class LaunchSection(Section):
    """How many processes train, on how many machines, and how the weights are split among them.

    ``num_processes`` counts every process of the run on all machines together, as accelerate's
    ``--num_processes`` does (2 machines × 4 GPUs: 8); each machine starts num_processes /
    num_machines of them. Every machine runs the same profile, told apart by ``machine_rank``
    (``dbtui run p.toml --set launch.machine_rank=1`` on the second).
    """

    num_processes: int = Field(1, ge=1, le=4096)
    """Processes (one per GPU) on all machines together; above 1 the run goes through accelerate launch."""
    num_machines: int = Field(1, ge=1, le=512)
    """Machines the run spans; each starts num_processes / num_machines processes."""
    machine_rank: int = Field(0, ge=0)
    """This machine's number, 0 to num_machines - 1; machine 0 writes the events, checkpoints and outputs."""
    main_process_ip: str | None = None
    """Address of machine 0 that the other machines can reach (needed with several machines)."""
    main_process_port: int | None = Field(None, ge=1, le=65535)
    """Port on machine 0 where the processes meet (open it between the machines); empty: 29500."""
    config_file: PathText | None = None
    """An accelerate config file (from `accelerate config`) for what the profile does not set; the profile's keys win."""
    sharding: Literal["none", "fsdp", "deepspeed"] = "none"
    """Split a full fine-tune's weights, gradients and optimizer state across the GPUs: fsdp (PyTorch FSDP2), deepspeed (ZeRO stage 2, needs deepspeed), or none (each GPU holds everything)."""
    extra_args: list[str] = []
    """Extra arguments for accelerate launch, e.g. ["--num_cpu_threads_per_process", "8"]."""


class Profile(Section):
    """A whole DreamBooth training setup."""

    schema_version: Literal[1] = SCHEMA_VERSION
    """Version of this file's layout; migrated automatically when it changes."""
    name: RunName = "dreambooth"
    """Run name: the run folder is <saving.output_dir>/<name>."""
    model: ModelSection
    """Base model (required: only the demo may use the built-in tiny one)."""
    concepts: list[ConceptSection] = Field(min_length=1)
    """What to teach: one or more subjects, each with its own images and prompts."""
    dataset: DatasetSection = DatasetSection()
    """How images become training data."""
    prior: PriorSection = PriorSection()
    """Prior preservation with class images."""
    training: TrainingSection = TrainingSection()
    """Method and length of training."""
    optimizer: OptimizerSection = OptimizerSection()
    """Optimizer and learning rate schedule."""
    precision: PrecisionSection = PrecisionSection()
    """Precision and memory savers."""
    sampling: SamplingSection = SamplingSection()
    """Preview images during training."""
    evaluation: EvaluationSection = EvaluationSection()
    """Scores of every preview round, and the best step by them."""
    saving: SavingSection = SavingSection()
    """Checkpoints and final outputs."""
    logging: LoggingSection = LoggingSection()
    """Trackers and log lines."""
    launch: LaunchSection = LaunchSection()
    """Processes and accelerate launch options."""

    @model_validator(mode="before")
    @classmethod
    def _model_section_present(cls, data: object) -> object:
        # Without [model], report the one key it needs (model.pretrained), not the section.
        if isinstance(data, dict) and "model" not in data:
            return {**data, "model": {}}
        return data

    @property
    def lora(self) -> LoraSection:
        """The LoRA options in force (defaults when the section is absent)."""
        return self.training.lora or LoraSection()

    @property
    def flow(self) -> FlowSection:
        """The flow-matching options in force (defaults when the section is absent)."""
        return self.training.flow or FlowSection()

    @property
    def learning_rate(self) -> float:
        """The learning rate in force, resolving the per-method default."""
        if self.optimizer.learning_rate is not None:
            return self.optimizer.learning_rate
        if self.optimizer.name == "prodigy":
            return 1.0
        return 1e-4 if self.training.method == "lora" else 2e-6
