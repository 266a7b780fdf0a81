"""Cross-field rules of [launch]: machines and their ranks, and what sharding can train with."""

from __future__ import annotations

import re

from engine.profile.problems import Problem
from engine.profile.schema import LaunchSection, Profile


def machine_problems(profile: Profile) -> list[Problem]:
    """How many machines and processes, and which is this one."""
    launch = profile.launch
    machines = launch.num_machines
    problems: list[Problem] = []
    if launch.machine_rank >= machines:
        problems.append(Problem("launch.machine_rank", f"is {launch.machine_rank}, but with num_machines = {machines} the machines "
                                                       f"are numbered 0 to {machines - 1}; give each machine its own number"))
    if launch.num_processes < machines:
        problems.append(Problem("launch.num_processes", f"counts the processes of all machines together, so it needs at least one per "
                                                        f"machine: set it to num_machines ({machines}) or more"))
    elif launch.num_processes % machines:
        per_machine = -(-launch.num_processes // machines)
        problems.append(Problem("launch.num_processes", f"counts the processes of all machines together and each machine starts "
                                                        f"num_processes / num_machines of them, so it must be a multiple of "
                                                        f"num_machines ({machines}), e.g. {per_machine * machines}"))
    if machines > 1 and not launch.main_process_ip:
        problems.append(Problem("launch.main_process_ip", "several machines need the address of machine 0 that the others can reach, "
                                                          'e.g. main_process_ip = "10.0.0.1"'))
    if launch.main_process_ip and (wrong := _address_problem(launch.main_process_ip)):
        problems.append(Problem("launch.main_process_ip", wrong))
    for option, key in _given_options(launch):
        problems.append(Problem("launch.extra_args", f"{option} is what launch.{key} sets, which dbtui passes to accelerate "
                                                     f"too (and reads itself: which machine this is, where they meet): "
                                                     f"remove it and set {key} instead"))
    backend = _rendezvous_backend(launch.extra_args)
    if machines > 1 and backend not in (None, "static"):
        problems.append(Problem("launch.extra_args", f"--rdzv_backend {backend} numbers the machines as they arrive, so machine 0's "
                                                     "part of the run (its events, checkpoints and outputs) may land on another "
                                                     "machine; remove it: dbtui numbers the machines by launch.machine_rank"))
    return problems


def _address_problem(address: str) -> str | None:
    """Why ``address`` is no host name or IP address (torch retried resolving "10.0.0.1:29500" forever), else None."""
    host = address.split("://", 1)[-1].split("/", 1)[0]
    # "[fe80::1]:29500" and "10.0.0.1:29500"; "fe80::1" alone is an IPv6 address.
    with_port = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:]+):(\d+)", host)
    if with_port:
        return (f'names a port too: write main_process_ip = "{with_port.group(1) or with_port.group(3)}" and '
                f"main_process_port = {with_port.group(2) or with_port.group(4)}")
    if host != address or not host or any(c.isspace() for c in address):
        example = host.strip() if host.strip() and not any(c.isspace() for c in host.strip()) else "10.0.0.1"
        return f'is not a host name or IP address: write the address alone, e.g. main_process_ip = "{example}"'
    return None


def _given_options(launch: LaunchSection) -> list[tuple[str, str]]:
    """(option as written, its [launch] key) for each option of extra_args that dbtui gives accelerate launch from
    [launch] too: given after dbtui's, it won, so accelerate ran another machine or process count than the one dbtui
    wrote its files and messages for. The address, port and config file are dbtui's only where the profile sets them."""
    passed = {"num_processes", "num_machines", "machine_rank"} | {
        key for key in ("main_process_ip", "main_process_port", "config_file") if getattr(launch, key) is not None}
    given = []
    for arg in launch.extra_args:
        name = arg.partition("=")[0]
        key = name.removeprefix("--").replace("-", "_")
        if name.startswith("--") and key in passed:
            given.append((name, key))
    return given


def _rendezvous_backend(extra_args: list[str]) -> str | None:
    """The --rdzv_backend that ``extra_args`` give accelerate launch (which reads - for _ in its options), if any."""
    backend = None
    for at, arg in enumerate(extra_args):
        name, equals, value = arg.partition("=")
        if name.replace("-", "_") == "__rdzv_backend":
            backend = value if equals else next(iter(extra_args[at + 1:at + 2]), None)
    return backend


def sharding_problems(profile: Profile) -> list[Problem]:
    """What launch.sharding can train with."""
    sharding = profile.launch.sharding
    if sharding == "none":
        return []
    key = "launch.sharding"
    off = 'or sharding = "none"'
    problems: list[Problem] = []
    if profile.training.method != "full":
        problems.append(Problem(key, "splits a full fine-tune's weights; a LoRA's trained weights are small, so every GPU holds them "
                                     'whole: set sharding = "none" (several processes still share the batches)'))
    if profile.launch.num_processes < 2:
        problems.append(Problem(key, f"splits the weights among processes, and one process has no one to share with: set "
                                     f"launch.num_processes = 2 or more {off}"))
    if profile.training.train_text_encoder:
        problems.append(Problem(key, f"splits the UNet alone; set training.train_text_encoder = false {off}"))
    if profile.optimizer.fused_backward:
        problems.append(Problem(key, f"hands each process a part of every weight, and the fused step updates whole weights in the "
                                     f"backward pass: set optimizer.fused_backward = false {off}"))
    if profile.precision.bf16_weights:
        problems.append(Problem(key, f"hands the optimizer a part of each weight (DeepSpeed keeps fp32 copies of the parts), and "
                                     f"bf16_weights rounds each whole weight itself: set precision.bf16_weights = false {off}"))
    if sharding == "fsdp" and (profile.sampling.num_images or profile.evaluation.enabled):
        problems.append(Problem(key, "previews and scores are drawn by machine 0's main process alone, while under FSDP each process "
                                     "holds only a shard of the UNet: set sampling.num_images = 0 and evaluation.enabled = false "
                                     '(sample a checkpoint afterwards with `dbtui export`), or sharding = "deepspeed"'))
    if sharding == "deepspeed" and profile.training.gradient_accumulation_steps > 1:
        # accelerate's backward under DeepSpeed runs the engine's step too, at every call: the
        # trainer's own accumulation (several backward calls, one step) cannot happen there.
        problems.append(Problem(key, "DeepSpeed steps at every backward pass, so the trainer cannot accumulate batches: set "
                                     'training.gradient_accumulation_steps = 1 (a larger train_batch_size instead) or sharding = "fsdp"'))
    return problems
