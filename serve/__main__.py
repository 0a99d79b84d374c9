"""``python -m serve [--host HOST] [--port PORT]``."""
import argparse

from serve.runner import main

parser = argparse.ArgumentParser(prog="python -m serve", description="Run the facecmp REST service.")
parser.add_argument("--host", default=None, help="interface (default: FACECMP_HOST or 127.0.0.1)")
parser.add_argument("--port", type=int, default=None, help="port (default: FACECMP_PORT or 8000)")
args = parser.parse_args()
main(args.host, args.port)
