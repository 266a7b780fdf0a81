"""The wizard's Hardware step, of a draft whose saving.output_dir is a file, says so on its Disk line, as
`dbtui hardware` refuses it: it said "Disk 100.0 GB free at .../my.toml", that file's disk read as room for runs."""

from __future__ import annotations

import itertools
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from dbtui.app import make_app
from dbtui.session import Session
from wizard_fakes import FakeEngine
from wizard_steps import at_step, settle


async def _disk_line(output_dir: Path) -> str:
    session = Session()
    session.set("saving.output_dir", str(output_dir))
    app = make_app(FakeEngine(), Session(), image_renderer="none")
    async with app.run_test(size=(100, 40)) as pilot:
        app._started(session)
        await settle(pilot)
        screen = await at_step(app, pilot, 0, "HardwareScreen")
        await settle(pilot)  # the probe's answer
        console = Console(width=80, color_system=None)  # plain text: no style codes; 80 columns wrap the message as a terminal would
        with console.capture() as table:
            console.print(screen.query_one("#hw-table", Static).content)
    # The Disk row with the lines it wraps onto (a long temporary path wraps the message at any width).
    lines = table.get().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Disk"))
    row = [lines[first], *itertools.takewhile(lambda line: line[:1] == " ", lines[first + 1:])]
    return "".join("".join(row).split())  # without spaces: a folded path's pieces join up again


async def test_an_output_dir_that_is_a_file_is_said_on_the_disk_line(tmp_path: Path) -> None:
    (profile := tmp_path / "my.toml").write_text("")
    said = await _disk_line(profile)
    assert f"saving.output_dir'{profile}'isafile,notafolder" in said and "giveanotherfolderfortherunfolders" in said, said
    assert "free" not in said.split("folder:")[0], said


async def test_a_folder_is_measured_as_before(tmp_path: Path) -> None:
    assert "100.0GBfree" in await _disk_line(tmp_path / "runs")
