"""A diffusers folder that lacks a part training reads (a partial download or copy) is refused before any part loads,
by name, where the model is checked: `dbtui validate`, `dbtui run`, the wizard's model step and the load itself. A
Flux folder without T5's tokenizer files was trained on captions read as unknown tokens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Static

from dbtui.app import make_app
from dbtui.engine_facade import RealEngine
from dbtui.session import Session
from engine.model_info import describe_model
from engine.models.flux import Flux
from engine.models.folder_parts import ModelPartMissingError, missing_parts
from engine.models.loading import load_components
from engine.models.parts import ModelNotFoundError
from engine.profile_checks import check_profile
from engine.runs.inputs_check import RunInputsMissingError, check_inputs
from tests.training_helpers import tiny_profile
from wizard_steps import at_step, until


def _without(model: Path, tmp_path: Path, part: str) -> Path:
    folder = tmp_path / f"without-{part.replace('/', '-')}"
    shutil.copytree(model, folder)
    target = folder / part
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    return folder


def test_a_flux_folder_without_t5_tokenizer_files_is_refused_not_read_as_an_empty_vocabulary(tiny_flux: Path,
                                                                                            tmp_path: Path) -> None:
    # tokenizer_config.json alone: transformers would build a T5 tokenizer of 4 tokens, and say nothing.
    folder = _without(tiny_flux, tmp_path, "tokenizer_2/tokenizer.json")
    with pytest.raises(ModelNotFoundError, match=r"no T5 tokenizer in .*tokenizer_2.*spiece\.model nor tokenizer\.json"):
        Flux().load(folder, vae=None, tokenizer=None)


@pytest.mark.parametrize("part", ["transformer", "vae", "scheduler", "text_encoder", "text_encoder_2", "tokenizer_2"])
def test_a_flux_folder_missing_a_part_is_refused_by_name_before_anything_loads(tiny_flux: Path, tmp_path: Path, part: str,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _without(tiny_flux, tmp_path, part)
    [said] = missing_parts(folder)
    assert said.startswith(f"{part}/ ")
    monkeypatch.setattr(Flux, "load", lambda *a, **k: pytest.fail("a part loaded"))
    with pytest.raises(ModelPartMissingError, match=f"lacks {part}/"):
        load_components(folder)
    profile = tiny_profile(tmp_path, model={"pretrained": str(folder)}, training={"method": "lora"})
    # `dbtui validate` and the wizard's review: what this machine lacks; `dbtui run`: refused before its folder is made.
    assert [(p.key, f"lacks {part}/" in p.message) for p in check_profile(profile).missing_here] == [("model.pretrained", True)]
    with pytest.raises(RunInputsMissingError, match=f"lacks {part}/"):
        check_inputs(profile)
    # The wizard's model step: ✗ with what is missing, not ✓.
    described = describe_model(str(folder))
    assert not described.supported and f"lacks {part}/" in described.family


def test_an_sd_folder_without_its_unet_is_refused_and_overrides_stand_for_their_parts(tiny_sd1: Path, tmp_path: Path) -> None:
    assert missing_parts(tiny_sd1) == []
    assert missing_parts(_without(tiny_sd1, tmp_path, "unet"))[0].startswith("unet/ ")
    # model.vae and model.tokenizer replace the folder's own VAE and CLIP tokenizer: not missing then.
    lacking = _without(_without(tiny_sd1, tmp_path, "vae"), tmp_path / "more", "tokenizer")
    assert [said.split()[0] for said in missing_parts(lacking)] == ["vae/", "tokenizer/"]
    assert missing_parts(lacking, vae=str(tiny_sd1 / "vae"), tokenizer=str(tiny_sd1)) == []


def test_a_part_whose_weights_did_not_come_is_missing_and_sharded_weights_are_there(tiny_sd1: Path, tiny_flux: Path,
                                                                                    tmp_path: Path) -> None:
    # A partial download often has each part's small config and not its large weights: the load failed on them.
    for part, weights in [("unet", "diffusion_pytorch_model"), ("text_encoder", "model")]:
        folder = _without(tiny_sd1, tmp_path / part, f"{part}/{weights}.safetensors")
        [said] = missing_parts(folder)
        assert said.startswith(f"{part}/ ") and f"{weights}.safetensors or" in said
        with pytest.raises(ModelPartMissingError, match=f"lacks {part}/"):
            load_components(folder)
    # T5 in shards, as FLUX.1-dev's text_encoder_2/ is: its index stands for the weights.
    sharded = _without(tiny_flux, tmp_path / "sharded", "text_encoder_2/model.safetensors")
    (sharded / "text_encoder_2" / "model.safetensors.index.json").write_text("{}")
    assert missing_parts(sharded) == []


def test_a_clip_tokenizer_copied_without_its_merges_is_missing(tiny_sd1: Path, tmp_path: Path) -> None:
    # vocab.json alone: the load failed, "`vocab` and `merges` must be both be from memory or both filenames".
    folder = _without(tiny_sd1, tmp_path, "tokenizer/tokenizer.json")
    (folder / "tokenizer" / "merges.txt").unlink(missing_ok=True)  # the builtin writes both, for transformers 4
    (folder / "tokenizer" / "vocab.json").write_text("{}")
    assert missing_parts(folder) == ["tokenizer/ (its CLIPTokenizer's merges.txt or tokenizer.json)"]
    (folder / "tokenizer" / "merges.txt").write_text("")
    assert missing_parts(folder) == []


async def test_the_wizard_s_model_step_lets_an_opened_profile_s_model_vae_stand_for_the_folder_s_vae(
        tiny_sd1: Path, tmp_path: Path) -> None:
    # `dbtui validate` and the run take model.vae for the missing vae/: the model step said ✗ and held Next.
    session = Session.for_demo()
    session.set("model.pretrained", str(_without(tiny_sd1, tmp_path, "vae")))
    session.set("model.vae", str(tiny_sd1 / "vae"))
    app = make_app(RealEngine(), session, image_renderer="none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_step(app, pilot, 1, "ModelScreen")
        await until(pilot, lambda: screen.checking is None)
        assert "✓ diffusers folder: Stable Diffusion 1.x" in str(screen.query_one("#model-family", Static).render())
        assert screen.leave_problem() is None


def test_a_part_folder_this_user_may_not_enter_is_said_not_a_crash(tiny_sd1: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.11's is_file raises PermissionError inside a folder of mode 700 of another user's: validate and the
    run crashed on it (root reads through any mode, so the refusal comes from a stand-in, as the OS answers a user)."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_sd1, folder)
    _may_not_enter(folder / "unet", monkeypatch)
    assert missing_parts(folder) == ["unet/ (which this user cannot read: Permission denied)"]
    with pytest.raises(ModelPartMissingError, match=r"cannot read: Permission denied\): let this user read it "
                                                    r"\(`chmod -R a\+rX") as raised:
        load_components(folder)
    assert "lacks" not in str(raised.value) and "copy" not in str(raised.value)  # it is there: said so, it was copied again


def _may_not_enter(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``folder`` as this user sees another user's of mode 700: what is in it cannot even be stat'ed."""
    import errno

    from tests.runs_helpers import stat_fails_inside

    stat_fails_inside(monkeypatch, folder, lambda path: PermissionError(errno.EACCES, "Permission denied", str(path)))


def test_a_model_folder_this_user_may_not_enter_is_said_not_a_crash(tiny_sd1: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole model folder another user's, of mode 700: validate, the run's checks and the wizard's model step
    crashed on its model_index.json's is_file (the part check's words are for a folder inside it)."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_sd1, folder)
    _may_not_enter(folder, monkeypatch)
    said = f"this user may not read the model folder '{folder}' (Permission denied): let it (`chmod -R a+rX {folder}`"
    assert describe_model(str(folder)).family.startswith(said) and not describe_model(str(folder)).supported
    checks = check_profile(tiny_profile(tmp_path, model={"pretrained": str(folder)}))
    assert [problem.message[:len(said)] for problem in checks.missing_here] == [said]
