"""An empty profile file (0 bytes, or comments alone) given to `dbtui validate` or `dbtui run` listed its missing
required keys and nothing more, as if a profile were to be mended key by key: it now says first that the file holds no
settings, and how to start one from the example profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.cli import main


@pytest.mark.parametrize(("text", "said"), [("", "it is empty"), ("\n\n", "it is empty"),
                                            ("# my profile\n# to do\n", "only comments")])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_empty_profile_is_said_empty_first_with_how_to_start_one(tmp_path: Path, text: str, said: str, command: str,
                                                                    capsys) -> None:
    profile = tmp_path / "my.toml"
    profile.write_text(text, encoding="utf-8")
    assert main([command, str(profile)]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    first = lines[next(index for index, line in enumerate(lines) if line.startswith("dbtui:")) + 1]  # validate's own first line comes before
    assert first.strip().startswith(f"{profile}: (top level): holds no settings ({said}): start from an example, e.g. "
                                    f"`cp profiles/sd15-person.toml {profile}`"), err
    assert "required key is missing" in err  # still listed, after it
    assert "or make one with the wizard, `dbtui`" in first  # the wizard's Open screen says its own way
    assert (Path(__file__).parents[1] / "profiles" / "sd15-person.toml").is_file()  # the example it names


def test_a_profile_with_settings_is_not_said_empty(tmp_path: Path, capsys) -> None:
    profile = tmp_path / "my.toml"
    profile.write_text("[training]\nmax_train_steps = 10\n", encoding="utf-8")
    assert main(["validate", str(profile)]) == 2
    err = capsys.readouterr().err
    assert "required key is missing" in err and "holds no settings" not in err
