"""`dbtui serve` works through any forwarded local port (as `ssh -L 9000:127.0.0.1:8000` gives):
the page's script and websocket addresses follow the address the browser used."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _forward(local_port: int, target_port: int) -> asyncio.AbstractServer:
    """What `ssh -L local_port:127.0.0.1:target_port` does, on loopback only."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", local_port)


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


async def _through_the_forwarded_port(served: int, local: int) -> tuple[str, bytes]:
    forwarder = await _forward(local, served)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{local}/") as page:
                html = await page.text()
            script = re.search(r'<script src="([^"]+textual\.js)"', html).group(1)
            async with http.get(script) as js:
                assert js.status == 200
            socket_url = re.search(r'data-session-websocket-url="([^"]+)"', html).group(1)
            received = b""
            async with http.ws_connect(f"{socket_url}?width=80&height=24") as ws:
                deadline = time.monotonic() + 60
                while len(received) < 200 and time.monotonic() < deadline:
                    message = await ws.receive(timeout=60)
                    if message.type == aiohttp.WSMsgType.BINARY:
                        received += message.data
                    elif message.type != aiohttp.WSMsgType.TEXT:
                        break
        return html, received
    finally:
        forwarder.close()


def test_the_page_works_through_another_local_port(tmp_path: Path) -> None:
    served, local = _free_port(), _free_port()
    env = {**os.environ, "DBTUI_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "dbtui", "serve", "--port", str(served)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(served, 60)
        html, received = asyncio.run(_through_the_forwarded_port(served, local))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f"127.0.0.1:{local}/" in html and f"127.0.0.1:{served}" not in html
    assert len(received) >= 200  # the wizard's first screen arrived over the websocket
