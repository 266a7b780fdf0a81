"""Who may use ``dbtui serve``: textual-serve has no login, and listening on 127.0.0.1 alone does not keep
other web pages out.

A browser lets any page open a websocket to ws://127.0.0.1:PORT/ws, and a page on a name of the attacker's
that resolves to 127.0.0.1 (DNS rebinding) reads the server's pages as its own. So: the Host must be a
loopback name or the --public-url host; a websocket must come from the page's own origin; and the page
needs a random token, given in the printed URL as Jupyter does, then kept in a cookie for its websocket
(whose URL textual.js builds itself, with no room for a token); once the cookie is set, the browser is sent
on to the page without the token, so that it stays out of the address bar, its history and the access log.
Plain functions of the request's headers, so they are tested without a server.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]

# On the page and its redirect. No other page may frame it: a same-site one (another localhost port, a sibling of the
# --public-url host) is sent the Strict cookie, so its frame would be the wizard, to be clickjacked, and its websocket
# would pass the Origin check. No Referer leaves it: a page served by a link with ?token= would send the token on.
PAGE_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer"}


def origin_of(scheme: str, netloc: str) -> Origin | None:
    """(scheme, host, port) with the default port filled in, or None where ``netloc`` is not a plain host[:port]."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.netloc != netloc or "@" in netloc:
        return None
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme]


def _origin_header(value: str) -> Origin | None:
    parts = urlsplit(value)
    if parts.path or parts.query or parts.fragment:
        return None
    return origin_of(parts.scheme, parts.netloc)


@dataclass(frozen=True)
class ServeAccess:
    """The token of one ``dbtui serve`` and the checks its page and its websocket pass."""

    public_url: str | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)  # the login: never logged

    @property
    def cookie_name(self) -> str:
        # Browsers keep cookies per host name, not per port: a name of each server's own, so that two of them
        # (two machines tunnelled to two local ports) never overwrite each other's token.
        return "dbtui-" + hashlib.sha256(self.token.encode()).hexdigest()[:16]

    @property
    def cookie_path(self) -> str:
        return (urlsplit(self.public_url).path if self.public_url else "") or "/"

    @property
    def cookie_secure(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https:"))

    def address(self, host: str, port: int) -> str:
        """The URL to open: the page with the token."""
        return f"{self.public_url or f'http://{host}:{port}'}/?token={self.token}"

    def page_without_token(self, query: Iterable[tuple[str, str]]) -> str:
        """Where the page is, with the rest of its query but not the token: where the browser goes once the
        token's cookie is set (a path on the address the browser asked for, or under the --public-url one)."""
        page = (urlsplit(self.public_url).path if self.public_url else "") + "/"
        rest = urlencode([(name, value) for name, value in query if name != "token"])
        return f"{page}?{rest}" if rest else page

    def _host_names(self) -> tuple[str, ...]:
        public = urlsplit(self.public_url).hostname if self.public_url else None
        return LOOPBACK_NAMES + ((public,) if public else ())

    def host_refusal(self, host: str) -> str | None:
        found = origin_of("http", host)
        if found is None or found[1] not in self._host_names():
            names = ", ".join("[::1]" if name == "::1" else name for name in self._host_names())
            return (f"dbtui serve answers only to {names}, not to {host!r}: "
                    "open the address `dbtui serve` printed")
        return None

    def page_refusal(self, host: str, token: str | None, cookie: str | None) -> str | None:
        """Why the page is refused (None: it is served): a foreign Host, or neither the token nor its cookie."""
        if refusal := self.host_refusal(host):
            return refusal
        if self.knows(token) or self.knows(cookie):
            return None
        return ("this page needs the token `dbtui serve` printed: open the whole address it printed, "
                "http://…/?token=…")

    def socket_refusal(self, host: str, scheme: str, origin: str | None, cookie: str | None) -> str | None:
        """Why a websocket is refused (None: it may start the wizard): a foreign Host, a page of another
        origin (or none named), or no token cookie from the page."""
        if refusal := self.host_refusal(host):
            return refusal
        allowed = {origin_of(scheme, host)}
        if self.public_url:
            public = urlsplit(self.public_url)
            allowed.add(origin_of(public.scheme, public.netloc))
        allowed.discard(None)
        if origin is None or _origin_header(origin) not in allowed:
            return f"a websocket from another web page ({origin or 'no Origin'}) may not drive the wizard"
        if not self.knows(cookie):
            return "this websocket has no token: open the whole address `dbtui serve` printed, http://…/?token=…"
        return None

    def knows(self, offered: str | None) -> bool:
        """Whether ``offered`` is this server's token."""
        return offered is not None and secrets.compare_digest(offered.encode(), self.token.encode())
