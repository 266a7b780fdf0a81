"""`dataset check --profile` reads the class folder's own images as the run does: one it cannot decode is an error."""

from __future__ import annotations

from pathlib import Path

from dataset_fixture import textured

from engine.dataset import check_dataset


def test_a_damaged_picture_of_the_class_folder_is_an_error_not_a_class_image_present(tmp_path: Path) -> None:
    """The check said '0 error(s)' and counted the picture among the class images present; the run then failed on it
    after the caching pass ('1 image file(s) cannot be decoded'), told to run the very check that had passed it."""
    instance, classes = tmp_path / "dog", tmp_path / "class"
    for folder in (instance, classes):
        folder.mkdir()
        for i in range(2):
            textured(i, (64, 64)).save(folder / f"{i}.png")
    whole = (classes / "0.png").read_bytes()
    (classes / "cut.png").write_bytes(whole[: len(whole) // 2])
    report = check_dataset(instance, resolution=64, workers=1, class_dir=classes, num_class_images=3)
    errors = [(Path(f.path).name, f.code) for f in report.findings if f.severity == "error"]
    assert errors == [("cut.png", "truncated")]
    assert report.has_errors


def test_images_generated_at_another_guidance_are_not_said_reused_when_the_profile_sets_none(tmp_path: Path) -> None:
    """With prior.guidance_scale unset the check matched a set made at guidance 5 and said '0 to generate'; the run,
    at the family's usual 7.5, generated every image again."""
    from engine.dataset.profile_settings import concept_settings
    from engine.training.class_images import ClassRequest, _write_manifest, generated_folder, settings_of
    from engine.training.model_weights import model_settings
    from tests.training_helpers import tiny_profile

    classes = tmp_path / "class"
    profile = tiny_profile(tmp_path, prior={"enabled": True}, concepts=[{
        "instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_dir": str(classes),
        "class_prompt": "photo of a disc", "num_class_images": 2}])
    request = ClassRequest(0, classes, "photo of a disc", "", 2)
    for guidance in (5.0, 7.5):
        settings = settings_of(request, model=model_settings(profile.model), resolution=64, seed=7, steps=profile.prior.steps,
                               guidance=guidance)
        made = generated_folder(classes, settings)
        made.mkdir(parents=True)
        (made / "class_00000.png").write_bytes(b"")
        _write_manifest(made, settings, ["class_00000.png"])
        found = concept_settings(profile, 0)["class_generated"]
        assert found == ((made, 1) if guidance == 7.5 else (None, 0))


def test_a_run_refused_for_a_class_image_whose_header_cannot_be_read_ends_its_sentence_once(tmp_path: Path) -> None:
    """The problem's own message ends with a full stop, and the refusal added another: '…decodes them).. `dbtui
    validate PROFILE` lists these too.'"""
    import pytest

    from engine.runs.inputs_check import RunInputsMissingError, check_inputs
    from tests.training_helpers import tiny_profile

    classes = tmp_path / "class"
    classes.mkdir()
    (classes / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    profile = tiny_profile(tmp_path, prior={"enabled": True}, concepts=[{
        "instance_dir": "builtin:demo-instance", "instance_prompt": "photo of zwx disc", "class_dir": str(classes),
        "class_prompt": "photo of a disc", "num_class_images": 2}])
    with pytest.raises(RunInputsMissingError, match="bad.jpg") as refused:
        check_inputs(profile)
    assert ".." not in str(refused.value) and str(refused.value).endswith(". `dbtui validate PROFILE` lists these too.")
