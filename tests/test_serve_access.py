"""`dbtui serve` keeps other web pages out: any page in the browser could open ws://127.0.0.1:PORT/ws and
drive the wizard (textual-serve checks no Origin and has no login), and a rebinding name could read the page.
Served in-process with the wizard's process stubbed: a refused socket must not start one."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from dbtui.cli.cmd_serve import build_server
from dbtui.cli.serve_access import ServeAccess


class FakeApp:
    """Stands in for textual-serve's AppService: records what a websocket made it do."""

    started: list[FakeApp] = []

    def __init__(self, command: str, **_) -> None:
        self.received = b""

    async def start(self, width: int, height: int) -> None:
        FakeApp.started.append(self)

    async def send_bytes(self, data: bytes) -> None:
        self.received += data

    async def set_terminal_size(self, width: int, height: int) -> None: ...

    async def blur(self) -> None: ...

    async def focus(self) -> None: ...

    async def stop(self) -> None: ...


@pytest.fixture(autouse=True)
def fake_app(monkeypatch) -> None:
    FakeApp.started = []
    monkeypatch.setattr("textual_serve.server.AppService", FakeApp)


@contextlib.asynccontextmanager
async def _served(access: ServeAccess) -> AsyncIterator[tuple[TestClient, str]]:
    """A client of the server, and the address its browser would be at."""
    app = await build_server(0, access)._make_app()
    async with TestClient(TestServer(app, host="127.0.0.1"), cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        yield client, f"http://127.0.0.1:{client.port}"


async def _socket_status(client: TestClient, **options) -> int:
    try:
        async with client.ws_connect("/ws?width=80&height=24", **options) as ws:
            await ws.send_json(["stdin", "q"])
            await ws.send_json(["ping", "1"])
            assert (await ws.receive_json(timeout=10)) == ["pong", "1"]
            return 101
    except aiohttp.WSServerHandshakeError as error:
        return error.status


async def test_a_websocket_from_another_site_is_refused_and_starts_no_wizard() -> None:
    async with _served(ServeAccess()) as (client, here):
        for origin in ("https://evil.example.com", here.replace("127.0.0.1", "localhost"), "null", None):
            assert await _socket_status(client, origin=origin) == 403, origin
    assert FakeApp.started == []


async def test_the_page_needs_the_token_and_its_websocket_the_cookie() -> None:
    access = ServeAccess()
    async with _served(access) as (client, here):
        assert (await client.get("/")).status == 403
        assert (await client.get("/", params={"token": "guessed"})).status == 403
        # The right Origin is not enough: a page of the attacker's could reach 127.0.0.1:PORT too.
        assert await _socket_status(client, origin=here) == 403
        assert FakeApp.started == []

        page = await client.get("/", params={"token": access.token})
        assert page.status == 200 and "data-session-websocket-url" in await page.text()
        # Set with a redirect to the page without the token: it leaves the address bar and the history.
        [sent_on] = page.history
        assert (sent_on.status, sent_on.headers["Location"], str(page.url)) == (302, "/", f"{here}/")
        cookie = sent_on.headers["Set-Cookie"]
        assert access.token in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert (await client.get("/")).status == 200  # reloaded without the token: the cookie is enough
        assert await _socket_status(client, origin=here) == 101
    assert len(FakeApp.started) == 1 and FakeApp.started[0].received == b"q"  # it was driven


async def test_the_token_leaves_the_address_the_rest_of_the_query_stays_and_the_log_never_has_it(caplog) -> None:
    """aiohttp's access log printed "GET /?token=…" on every page load, and the token stayed in the address bar."""
    access = ServeAccess()
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with _served(access) as (client, _):
        page = await client.get("/", params={"fontsize": "20", "token": access.token}, allow_redirects=False)
        assert (page.status, page.headers["Location"]) == (302, "/?fontsize=20")
        # A link on another site's page: its redirect would carry no Strict cookie, so the page is served as it is.
        linked = await client.get("/", params={"token": access.token}, headers={"Sec-Fetch-Site": "cross-site"},
                                  allow_redirects=False)
        assert linked.status == 200 and access.token in linked.headers["Set-Cookie"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /?fontsize=20&token=… HTTP/1.1" in logged and access.token not in logged
    assert access.token not in repr(access)


async def test_no_response_may_be_framed_nor_send_a_referer() -> None:
    """A same-site page (another localhost port) is sent the Strict cookie: it could frame the wizard and clickjack
    it, and the frame's websocket passes the Origin check, being the page's own. The page and its redirect had the
    headers, a refusal, a static file or a missing download none."""
    access = ServeAccess()
    async with _served(access) as (client, _):
        page = await client.get("/", params={"token": access.token})
        refused = await client.get("/", headers={"Host": f"evil.example.com:{client.port}"})
        static = await client.get("/static/js/textual.js")
        download = await client.get("/download/nothing")
        assert (refused.status, static.status, download.status) == (403, 200, 404)
        for response in (page.history[0], page, refused, static, download):
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
            assert response.headers["Referrer-Policy"] == "no-referrer"

async def test_a_foreign_host_is_refused_even_with_the_token() -> None:
    """DNS rebinding: evil.example.com resolves to 127.0.0.1, and its page would read ours as its own."""
    access = ServeAccess()
    async with _served(access) as (client, here):
        assert (await client.get("/", params={"token": access.token})).status == 200
        rebound = {"Host": f"evil.example.com:{client.port}"}
        page = await client.get("/", params={"token": access.token}, headers=rebound)
        assert page.status == 403 and access.token not in await page.text()
        assert await _socket_status(client, origin=f"http://evil.example.com:{client.port}", headers=rebound) == 403
        assert await _socket_status(client, origin=here) == 101
    assert len(FakeApp.started) == 1


async def test_behind_a_proxy_the_public_origin_is_the_one_accepted() -> None:
    access = ServeAccess("https://your.host/dbtui")
    async with _served(access) as (client, _):
        proxied = {"Host": "your.host"}
        sent_on = await client.get("/", params={"token": access.token}, headers=proxied, allow_redirects=False)
        assert (sent_on.status, sent_on.headers["Location"]) == (302, "/dbtui/")  # the proxy's path, not the server's
        assert "Path=/dbtui" in sent_on.headers["Set-Cookie"] and "Secure" in sent_on.headers["Set-Cookie"]
        cookie = {"Cookie": f"{access.cookie_name}={access.token}"}
        page = await client.get("/", headers={**proxied, **cookie})  # /dbtui/ as the proxy passes it on
        assert page.status == 200 and "wss://your.host/dbtui/ws" in await page.text()
        assert await _socket_status(client, origin="https://evil.example.com", headers={**proxied, **cookie}) == 403
        assert await _socket_status(client, origin="https://your.host", headers={**proxied, **cookie}) == 101


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1:8000", True), ("localhost:9000", True), ("LOCALHOST:9000", True), ("[::1]:8000", True),
    ("localhost", True), ("your.host", True), ("your.host:443", True),
    ("evil.example.com:8000", False), ("127.0.0.1.evil.example.com:8000", False), ("evil@127.0.0.1:8000", False),
    ("127.0.0.1:8000/x", False), ("127.0.0.1:port", False), ("", False),
])
def test_the_hosts_answered_are_loopback_names_and_the_public_one(host: str, allowed: bool) -> None:
    access = ServeAccess("https://your.host")
    assert (access.host_refusal(host) is None) == allowed


def test_the_origin_must_be_the_address_the_page_was_served_at() -> None:
    access = ServeAccess()
    cookie = access.token
    assert access.socket_refusal("127.0.0.1:9000", "http", "http://127.0.0.1:9000", cookie) is None
    assert access.socket_refusal("localhost", "http", "http://localhost:80", cookie) is None  # the default port
    for origin in ("http://127.0.0.1:8000", "https://127.0.0.1:9000", "http://127.0.0.1:9000/x", None):
        assert "another web page" in access.socket_refusal("127.0.0.1:9000", "http", origin, cookie), origin
    assert "no token" in access.socket_refusal("127.0.0.1:9000", "http", "http://127.0.0.1:9000", "wrong")


def test_each_server_has_its_own_token_and_cookie() -> None:
    """Cookies are kept per host name, not per port: two servers tunnelled to two ports share 127.0.0.1."""
    first, second = ServeAccess(), ServeAccess()
    assert first.token != second.token and first.cookie_name != second.cookie_name
    assert len(first.token) >= 40
    assert first.address("127.0.0.1", 8000) == f"http://127.0.0.1:8000/?token={first.token}"
    assert ServeAccess("https://your.host/dbtui", "t").address("127.0.0.1", 8000) == "https://your.host/dbtui/?token=t"


def test_the_printed_way_in_is_the_tunnel_or_the_reverse_proxy() -> None:
    """With --public-url it said "ssh -L …, then open that address", which was then the proxy's."""
    from dbtui.cli.cmd_serve import reach

    assert reach(8000, ServeAccess()) == "from elsewhere: ssh -L 8000:127.0.0.1:8000 this-host, then open that address"
    through_proxy = reach(8000, ServeAccess("https://your.host/dbtui"))
    assert "ssh" not in through_proxy and "reverse proxy" in through_proxy and "http://127.0.0.1:8000" in through_proxy
