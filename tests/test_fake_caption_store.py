"""The wizard tests' fake caption store fails as the real one does: a wizard test with the fake meets what a user
meets, and a crash it finds is one a user can hit."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbtui.engine_facade import RealEngine
from engine.dataset.errors import DatasetError
from wizard_fakes import FakeEngine


@pytest.mark.parametrize("make", [lambda tmp: tmp / "gone", lambda tmp: tmp / "a.png"], ids=["missing", "a file"])
def test_the_fake_refuses_a_folder_it_cannot_list_as_the_real_store_does(tmp_path: Path, make) -> None:
    """The fake listed a missing folder with Path.iterdir and raised FileNotFoundError, which the Dataset step's
    Captions does not catch (a crash in the tests), where the real store raises a DatasetError it shows."""
    folder = make(tmp_path)
    if folder.suffix:
        folder.write_bytes(b"png")
    with pytest.raises(DatasetError) as real:
        RealEngine().caption_store(str(folder), ".txt").images()
    with pytest.raises(DatasetError) as fake:
        FakeEngine().caption_store(str(folder), ".txt").images()
    assert str(fake.value) == str(real.value)
