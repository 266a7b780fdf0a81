"""The --set a refusal advises gives back the very text it names, as the override reads it."""

from __future__ import annotations

import shlex

import pytest

from engine.profile.overrides import apply_overrides
from engine.profile.set_text import _unquoted, set_option


@pytest.mark.parametrize("text", ['"photo of zwx dog"', "'zwx'", " zwx dog", "zwx dog ", "123", "[a]", "", "zwx's dog"])
def test_each_set_advised_for_a_text_reads_back_as_that_text(text: str) -> None:
    """The two --set advisers were twins that each lost a text: one told '"q"' as --set 'k="q"' (read back as q),
    the other ' x' bare (read back as x)."""
    for said in (set_option("concepts.0.instance_prompt", text), "--set " + _unquoted("concepts.0.instance_prompt", text)):
        setting = shlex.split(said)[1]
        read = apply_overrides({"concepts": [{"instance_prompt": "z"}]}, [setting])
        assert read["concepts"][0]["instance_prompt"] == text, said
