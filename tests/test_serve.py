"""`dbtui serve` works through any forwarded local port (as `ssh -L 9000:127.0.0.1:8000` gives):
the page's script and websocket addresses follow the address the browser used."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from chromium import installed_chromium
from free_ports import free_port


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


def _start_serve(tmp_path: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`dbtui serve --port PORT` in the background, and the token its printed address holds."""
    # Wide: a token wrapped over two lines of the access log would slip past the check that it is never there.
    env = {**os.environ, "DBTUI_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    printed = tmp_path / "serve.out"
    with printed.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "dbtui", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                                  stdout=out, stderr=subprocess.DEVNULL)
    _wait_for_port(port, 60)
    found = re.search(rf"http://127\.0\.0\.1:{port}/\?token=(\S+)", printed.read_text())
    assert found, printed.read_text()
    return server, found.group(1)


def _browser_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # keeps cookies for 127.0.0.1, as a browser


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


async def _through_the_forwarded_port(served: int, local: int, token: str) -> tuple[str, bytes]:
    forwarder = await _forward(local, served)
    try:
        async with _browser_session() as http:
            async with http.get(f"http://127.0.0.1:{local}/?token={token}") as page:
                html = await page.text()
                assert str(page.url) == f"http://127.0.0.1:{local}/"  # sent on without the token, by its cookie
            script = re.search(r'<script src="([^"]+textual\.js)"', html).group(1)
            async with http.get(script) as js:
                assert js.status == 200
            socket_url = re.search(r'data-session-websocket-url="([^"]+)"', html).group(1)
            received = b""
            async with http.ws_connect(f"{socket_url}?width=80&height=24", origin=f"http://127.0.0.1:{local}") as ws:
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
    served, local = free_port(), free_port()
    server, token = _start_serve(tmp_path, served)
    try:
        html, received = asyncio.run(_through_the_forwarded_port(served, local, token))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f"127.0.0.1:{local}/" in html and f"127.0.0.1:{served}" not in html
    assert len(received) >= 200  # the wizard's first screen arrived over the websocket
    printed = (tmp_path / "serve.out").read_text()
    assert printed.count(token) == 1 and "GET /?token=… " in printed  # its address alone: the access log has none


# Chromium refuses to connect to a few well-known ports (ERR_UNSAFE_PORT): a server on one of
# them is as unreachable for the browser as the far end of an `ssh -L` tunnel, so the page can
# only work if it uses the forwarded port it was loaded from.
UNREACHABLE_FOR_THE_BROWSER = (6665, 6666, 6667, 6668, 6669, 6697, 10080)


def _free_unreachable_port() -> int:
    for port in UNREACHABLE_FOR_THE_BROWSER:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise AssertionError(f"every port of {UNREACHABLE_FOR_THE_BROWSER} is taken")


def _forward_in_background(local: int, target: int) -> subprocess.Popen:
    code = (
        "import asyncio, sys\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from test_serve import _forward\n"
        "async def main():\n"
        "    server = await _forward(int(sys.argv[1]), int(sys.argv[2]))\n"
        "    async with server:\n"
        "        await server.serve_forever()\n"
        "asyncio.run(main())\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(local), str(target), str(Path(__file__).parent)])


def test_a_headless_browser_connects_through_another_local_port(tmp_path: Path) -> None:
    chromium = installed_chromium()
    served, local = _free_unreachable_port(), free_port()
    server, token = _start_serve(tmp_path, served)
    forwarder = _forward_in_background(local, served)
    try:
        _wait_for_port(local, 30)
        page = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
             f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"http://127.0.0.1:{local}/?token={token}"],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        for process in (forwarder, server):
            process.terminate()
            process.wait(timeout=30)
    body = re.search(r"<body[^>]*>", page.stdout)
    assert body, page.stderr[-2000:]
    # textual-serve's page marks the body once its websocket is open: the browser gave it the token's cookie
    assert "-loaded" in body.group(0)
    printed = (tmp_path / "serve.out").read_text()  # it followed the redirect that drops the token, by its cookie
    assert '"GET /?token=… HTTP/1.1" 302' in printed and '"GET / HTTP/1.1" 200' in printed


def test_a_port_in_use_is_refused_before_the_server_says_it_serves(capsys) -> None:
    from dbtui.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert f"port {port} on 127.0.0.1 is in use" in err and "--port" in err and "serve:" not in out


@pytest.mark.parametrize(("port", "error", "said"), [
    (80, PermissionError(errno.EACCES, "Permission denied"), "port 80 on 127.0.0.1 needs root (ports below 1024 do)"),
    # Above 1024 (an SELinux or container policy): the below-1024 rule was told all the same.
    (8080, PermissionError(errno.EACCES, "Permission denied"), "port 8080 on 127.0.0.1 is refused to this user"),
    (80, OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"),
     "cannot listen on port 80 on 127.0.0.1 (Cannot assign requested address)"),
])
def test_a_port_the_system_refuses_is_said_with_what_to_do_not_as_a_bug(port: int, error: OSError, said: str, monkeypatch,
                                                                         capsys) -> None:
    """A privileged port as a normal user was reported as a bug in dbtui (rc 3)."""
    from dbtui.cli import main

    def refuse(self, address) -> None:
        raise error

    monkeypatch.setattr(socket.socket, "bind", refuse)
    assert main(["serve", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert said in err and "--port" in err and "bug" not in err and "serve:" not in out
    assert ("below 1024" in err) == (port < 1024 and error.errno == errno.EACCES)


def test_without_textual_serve_it_says_what_to_install_before_any_address(monkeypatch, capsys) -> None:
    """It printed the address, then called the ModuleNotFoundError a bug in dbtui (rc 3)."""
    from dbtui.cli import main

    monkeypatch.setitem(sys.modules, "textual_serve.server", None)  # import fails as if not installed
    assert main(["serve", "--port", str(free_port())]) == 2
    out, err = capsys.readouterr()
    assert "textual-serve is missing" in err and "pip install textual-serve" in err and "scripts/setup.sh" in err
    assert "bug" not in err and "serve:" not in out


def test_a_public_url_must_be_an_address_and_loses_its_trailing_slash() -> None:
    from dbtui.cli.cmd_serve import public_url

    assert public_url("https://your.host/") == "https://your.host"  # "/static/…" is appended to it
    assert public_url("https://your.host/dbtui/") == "https://your.host/dbtui"
    for wrong in ("notaurl", "ftp://host", "https://"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not an http"):
            public_url(wrong)


async def _connected_then_interrupted(server: subprocess.Popen, port: int, token: str) -> float:
    """Seconds from Ctrl+C (SIGINT) to the server's exit, with a browser's websocket still open."""
    import signal

    here = f"http://127.0.0.1:{port}"
    async with _browser_session() as http:
        async with http.get(f"{here}/?token={token}") as page:
            assert page.status == 200
        async with http.ws_connect(f"{here}/ws?width=80&height=24", origin=here) as ws:
            received = b""
            while len(received) < 200:  # the wizard's first screen: its app is running
                message = await ws.receive(timeout=60)
                assert message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), message
                received += message.data if message.type == aiohttp.WSMsgType.BINARY else b""
            server.send_signal(signal.SIGINT)
            started = time.monotonic()
            while not ws.closed and time.monotonic() - started < 30:  # as a browser does, answering the close
                await ws.receive(timeout=30)
            while server.poll() is None and time.monotonic() - started < 30:
                await asyncio.sleep(0.1)
            return time.monotonic() - started


def test_ctrl_c_stops_the_server_at_once_with_a_browser_connected(tmp_path: Path) -> None:
    """aiohttp waited 10 s or more for the open websocket's handler; now each is closed and its app quit."""
    port = free_port()
    server, token = _start_serve(tmp_path, port)
    try:
        seconds = asyncio.run(_connected_then_interrupted(server, port, token))
    finally:
        server.kill()
        server.wait(timeout=30)
    assert server.returncode == 0 and seconds < 8, (server.returncode, seconds)
