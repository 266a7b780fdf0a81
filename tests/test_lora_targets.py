"""LoRA target names are checked against the loaded models before any class image or cache is made."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from engine.data.decoded_record import DecodedRecord
from engine.training.lora_targets import LoraTargetsError, check_lora_targets


class _Attention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.to_q = torch.nn.Linear(4, 4)
        self.to_out = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Dropout()])


class _Denoiser(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv_in = torch.nn.Conv2d(4, 4, 1)
        self.blocks = torch.nn.ModuleList([_Attention(), _Attention()])


class _Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(4, 4)


def _lora(unet_targets: list[str] | None, text_encoder_targets: list[str]) -> SimpleNamespace:
    return SimpleNamespace(unet_targets=unet_targets, text_encoder_targets=text_encoder_targets)


def test_targets_that_match_a_module_by_name_or_dotted_suffix_pass() -> None:
    check_lora_targets(_Denoiser(), [_Encoder()], _lora(["to_q", "to_out.0", "blocks.1.to_q"], ["q_proj"]))
    check_lora_targets(_Denoiser(), [], _lora(None, ["not_checked_without_a_trained_encoder"]))


def test_each_unmatched_target_is_named_under_its_key_with_the_layers_there_are() -> None:
    with pytest.raises(LoraTargetsError) as caught:
        check_lora_targets(_Denoiser(), [_Encoder()], _lora(["to_q", "nonexistent_layer", "to_out"], ["q_proj", "k_proj"]))
    message = str(caught.value)
    # "to_out" names the list that holds to_out.0: peft cannot wrap a container either.
    assert message.startswith("training.lora.unet_targets: 'nonexistent_layer', 'to_out' match no module")
    assert "end in conv_in, to_q, to_out.0;" in message  # linear and convolution layers, in order, an index kept with its name
    assert "training.lora.text_encoder_targets: 'k_proj' matches no module of the model; the layers LoRA can train there end in q_proj" in message


def test_a_run_with_an_unmatched_target_stops_after_the_load_before_any_cache(tmp_path) -> None:
    from engine.runs.in_process import train
    from engine.runs.sinks import read_events
    from tests.training_helpers import tiny_profile

    profile = tiny_profile(tmp_path, training={"method": "lora", "max_train_steps": 2, "train_text_encoder": True,
                                               "lora": {"text_encoder_targets": ["q_proj", "qkv"]}})
    with pytest.raises(LoraTargetsError, match="^training.lora.text_encoder_targets: 'qkv' matches no module"):
        train(profile, tmp_path / "run")
    # The images' decode record, written before the load, is all the cache holds: no latent or embedding was made.
    cache = tmp_path / "run" / "cache"
    assert list(cache.rglob("*")) == [DecodedRecord.of_run(tmp_path / "run").path]
    [failed] = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e.kind == "run_failed"]
    assert "'qkv' matches no module" in failed.reason and "a bug" not in failed.advice


def test_a_flux_lora_on_a_layer_the_kohya_format_cannot_hold_is_refused_before_training(tmp_path, tiny_flux) -> None:
    """Targeting "linear" reached norm_out.linear: the run trained to the end, then failed at the kohya export."""
    from diffusers import FluxTransformer2DModel

    from engine.models.registry import family_of
    from engine.training.trainable import check_lora_targets_of
    from tests.training_helpers import tiny_profile

    family = family_of(tiny_flux)
    transformer = FluxTransformer2DModel.from_pretrained(tiny_flux, subfolder="transformer")
    components = SimpleNamespace(family=family, unet=transformer, text_encoders=[])

    def profile(export: list[str]):
        return tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"}, saving={"export": export},
                            training={"method": "lora", "lora": {"unet_targets": ["to_q", "linear"]}})

    with pytest.raises(LoraTargetsError, match=r"LoRA would train norm_out\.linear, which the kohya/ComfyUI format"):
        check_lora_targets_of(components, profile(["lora_diffusers", "lora_kohya"]))
    check_lora_targets_of(components, profile(["lora_diffusers"]))  # the diffusers format holds any layer
    assert family.kohya_unplaced(["transformer_blocks.0.attn.to_q", "proj_out"]) == []


def test_a_text_encoder_lora_on_an_embedding_is_refused_before_training_when_kohya_is_exported(tmp_path, tiny_sd1) -> None:
    """peft's lora_embedding_A/B of CLIP's token embedding went into the kohya file under names no WebUI loads."""
    from engine.builtin.tiny_model import build_pipeline
    from engine.models.registry import family_of
    from engine.training.trainable import check_lora_targets_of
    from tests.training_helpers import tiny_profile

    pipe = build_pipeline(seed=0)
    components = SimpleNamespace(family=family_of(tiny_sd1), unet=pipe.unet, text_encoders=[pipe.text_encoder])

    def profile(export: list[str]):
        return tiny_profile(tmp_path, saving={"export": export}, training={
            "method": "lora", "train_text_encoder": True, "lora": {"text_encoder_targets": ["q_proj", "token_embedding"]}})

    with pytest.raises(LoraTargetsError, match=r"^training\.lora\.text_encoder_targets: LoRA would train "
                                               r"(text_model\.)?embeddings\.token_embedding, which the kohya/ComfyUI format .*"
                                               r"leave the embedding layers out of them, or export lora_diffusers only$"):
        check_lora_targets_of(components, profile(["lora_diffusers", "lora_kohya"]))
    check_lora_targets_of(components, profile(["lora_diffusers"]))


def _flux_kohya_profile(tmp_path, export: list[str]):
    from tests.training_helpers import tiny_profile

    return tiny_profile(tmp_path, model={"pretrained": "builtin:tiny-flux"}, saving={"export": export},
                        training={"method": "lora", "lora": {"unet_targets": ["to_q", "linear"]}})


def test_flux_targets_the_kohya_format_cannot_hold_are_refused_before_the_model_loads(tmp_path) -> None:
    """validate passed them and `run` refused them only once the base model had loaded (minutes for Flux.1)."""
    from engine.profile_checks import check_profile
    from engine.runs.inputs_check import RunInputsMissingError, check_inputs

    errors = check_profile(_flux_kohya_profile(tmp_path, ["lora_diffusers", "lora_kohya"])).errors
    assert [p.key for p in errors] == ["training.lora.unet_targets"]
    assert "LoRA would train norm_out.linear" in errors[0].message and "export lora_diffusers only" in errors[0].message
    with pytest.raises(RunInputsMissingError, match=r"norm_out\.linear"):
        check_inputs(_flux_kohya_profile(tmp_path, ["lora_diffusers", "lora_kohya"]))
    assert check_profile(_flux_kohya_profile(tmp_path, ["lora_diffusers"])).errors == []


def test_an_export_asking_lora_kohya_of_such_a_flux_lora_is_refused_before_the_model_loads(tmp_path) -> None:
    from engine.runs.export import ExportFormatError, _check_formats
    from engine.runs.folder import RunFolder

    folder = RunFolder(tmp_path / "run")
    with pytest.raises(ExportFormatError, match=r"lists lora_kohya, which cannot hold this run's LoRA .*norm_out\.linear.*remove lora_kohya"):
        _check_formats(_flux_kohya_profile(tmp_path, ["lora_diffusers", "lora_kohya"]), folder, "flux", "then again")
    _check_formats(_flux_kohya_profile(tmp_path, ["lora_diffusers"]), folder, "flux", "then again")


def _embedding_kohya_profile(tmp_path, model: str, export: list[str]):
    from tests.training_helpers import tiny_profile

    return tiny_profile(tmp_path, model={"pretrained": model}, saving={"export": export}, training={
        "method": "lora", "train_text_encoder": True, "lora": {"text_encoder_targets": ["q_proj", "token_embedding"]}})


@pytest.mark.parametrize(("model", "family"), [("builtin:tiny-sd1", "sd"), ("builtin:tiny-sdxl", "sdxl"),
                                               ("builtin:tiny-flux", "flux")])
def test_text_encoder_targets_on_an_embedding_are_refused_for_kohya_before_the_model_loads(tmp_path, model, family) -> None:
    """validate passed them, and run and export refused them only once the base model had loaded."""
    from engine.profile_checks import check_profile
    from engine.runs.export import ExportFormatError, _check_formats
    from engine.runs.folder import RunFolder
    from engine.runs.inputs_check import RunInputsMissingError, check_inputs

    kohya = _embedding_kohya_profile(tmp_path, model, ["lora_diffusers", "lora_kohya"])
    errors = check_profile(kohya).errors
    assert [p.key for p in errors] == ["training.lora.text_encoder_targets"]
    assert re.search(r"LoRA would train (text_model\.)?embeddings\.token_embedding, .*leave the embedding layers out",
                     errors[0].message)
    with pytest.raises(RunInputsMissingError, match=r"embeddings\.token_embedding"):
        check_inputs(kohya)
    with pytest.raises(ExportFormatError, match=r"lists lora_kohya, which cannot hold .*token_embedding.*remove lora_kohya"):
        _check_formats(kohya, RunFolder(tmp_path / "run"), family, "then again")
    assert check_profile(_embedding_kohya_profile(tmp_path, model, ["lora_diffusers"])).errors == []


def test_validate_warns_of_text_encoder_targets_while_the_text_encoder_stays_frozen(capsys) -> None:
    """Targets written for the text encoders, train_text_encoder left false: the run trained the UNet's LoRA alone
    and nothing said the targets went unread."""
    from pathlib import Path

    from dbtui.cli import main

    demo = str(Path(__file__).parents[1] / "profiles" / "tiny-demo.toml")
    lora = ["--set", 'training.method="lora"', "--set", 'saving.export=["lora_diffusers"]']
    targets = ["--set", 'training.lora.text_encoder_targets=["q_proj", "v_proj"]']
    assert main(["validate", demo, *lora, *targets]) == 0
    assert ("warning: --set training.lora.text_encoder_targets=[\"q_proj\", \"v_proj\"]: only applies when "
            "training.train_text_encoder = true") in capsys.readouterr().out
    assert main(["validate", demo, *lora, *targets, "--set", "training.train_text_encoder=true"]) == 0
    assert "text_encoder_targets" not in capsys.readouterr().out
    # The wizard writes the default targets into every LoRA profile: those are no sign of a wish to train the encoders.
    assert main(["validate", demo, *lora, "--set", "training.lora.rank=4"]) == 0
    assert "text_encoder_targets" not in capsys.readouterr().out
