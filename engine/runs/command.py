"""The trainer process: how it is started, alone or through ``accelerate launch``."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.profile import Profile
from engine.profile.schema import LaunchSection
from engine.training.accelerator import check_sharding_installed


def through_accelerate(launch: LaunchSection) -> bool:
    """Whether the run needs ``accelerate launch``: several processes or machines, a config file to read, or
    options the user gave it (left out on one process, they were ignored without a word)."""
    return (launch.num_processes > 1 or launch.num_machines > 1 or launch.config_file is not None
            or bool(launch.extra_args))


def worker_command(profile: Profile, run_dir: Path, extra: list[str] = ()) -> list[str]:
    """The command that trains ``run_dir/profile.toml`` on this machine; several processes go through accelerate."""
    worker = ["-m", "engine.runs.worker", str(run_dir), *extra]
    launch = profile.launch
    if not through_accelerate(launch):
        return [sys.executable, *worker]
    check_sharding_installed(profile)
    # torch elastic's logs (one folder per process) go into the run folder, one per machine (the folder may be on a
    # disk the machines share): by default each run left a torchelastic_* folder in the temporary folder.
    logs = ["--log_dir", str(elastic_logs(run_dir, launch.machine_rank))]
    return [sys.executable, "-m", "accelerate.commands.launch", *accelerate_args(profile), *logs, *launch.extra_args,
            *worker]


def elastic_logs(run_dir: Path, machine_rank: int) -> Path:
    """Where ``accelerate launch`` (torch elastic) keeps this machine's logs of the run in ``run_dir``."""
    return run_dir / "logs" / f"elastic-machine-{machine_rank}"


def accelerate_args(profile: Profile) -> list[str]:
    """``accelerate launch`` options for the profile. Options given here win over a config file's,
    which fills in the rest (accelerate reads ``--config_file``, else its default config if any)."""
    launch = profile.launch
    args = ["--config_file", launch.config_file] if launch.config_file else []
    args += ["--num_processes", str(launch.num_processes), "--num_machines", str(launch.num_machines),
             "--machine_rank", str(launch.machine_rank), "--dynamo_backend", "no"]
    if launch.main_process_ip:
        args += ["--main_process_ip", launch.main_process_ip]
    if launch.main_process_port is not None:
        args += ["--main_process_port", str(launch.main_process_port)]
    if launch.sharding == "fsdp":
        args += _fsdp_args()
    elif launch.sharding == "deepspeed":
        args += _deepspeed_args(profile)
    elif launch.num_processes > 1:
        # Without GPUs accelerate turns this into several CPU processes over gloo.
        args += ["--multi_gpu"]
    return args


def _fsdp_args() -> list[str]:
    # FSDP2 shards every block the model names as unsplittable (diffusers' _no_split_modules: the
    # UNet's transformer and ResNet blocks, Flux's transformer blocks). A full state dict is gathered
    # on the main process for checkpoints, so machine 0's disk alone holds the weights and optimizer.
    # Every process loads the pretrained weights itself, so none need syncing from the main one.
    return ["--use_fsdp", "--fsdp_version", "2", "--fsdp_reshard_after_forward", "true",
            "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP", "--fsdp_state_dict_type", "FULL_STATE_DICT",
            "--fsdp_sync_module_states", "false", "--fsdp_cpu_ram_efficient_loading", "false"]


def _deepspeed_args(profile: Profile) -> list[str]:
    # ZeRO stage 2 splits gradients and optimizer state but keeps whole weights on every GPU, so
    # previews and exports read the weights as they are. The trainer never accumulates under
    # DeepSpeed (the profile rules refuse it). "standard": each machine starts its own processes,
    # as without DeepSpeed, rather than machine 0 reaching the others over ssh (pdsh).
    clip = profile.optimizer.max_grad_norm
    return ["--use_deepspeed", "--zero_stage", "2", "--gradient_accumulation_steps", "1",
            "--gradient_clipping", str(clip), "--deepspeed_multinode_launcher", "standard"]
