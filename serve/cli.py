"""``facecmp serve``: the service registers this subcommand with the library's CLI through the
``facecmp.commands`` entry-point group (pyproject.toml), so that ``facecmp/`` imports nothing
from ``serve/``."""
from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``serve [--host] [--port]`` to the ``facecmp`` command's subcommands."""
    parser = commands.add_parser("serve", help="run the REST service (uvicorn)")
    parser.add_argument("--host", help="interface (default: FACECMP_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: FACECMP_PORT or 8000)")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from serve.runner import main

    main(args.host, args.port)
    return 0
