"""Beyond one machine: [launch]'s machines and sharding, the accelerate command, and a two-machine run
on one host (one process each over loopback, gloo)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

from engine.profile import ProfileError, validate_data
from engine.runs.command import accelerate_args, worker_command
from engine.runs.sinks import read_events
from engine.profile_checks import check_profile
from engine.training.accelerator import ShardingUnavailableError, make_accelerator
from engine.training.distributed import MEETING_TIMEOUT
from tests.free_ports import free_port
from tests.runs_helpers import ROOT, env
from tests.training_helpers import merge, tiny_profile

TWO_MACHINES = {"num_processes": 2, "num_machines": 2, "main_process_ip": "127.0.0.1"}
FULL_SHARDED = {"training": {"method": "full"}, "launch": {"num_processes": 2, "sharding": "fsdp"}}


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def problems(tmp_path: Path, **sections) -> list[tuple[str, str]]:
    """(key, message) of every problem the profile has; none when it validates."""
    data = merge(tiny_profile(tmp_path).model_dump(mode="json", exclude_none=True), sections)
    try:
        validate_data(data)
    except ProfileError as error:
        return [(p.key, p.message) for p in error.problems]
    return []


# -- the profile -----------------------------------------------------------------------------------

def test_a_two_machine_launch_section_validates(tmp_path: Path) -> None:
    assert problems(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1, "main_process_port": 29555}) == []
    assert problems(tmp_path, launch={**TWO_MACHINES, "extra_args": ["--rdzv_backend=static"]}) == []
    assert problems(tmp_path, launch={"extra_args": ["--rdzv_backend", "c10d"]}) == []  # one machine: no numbering
    assert problems(tmp_path, launch={**TWO_MACHINES, "main_process_ip": "fe80::1"}) == []  # IPv6, no port
    assert problems(tmp_path, launch={**TWO_MACHINES, "main_process_ip": "gpu-a.cluster.local"}) == []
    assert problems(tmp_path, launch={"extra_args": ["--num_cpu_threads_per_process", "8", "--same_network"]}) == []
    assert problems(tmp_path, launch={"num_processes": 2, "extra_args": ["--main_process_port", "29517"]}) == []  # no port set


@pytest.mark.parametrize(("launch", "key", "words"), [
    ({**TWO_MACHINES, "machine_rank": 2}, "launch.machine_rank", "numbered 0 to 1"),
    ({"num_machines": 2, "num_processes": 1, "main_process_ip": "10.0.0.1"}, "launch.num_processes", "at least one per machine"),
    ({"num_machines": 2, "num_processes": 3, "main_process_ip": "10.0.0.1"}, "launch.num_processes", "multiple of num_machines (2), e.g. 4"),
    ({"num_machines": 2, "num_processes": 2}, "launch.main_process_ip", "address of machine 0"),
    # c10d numbered the machines as they arrived: machine 1 could act as machine 0, in its own run folder.
    ({**TWO_MACHINES, "extra_args": ["--rdzv_backend", "c10d"]}, "launch.extra_args", "--rdzv_backend c10d numbers the machines"),
    ({**TWO_MACHINES, "extra_args": ["--rdzv-backend=etcd"]}, "launch.extra_args", "remove it: dbtui numbers the machines"),
    # torch retried resolving "10.0.0.1:29500" as a host name forever: the run hung, saying only a warning a minute.
    ({**TWO_MACHINES, "main_process_ip": "10.0.0.1:29500"}, "launch.main_process_ip",
     'main_process_ip = "10.0.0.1" and main_process_port = 29500'),
    ({**TWO_MACHINES, "main_process_ip": "[fe80::1]:29501"}, "launch.main_process_ip", 'main_process_ip = "fe80::1" and'),
    ({**TWO_MACHINES, "main_process_ip": "http://gpu-a/"}, "launch.main_process_ip", 'the address alone, e.g. main_process_ip = "gpu-a"'),
    ({**TWO_MACHINES, "main_process_ip": "10.0.0.1 "}, "launch.main_process_ip", "is not a host name or IP address"),
    # Given after dbtui's own options, it won: accelerate ran machine 1 where dbtui wrote machine 0's files.
    ({**TWO_MACHINES, "extra_args": ["--machine_rank", "1"]}, "launch.extra_args", "remove it and set machine_rank instead"),
    ({"extra_args": ["--num-processes=4"]}, "launch.extra_args", "--num-processes is what launch.num_processes sets"),
    ({**TWO_MACHINES, "main_process_port": 29500, "extra_args": ["--main_process_port=29501"]}, "launch.extra_args",
     "set main_process_port instead"),
])
def test_machine_settings_that_cannot_meet_are_named(tmp_path: Path, launch: dict, key: str, words: str) -> None:
    found = problems(tmp_path, launch=launch)
    assert [k for k, _ in found] == [key]
    assert words in found[0][1]


@pytest.mark.parametrize(("sections", "words"), [
    ({"training": {"method": "lora"}}, "LoRA"),
    ({"launch": {"num_processes": 1}}, "num_processes = 2 or more"),
    ({"training": {"train_text_encoder": True}}, "train_text_encoder = false"),
    ({"optimizer": {"fused_backward": True}, "precision": {"mixed_precision": "bf16"}}, "fused_backward = false"),
    ({"precision": {"bf16_weights": True, "mixed_precision": "bf16"}}, "bf16_weights = false"),
    ({"sampling": {"num_images": 2}}, "sampling.num_images = 0"),
    ({"evaluation": {"enabled": True}}, "evaluation.enabled = false"),
    ({"launch": {"sharding": "deepspeed"}, "training": {"gradient_accumulation_steps": 2}}, "gradient_accumulation_steps = 1"),
])
def test_sharding_refuses_what_it_cannot_train_with(tmp_path: Path, sections: dict, words: str) -> None:
    found = problems(tmp_path, **merge(FULL_SHARDED, sections))
    assert any(key == "launch.sharding" and words in message for key, message in found), found


def test_sharding_accepts_a_plain_full_fine_tune(tmp_path: Path) -> None:
    assert problems(tmp_path, **FULL_SHARDED) == []
    assert problems(tmp_path, **merge(FULL_SHARDED, {"launch": {"sharding": "deepspeed"}})) == []


# -- the command -----------------------------------------------------------------------------------

def test_the_accelerate_command_carries_every_machine_setting(tmp_path: Path) -> None:
    config = tmp_path / "accelerate.yaml"
    profile = tiny_profile(tmp_path, launch={**TWO_MACHINES, "machine_rank": 1, "main_process_port": 29555,
                                             "config_file": str(config), "extra_args": ["--rdzv_backend", "static"]})
    command = worker_command(profile, tmp_path / "run")
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert option(command, "--config_file") == str(config)
    assert [option(command, f"--{name}") for name in ("num_processes", "num_machines", "machine_rank")] == ["2", "2", "1"]
    assert (option(command, "--main_process_ip"), option(command, "--main_process_port")) == ("127.0.0.1", "29555")
    assert "--multi_gpu" in command
    # torch elastic's logs go into the run folder, one folder per machine, not into a torchelastic_* temporary folder
    assert option(command, "--log_dir") == str(tmp_path / "run" / "logs" / "elastic-machine-1")
    # extra_args come after dbtui's own options, then the worker
    assert command[-5:] == ["--rdzv_backend", "static", "-m", "engine.runs.worker", str(tmp_path / "run")]


def test_one_process_with_a_config_file_or_extra_args_still_goes_through_accelerate(tmp_path: Path) -> None:
    alone = worker_command(tiny_profile(tmp_path), tmp_path / "run")
    assert alone == [sys.executable, "-m", "engine.runs.worker", str(tmp_path / "run")]
    with_config = worker_command(tiny_profile(tmp_path, launch={"config_file": "cfg.yaml"}), tmp_path / "run")
    assert "accelerate.commands.launch" in with_config and "--multi_gpu" not in with_config
    threads = ["--num_cpu_threads_per_process", "8"]
    with_args = worker_command(tiny_profile(tmp_path, launch={"extra_args": threads}), tmp_path / "run")
    assert "accelerate.commands.launch" in with_args and "--multi_gpu" not in with_args
    at = with_args.index(threads[0])
    assert with_args[at:at + 2] == threads and at < with_args.index("engine.runs.worker")


def test_fsdp_and_deepspeed_are_asked_of_accelerate_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsdp = accelerate_args(tiny_profile(tmp_path, **FULL_SHARDED))
    assert "--use_fsdp" in fsdp and "--multi_gpu" not in fsdp
    assert option(fsdp, "--fsdp_version") == "2" and option(fsdp, "--fsdp_state_dict_type") == "FULL_STATE_DICT"
    deepspeed = tiny_profile(tmp_path, **merge(FULL_SHARDED, {"launch": {"sharding": "deepspeed"}, "optimizer": {"max_grad_norm": 0.5}}))
    args = accelerate_args(deepspeed)
    assert "--use_deepspeed" in args and option(args, "--zero_stage") == "2" and option(args, "--gradient_clipping") == "0.5"
    assert option(args, "--deepspeed_multinode_launcher") == "standard"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real_find_spec(name, *a))
    with pytest.raises(ShardingUnavailableError, match="pip install deepspeed"):
        worker_command(deepspeed, tmp_path / "run")
    # `dbtui validate` and the wizard's review said nothing of it: only the run refused.
    missing = check_profile(deepspeed).missing_here
    assert [p.key for p in missing] == ["launch.sharding"] and "pip install deepspeed" in missing[0].message
    assert check_profile(tiny_profile(tmp_path, **FULL_SHARDED)).missing_here == []


def test_sharding_is_refused_where_accelerate_would_not_shard(tmp_path: Path) -> None:
    """In one process (no accelerate launch) accelerate sets up no sharding: say so, never train unsharded."""
    profile = tiny_profile(tmp_path, **FULL_SHARDED)
    with pytest.raises(ShardingUnavailableError, match='sharding = "fsdp", but accelerate set up NO training'):
        make_accelerator(profile, "no", tmp_path)


def test_an_accumulation_setting_left_in_the_shell_does_not_rescale_the_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """accelerate reads ACCELERATE_GRADIENT_ACCUMULATION_STEPS (another tool's `accelerate config` may leave it) and
    divides each loss by it in backward(); the trainer accumulates by itself, so every loss would be a quarter."""
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4")
    accelerator = make_accelerator(tiny_profile(tmp_path), "no", tmp_path)
    assert accelerator.gradient_accumulation_steps == 1
    weight = torch.ones(1, requires_grad=True)
    accelerator.backward((weight * 2).sum())
    assert weight.grad.item() == 2.0


# Under accelerate launch with dbtui's FSDP options, on this CPU machine: the FSDP plugin accelerate
# builds from them, the distributed type it chose, and what make_accelerator says.
FSDP_ON_CPU = """
import json, sys
from pathlib import Path
import torch
from accelerate.utils import FullyShardedDataParallelPlugin
from engine.profile import load_profile
from engine.training.accelerator import ShardingUnavailableError, make_accelerator
from engine.training.distributed import leave_gloo_group, process_state
plugin = FullyShardedDataParallelPlugin()
state = process_state()
try:
    make_accelerator(load_profile(sys.argv[1]), "no", Path(sys.argv[2]))
    error = None
except ShardingUnavailableError as refused:
    error = str(refused)
Path(sys.argv[2], f"rank-{state.process_index}.json").write_text(json.dumps({
    "fsdp_version": plugin.fsdp_version, "reshard_after_forward": plugin.reshard_after_forward,
    "state_dict_type": plugin.state_dict_type.name, "auto_wrap_policy": getattr(plugin.auto_wrap_policy, "__name__", None),
    "distributed_type": state.distributed_type.value, "num_processes": state.num_processes, "error": error,
    "timeout_s": torch.distributed.group.WORLD._get_backend(torch.device("cpu")).options._timeout.total_seconds()}))
leave_gloo_group()  # as the trainer does on a refusal: a gloo group left up may abort the process at exit
"""


def test_fsdp_on_the_cpu_is_configured_but_refused_since_accelerate_keeps_plain_ddp(tmp_path: Path) -> None:
    """accelerate 1.x sets FSDP up only from a multi-GPU state: on CPUs it stays MULTI_CPU (DDP over gloo),
    although torch's own FSDP runs there. The options dbtui passes must still reach the plugin."""
    from engine.profile import save_profile

    profile = tiny_profile(tmp_path, **merge(FULL_SHARDED, {"launch": {"main_process_port": free_port()}}))
    path = save_profile(profile, tmp_path / "p.toml")
    script = tmp_path / "fsdp_on_cpu.py"
    script.write_text(FSDP_ON_CPU)
    command = [sys.executable, "-m", "accelerate.commands.launch", *accelerate_args(profile), str(script), str(path), str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=dict(env(), OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{i}.json").read_text()) for i in range(2)]
    for rank in ranks:
        assert rank["num_processes"] == 2 and rank["distributed_type"] == "MULTI_CPU"
        assert (rank["fsdp_version"], rank["reshard_after_forward"], rank["state_dict_type"]) == (2, True, "FULL_STATE_DICT")
        assert rank["auto_wrap_policy"] == "transformer_auto_wrap_policy"
        assert 'sharding = "fsdp", but accelerate set up MULTI_CPU training' in rank["error"]
        # The others wait while the main process makes class images or caches: longer than torch's default allows.
        assert rank["timeout_s"] == MEETING_TIMEOUT.total_seconds() >= 3600


# -- two machines on one host -----------------------------------------------------------------------

class TwoMachines(NamedTuple):
    """A run of two "machines" on this host, each started by `start_run` with one process, and the folder of its files."""

    first: Any  # machine 0's StartedRun
    second: Any  # machine 1's
    tmp: Path


@pytest.fixture(scope="module")
def two_machines_own_disks(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: Path) -> TwoMachines:
    """Each "machine" has a disk of its own (its own output_dir and its own copy of the model) and one process; they
    meet on a free port. 5 steps, a checkpoint every 2 and the last one kept, class images made by machine 0. Two
    tests read it, one on a copy of machine 1's folder: a two-machine run is four processes (two launchers, two
    trainers), some 30 s of CPU."""
    import shutil

    from engine.runs.launcher import start_run

    tmp = tmp_path_factory.mktemp("two-machines")
    (tmp / "tmp").mkdir()
    port = free_port()
    models = {0: str(tiny_sd1), 1: str(shutil.copytree(tiny_sd1, tmp / "machine-1-model"))}

    def machine(rank: int):
        # Class images in one folder both reach (a shared disk, or a copy): machine 0 makes them, machine 1 finds
        # them by machine 0's model identity (engine/training/class_generation.py), not by its own copy's.
        return tiny_profile(tmp, model={"pretrained": models[rank]}, training={"max_train_steps": 5},
                            saving={"output_dir": str(tmp / f"disk{rank}"), "every_n_steps": 2, "keep_last_n": 1},
                            launch={**TWO_MACHINES, "machine_rank": rank, "main_process_port": port},
                            concepts=[{"instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc",
                                       "class_dir": str(tmp / "class"), "class_prompt": "photo of a disc", "num_class_images": 2}],
                            prior={"enabled": True, "steps": 2})

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        patch.setenv("TMPDIR", str(tmp / "tmp"))
        first, second = start_run(machine(0)), start_run(machine(1))
        assert second.process.wait(timeout=600) == 0, second.log.read_text()[-3000:]
        assert first.process.wait(timeout=600) == 0, first.log.read_text()[-3000:]
    return TwoMachines(first, second, tmp)


def test_two_machines_over_loopback_train_one_run_written_by_machine_0(two_machines_own_disks: TwoMachines) -> None:
    first, second, tmp = two_machines_own_disks
    events = list(read_events(first.folder.events))
    [run_started] = [e for e in events if e.kind == "run_started"]
    assert run_started.num_processes == 2
    assert [e.step for e in events if e.kind == "step_ended"] == [1, 2, 3, 4, 5]  # once per step: machine 0's main process
    assert [e.step for e in events if e.kind == "checkpoint_saved"] == [2, 4]
    assert (first.folder.outputs / "diffusers" / "model_index.json").is_file()
    assert first.folder.read_state().status == "finished"
    assert len(list((tmp / "class").glob("generated-*/class_*.png"))) == 2
    # Machine 1 computed: it cached its own latents, kept its own profile and log, and wrote nothing of the run's.
    assert any((second.folder.path / "cache").rglob("*.safetensors"))
    assert "machine_rank = 1" in (second.folder.path / "profile-machine-1.toml").read_text()
    assert second.log.name == "trainer-machine-1.log" and second.log.is_file()
    assert not second.folder.events.exists() and not second.folder.state_file.exists() and not second.folder.outputs.exists()
    # torch elastic logged into each machine's run folder, and left nothing in the temporary folder
    assert [path.name for path in (tmp / "tmp").glob("torchelastic_*")] == []
    assert (first.folder.path / "logs" / "elastic-machine-0").is_dir()
    assert (second.folder.path / "logs" / "elastic-machine-1").is_dir()


def _two_machines_on_a_shared_disk(tmp_path: Path) -> TwoMachines:
    """Both machines' output_dir one folder: 5 steps, a checkpoint every 2 and the last one kept."""
    from engine.runs.launcher import start_run

    port = free_port()

    def machine(rank: int):
        return tiny_profile(tmp_path, training={"max_train_steps": 5},
                            saving={"output_dir": str(tmp_path / "disk"), "every_n_steps": 2, "keep_last_n": 1},
                            launch={**TWO_MACHINES, "machine_rank": rank, "main_process_port": port})

    first, second = start_run(machine(0)), start_run(machine(1))
    assert second.process.wait(timeout=600) == 0, second.log.read_text()[-3000:]
    assert first.process.wait(timeout=600) == 0, first.log.read_text()[-3000:]
    return TwoMachines(first, second, tmp_path)


@pytest.mark.parametrize("shared", [False, True], ids=["own-disks", "shared-disk"])
def test_each_machine_keeps_its_part_of_each_checkpoint_rotated_with_machine_0s(
        tmp_path: Path, shared: bool, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """On a disk of its own machine 1 kept a step-N.partial folder of its random-number states at every checkpoint,
    never rotated, and a resume after the README's copy of machine 0's step-N never read them."""
    import shutil
    import subprocess

    from engine.runs.checkpoints import damage_of, latest_checkpoint
    from engine.runs.folder import RunFolder

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    if shared:
        first, second, _ = _two_machines_on_a_shared_disk(tmp_path)
    else:
        first, second, _ = request.getfixturevalue("two_machines_own_disks")
    assert [e.step for e in read_events(first.folder.events) if e.kind == "checkpoint_saved"] == [2, 4]

    def kept(folder) -> dict[str, set[str]]:
        return {path.name: {file.name for file in path.iterdir()} for path in folder.checkpoints.iterdir()}

    main_part = {"manifest.json", "optimizer.bin", "random_states_0.pkl", "unet", "custom_checkpoint_0.pkl",
                 "custom_checkpoint_1.pkl", "trained_images.json"}  # the last: machine 0's record of the images trained
    if shared:  # one folder, whole, as before
        assert kept(second.folder) == {"step-00000004": main_part | {"random_states_1.pkl"}}
        return
    assert kept(second.folder) == {"step-00000004": {"random_states_1.pkl"}}  # step 2 went as machine 0's did
    # README, Resume: machine 0's step-N copied into this machine's checkpoints folder joins this machine's part (of a
    # copy of machine 1's run folder: the other test reads the run too).
    part = RunFolder(shutil.copytree(second.folder.path, tmp_path / "machine-1" / second.folder.path.name))
    subprocess.run(["cp", "-r", str(first.folder.checkpoints / "step-00000004"), f"{part.checkpoints}/"], check=True)
    latest = latest_checkpoint(part)
    assert latest == part.checkpoints / "step-00000004" and damage_of(latest) is None
    assert main_part | {"random_states_1.pkl"} <= kept(part)["step-00000004"]  # accelerate reads random_states_1 there


def test_the_whole_model_of_an_fsdp_run_is_rebuilt_from_the_gathered_state(tiny_sd1: Path) -> None:
    """What exports and checkpoints write under FSDP: the main process's copy, loaded from the state
    accelerate gathers (here a stand-in accelerator hands over the model's own state), every weight equal."""
    from types import SimpleNamespace

    import torch
    from accelerate.utils import DistributedType
    from diffusers import UNet2DConditionModel

    from engine.training.distributed import whole_model

    unet = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    gathered = {name: tensor.clone() for name, tensor in unet.state_dict().items()}

    def accelerator(main: bool) -> SimpleNamespace:
        return SimpleNamespace(distributed_type=DistributedType.FSDP, is_main_process=main, unwrap_model=lambda m: m,
                               get_state_dict=lambda m: gathered if main else {})

    assert whole_model(accelerator(False), unet) is None
    whole = whole_model(accelerator(True), unet)
    assert whole is not unet and type(whole) is type(unet)
    assert not any(t.is_meta for t in [*whole.parameters(), *whole.buffers()])
    assert whole.state_dict().keys() == unet.state_dict().keys()
    assert all(torch.equal(whole.state_dict()[k], v) for k, v in unet.state_dict().items())
    plain = SimpleNamespace(distributed_type=DistributedType.MULTI_CPU, is_main_process=True, unwrap_model=lambda m: m)
    assert whole_model(plain, unet) is unet


def test_a_machine_without_the_class_images_machine_0_made_says_what_to_copy(tmp_path: Path) -> None:
    from engine.training.class_images import ClassRequest, ensure_class_images
    from engine.training.distributed import MadeElsewhereError, made_by_the_main_process

    request = ClassRequest(0, tmp_path / "class", "photo of a disc", "", 2)
    with pytest.raises(MadeElsewhereError, match="class images are missing on this machine.*Copy them to the same path here"):
        ensure_class_images([request], make_pipeline=made_by_the_main_process("class images"), prompt_kwargs=lambda *_: {},
                            batch_size=1, model="builtin:tiny-sd1", resolution=64, seed=0, steps=2, guidance=1.0)
