"""``dbtui serve``: the same wizard in a browser, through textual-serve, on 127.0.0.1 only.

textual-serve has no authentication, so it never listens beyond loopback; reach it from
another machine with ``ssh -L PORT:127.0.0.1:PORT host``.
"""

from __future__ import annotations

import argparse
import shlex
import sys

HOST = "127.0.0.1"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the wizard to a browser on 127.0.0.1 (use ssh -L to reach it)",
        description="Serve the wizard to a web browser with textual-serve. It listens on 127.0.0.1 "
        "only (there is no login): from your computer run `ssh -L 8000:127.0.0.1:8000 HOST` "
        "and open http://127.0.0.1:8000.",
    )
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: %(default)s)")
    parser.set_defaults(handler=_serve)


def build_server(port: int):
    from textual_serve.server import Server

    return Server(f"{shlex.quote(sys.executable)} -m dbtui", host=HOST, port=port, title="dbtui")


def _serve(args: argparse.Namespace) -> int:
    print(f"dbtui serve: http://{HOST}:{args.port} (from elsewhere: ssh -L {args.port}:{HOST}:{args.port} this-host)")
    build_server(args.port).serve()
    return 0
