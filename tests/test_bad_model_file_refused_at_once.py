"""A file that is no model (a text file named .safetensors, a cut-off download, a picture named .ckpt) is refused by
`dbtui convert to-diffusers` and `dbtui validate` from its first bytes and header, before torch or diffusers is
imported: the convert took 11-20 s, mostly those imports, to say so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).parents[1]
HEAVY = ("torch", "diffusers", "transformers")


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each bad file, with what its refusal says."""
    text = folder / "notes.safetensors"
    text.write_text("a model I meant to download\n", encoding="utf-8")
    header = b'{"w":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}'
    cut = folder / "cut.safetensors"
    cut.write_bytes(len(header).to_bytes(8, "little") + header + bytes(100))  # 156 of its 256 bytes of data
    picture = folder / "picture.ckpt"
    Image.new("RGB", (8, 8)).save(picture, format="PNG")
    return {"text": (text, "is a text file, not a model"), "cut": (cut, "is truncated"),
            "picture": (picture, "is neither a safetensors file nor a PyTorch checkpoint")}


def _in_a_child(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``dbtui argv`` in a new interpreter, which prints the heavy libraries it imported."""
    code = ("import sys\nfrom dbtui.cli import main\n"
            f"rc = main({argv!r})\n"
            f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])\n"
            "sys.exit(rc)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("which", ["text", "cut", "picture"])
def test_convert_refuses_a_file_that_is_no_model_before_importing_torch(which: str, tmp_path: Path) -> None:
    path, said = _bad_files(tmp_path)[which]
    result = _in_a_child(["convert", "to-diffusers", str(path), str(tmp_path / "out")])
    assert result.returncode == 2 and said in result.stderr, result.stdout + result.stderr
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert not (tmp_path / "out").exists()


def test_validate_refuses_them_before_importing_torch(tmp_path: Path) -> None:
    images = tmp_path / "dog"
    images.mkdir()
    Image.new("RGB", (64, 64)).save(images / "0.png")
    for path, said in _bad_files(tmp_path).values():
        profile = tmp_path / f"{path.stem}.toml"
        profile.write_text(f'[model]\npretrained = "{path}"\n\n[[concepts]]\ninstance_dir = "{images}"\n'
                           'instance_prompt = "photo of zwx dog"\n', encoding="utf-8")
        result = _in_a_child(["validate", str(profile)])
        assert result.returncode == 2 and said in result.stderr, result.stdout + result.stderr
        assert "HEAVY []" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("option", ["--vae", "--clip-l", "--t5"])
def test_convert_refuses_a_part_file_that_is_no_model_naming_its_option(option: str, tmp_path: Path) -> None:
    """A text file given as --vae, --clip-l or --t5 went through the 11-20 s of imports to whatever the loader said;
    it is now refused as the main file is, saying which option gave it."""
    header = b'{"w":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}'
    transformer = tmp_path / "flux1-dev.safetensors"
    transformer.write_bytes(len(header).to_bytes(8, "little") + header + bytes(256))
    text, said = _bad_files(tmp_path)["text"]
    result = _in_a_child(["convert", "to-diffusers", str(transformer), str(tmp_path / "out"), option, str(text)])
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"dbtui: {option}: {text} {said}" in result.stderr, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_convert_refuses_a_vae_file_that_is_not_there_naming_its_option(tmp_path: Path) -> None:
    """A mistyped --vae ae.safetensors went through the imports to "unexpected error (FileNotFoundError …)", where a
    mistyped --t5 was refused at once: a name of a model file is one (a hub id or folder is still the conversion's)."""
    header = b'{"w":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}'
    transformer = tmp_path / "flux1-dev.safetensors"
    transformer.write_bytes(len(header).to_bytes(8, "little") + header + bytes(256))
    missing = tmp_path / "ae.safetensors"
    result = _in_a_child(["convert", "to-diffusers", str(transformer), str(tmp_path / "out"), "--vae", str(missing)])
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"dbtui: --vae: {missing}: no such file" in result.stderr, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
