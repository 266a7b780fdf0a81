"""File names from the user's disk in a profile's problems are printed escaped: `validate` and `run` printed an image
or caption file named with a terminal's escape sequence (ESC) or a line break as it was, which recoloured the terminal
or split the warning in two, where `dbtui dataset check` names the same files escaped."""

from __future__ import annotations

from pathlib import Path

from dataset_fixture import textured

from dbtui.cli import main

ESCAPED = "\x1b[31m"
PROFILE = """schema_version = 1
[model]
pretrained = "builtin:tiny-sd1"
[[concepts]]
instance_dir = "{folder}"
instance_prompt = "photo of zwx disc"
caption_mode = "caption_file"
[dataset]
resolution = 64
[saving]
output_dir = "{runs}"
"""


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pics"
    folder.mkdir()
    textured(0, (64, 64)).save(folder / "good.png")
    (folder / "good.txt").write_text("photo of zwx disc", encoding="utf-8")
    textured(1, (64, 64)).save(folder / "cut.jpg")
    (folder / f"red{ESCAPED}\nline.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:100])  # its header cut short
    (folder / "cut.txt").write_text("photo of zwx disc", encoding="utf-8")
    textured(2, (64, 64)).save(folder / f"latin{ESCAPED}.png")
    (folder / f"latin{ESCAPED}.txt").write_bytes("café".encode("latin-1"))
    textured(3, (64, 64)).save(folder / f"empty{ESCAPED}.png")
    (folder / f"empty{ESCAPED}.txt").write_text("  ", encoding="utf-8")
    return folder


def test_validate_and_run_name_odd_file_names_escaped(tmp_path: Path, capsys) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE.format(folder=_folder(tmp_path), runs=tmp_path / "runs"), encoding="utf-8")
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("  warning:")]
    assert len(warnings) == 3 and len(out.splitlines()) == 4, out  # the header, and one line a warning
    assert "\x1b" not in out and r"red\x1b[31m\nline.jpg" in out and r"latin\x1b[31m.txt" in out
    assert r"empty\x1b[31m.txt" in out
    assert main(["run", str(profile), "--plain"]) == 2
    err = capsys.readouterr().err
    assert "cannot start the run" in err and "\x1b" not in err and r"red\x1b[31m\nline.jpg" in err


def test_validate_names_invisible_and_reordering_characters_escaped(tmp_path: Path, capsys) -> None:
    """A zero-width space in a caption's name showed as nothing (the warning named a photo.txt that was not there), and a
    right-to-left override printed the rest of the warning backwards; `dataset check` writes both as escapes."""
    folder = tmp_path / "pics"
    folder.mkdir()
    textured(0, (64, 64)).save(folder / "good.png")
    (folder / "good.txt").write_text("photo of zwx disc", encoding="utf-8")
    textured(1, (64, 64)).save(folder / "photo\u200b.png")
    (folder / "photo\u200b.txt").write_text("  ", encoding="utf-8")
    textured(2, (64, 64)).save(folder / "cut.jpg")
    (folder / "x\u202egnp.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:100])  # its header cut short
    (folder / "cut.txt").write_text("photo of zwx disc", encoding="utf-8")
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE.format(folder=folder, runs=tmp_path / "runs"), encoding="utf-8")
    assert main(["validate", "--elsewhere", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "\u200b" not in out and "\u202e" not in out, out
    assert r"photo\u200b.txt" in out and r"x\u202egnp.jpg" in out
