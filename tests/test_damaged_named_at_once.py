"""A folder holding an image whose header cannot be read and one cut short past its header: a run named the first kind,
and the second only at the next try, where `dbtui dataset check` names both. One try names every damaged picture."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from dataset_fixture import textured

from engine.data.images import DataError
from engine.runs.inputs_check import RunInputsMissingError, check_inputs
from tests.training_helpers import tiny_profile


def _folder(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(2):
        textured(seed, (64, 64)).save(photos / f"good_{seed}.png")
    (photos / "a_text.jpg").write_text("not a picture", encoding="utf-8")
    jpeg = io.BytesIO()
    textured(9, (256, 256)).save(jpeg, "JPEG")
    (photos / "z_cut.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    return photos


def _profile(tmp_path: Path):
    return tiny_profile(tmp_path, concepts=[{"instance_dir": str(_folder(tmp_path)), "instance_prompt": "zwx"}])


def test_the_trainers_decode_pass_names_both_kinds_at_once(tmp_path: Path) -> None:
    from engine.data.decoding import check_training_images

    profile = _profile(tmp_path)
    events: list = []
    with pytest.raises(DataError, match="1 image file\\(s\\) cannot be read as pictures: .*a_text.jpg.*1 more cannot be "
                                        "decoded .*z_cut.jpg.*before the model loads") as raised:
        check_training_images(profile, [tmp_path / "photos"], [None], events.append)
    assert "also finds images damaged past their header" not in str(raised.value)  # they were decoded: no such hint
    assert events[0].total == 3  # the two good ones and the cut one decoded; the unreadable one is not tried again


def test_a_run_refused_at_its_start_names_both_kinds_at_once(tmp_path: Path) -> None:
    with pytest.raises(RunInputsMissingError, match="a_text.jpg.*1 more cannot be decoded .*z_cut.jpg"):
        check_inputs(_profile(tmp_path))


def test_the_refusal_does_not_say_validate_lists_the_pictures_cut_short(tmp_path: Path) -> None:
    """It ended "`dbtui validate PROFILE` lists these too", and validate lists no picture cut short past its header."""
    with pytest.raises(RunInputsMissingError) as refused:
        check_inputs(_profile(tmp_path))
    assert str(refused.value).endswith("lists these too, but for the pictures cut short past their header, which it "
                                       "does not decode: `dbtui dataset check FOLDER` names them.")


def test_the_decode_pass_is_told_apart_from_the_headers_read(tmp_path: Path) -> None:
    """The decode pass told the headers' progress, which the CLI labels "checking image headers", its (done, total)."""
    headers: list[tuple[int, int]] = []
    decoded: list[tuple[int, int]] = []
    with pytest.raises(RunInputsMissingError):
        check_inputs(_profile(tmp_path), progress=lambda *told: headers.append(told),
                     decode_progress=lambda *told: decoded.append(told))
    assert headers[-1] == (4, 4) and {total for _, total in headers} == {4}  # every header, and nothing else
    assert decoded[-1] == (3, 3)  # the three whose header reads


def test_validate_still_reads_only_the_headers(tmp_path: Path) -> None:
    """`dbtui validate` (and the wizard's live check) stays fast: no image is decoded there."""
    from engine.dataset.profile_paths import path_problems

    said = " ".join(problem.message for problem in path_problems(_profile(tmp_path)))
    assert "a_text.jpg" in said and "z_cut.jpg" not in said


def test_a_file_named_like_the_message_is_no_picture_cut_short(tmp_path: Path) -> None:
    """The refusal told a picture cut short past its header by the words "cannot be decoded" in the problem's message,
    which names the user's files too: a text file 'cannot be decoded.jpg', and no picture cut short, had the refusal
    say validate lists all "but for the pictures cut short past their header"."""
    photos = tmp_path / "photos"
    photos.mkdir()
    textured(0, (64, 64)).save(photos / "good.png")
    (photos / "cannot be decoded.jpg").write_text("not a picture", encoding="utf-8")
    profile = tiny_profile(tmp_path, concepts=[{"instance_dir": str(photos), "instance_prompt": "zwx"}])
    with pytest.raises(RunInputsMissingError) as refused:
        check_inputs(profile)
    assert str(refused.value).endswith("`dbtui validate PROFILE` lists these too."), str(refused.value)
