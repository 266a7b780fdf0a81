"""The dataset doctor on Flux: captions measured against T5's 512 tokens (past it: an error) and CLIP-L's
77 (past it: a note, since T5 still reads the rest), through the model's family; SD keeps CLIP's warning."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dbtui.cli import main
from engine.dataset import check_concept, check_dataset, load_readers
from engine.profile.schema import Profile

# The tiny Flux's CLIP-L has CLIP's real vocabulary ("red" is one token); its T5 spells words letter by
# letter after a word mark ("red" is 4 tokens). 80 words: past CLIP-L's 75, within T5's 511.
LONG_FOR_CLIP = "photo of zwx disc, " + " ".join(["red"] * 80)
LONG_FOR_T5 = "photo of zwx disc, " + " ".join(["red"] * 130)


@pytest.fixture(scope="module")
def captioned(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three demo images: a short caption, one CLIP-L cuts, one T5 cuts."""
    folder = tmp_path_factory.mktemp("captioned")
    images = sorted((demo_data / "instance").glob("*.png"))[:3]
    for image, caption in zip(images, ("photo of zwx disc", LONG_FOR_CLIP, LONG_FOR_T5)):
        shutil.copy(image, folder / image.name)
        (folder / image.name).with_suffix(".txt").write_text(caption)
    return folder


def profile(model: str, folder: Path, prompt: str = "photo of zwx disc", mode: str = "caption_file") -> Profile:
    return Profile(model={"pretrained": model},
                   concepts=[{"instance_dir": str(folder), "instance_prompt": prompt, "caption_mode": mode,
                              "class_prompt": "photo of a disc"}],
                   dataset={"resolution": 64})


def caption_findings(report, folder: Path) -> dict[str, list[tuple[str, str, str]]]:
    """{caption: [(code, severity, message)]} for the caption-length findings of each image."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for finding in report.findings:
        if finding.code in ("caption_too_long", "caption_partly_read") and Path(finding.path).parent == folder:
            caption = Path(finding.path).with_suffix(".txt").read_text()
            found.setdefault(caption, []).append((finding.code, finding.severity, finding.message))
    return found


def test_flux_captions_are_measured_against_t5_and_clip_l(captioned: Path) -> None:
    report = check_concept(profile("builtin:tiny-flux", captioned), workers=1)
    found = caption_findings(report, captioned)
    assert "photo of zwx disc" not in found
    [(code, severity, message)] = found[LONG_FOR_CLIP]  # a note from CLIP-L, nothing from T5
    assert (code, severity) == ("caption_partly_read", "info")
    assert "CLIP-L reads 75, so it only sees the start (T5 reads it all)" in message
    t5 = {code: (severity, message) for code, severity, message in found[LONG_FOR_T5]}
    assert set(t5) == {"caption_partly_read", "caption_too_long"}
    severity, message = t5["caption_too_long"]
    assert severity == "error" and "T5 reads 511, so this is cut" in message
    cut = message.split("“")[1].rstrip("”")
    assert LONG_FOR_T5.endswith(cut) and 0 < len(cut.split()) < 10  # 131 words past the 511 tokens' 127
    assert report.has_errors


def test_a_long_instance_prompt_is_a_note_for_flux_and_a_warning_for_sd(captioned: Path, tiny_sd1: Path) -> None:
    flux = check_concept(profile("builtin:tiny-flux", captioned, prompt=LONG_FOR_CLIP, mode="instance_prompt"), workers=1)
    [note] = [f for f in flux.findings if f.path == str(captioned) and f.code.startswith("caption_")]
    assert note.severity == "info" and "over CLIP-L's 75" in note.message and "reaches T5 only" in note.message
    sd = check_concept(profile(str(tiny_sd1), captioned, prompt=LONG_FOR_CLIP, mode="prompt_then_caption_file"), workers=1)
    [warning] = [f for f in sd.findings if f.path == str(captioned) and f.code.startswith("caption_")]
    assert (warning.code, warning.severity) == ("caption_too_long", "warning") and "over 75" in warning.message
    # SD's captions (the prompt, then each caption file): one check against CLIP's window, a warning for each.
    found = caption_findings(sd, captioned)
    assert {caption: [(c, s) for c, s, _ in items] for caption, items in found.items()} == {
        caption: [("caption_too_long", "warning")] for caption in ("photo of zwx disc", LONG_FOR_CLIP, LONG_FOR_T5)}


def test_the_family_names_the_tokenizers_the_doctor_reads(tiny_sd1: Path) -> None:
    flux = load_readers("builtin:tiny-flux")
    assert [(r.reader.name, r.reader.severity) for r in flux] == [("CLIP-L", "info"), ("T5", "error")]
    assert [r.overflow("red " * 600).limit for r in flux] == [75, 511]
    [sd] = load_readers(str(tiny_sd1))
    assert (sd.reader.name, sd.reader.severity, sd.overflow("red " * 600).limit) == ("the text encoder", "warning", 75)


def test_a_flux_folder_without_its_t5_tokenizer_says_what_to_copy(tiny_flux: Path, tmp_path: Path) -> None:
    """The check reads T5's tokenizer with the run's own loader: transformers' error on converting a slow tokenizer was
    shown where the folder lacked one."""
    from engine.dataset import TokenizerError

    partial = tmp_path / "flux"
    shutil.copytree(tiny_flux, partial, ignore=shutil.ignore_patterns("tokenizer_2", "text_encoder_2", "transformer"))
    with pytest.raises(TokenizerError, match="copy the model's tokenizer_2/ folder there"):
        load_readers(str(partial))


def test_dataset_check_with_a_flux_model_fails_on_a_caption_t5_cuts(captioned: Path, capsys) -> None:
    code = main(["dataset", "check", str(captioned), "--model", "builtin:tiny-flux", "--caption-mode", "caption_file",
                 "--resolution", "64", "--workers", "1", "--all"])
    out = capsys.readouterr().out
    assert code == 1 and "T5 reads 511" in " ".join(out.split()) and "CLIP-L reads 75" in " ".join(out.split())
    report = check_dataset(captioned, resolution=64, caption_mode="caption_file", readers=load_readers("builtin:tiny-flux"),
                           workers=1)
    assert sum(f.severity == "error" for f in report.findings) == 1


def test_dataset_check_with_a_model_judges_sizes_at_that_models_own_resolution(captioned: Path, tiny_sd1: Path, capsys) -> None:
    """The tiny SD1 model trains at 64 px: its check says nothing of 512 px unless --resolution asks."""
    main(["dataset", "check", str(captioned), "--model", str(tiny_sd1), "--workers", "1", "--all"])
    assert "512 px" not in capsys.readouterr().out
    main(["dataset", "check", str(captioned), "--model", str(tiny_sd1), "--resolution", "512", "--workers", "1"])
    assert "512 px" in capsys.readouterr().out
