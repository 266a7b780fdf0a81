"""What to change when a profile needs more GPU memory than a card has: the savers it does not use yet,
said when a run runs out of memory and when the meter finds no card that holds it."""

from __future__ import annotations

from pathlib import Path

from engine.memory.estimate import GIB, MemoryEstimate
from engine.memory.savers import memory_advice
from tests.training_helpers import merge, tiny_profile


def test_a_full_fine_tune_is_told_of_the_savers_it_does_not_use(tmp_path: Path) -> None:
    plain = memory_advice(tiny_profile(tmp_path))
    assert "precision.bf16_weights = true" in plain and "optimizer.fused_backward = true" in plain
    lean = memory_advice(tiny_profile(tmp_path, precision={"bf16_weights": True, "mixed_precision": "bf16"},
                                      optimizer={"fused_backward": True}))
    assert "bf16_weights" not in lean and "fused_backward" not in lean
    lora = memory_advice(tiny_profile(tmp_path, training={"method": "lora"}))
    assert "bf16_weights" not in lora and "train a LoRA" not in lora


def _fit_estimate_only(tmp_path: Path, monkeypatch, capsys, weights_gib: float, caching_gib: float = 0.0,
                       precision: str = "no", optimizer_gib: float = 0.0, checkpointing: bool = False,
                       sampling_gib: float = 0.0, caching_text: bool = False, **sections) -> str:
    """What `dbtui fit --estimate-only` prints for the tiny profile when the meter says ``weights_gib`` of weights
    (and ``caching_gib`` at the caching pass, ``optimizer_gib`` of optimizer state, ``sampling_gib`` at the previews)."""
    import engine.memory
    from dbtui.cli import main
    from engine.profile import save_profile

    estimate = MemoryEstimate(weights=int(weights_gib * GIB), gradients=0, optimizer_state=int(optimizer_gib * GIB),
                              activations=0, caches=0,
                              autocast_weight_copies=0, peak_phase="backward", model="m", batch=1, height=8, width=8,
                              seconds=0.0, caching=int(caching_gib * GIB), sampling=int(sampling_gib * GIB),
                              caching_text=caching_text)
    monkeypatch.setattr(engine.memory, "estimate_peak", lambda profile, **how: estimate)
    precision_section = {"mixed_precision": precision, "gradient_checkpointing": checkpointing}
    path = save_profile(tiny_profile(tmp_path, precision=precision_section, **sections), tmp_path / "p.toml")
    assert main(["fit", str(path), "--estimate-only"]) == 0
    return capsys.readouterr().out


def test_the_estimate_alone_needs_no_run_folder_it_can_create(tmp_path: Path, monkeypatch, capsys) -> None:
    """The estimate works on any machine: a run folder that cannot be made here (a file in its way) stopped it."""
    from dbtui.cli import main

    (tmp_path / "a file").write_text("")
    saving = {"output_dir": str(tmp_path / "a file" / "runs")}
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 1, saving=saving)
    assert "fits 8 GB ✓" in out
    # The fit test's steps still refuse it before they start.
    assert main(["fit", str(tmp_path / "p.toml")]) == 2 and "a file" in capsys.readouterr().err


def test_fit_says_what_to_change_when_no_card_holds_the_profile(tmp_path: Path, monkeypatch, capsys) -> None:
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 30)
    assert "fits 8 GB ✗ · 12 GB ✗ · 16 GB ✗ · 24 GB ✗" in out
    # The meter puts it all in the weights: gradient checkpointing, which shrinks only activations, is not offered.
    assert ("none of these cards holds it; the steps need more than a 24 GB card (33.8 GB); to need less: use mixed "
            "precision") in out and "gradient checkpointing" not in out


def test_fit_gives_no_such_advice_when_a_card_holds_it(tmp_path: Path, monkeypatch, capsys) -> None:
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 1)
    assert "none of these cards" not in out and "to need less" not in out


def test_fit_says_what_to_change_for_a_card_below_the_smallest_that_holds_it(tmp_path: Path, monkeypatch, capsys) -> None:
    """sd15-person.toml showed 8 GB ✗ with no word on what would make it fit."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 10)
    assert "8 GB ✗ · 12 GB ✓" in out
    assert "for a card below 12 GB, the steps need more than an 8 GB card (11.8 GB); to need less: use mixed precision" in out


def test_where_the_caching_pass_decides_the_card_no_training_setting_is_offered(tmp_path: Path, monkeypatch, capsys) -> None:
    """flux-lora-16gb.toml's caching pass (T5-XXL beside the VAE) needs 11 GB on the card, its steps 9: the advice to
    lower the LoRA rank changed nothing."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 6, caching_gib=10, precision="bf16")
    assert "8 GB ✗ · 12 GB ✓" in out
    assert "for a card below 12 GB, the caching pass before the first step needs the most here" in out
    assert "gradient checkpointing" not in out
    # In fp32 the encoders load in fp32: mixed precision, one of the savers, halves them.
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 6, caching_gib=10, precision="no")
    assert ("for a card below 12 GB, the caching pass before the first step needs more than an 8 GB card (11.8 GB); to need "
            "less: turn on gradient checkpointing") in out


def test_where_the_steps_miss_the_card_too_the_caching_pass_is_still_named(tmp_path: Path, monkeypatch, capsys) -> None:
    """flux-lora-16gb.toml on an 8 GB card: its steps need 9.2 GB, its caching pass 11 GB; the advice to lower the LoRA
    rank alone could never make it fit."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 7.5, caching_gib=10, precision="bf16")
    assert ("for a card below 12 GB, the caching pass before the first step needs the most here" in out
            and "; the steps too need more than an 8 GB card (9.0 GB); to need less: either keep the weights in bf16" in out)
    # Steps larger than the caching pass: their savers first, then what the caching pass still needs.
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 9.5, caching_gib=8, precision="bf16")
    assert ("for a card below 12 GB, the steps need more than an 8 GB card (11.2 GB); to need less: either keep the "
            "weights in bf16" in out
            and "; the caching pass before the first step needs 9.55 GB on the card, which of all training settings only a "
                "smaller dataset.resolution shrinks" in out)


def test_the_caching_pass_is_not_said_to_be_beyond_every_setting(tmp_path: Path, monkeypatch, capsys) -> None:
    """At 1024 px the advice listed "lower dataset.resolution", then said the caching pass "no training setting
    shrinks", though the VAE's encode in it shrinks with that very setting."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 9.5, caching_gib=8, precision="bf16",
                             dataset={"resolution": 1024})
    assert "no training setting shrinks" not in out and "only a smaller dataset.resolution shrinks" in out
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 6, caching_gib=10, precision="bf16",
                             dataset={"resolution": 1024})
    assert "needs the most here" in out and "no training setting shrinks" not in out


def test_a_caching_pass_whose_peak_is_the_text_encoders_is_not_said_to_shrink_with_the_size(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """flux-lora-16gb.toml on a 10 GB card was told only a smaller dataset.resolution shrinks the caching pass: at
    256 px it needed the same 11.03 GB, T5-XXL's moment, after the VAE's encode."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 6, caching_gib=10, precision="bf16", caching_text=True)
    assert "needs the most here" in out and "no training setting shrinks" in out and "dataset.resolution shrinks" not in out
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 9.5, caching_gib=8, precision="bf16", caching_text=True)
    assert "needs 9.55 GB on the card, which no training setting shrinks" in out


def test_flux_is_told_of_a_quantized_base_first_and_no_card_size_is_promised(tmp_path: Path) -> None:
    """A bf16 Flux base is 23 GB of frozen weights: the advice said only "lower dataset.resolution" for a LoRA, and
    "it fits 8 GB cards" for a full fine-tune, where even the NF4 LoRA needs 12 GB."""
    lora = memory_advice(tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"}, training={"method": "lora"},
                                      precision={"gradient_checkpointing": True, "mixed_precision": "bf16"}))
    assert lora.startswith('load the frozen base quantized (model.quantize = "nf4"')
    full = memory_advice(tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"}))
    assert 'train a LoRA on a quantized base (training.method = "lora", model.quantize = "nf4")' in full
    assert "8 GB" not in full and "8 GB" not in memory_advice(tiny_profile(tmp_path))


def test_an_sd_lora_of_a_high_rank_is_told_to_lower_it_beside_the_quantized_base(tmp_path: Path) -> None:
    """The rank tip sat behind the quantized-base tip in one elif chain: an SD LoRA without quantization never had it."""
    advice = memory_advice(tiny_profile(tmp_path, training={"method": "lora", "lora": {"rank": 32}}))
    assert 'model.quantize = "nf4"' in advice and "training.lora.rank = 16" in advice


def test_an_fp16_profile_is_offered_bf16_weights_and_the_fused_step_only_with_bf16(tmp_path: Path) -> None:
    """The profile rules refuse bf16 weights outside bf16 and the fused step under fp16: the tips say to switch."""
    fp16 = memory_advice(tiny_profile(tmp_path, precision={"mixed_precision": "fp16"}))
    assert 'precision.mixed_precision = "bf16", precision.bf16_weights = true' in fp16
    assert 'precision.mixed_precision = "bf16", optimizer.fused_backward = true' in fp16
    bf16 = memory_advice(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}))
    assert "(precision.bf16_weights = true" in bf16 and "(optimizer.fused_backward = true" in bf16


def test_where_no_setting_can_bring_the_steps_under_the_card_a_larger_card_is_named(tmp_path: Path, monkeypatch,
                                                                                   capsys) -> None:
    """flux-lora-16gb.toml on an 8 GB card: its steps need 9.2 GB, and its one saver left, halving the LoRA rank, takes
    about 0.05 GB; the advice offered it anyway, in "the steps too need more than the card, to need less:"."""
    lean = {"training": {"method": "lora", "lora": {"rank": 16}}, "dataset": {"cache_latents": True},
            "model": {"pretrained": "builtin:tiny-sd1", "quantize": "nf4"}}
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 7.4, caching_gib=10, precision="bf16", optimizer_gib=0.1,
                             checkpointing=True, optimizer={"name": "adamw8bit"}, **lean)
    assert ("the caching pass before the first step needs the most here" in out
            and "; the steps too need more than an 8 GB card (9.0 GB), and no setting here brings them under 8 GB: rent 12 GB "
                "or more\n" in out and "lower the LoRA rank" not in out)
    # Where the parts the savers shrink could close the gap (1 GB of AdamW's state, the LoRA's weights), they are offered.
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 6.5, caching_gib=10, precision="bf16", optimizer_gib=1.0,
                             checkpointing=True, optimizer={"name": "adamw"}, **lean)
    assert ("; the steps too need more than an 8 GB card (9.0 GB); to need less: use the 8-bit optimizer "
            '(optimizer.name = "adamw8bit"), about 0.8 GB less; lower the LoRA rank (training.lora.rank = 8), about 0.8 GB '
            "less; no one of these alone is known to bring it under 8 GB: take several\n") in out


def test_where_the_previews_need_the_most_their_own_savers_are_judged(tmp_path: Path, monkeypatch, capsys) -> None:
    """The previews' need was named, but the savers were judged by the steps': those that shrink only the step
    (gradient checkpointing) were offered, and the rank's 0.3 GB was offered for a gap of more than 1 GB."""
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 5, sampling_gib=10, sampling={"num_images": 4},
                             dataset={"resolution": 64, "cache_latents": False})
    assert "for a card below 12 GB, the previews need more than an 8 GB card (11.8 GB); to need less: use mixed precision" in out
    assert "; generate fewer images at once (sampling.num_images = 2), up to 5.5 GB less; no one of these" in out
    assert "gradient checkpointing" not in out and "fused_backward" not in out
    assert "cache latents" not in out  # the VAE that caching takes off the GPU is back on it for the previews
    lean = {"training": {"method": "lora", "lora": {"rank": 16}}, "dataset": {"cache_latents": True},
            "model": {"pretrained": "builtin:tiny-sd1", "quantize": "nf4"}, "optimizer": {"name": "adamw8bit"}}
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 7.4, sampling_gib=15, precision="bf16", optimizer_gib=0.1,
                             checkpointing=True, sampling={"num_images": 1}, evaluation={"enabled": False}, **lean)
    assert ("for a card below 24 GB, the previews need more than a 16 GB card (17.2 GB), and no setting here brings them "
            "under 16 GB: rent 24 GB or more\n") in out
    # Fewer images at once could close the gap: offered, beside the rank.
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 7.4, sampling_gib=15, precision="bf16", optimizer_gib=0.1,
                             checkpointing=True, sampling={"num_images": 4}, evaluation={"enabled": False}, **lean)
    assert ("the previews need more than a 16 GB card (17.2 GB); to need less: generate fewer images at once "
            "(sampling.num_images = 2), up to 8.3 GB less; lower the LoRA rank (training.lora.rank = 8), about 0.2 GB less; "
            "no one of these alone is known to bring it under 16 GB: take several\n") in out


def test_flux_in_8_bits_is_offered_nf4(tmp_path: Path) -> None:
    """NF4 halves an int8 or fp8 base again (Flux.1 [dev]'s 9.2 GB fits a 12 GB card): those are offered it too, where
    the meter said no setting helps, only a 16 GB card."""
    flux = {"model": {"pretrained": "builtin:tiny-flux"}, "training": {"method": "lora"}}
    for quantize in ("int8", "fp8"):
        advice = memory_advice(tiny_profile(tmp_path, **merge(flux, {"model": {"quantize": quantize}})))
        assert f'model.quantize = "nf4" rather than "{quantize}"' in advice
    assert 'quantize = "nf4"' not in memory_advice(tiny_profile(tmp_path, **merge(flux, {"model": {"quantize": "nf4"}})))


def test_flux_is_told_of_bf16_mixed_precision_only(tmp_path: Path) -> None:
    """fp16 overflows to NaN in Flux (its profile warnings say so): its mixed-precision tip is bf16 alone."""
    advice = memory_advice(tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"}, training={"method": "lora"}))
    assert 'precision.mixed_precision = "bf16"' in advice and "fp16" not in advice
    # An SD LoRA may take either (a full fine-tune is told bf16 alone: tests/test_fp32_savers_combine.py).
    assert 'mixed_precision = "fp16", or "bf16"' in memory_advice(tiny_profile(tmp_path, training={"method": "lora"}))


def test_a_saver_that_takes_away_only_a_sliver_of_the_excess_is_not_offered(tmp_path: Path) -> None:
    """sd15-lora-8gb.toml at 1024 px on a 6 GB card: "lower the LoRA rank" (its state 0.01 GB) sat beside "lower
    dataset.resolution" (4.3 GB of activations) for 1.3 GB too many, as though either would do."""
    from engine.memory.savers import fit_savers

    profile = tiny_profile(tmp_path, training={"method": "lora", "lora": {"rank": 32}}, optimizer={"name": "adamw8bit"},
                           precision={"mixed_precision": "fp16", "gradient_checkpointing": True},
                           model={"pretrained": "builtin:tiny-sd1", "quantize": "nf4"},
                           dataset={"resolution": 1024, "cache_latents": True})
    estimate = MemoryEstimate(weights=int(1.61 * GIB), gradients=0, optimizer_state=int(0.01 * GIB),
                              activations=int(4.33 * GIB), caches=0, autocast_weight_copies=0, peak_phase="backward",
                              model="m", batch=1, height=1024, width=1024, seconds=0.0)
    tips = [saver.tip for saver in fit_savers(profile, estimate, 6 * GIB) or []]
    assert any("dataset.resolution" in tip for tip in tips) and not any("lora.rank" in tip for tip in tips), tips
    # Where the rank's state is what misses the card, the rank cut is offered.
    state_heavy = MemoryEstimate(weights=int(1.61 * GIB), gradients=0, optimizer_state=int(2 * GIB),
                                 activations=int(2 * GIB), caches=0, autocast_weight_copies=0, peak_phase="backward",
                                 model="m", batch=1, height=1024, width=1024, seconds=0.0)
    assert any("lora.rank" in saver.tip for saver in fit_savers(profile, state_heavy, 6 * GIB) or [])


def test_the_cuts_that_close_the_gap_come_first_with_what_each_saves(tmp_path: Path, monkeypatch, capsys) -> None:
    """flux-lora-24gb.toml with prior preservation on a 16 GB card (17.2 GB by the meter) was told "lower the LoRA rank
    (training.lora.rank = 8)" first, 0.2 GB of a 1.2 GB gap, and not prior preservation off (a 12.4 GB run) or 512 px."""
    import engine.memory
    from dbtui.cli import main
    from engine.profile import save_profile

    estimate = MemoryEstimate(weights=int(6.01 * GIB), gradients=0, optimizer_state=int(0.10 * GIB),
                              activations=int(8.80 * GIB), caches=0, autocast_weight_copies=0, peak_phase="backward",
                              model="m", batch=2, height=1024, width=1024, seconds=0.0, sampling=int(8.05 * GIB))
    monkeypatch.setattr(engine.memory, "estimate_peak", lambda profile, **how: estimate)
    concept = {"instance_dir": str(tmp_path / "dog"), "instance_prompt": "photo of zwx dog",
               "class_dir": str(tmp_path / "dogs"), "class_prompt": "photo of a dog"}
    profile = tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux", "quantize": "nf4"},
                           training={"method": "lora", "lora": {"rank": 16}}, optimizer={"name": "adamw8bit"},
                           precision={"mixed_precision": "bf16", "gradient_checkpointing": True},
                           dataset={"resolution": 1024, "cache_latents": True}, prior={"enabled": True},
                           concepts=[concept])
    path = save_profile(profile, tmp_path / "p.toml")
    assert main(["fit", str(path), "--estimate-only", "--card", "16"]) == 1
    out = capsys.readouterr().out
    advice = out.split("to need less: ")[1].split("\n")[0].split("; ")
    assert [tip.split(",")[0] for tip in advice] == ["lower dataset.resolution to 512", "turn off prior preservation "
                                                     "(prior.enabled = false)", "lower the LoRA rank (training.lora.rank = 8)"]
    # The meter's activations, a quarter of them at 512 px, half without the class images; half the LoRA's 0.3 GB.
    assert advice[0].endswith("about 7.3 GB less (enough on its own)") and advice[1].endswith("about 4.8 GB less (enough on its own)")
    assert advice[2].endswith("about 0.2 GB less"), advice


def test_where_no_one_cut_closes_the_gap_that_is_said(tmp_path: Path) -> None:
    """Each cut read as if it would do: the advice said nothing of needing several."""
    from engine.memory.cuts import cuts_text, fit_cuts

    profile = tiny_profile(tmp_path, training={"method": "lora", "lora": {"rank": 32}, "train_batch_size": 2},
                           optimizer={"name": "adamw8bit"}, model={"pretrained": "builtin:tiny-sd1", "quantize": "nf4"},
                           precision={"mixed_precision": "fp16", "gradient_checkpointing": True},
                           dataset={"resolution": 1024, "cache_latents": True})
    estimate = MemoryEstimate(weights=int(1.61 * GIB), gradients=0, optimizer_state=int(0.01 * GIB),
                              activations=int(6 * GIB), caches=0, autocast_weight_copies=0, peak_phase="backward",
                              model="m", batch=2, height=1024, width=1024, seconds=0.0)
    cuts = fit_cuts(profile, estimate, 3 * GIB) or []
    assert cuts and not any(cut.enough for cut in cuts)
    assert cuts_text(cuts, 3).endswith("no one of these alone is known to bring it under 3 GB: take several")


def test_the_fused_step_and_a_smaller_batch_are_said_as_alternatives(tmp_path: Path) -> None:
    """sd15-style-native.toml listed "lower training.train_batch_size to 1 and raise gradient_accumulation_steps to
    match" beside the fused step "with gradient_accumulation_steps = 1": following both, validate refuses the profile."""
    advice = memory_advice(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"},
                                        training={"train_batch_size": 2, "gradient_accumulation_steps": 2}))
    entries = advice.split("; ")
    both = [entry for entry in entries if "fused_backward" in entry or "train_batch_size" in entry]
    assert len(both) == 1 and both[0].startswith("either fuse the optimizer step"), entries
    assert ", or instead lower training.train_batch_size to 1 and raise gradient_accumulation_steps" in both[0]
    # Alone, the batch tip is said as before.
    lean = memory_advice(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}, optimizer={"fused_backward": True},
                                      training={"train_batch_size": 2}))
    assert "; lower training.train_batch_size to 1 and raise" in lean and "or instead lower" not in lean


def test_a_cut_that_shrinks_only_the_previews_is_said_at_them(tmp_path: Path) -> None:
    """sd15-style-native.toml on an 8 GB card: its steps miss it by 2.4 GB, its previews by 0.06 GB, and "generate
    fewer images at once" was said to take "up to 0.0 GB less", by the steps it does not touch."""
    from engine.memory.cuts import cuts_text, fit_cuts

    profile = tiny_profile(tmp_path, precision={"mixed_precision": "fp16", "gradient_checkpointing": True},
                           optimizer={"name": "adamw8bit"}, sampling={"num_images": 2}, evaluation={"enabled": False})
    estimate = MemoryEstimate(weights=int(3.2 * GIB), gradients=int(3.2 * GIB), optimizer_state=int(1.63 * GIB),
                              activations=int(0.73 * GIB), caches=0, autocast_weight_copies=int(0.21 * GIB),
                              peak_phase="backward", model="m", batch=2, height=512, width=512, seconds=0.0,
                              sampling=int(6.64 * GIB))
    fewer = [cut for cut in fit_cuts(profile, estimate, 8 * GIB) or [] if "sampling.num_images" in cut.saver.tip]
    assert fewer and fewer[0].saved > 0.1 * GIB
    assert "(sampling.num_images = 1), up to 2.0 GB less at the previews" in cuts_text(fewer, 8)


def test_bf16_weights_and_a_lora_are_said_as_alternatives(tmp_path: Path, monkeypatch, capsys) -> None:
    """sd15-style-native.toml on an 8 GB card was told "keep the weights in bf16 (… precision.bf16_weights = true …)",
    "train a LoRA instead (training.method = "lora")" and "take several": following both, validate refuses bf16 weights
    for a LoRA."""
    advice = memory_advice(tiny_profile(tmp_path, precision={"mixed_precision": "bf16"}))
    both = [entry for entry in advice.split("; ") if "bf16_weights" in entry or 'method = "lora"' in entry]
    assert len(both) == 1 and both[0].startswith("either keep the weights in bf16"), advice
    assert ', or instead train a LoRA (training.method = "lora")' in both[0]
    out = _fit_estimate_only(tmp_path, monkeypatch, capsys, 9.5, precision="bf16")
    told = out.split("to need less: ")[1].split("\n")[0]
    assert told.count("either keep the weights in bf16") == 1 and ', or instead train a LoRA (training.method = "lora")' in told
