"""Memory cuts: the optimizer step fused into the backward pass, bf16 weights with stochastic
rounding, and encoders off the device once cached. Each is checked against the plain path's maths."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch

from engine.profile.training_sections import OptimizerSection
from engine.runs.checkpoints import CheckpointError, Checkpointer
from engine.runs.folder import RunFolder
from engine.training.optim import build_lr_scheduler, build_optimizer, build_step_optimizer
from engine.training.per_parameter import PerParameterOptimizer
from engine.training.precision import bf16_weights_in_force, fused_backward_in_force
from engine.training.stochastic_rounding import stochastic_round_
import engine.training.trainer as trainer_module
from engine.training.trainer import Trainer, cached_parts
from tests.test_profile import MINIMAL, problems_of
from tests.training_helpers import tiny_profile

# -- stochastic rounding -----------------------------------------------------------------------

BF16_STEP_AT_1 = 2.0**-7  # the distance between bf16 neighbours in [1, 2)


@pytest.mark.parametrize("value", [1 + 0.3 * BF16_STEP_AT_1, -(1 + 0.8 * BF16_STEP_AT_1), 1e-3 * (1 + 0.55 / 128)])
def test_stochastic_rounding_is_unbiased_where_rounding_to_nearest_is_not(value: float) -> None:
    source = torch.full((200_000,), value)
    down = source.to(torch.bfloat16).float()[0]
    nearest_bias = (down - source[0]).abs().item()
    rounded = stochastic_round_(torch.empty(source.shape, dtype=torch.bfloat16), source, torch.Generator().manual_seed(0)).float()
    assert len(rounded.unique()) == 2  # always one of the two neighbours
    stochastic_bias = (rounded.mean() - source[0]).abs().item()
    spacing = (rounded.max() - rounded.min()).item()
    # Each rounding is off by at most one spacing: the mean of 200,000 is within 0.3 % of it.
    assert stochastic_bias < 0.003 * spacing
    assert nearest_bias > 0.15 * spacing


def test_stochastic_rounding_follows_its_generator() -> None:
    source = torch.randn(10_000) * 3

    def rounded(seed: int) -> torch.Tensor:
        return stochastic_round_(torch.empty(source.shape, dtype=torch.bfloat16), source, torch.Generator().manual_seed(seed))

    assert torch.equal(rounded(5), rounded(5))
    assert not torch.equal(rounded(5), rounded(6))
    exact = torch.tensor([1.0, -2.5, 0.0, float("inf")])
    assert torch.equal(stochastic_round_(torch.empty(4, dtype=torch.bfloat16), exact, torch.Generator()).float(), exact)


# -- per-weight optimizers ---------------------------------------------------------------------


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 4))


def _loss(model: torch.nn.Module, step: int) -> torch.Tensor:
    inputs = torch.randn(16, 8, generator=torch.Generator().manual_seed(step))
    return (model(inputs.to(next(model.parameters()).dtype)).float() - 1).pow(2).mean()


SETTINGS = OptimizerSection(lr_scheduler="cosine", lr_warmup_steps=2, max_grad_norm=0.0)


@pytest.mark.parametrize("name", ["adamw", "adamw8bit", "lion", "adafactor"])
def test_the_fused_step_gives_the_weights_of_the_plain_step(name: str) -> None:
    settings = SETTINGS.model_copy(update={"name": name})
    plain, fused = _model(), _model()
    optimizer = build_optimizer(name, [{"params": list(plain.parameters())}], settings, 1e-2)
    per_weight = build_step_optimizer([{"params": list(fused.parameters())}], settings, 1e-2, per_weight=True)
    assert {type(inner) for inner in per_weight.optimizers} == {type(optimizer)}
    per_weight.step_in_backward(settings.max_grad_norm)
    schedules = [build_lr_scheduler(optimizer, settings, 5), build_lr_scheduler(per_weight, settings, 5)]
    for step in range(5):
        _loss(plain, step).backward()
        optimizer.step()
        optimizer.zero_grad()
        _loss(fused, step).backward()
        assert all(p.grad is None for p in fused.parameters())  # each freed in the backward pass
        per_weight.step()
        for schedule in schedules:
            schedule.step()
        # every weight's optimizer follows the schedule
        assert {group["lr"] for group in per_weight.param_groups} == {optimizer.param_groups[0]["lr"]}
        for a, b in zip(plain.parameters(), fused.parameters()):
            assert torch.allclose(a, b, rtol=0, atol=1e-7), (name, step, (a - b).abs().max())
    assert not torch.equal(next(_model().parameters()), next(fused.parameters()))


def test_a_full_set_of_gradients_never_exists_with_the_fused_step() -> None:
    def most_gradients_held(fused: bool) -> int:
        model = _model()
        params = list(model.parameters())
        held = []
        # Registered first, so it runs before the fused step frees this weight's gradient.
        for param in params:
            param.register_post_accumulate_grad_hook(lambda _: held.append(sum(p.grad is not None for p in params)))
        optimizer = build_step_optimizer([{"params": params}], SETTINGS, 1e-2, per_weight=fused)
        if fused:
            optimizer.step_in_backward(0.0)
        _loss(model, 0).backward()
        return max(held)

    assert most_gradients_held(fused=False) == 4
    assert most_gradients_held(fused=True) == 1


def test_the_fused_step_clips_each_gradient_to_the_norm_on_its_own() -> None:
    plain, fused = _model(), _model()
    optimizer = build_optimizer("adamw", [{"params": list(plain.parameters())}], SETTINGS, 1e-2)
    per_weight = build_step_optimizer([{"params": list(fused.parameters())}], SETTINGS, 1e-2, per_weight=True)
    per_weight.step_in_backward(max_grad_norm=0.05)
    for step in range(3):
        _loss(plain, step).backward()
        for param in plain.parameters():
            torch.nn.utils.clip_grad_norm_([param], 0.05)
        optimizer.step()
        optimizer.zero_grad()
        _loss(fused, step).backward()
    for a, b in zip(plain.parameters(), fused.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)


def test_bf16_weights_keep_the_small_updates_that_rounding_to_nearest_loses() -> None:
    """AdamW moves each weight by about lr a step: 1e-3 is under half of bf16's spacing at 1.0, so a
    bf16 AdamW rounding to nearest never moves them; stochastic rounding moves them as fp32 does."""
    start = torch.ones(4096)

    def train(weight: torch.nn.Parameter, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        for _ in range(50):
            weight.grad = torch.ones_like(weight)
            optimizer.step()
        return weight.detach().float()

    fp32 = torch.nn.Parameter(start.clone())
    reference = train(fp32, torch.optim.AdamW([fp32], lr=1e-3, weight_decay=0.0))
    nearest = torch.nn.Parameter(start.to(torch.bfloat16))
    assert torch.equal(train(nearest, torch.optim.AdamW([nearest], lr=1e-3, weight_decay=0.0)), start)
    stochastic = torch.nn.Parameter(start.to(torch.bfloat16))
    settings = OptimizerSection(weight_decay=0.0)
    optimizer = build_step_optimizer([{"params": [stochastic]}], settings, 1e-3, per_weight=True, rounding=torch.Generator().manual_seed(0))
    moved = train(stochastic, optimizer)
    assert stochastic.dtype == torch.bfloat16
    assert abs((start - moved).mean() - (start - reference).mean()) < 0.01 * (start - reference).mean()
    [state] = list(optimizer.state.values())
    assert state["exp_avg"].dtype == torch.float32  # the optimizer's state is fp32


def test_per_weight_state_saves_and_loads_with_the_rounding_generator() -> None:
    def make() -> tuple[torch.nn.Module, PerParameterOptimizer]:
        model = _model().to(torch.bfloat16)
        return model, PerParameterOptimizer([{"params": list(model.parameters())}],
                                            lambda groups: build_optimizer("adamw", groups, SETTINGS, 1e-2),
                                            rounding=torch.Generator().manual_seed(1))

    def steps(model: torch.nn.Module, optimizer: PerParameterOptimizer, first: int, last: int) -> None:
        for step in range(first, last):
            _loss(model, step).backward()
            optimizer.step()
            optimizer.zero_grad()

    model, optimizer = make()
    steps(model, optimizer, 0, 2)
    saved_weights, saved_state = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    steps(model, optimizer, 2, 4)
    resumed, again = make()
    resumed.load_state_dict(saved_weights)
    again.load_state_dict(saved_state)
    steps(resumed, again, 2, 4)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed.parameters()))
    assert len(again.state) == 4
    again.state.clear()
    assert len(again.state) == 0 and all(not inner.state for inner in again.optimizers)


# -- in the trainer ----------------------------------------------------------------------------

TRAINS_BOTH = dict(training={"max_train_steps": 3, "train_text_encoder": True},
                   optimizer={"learning_rate": 1e-3, "max_grad_norm": 0.0, "lr_scheduler": "cosine", "lr_warmup_steps": 1})
# The cuts' resumable runs: bf16 (a CUDA machine's precision, run by CPU autocast), 4 steps, both models trained.
RESUMABLE = dict(training={"max_train_steps": 4, "train_text_encoder": True},
                 optimizer=TRAINS_BOTH["optimizer"], precision={"mixed_precision": "bf16"},
                 dataset={"resolution": 64, "hflip": True, "center_crop": False})


def _trained(profile, run_dir: Path, hooks=()) -> Trainer:
    trainer = Trainer(profile, run_dir, step_hooks=list(hooks))
    trainer.setup()
    trainer.train()
    return trainer


def _optimizer_states(held: list[int]):  # a step hook: how many weights have an optimizer state after each step
    return lambda trainer, step: held.append(len(trainer.optimizer.state))


@pytest.fixture
def bf16_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU trains in fp32; bf16 is what a CUDA machine gets, and CPU autocast runs it."""
    monkeypatch.setattr(trainer_module, "effective_precision", lambda requested: ("bf16", None))


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory):
    """The plain path of RESUMABLE, trained once for the module: (the trainer, its optimizer's state sizes a step).
    The fused run's weights are compared with it, and each cut's checkpoint is refused by it."""
    tmp = tmp_path_factory.mktemp("plain")
    held: list[int] = []
    with pytest.MonkeyPatch.context() as patch:  # on a bf16 machine, as bf16_machine
        patch.setattr(trainer_module, "effective_precision", lambda requested: ("bf16", None))
        trainer = _trained(tiny_profile(tmp, **RESUMABLE), tmp / "run", [_optimizer_states(held)])
    yield trainer, held
    trainer.end()


def _same_weights(a: Trainer, b: Trainer) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.unet_params + a.text_params, b.unet_params + b.text_params, strict=True))


def test_an_sdxl_run_with_the_fused_step_ends_with_the_plain_runs_weights(tmp_path: Path) -> None:
    """SDXL's two text encoders; tiny-sd1's fused run is compared with the plain path in the resume test."""
    sections = {**TRAINS_BOTH, "model": {"pretrained": "builtin:tiny-sdxl"}}
    held: dict[str, list[int]] = {"plain": [], "fused": []}
    plain = _trained(tiny_profile(tmp_path, **sections), tmp_path / "plain", [_optimizer_states(held["plain"])])
    fused_profile = tiny_profile(tmp_path, **{**sections, "optimizer": {**sections["optimizer"], "fused_backward": True}})
    fused = _trained(fused_profile, tmp_path / "fused", [_optimizer_states(held["fused"])])
    assert isinstance(fused.optimizer.optimizer, PerParameterOptimizer)
    # One state per weight that had a gradient (SDXL's text encoders' last layers have none).
    assert fused.text_params and held["fused"] == held["plain"] and held["fused"][0] > len(fused.unet_params)
    assert _same_weights(plain, fused)
    fused.release_training_state()
    assert len(fused.optimizer.state) == 0
    plain.end()
    fused.end()


def test_a_tiny_sd1_run_trains_with_bf16_weights_and_exports_fp32(tmp_path: Path, bf16_machine: None) -> None:
    from diffusers import UNet2DConditionModel

    from engine.builtin import resolve_model
    from engine.runs.in_process import train

    profile = tiny_profile(tmp_path, training={"max_train_steps": 4}, optimizer={"learning_rate": 1e-3},
                           precision={"mixed_precision": "bf16", "bf16_weights": True})
    seen = []
    result = train(profile, step_hooks=[lambda trainer, step: seen.append(({p.dtype for p in trainer.unet_params}, trainer.last_loss))])
    assert [dtypes for dtypes, _ in seen] == [{torch.bfloat16}] * 4
    assert all(0 < loss < 10 for _, loss in seen)
    saved = UNet2DConditionModel.from_pretrained(Path(result.outputs["diffusers"]) / "unet")
    base = UNet2DConditionModel.from_pretrained(Path(resolve_model("builtin:tiny-sd1")) / "unet")
    assert saved.dtype == torch.float32
    assert not torch.equal(saved.conv_in.weight, base.conv_in.weight)


@pytest.mark.parametrize("cut", ["fused", "bf16_weights"])
def test_resume_is_exact_with_the_memory_cuts(cut: str, tmp_path: Path, bf16_machine: None, plain_run,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh trainer that loads the step-2 checkpoint (as after a kill) ends where the run did; the fused run
    ends with the plain run's weights."""
    plain, plain_held = plain_run
    sections = copy.deepcopy(RESUMABLE)
    sections["optimizer" if cut == "fused" else "precision"][("fused_backward" if cut == "fused" else "bf16_weights")] = True
    profile = tiny_profile(tmp_path, **sections)

    def started(run_dir: Path, hooks=()) -> tuple[Trainer, Checkpointer]:
        folder = RunFolder(run_dir).create()
        # The plain run's cached latents, which a resumed run finds in its own RUN/cache: the VAE is the same, and in
        # bf16 on a CPU it encodes each image in about a second. Keyed by the VAE's weights and dtype, any latent this
        # run's VAE would encode otherwise is encoded all the same.
        shutil.copytree(plain.run_dir / "cache" / "latents", folder.path / "cache" / "latents")
        trainer = Trainer(profile, folder.path, step_hooks=list(hooks))
        trainer.setup()
        return trainer, Checkpointer(trainer, folder)

    saved: list[Path] = []
    held: list[int] = []
    whole, checkpointer = started(tmp_path / "whole", [lambda trainer, step: step == 2 and saved.append(checkpointer.save(step)),
                                                       _optimizer_states(held)])
    whole.train()
    whole.end()
    if cut == "fused":
        assert isinstance(whole.optimizer.optimizer, PerParameterOptimizer)
        assert held == plain_held and held[0] > len(whole.unet_params)  # one state per weight with a gradient
        assert _same_weights(plain, whole)
        whole.release_training_state()
        assert len(whole.optimizer.state) == 0
    resumed, checkpointer_again = started(tmp_path / "resumed")
    assert checkpointer_again.load(saved[0]) == 2
    resumed.train()
    resumed.end()
    assert resumed.global_step == 4
    assert _same_weights(whole, resumed)

    with pytest.raises(CheckpointError, match="fused_backward and precision.bf16_weights settings it was made with"):
        Checkpointer(plain, RunFolder(tmp_path / "plain").create()).load(saved[0])
    if cut == "bf16_weights":
        # The same profile on a machine without bf16 (here a CPU, fp32): the machine is what differs, not the settings.
        monkeypatch.setattr(trainer_module, "effective_precision", lambda requested: ("no", None))
        trainer, checkpointer = started(tmp_path / "no-bf16")
        with pytest.raises(CheckpointError, match="the profile is as it was, but this machine trains in fp32, without bf16"):
            checkpointer.load(saved[0])
        trainer.end()


# -- where the machine lacks what the cuts need --------------------------------------------------


def test_the_cuts_give_way_with_a_warning_where_the_precision_lacks_them() -> None:
    assert bf16_weights_in_force(True, "bf16") == (True, None)
    assert bf16_weights_in_force(False, "no") == (False, None)
    kept, warning = bf16_weights_in_force(True, "no")  # a CPU
    assert not kept and "stay fp32" in warning
    assert fused_backward_in_force(True, "bf16") == (True, None)
    assert fused_backward_in_force(True, "no") == (True, None)
    fused, warning = fused_backward_in_force(True, "fp16")  # a GPU without bf16
    assert not fused and "after the backward pass" in warning


def test_a_cpu_run_asking_for_bf16_weights_trains_fp32_weights_with_a_warning(tmp_path: Path) -> None:
    from engine.events import Warning

    events = []
    profile = tiny_profile(tmp_path, training={"max_train_steps": 1}, precision={"mixed_precision": "bf16", "bf16_weights": True})
    trainer = Trainer(profile, tmp_path / "run", emit=events.append)
    trainer.setup()
    assert {p.dtype for p in trainer.unet_params} == {torch.float32}
    assert not isinstance(trainer.optimizer.optimizer, PerParameterOptimizer)
    assert any(isinstance(e, Warning) and "precision.bf16_weights" in e.message for e in events)
    trainer.end()


# -- the profile -------------------------------------------------------------------------------


def test_the_profile_refuses_what_the_cuts_cannot_run_with_all_together() -> None:
    text = MINIMAL + (
        '[training]\nmethod = "lora"\ngradient_accumulation_steps = 4\n'
        '[optimizer]\nname = "prodigy"\nfused_backward = true\n'
        '[precision]\nmixed_precision = "fp16"\nbf16_weights = true\n'
        "[launch]\nnum_processes = 2\n"
    )
    problems = problems_of(text)
    messages = {p.key: [] for p in problems}
    for problem in problems:
        messages[problem.key].append(problem.message)
    fused = " ".join(messages["optimizer.fused_backward"])
    assert "gradient_accumulation_steps = 1" in fused and 'mixed_precision = "bf16"' in fused and "num_processes = 1" in fused
    bf16 = " ".join(messages["precision.bf16_weights"])
    assert 'method = "full"' in bf16 and 'mixed_precision = "bf16"' in bf16
    assert "adamw" in " ".join(messages["optimizer.name"])
    assert all(p.line for p in problems)


def test_the_cuts_validate_with_what_they_can_run_with() -> None:
    from engine.profile import loads_profile

    profile = loads_profile(MINIMAL + '[training]\nmethod = "full"\n[optimizer]\nname = "adafactor"\nfused_backward = true\n'
                            'max_grad_norm = 1.0\n[precision]\nmixed_precision = "bf16"\nbf16_weights = true\n')
    assert profile.optimizer.fused_backward and profile.precision.bf16_weights
    assert loads_profile(MINIMAL + '[optimizer]\nfused_backward = true\n[precision]\nmixed_precision = "no"\n').optimizer.fused_backward


# -- encoders off the device --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["builtin:tiny-sd1", "builtin:tiny-sdxl"])
def test_every_encoder_whose_outputs_are_cached_leaves_the_device(model: str) -> None:
    from engine.builtin import resolve_model
    from engine.models.loading import load_components

    components = load_components(Path(resolve_model(model)))
    expected = 2 if model.endswith("sdxl") else 1
    assert len(components.text_encoders) == expected

    def ids(parts: list) -> list[int]:
        return [id(part) for part in parts]

    everything = cached_parts(components, latents_cached=True, text_cached=True)
    assert ids(everything) == ids([components.vae, *components.text_encoders])
    assert ids(cached_parts(components, latents_cached=False, text_cached=True)) == ids(components.text_encoders)
    assert ids(cached_parts(components, latents_cached=True, text_cached=False)) == [id(components.vae)]


def test_a_checkpoint_made_without_bf16_resumed_on_a_machine_with_it_names_the_machine(tmp_path: Path) -> None:
    """The other way round: made on a card without bf16 (the weights fell back to fp32), resumed on an A100."""
    from types import SimpleNamespace

    from engine.runs.checkpoints import layout_mismatch

    profile = tiny_profile(tmp_path, precision={"mixed_precision": "bf16", "bf16_weights": True})
    on_a100 = SimpleNamespace(profile=profile, precision="bf16", bf16_weights=True, fused_backward=False)
    said = layout_mismatch(Path("step-8"), "whole", on_a100, profile.model_dump(mode="json"))
    assert "the profile is as it was, but it was made on a machine without bf16" in said
    other = tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}).model_dump(mode="json")
    assert layout_mismatch(Path("step-8"), "whole", on_a100, other).endswith("settings it was made with")
