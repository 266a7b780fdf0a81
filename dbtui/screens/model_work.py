"""The Model step's engine calls, run in its worker threads: check a model, ask what Into will hold, convert a file.
Each posts its answer (or its failure) as a message; none touches a widget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.message import Message

from dbtui.conversions import Conversion
from dbtui.engine_facade import Engine
from dbtui.messages import EngineEvent, WorkDone, WorkFailed
from engine.events import Event, PhaseStarted

Post = Callable[[Message], object]


def check_model(engine: Engine, post: Post, source: str, overrides: dict[str, str]) -> None:
    try:
        post(WorkDone("inspect", engine.inspect_model(source, **overrides)))
    except Exception as error:  # noqa: BLE001 - shown to the user
        post(WorkFailed("Model check", str(error), source))


def ask_target(engine: Engine, post: Post, source: str, parts: dict, into: Path | None,
               failed: Callable[[str], Message]) -> None:
    try:
        target = engine.conversion_target(source, **parts, into=into)
        post(WorkDone("target", (source, parts, into, target)))
    except Exception as error:  # noqa: BLE001 - shown to the user
        post(failed(str(error)))


def convert_model(engine: Engine, post: Post, conversion: Conversion, flux_sources: dict, vae: str | None) -> None:
    source, out_dir = conversion.source, conversion.into
    started: list[PhaseStarted] = []

    def emit(event: Event) -> None:
        if isinstance(event, PhaseStarted):
            started.append(event)
        post(EngineEvent(event))

    try:
        folder = engine.import_model(source, out_dir, emit=emit,
                                     **flux_sources, **({"vae": vae} if vae else {}))  # an opened profile's
        # A conversion always starts its phase; none came where the folder held it already, or came to hold it while
        # this one waited for another terminal's conversion into it (asked before, that folder was still empty).
        post(WorkDone("convert", (source, folder, not started)))
    except Exception as error:  # noqa: BLE001 - shown to the user
        post(WorkFailed("Conversion", str(error), source))
    finally:
        conversion.done.set()
