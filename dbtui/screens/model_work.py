"""The Model step's engine calls, run in its worker threads: check a model, ask what Into will hold, convert a file.
Each posts its answer (or its failure) as a message; none touches a widget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.message import Message

from dbtui.conversions import Conversion
from dbtui.engine_facade import Engine
from dbtui.messages import EngineEvent, WorkDone, WorkFailed

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
    try:
        # Asked here, as the conversion starts: an answer the label waits for may not have come yet.
        reused = engine.conversion_target(source, **flux_sources, into=out_dir).holds_it
        folder = engine.import_model(source, out_dir, emit=lambda e: post(EngineEvent(e)),
                                     **flux_sources, **({"vae": vae} if vae else {}))  # an opened profile's
        post(WorkDone("convert", (source, folder, reused)))
    except Exception as error:  # noqa: BLE001 - shown to the user
        post(WorkFailed("Conversion", str(error), source))
    finally:
        conversion.done.set()
