"""The doctor's checks: each fires on its case in a generated dataset, and on no clean image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dataset_fixture import CLEAN, EXPECTED, IDENTIFIER, LONG_CAPTION, textured, write_clip_tokenizer_files, write_fixture

from engine.data.buckets import nearest_bucket, standard_buckets
from engine.dataset import DatasetReport, TokenizerError, check_concept, check_dataset, load_tokenizer
from engine.dataset import pool as pool_module
from engine.dataset.tokens import caption_overflow, count_tokens
from engine.events import PhaseFinished, PhaseProgress, PhaseStarted
from engine.profile import Profile

from conftest import SHARED_DATA

needs_vocab = pytest.mark.skipif(not (SHARED_DATA / "clip_bpe_simple_vocab_16e6.txt.gz").exists(),
                                 reason="../shared/data has no CLIP vocabulary")


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("doctor") / "images")


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SHARED_DATA / "clip_bpe_simple_vocab_16e6.txt.gz").exists():
        pytest.skip("../shared/data has no CLIP vocabulary")
    return write_clip_tokenizer_files(SHARED_DATA, tmp_path_factory.mktemp("clip") / "tokenizer")


@pytest.fixture(scope="session")
def clip(clip_dir: Path):
    return load_tokenizer(clip_dir)


@pytest.fixture(scope="session")
def report(fixture_dir: Path, clip) -> DatasetReport:
    return check_dataset(fixture_dir, resolution=512, caption_mode="caption_file", identifier=IDENTIFIER,
                         instance_prompt=f"photo of {IDENTIFIER} dog", tokenizer=clip, workers=1)


def _fired(report: DatasetReport) -> dict[str, set[str]]:
    fired: dict[str, set[str]] = {}
    for finding in report.findings:
        if finding.path != report.folder:
            fired.setdefault(finding.code, set()).add(Path(finding.path).name)
    return fired


@needs_vocab
def test_every_check_fires_on_its_case_and_nowhere_else(report: DatasetReport) -> None:
    assert _fired(report) == EXPECTED
    for name in CLEAN:
        assert report.for_path(str(Path(report.folder) / name)) == []
    # A good identifier and a tokenizer given: the folder's one finding is gray16.png, a grey picture among colour ones.
    assert [f.code for f in report.findings if f.path == report.folder] == ["some_grayscale"]


@needs_vocab
def test_severities_summary_and_buckets(report: DatasetReport, fixture_dir: Path) -> None:
    errors = {Path(f.path).name for f in report.findings if f.severity == "error"}
    assert errors == {"webpage.jpg", "truncated.jpg", "broken_link.jpg", "bomb.png", "uncaptioned.jpg"}
    summary = report.summary
    assert summary.images == 21 and summary.usable == 21 - len(errors)
    assert summary.counts["error"] == len(errors)
    assert summary.suggested_steps == 100 * summary.usable
    readable = [p for p in report.probes if p.ok]
    # uncaptioned.jpg decodes but trains in no bucket: the histogram counts usable images only
    assert len(readable) == summary.usable + 1
    assert sum(summary.buckets.values()) == summary.usable
    wide = next(p for p in readable if p.path.endswith("wide.jpg"))
    assert report.image_buckets[wide.path] == nearest_bucket(1200, 560, standard_buckets(512)) == (704, 320)
    assert summary.buckets[(704, 320)] == 1
    rotated = next(p for p in readable if p.path.endswith("rotated.jpg"))
    assert (rotated.width, rotated.height) == (700, 600)  # as displayed, not as stored
    assert "HTML page" in next(f.message for f in report.findings if f.code == "not_image")


@needs_vocab
def test_long_caption_names_exactly_the_words_that_are_cut(report: DatasetReport, clip) -> None:
    finding = next(f for f in report.findings if f.code == "caption_too_long")
    cut = finding.message.split("“")[1].rstrip("”")
    kept = LONG_CAPTION[: -len(cut)].strip()
    assert LONG_CAPTION.endswith(cut)
    assert count_tokens(clip, kept) <= 75 < count_tokens(clip, f"{kept} {cut.split()[0]}")
    assert caption_overflow(clip, kept) is None


def test_bucketing_replaces_the_square_crop_warning(fixture_dir: Path) -> None:
    report = check_dataset(fixture_dir, resolution=512, bucketing=True, workers=1)
    assert "aspect_crop" not in report.codes(str(fixture_dir / "wide.jpg"))
    assert "too_small" in report.codes(str(fixture_dir / "small.jpg"))
    # The fixture's captions are not read under the default caption mode: said on the folder too.
    assert [f.code for f in report.findings if f.path == report.folder] == ["captions_unused", "some_grayscale",
                                                                          "token_checks_skipped"]


def test_higher_resolution_makes_every_image_too_small(fixture_dir: Path) -> None:
    report = check_dataset(fixture_dir, resolution=1024, workers=1)
    readable = {Path(p.path).name for p in report.probes if p.ok}
    assert _fired(report)["too_small"] == readable


@pytest.fixture
def one_clean_image(tmp_path: Path) -> Path:
    textured(7).save(tmp_path / "a.jpg", quality=95)
    return tmp_path


@needs_vocab
@pytest.mark.parametrize(
    ("identifier", "codes", "detail"),
    [
        ("zwx", {"identifier_splits"}, "(z + wx)"),
        ("dog", {"identifier_common"}, "common word"),
        ("sks", {"identifier_common"}, "guide's example"),
        ("ohwx", set(), ""),
    ],
)
def test_identifier_checks_with_the_real_clip_vocabulary(one_clean_image: Path, clip, identifier, codes, detail) -> None:
    report = check_dataset(one_clean_image, instance_prompt=f"photo of {identifier} dog", identifier=identifier,
                           tokenizer=clip, workers=1)
    folder_findings = [f for f in report.findings if f.path == report.folder]
    assert {f.code for f in folder_findings} == codes
    if codes:
        assert detail in folder_findings[0].message
        assert "ohwx" in folder_findings[0].fix  # a rare single-token suggestion
        assert identifier not in folder_findings[0].fix.split("e.g. ")[1]


def test_the_guides_sks_is_a_poor_identifier_even_without_a_tokenizer(one_clean_image: Path) -> None:
    report = check_dataset(one_clean_image, instance_prompt="photo of sks dog", identifier="sks", workers=1)
    [poor] = [f for f in report.findings if f.code == "identifier_common"]
    assert poor.severity == "warning" and "guide's example" in poor.message


def test_a_control_character_in_a_name_the_caption_mode_trains_on_is_an_error(one_clean_image: Path) -> None:
    """validate and the run refuse such a name under caption_mode 'file_name'; the doctor said nothing of it."""
    textured(8).save(one_clean_image / "zwx\x1b[31mdog.jpg", quality=95)
    report = check_dataset(one_clean_image, caption_mode="file_name", workers=1)
    [refused] = [f for f in report.findings if f.code == "caption_unusable_name"]
    assert Path(refused.path).name == "zwx\x1b[31mdog.jpg" and refused.severity == "error" and "ESC" in refused.message
    assert report.has_errors


@needs_vocab
def test_instance_prompt_without_the_identifier_is_an_error(one_clean_image: Path, clip) -> None:
    report = check_dataset(one_clean_image, instance_prompt="photo of a dog", identifier="ohwx", tokenizer=clip, workers=1)
    assert [(f.code, f.severity) for f in report.findings] == [("prompt_lacks_identifier", "error")]
    assert report.has_errors


@pytest.mark.parametrize("instance_prompt", ["photo of zwx's dog", "photo of zwx’s dog", "photo of zwx' dog",
                                             "photo of zwx’ dog", "photo of 'zwx' dog"])
def test_a_possessive_identifier_is_the_name_without_its_s(one_clean_image: Path, instance_prompt: str) -> None:
    """'photo of zwx's dog' guessed "zwx's" (and with ’ no identifier at all): the doctor then warned that a caption
    'zwx dog' lacked it, and the wizard judged the tokens of "zwx's"."""
    from engine.evaluation.prompts import concept_words
    from engine.profile.identifier import guess_identifier

    assert guess_identifier(instance_prompt, "photo of a dog") == guess_identifier(instance_prompt, None) == "zwx"
    assert concept_words(instance_prompt, "photo of a dog") == ("zwx", "dog")
    (one_clean_image / "a.txt").write_text("zwx dog, sitting")
    profile = Profile(model={"pretrained": "builtin:tiny-sd1"},
                      concepts=[{"instance_dir": str(one_clean_image), "instance_prompt": instance_prompt,
                                 "class_prompt": "photo of a dog", "caption_mode": "caption_file"}])
    report = check_concept(profile, 0, workers=1)
    assert "caption_lacks_identifier" not in {f.code for f in report.findings}
    (one_clean_image / "a.txt").write_text("a dog, sitting")
    report = check_concept(profile, 0, workers=1)
    assert [f.message for f in report.findings if f.code == "caption_lacks_identifier"] == [
        "its caption does not contain the identifier 'zwx'"]


def test_the_style_profile_names_no_identifier_for_the_doctor_to_ask_captions_for(one_clean_image: Path) -> None:
    """profiles/sd15-style-native.toml ("no identifier", README) said instance_prompt = "in zwx style", which no
    caption_file run reads: `dbtui dataset check --profile` then warned of every image that its caption lacks 'zwx',
    advising `dbtui dataset caption --add-tag zwx`."""
    from engine.profile import load_profile

    (one_clean_image / "a.txt").write_text("a lighthouse, painted in bold flat colours")
    shipped = Path(__file__).parents[1] / "profiles" / "sd15-style-native.toml"
    profile = load_profile(shipped, [f"concepts.0.instance_dir={str(one_clean_image)!r}",
                                     'model.pretrained="builtin:tiny-sd1"'])
    assert profile.concepts[0].caption_mode == "caption_file"
    report = check_concept(profile, 0, workers=1)
    assert [f.message for f in report.findings if "identifier" in f.message] == []


def test_empty_folder_and_missing_folder(tmp_path: Path) -> None:
    assert check_dataset(tmp_path, workers=1).findings[0].code == "no_images"
    from engine.dataset import DatasetError

    with pytest.raises(DatasetError, match="not a folder"):
        check_dataset(tmp_path / "nope")


def test_process_pool_gives_the_same_report_and_progress_events(fixture_dir: Path, monkeypatch) -> None:
    serial = check_dataset(fixture_dir, workers=1)
    monkeypatch.setattr(pool_module, "MIN_FILES_FOR_POOL", 1)
    events = []
    parallel = check_dataset(fixture_dir, workers=2, emit=events.append)
    assert parallel.findings == serial.findings and parallel.probes == serial.probes
    assert isinstance(events[0], PhaseStarted) and events[0].total == 21
    assert isinstance(events[-1], PhaseFinished)
    progress = [e for e in events if isinstance(e, PhaseProgress)]
    assert progress and progress[-1].done == progress[-1].total == 21
    assert [e.done for e in progress] == sorted(e.done for e in progress)


@needs_vocab
def test_check_concept_reads_the_profile_and_loads_the_models_tokenizer(fixture_dir: Path, clip_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "tokenizer").mkdir(parents=True)
    for name in ("vocab.json", "merges.txt"):
        (model / "tokenizer" / name).write_bytes((clip_dir / name).read_bytes())
    profile = Profile(
        model={"pretrained": str(model)},
        concepts=[{"instance_dir": str(fixture_dir), "instance_prompt": "photo of zwx dog", "class_prompt": "photo of a dog",
                   "caption_mode": "caption_file_then_prompt", "class_dir": str(tmp_path), "num_class_images": 50}],
        dataset={"resolution": 256},
        prior={"enabled": True},
    )
    report = check_concept(profile, 0)
    assert report.resolution == 256
    # zwx, guessed; and gray16.png among colour pictures
    assert {f.code for f in report.findings if f.path == report.folder} == {"identifier_splits", "some_grayscale"}
    missing = [f for f in report.findings if f.code == "caption_missing"]
    assert [(Path(f.path).name, f.severity) for f in missing] == [("uncaptioned.jpg", "warning")]  # the prompt is used
    assert "too_small" not in {f.code for f in report.findings}  # 300 px is enough at the profile's 256
    assert (report.summary.class_images_wanted, report.summary.class_images_present) == (50, 0)
    assert report.summary.class_images_to_generate == 50


def test_load_tokenizer_explains_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="diffusers model folder"):
        load_tokenizer(tmp_path)
    with pytest.raises(TokenizerError, match=r"^'./sd15' does not exist on this machine: give a diffusers model folder"):
        load_tokenizer("./sd15")  # a path, not told by the hub's rules for repository ids


def test_engine_dataset_imports_no_ui_and_no_torch() -> None:
    code = "import sys, engine.dataset; print(sorted(m for m in ('rich', 'textual', 'torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_letter_by_letter_tokenizer_does_not_judge_the_identifier(tmp_path) -> None:
    """The built-in demo's tokenizer has no merges: every identifier would 'split', and there are
    no one-token words to suggest, so the doctor says it cannot judge instead of advising nothing."""
    from engine.dataset.checks import prompt_findings
    from engine.dataset.tokens import judges_words, load_tokenizer
    from engine.builtin.tiny_model import write_byte_tokenizer

    write_byte_tokenizer(tmp_path / "tok")
    tokenizer = load_tokenizer(tmp_path / "tok")
    assert not judges_words(tokenizer)
    found = prompt_findings("f", caption_mode="instance_prompt", instance_prompt="photo of zwx disc",
                            identifier="zwx", tokenizer=tokenizer)
    assert [f.code for f in found] == ["identifier_not_judged"]
    assert not any(f.fix.rstrip().endswith("e.g.") for f in found)


def test_the_wizard_does_not_judge_identifiers_with_the_demo_model(tiny_sd1) -> None:
    from dbtui.engine_facade import RealEngine

    assert RealEngine().identifier_tokens("builtin:tiny-sd1", "zwx") is None


def test_the_wizard_checks_identifiers_with_a_model_written_with_a_variable(tiny_sd1, tmp_path: Path, monkeypatch) -> None:
    """The draft's "$MODELS/tiny" (or a$$$$b for the folder a$$b) was looked for under that very name: the dataset
    step said the model "does not exist on this machine" where the Model step had just found it."""
    import shutil

    from dbtui.engine_facade import RealEngine

    shutil.copytree(tiny_sd1, tmp_path / "a$$b")
    monkeypatch.setenv("MODELS", str(tiny_sd1.parent))
    for written in (f"$MODELS/{tiny_sd1.name}", str(tmp_path / "a$$$$b")):
        assert RealEngine().identifier_tokens(written, "zwx") is None


def test_plain_images_of_different_colours_are_not_near_duplicates_and_real_copies_are(tmp_path: Path) -> None:
    from PIL import Image

    for name, colour in (("red", (220, 30, 30)), ("grey", (128, 128, 128)), ("blue", (20, 40, 200))):
        Image.new("RGB", (256, 256), colour).save(tmp_path / f"{name}.png")
    textured(3, (256, 256)).save(tmp_path / "photo.png")
    textured(3, (256, 256)).save(tmp_path / "photo-copy.jpg", quality=85)
    report = check_dataset(tmp_path, resolution=256, workers=1)
    duplicates = {Path(f.path).name for f in report.findings if f.code == "near_duplicate"}
    assert duplicates == {"photo.png", "photo-copy.jpg"}


def test_a_pasted_page_of_caption_is_quoted_short() -> None:
    """A 960-token caption used to fill the report's table with its whole cut text."""
    from engine.dataset.checks import QUOTED_CHARS, _long_text
    from engine.dataset.tokens import Overflow
    from engine.models.family import CLIP_READER

    cut = " ".join(f"word{i}" for i in range(900))
    _, _, message, _ = _long_text(CLIP_READER, Overflow(tokens=960, limit=77, cut=cut), prompt=False)
    quoted = message.split("“")[1].rstrip("”")
    assert quoted.startswith("word0 word1") and quoted.endswith(f"… ({len(cut):,} characters)")
    assert len(quoted) < QUOTED_CHARS + 30


def test_a_cameras_mpo_jpeg_is_one_picture_not_an_animation(tmp_path: Path) -> None:
    from PIL import Image

    photo = textured(3, (96, 96))
    photo.save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[photo.resize((32, 32))])
    report = check_dataset(tmp_path, workers=1)
    assert "animated" not in {f.code for f in report.findings}
    with Image.open(tmp_path / "camera.jpg") as opened:
        assert opened.format == "MPO"  # the file is what a camera writes


def test_two_images_of_one_name_sharing_a_caption_file_are_named(tmp_path: Path) -> None:
    textured(1, (96, 96)).save(tmp_path / "a.jpg")
    textured(2, (96, 96)).save(tmp_path / "a.png")
    textured(3, (96, 96)).save(tmp_path / "b.jpg")
    (tmp_path / "a.txt").write_text("dog")
    report = check_dataset(tmp_path, resolution=64, workers=1)
    shared = [f for f in report.findings if f.code == "caption_shared"]
    assert [(Path(f.path).name, f.severity) for f in shared] == [("a.txt", "warning")]
    assert "a.txt is the caption of a.jpg and a.png" in shared[0].message
    assert "rename one (e.g. a.png to a_2.png)" in shared[0].fix


def test_images_of_one_name_with_no_caption_file_are_not_said_to_share_one(tmp_path: Path) -> None:
    """fake.jpg and fake.png were said to share "caption file fake.txt", a file that does not exist."""
    textured(1, (96, 96)).save(tmp_path / "fake.jpg")
    textured(2, (96, 96)).save(tmp_path / "fake.png")
    report = check_dataset(tmp_path, resolution=64, workers=1)
    assert "caption_shared" not in {f.code for f in report.findings}


def test_the_rules_of_thumb_stop_growing_past_a_small_subject_set() -> None:
    """1,220 images were advised 122,000 steps and 48,800 class images: the rules are for about 3–50 images."""
    import io

    from rich.console import Console

    from dbtui.cli.dataset_report_print import print_report
    from engine.dataset.image_probe import ImageProbe
    from engine.dataset.report import summarise

    probes = [ImageProbe(f"/d/{i}.jpg") for i in range(1220)]
    assert (summarise(probes[:12], [], {}, None, None).suggested_steps,
            summarise(probes[:12], [], {}, None, None).class_images_wanted) == (1200, 480)
    summary = summarise(probes, [], {}, None, None)
    assert (summary.suggested_steps, summary.class_images_wanted) == (5000, 2000)
    assert summarise(probes, [], {}, 3000, None).class_images_wanted == 3000  # a profile's own figure stands
    out = io.StringIO()
    print_report(Console(file=out, width=400), DatasetReport("/d", 512, (), summary, tuple(probes), {}), show_info=False)
    said = out.getvalue()
    assert ("Suggested training steps: 5000 (100 per usable image up to 50 images: the rule is for a subject's small "
            "set of about 3–50; set training.max_train_steps: with it and training.num_train_epochs both empty, "
            "training runs 122000 steps)") in said
    assert "2000 wanted (a suggestion: 40 per usable image, at least 100 and at most 2000;" in said


@pytest.mark.parametrize("workers", [-3, 0])
def test_fewer_than_one_worker_is_refused_from_python_as_the_cli_refuses_it(workers: int, fixture_dir: Path,
                                                                               tmp_path: Path) -> None:
    """check_dataset(workers=-3) ran one process and said nothing, where `--workers -3` is refused."""
    from engine.dataset import WorkersError, prepare_dataset

    with pytest.raises(WorkersError, match=f"workers {workers} is not usable: give 1 or more"):
        check_dataset(fixture_dir, workers=workers)
    with pytest.raises(ValueError, match="give 1 or more"):
        prepare_dataset(fixture_dir, tmp_path / "prepared", resolution=64, workers=workers)
    assert not (tmp_path / "prepared").exists()


@pytest.mark.parametrize("blank", [b"\xef\xbb\xbf\xef\xbb\xbf\r\n", "\u200b \n".encode()])
def test_a_caption_of_a_second_byte_order_mark_alone_is_empty_to_the_check_validate_and_training(
        tmp_path: Path, blank: bytes) -> None:
    """A caption file saved with its BOM twice (or holding a zero-width space alone) shows nothing, but it was no
    empty caption to the check or to validate: its image trained with no prompt, which both refuse for an empty one."""
    from engine.data.captions import caption_for
    from engine.dataset import CaptionStore
    from engine.dataset.profile_paths import path_problems

    textured(0, (64, 64)).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_bytes(blank)
    report = check_dataset(tmp_path, caption_mode="caption_file", workers=1)
    assert [(f.code, f.severity) for f in report.findings if f.code.startswith("caption")] == [("caption_missing", "error")]
    profile = Profile(model={"pretrained": "builtin:tiny-sd1"}, concepts=[
        {"instance_dir": str(tmp_path), "instance_prompt": "photo of zwx dog", "caption_mode": "caption_file"}])
    assert any("1 caption file(s) are empty, e.g. a.txt" in problem.message for problem in path_problems(profile))
    assert caption_for(tmp_path / "a.png", "caption_file_then_prompt", "photo of zwx dog") == "photo of zwx dog"
    assert CaptionStore(tmp_path).read("a.png") == ""  # --auto writes it, as the check's advice says


def test_validate_names_a_misnamed_caption_and_skips_files_that_are_no_pictures(tmp_path: Path) -> None:
    """Validate counted b.png (captioned in b.png.txt) and a zero-byte l.jpg as images missing captions and said to
    run `dbtui dataset caption`, which refuses to write b.txt beside b.png.txt; it now says to rename, as the check."""
    from engine.dataset.profile_paths import path_problems

    for name in ("a", "b"):
        textured(0, (64, 64)).save(tmp_path / f"{name}.png")
    (tmp_path / "a.txt").write_text("photo of zwx dog")
    (tmp_path / "b.png.txt").write_text("photo of zwx dog")
    (tmp_path / "l.jpg").write_bytes(b"")
    profile = Profile(model={"pretrained": "builtin:tiny-sd1"}, concepts=[
        {"instance_dir": str(tmp_path), "instance_prompt": "photo of zwx dog", "caption_mode": "caption_file"}])
    said = [p.message for p in path_problems(profile) if p.key == "concepts.0.caption_mode"]
    assert len(said) == 1 and "rename b.png.txt to b.txt" in said[0]
    assert not any("no caption file" in message for message in said)


def test_a_multi_page_tiff_is_said_to_have_pages_not_frames(tmp_path: Path) -> None:
    """A 3-page TIFF scan was reported as 'is animated (3 frames)'."""
    textured(1, (96, 96)).save(tmp_path / "scan.tiff", save_all=True,
                               append_images=[textured(2, (96, 96)), textured(3, (96, 96))])
    report = check_dataset(tmp_path, workers=1)
    (finding,) = [f for f in report.findings if f.code == "animated"]
    assert finding.message.startswith("has 3 pages: only its first page is used")
    assert "animated" not in finding.message and "page you want" in finding.fix


def test_the_bucket_histogram_counts_only_usable_images(tmp_path: Path) -> None:
    """An image whose caption cannot be read was '6 usable' but filled '64×64: 7'."""
    for i in range(3):
        textured(i, (64, 64)).save(tmp_path / f"i{i}.png")
        (tmp_path / f"i{i}.txt").write_text("a photo of zwx dog")
    (tmp_path / "i1.txt").write_bytes("caf\xe9 zwx dog".encode("latin-1"))
    report = check_dataset(tmp_path, resolution=64, caption_mode="caption_file_then_prompt",
                           instance_prompt="a photo of zwx dog", bucketing=True, workers=1)
    assert report.summary.usable == 2
    assert sum(report.summary.buckets.values()) == 2
