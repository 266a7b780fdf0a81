"""A % in a profile's path: refused only around a Windows variable (%APPDATA%), which a profile does not read."""

import pytest

from engine.profile import loads_profile
from tests.test_profile import MINIMAL, problems_of


@pytest.mark.parametrize("written", ["runs/caf%C3%A9-set", "runs/50%_off%", "runs/%E9t%E9", "runs/a%20b%20c",
                                     "runs/100%done%", "caf%C3%A9/%APPDATA%"])
def test_a_percent_in_a_path_is_refused_only_around_a_windows_variable(written: str, monkeypatch) -> None:
    """runs/caf%C3%A9-set (a URL-encoded name) was refused as "%C3%, Windows' form of an environment variable", and
    runs/50%_off% as %_off%: folders that do not exist yet could not be named so at all."""
    monkeypatch.delenv("APPDATA", raising=False)
    if "APPDATA" in written:
        [problem] = problems_of(MINIMAL, [f"saving.output_dir='{written}'"])
        assert problem.message.startswith("has %APPDATA%, Windows' form"), problem.message
    else:
        assert loads_profile(MINIMAL, [f"saving.output_dir='{written}'"]).saving.output_dir == written
    for variable in ("%HOMEPATH%", "%temp%", "%LocalAppData%", "%MY_DATA%"):
        [problem] = problems_of(MINIMAL, [f"saving.output_dir='{variable}/runs'"])
        assert problem.message.startswith(f"has {variable}, Windows' form"), problem.message
