"""A local TCP port for a server that a test starts in another process."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Ports the tests name outright (accelerate's default and a few fixed launch ports): never handed out here.
NAMED_BY_TESTS = range(29500, 29600)


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def free_port() -> int:
    """A port nothing listens on now, taken from below the kernel's ephemeral range.

    A port that `bind(("127.0.0.1", 0))` hands out lies inside that range, where the kernel also
    picks the local end of every outgoing connection: between a probe closing it and the test's
    server binding it, another test (or xdist worker) can take it, and the server fails with
    "address already in use". Below the range only a server told that very port can take it.
    """
    low, _ = _ephemeral_range()
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(10000, low)
        if port in NAMED_BY_TESTS:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port found between 10000 and {low}")
