"""``dbtui serve``: the same wizard in a browser, through textual-serve, on 127.0.0.1 only.

textual-serve has no authentication, so it never listens beyond loopback; reach it from
another machine with ``ssh -L PORT:127.0.0.1:PORT host``. Other web pages in the same browser
are kept out by serve_access: a token in the printed URL, and Host and Origin checks.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import re
import shlex
import socket
import sys
from urllib.parse import urlsplit

from dbtui.cli.common import ExamplesFormatter, int_in
from dbtui.cli.serve_access import PAGE_HEADERS, ServeAccess
from engine.errors import DbtuiError

HOST = "127.0.0.1"


class PortInUseError(DbtuiError):
    """The port asked for is taken on 127.0.0.1."""


class PortRefusedError(DbtuiError):
    """The system will not let dbtui listen on the port asked for: a privileged one, or one it cannot bind."""


class ServeMissingError(DbtuiError):
    """textual-serve, which dbtui serve runs on, cannot be imported."""


def public_url(text: str) -> str:
    """An http(s) address with a host, without its trailing slash: textual-serve appends "/static/…" and "/ws"
    to it, and a doubled slash reaches no route."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) address such as https://your.host/dbtui")
    return text.rstrip("/")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the wizard to a browser on 127.0.0.1 (use ssh -L to reach it)",
        description="Serve the wizard to a web browser with textual-serve. It listens on 127.0.0.1 "
        "only: from your computer run `ssh -L 8000:127.0.0.1:8000 HOST` and open the address it prints, "
        "http://127.0.0.1:8000/?token=…. The token is new each time and is the only login: without it "
        "any web page open in your browser could reach 127.0.0.1 and drive the wizard. Keep it to yourself.",
        epilog="examples:\n  dbtui serve              # then, on your computer:\n"
        "                           #   ssh -L 8000:127.0.0.1:8000 HOST\n"
        "  dbtui serve --port 8080  # then: ssh -L 8080:127.0.0.1:8080 HOST\n"
        "                           # (the port it serves on, on both sides, so the\n"
        "                           # address it prints opens as printed)\n"
        "  # behind a reverse proxy serving it there:\n"
        "  dbtui serve --public-url https://gpu.example.org/dbtui",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("--port", type=int_in(1, 65535), default=8000, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument("--public-url", metavar="URL", type=public_url,
                        help="the address browsers use, when a reverse proxy serves it under another one "
                        "(default: whatever address the browser asked for, so any `ssh -L` port works)")
    parser.set_defaults(handler=_serve)


def _server_class():
    try:
        from textual_serve.server import Server
    except ImportError as error:
        raise ServeMissingError(f"textual-serve is missing ({error}): reinstall dbtui (bash scripts/setup.sh) "
                                "or `pip install textual-serve`") from None
    return Server


def build_server(port: int, access: ServeAccess):
    """The server on ``port``; ``access`` holds its public URL, if any, and the token its page needs."""
    server_class = _server_class()
    from aiohttp import web

    public_url = access.public_url
    open_apps: set[asyncio.Task] = set()

    def refuse(reason: str | None) -> None:
        if reason:
            raise web.HTTPForbidden(text=f"{reason}\n")

    class BrowserAddressServer(server_class):
        """textual-serve writes http://127.0.0.1:PORT into the page for its scripts and websocket;
        through `ssh -L 9000:127.0.0.1:8000` the browser is on port 9000 and that address fails.
        Unless told a public URL, each page is built from the address the browser asked for.

        The page and its websocket are refused to anyone but the holder of the token (serve_access says why).

        On Ctrl+C aiohttp waits for every open websocket's handler before it exits: about 10 s with a
        browser still connected. Each is cancelled instead, which closes its socket and quits its app."""

        async def handle_index(self, request):  # type: ignore[override]
            token = request.query.get("token")
            refuse(access.page_refusal(request.host, token, request.cookies.get(access.cookie_name)))
            # Jupyter's way: the token leaves the address bar and history; the page loads again by its cookie.
            # Not after a link on another site's page: a redirect that starts there carries no Strict cookie.
            if access.knows(token) and request.headers.get("Sec-Fetch-Site") != "cross-site":
                page = access.page_without_token(request.query.items())
                response = web.Response(status=302, headers={"Location": page})
            else:
                if public_url is None:
                    # No await before the page is rendered, so no other request sees this value.
                    self.public_url = f"{request.scheme}://{request.host}"
                response = await super().handle_index(request)
            # Strict: no other site's page or link carries it, so only this page's own websocket presents it.
            response.set_cookie(access.cookie_name, access.token, path=access.cookie_path, httponly=True,
                                samesite="Strict", secure=access.cookie_secure)
            return response

        async def _make_app(self):  # type: ignore[override]
            app = await super()._make_app()
            # On every response, not only the page's: a refusal, a download or a static file may not be framed either.
            app.on_response_prepare.append(_with_page_headers)
            return app

        async def handle_websocket(self, request):  # type: ignore[override]
            # Before the handshake: a refused socket never starts a wizard.
            refuse(access.socket_refusal(request.host, request.scheme, request.headers.get("Origin"),
                                         request.cookies.get(access.cookie_name)))
            task = asyncio.current_task()
            if task is not None:
                open_apps.add(task)
            try:
                return await super().handle_websocket(request)
            finally:
                open_apps.discard(task)

        async def on_startup(self, app) -> None:  # type: ignore[override]
            # textual-serve would print its address without the token, which opens only a refusal.
            self.console.print("Press Ctrl+C to quit")

        async def on_shutdown(self, app) -> None:  # type: ignore[override]
            for task in list(open_apps):
                task.cancel()

    # aiohttp's access log (which textual-serve prints) writes each request line, the token's too.
    logging.getLogger("aiohttp.access").addFilter(NO_TOKEN_IN_LOG)
    return BrowserAddressServer(f"{shlex.quote(sys.executable)} -m dbtui", host=HOST, port=port, title="dbtui",
                                public_url=public_url)


async def _with_page_headers(request, response) -> None:
    response.headers.update(PAGE_HEADERS)


class _NoTokenInLog(logging.Filter):
    """Writes "token=…" for the token's value in a log line ("GET /?token=… HTTP/1.1"): it is the login."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._TOKEN.sub(r"\1…", record.msg)
        line = getattr(record, "first_request_line", None)  # aiohttp passes the request line along on its own
        if isinstance(line, str):
            record.first_request_line = self._TOKEN.sub(r"\1…", line)
        return True


NO_TOKEN_IN_LOG = _NoTokenInLog()  # one instance: a logger adds a filter it holds already only once


def check_port_free(port: int) -> None:
    """Refuse a port something already listens on, before the server says it serves there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closed port's TIME_WAIT is no obstacle
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(f"port {port} on {HOST} is in use (another dbtui serve?); "
                                     "choose another with --port") from None
            if error.errno == errno.EACCES:
                why = ("needs root (ports below 1024 do)" if port < 1024 else "is refused to this user by the system "
                       "(a security policy, or net.ipv4.ip_unprivileged_port_start set above it)")
                raise PortRefusedError(f"port {port} on {HOST} {why}; "
                                       "choose one from 8000 up with --port, e.g. --port 8000") from None
            raise PortRefusedError(f"cannot listen on port {port} on {HOST} ({error.strerror or error}); "
                                   "choose another with --port, from 8000 up") from None


def reach(port: int, access: ServeAccess) -> str:
    """How a browser elsewhere gets to the printed address: the tunnel to 127.0.0.1, or the reverse proxy."""
    if access.public_url:
        return f"through your reverse proxy at that address, which passes requests on to http://{HOST}:{port}"
    return f"from elsewhere: ssh -L {port}:{HOST}:{port} this-host, then open that address"


def _serve(args: argparse.Namespace) -> int:
    check_port_free(args.port)
    access = ServeAccess(args.public_url)
    server = build_server(args.port, access)  # textual-serve missing is said before any address
    print(f"dbtui serve: {access.address(HOST, args.port)}\n  ({reach(args.port, access)}; the token in it is the "
          "login)", flush=True)
    server.serve()
    return 0
