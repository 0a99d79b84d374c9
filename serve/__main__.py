"""``python -m serve [--host HOST] [--port PORT]``; ``python -m serve cluster ...`` on Ray Serve."""
import argparse

parser = argparse.ArgumentParser(prog="python -m serve", description="Run the facecmp REST service.")
parser.add_argument("--host", default=None, help="interface (default: FACECMP_HOST or 127.0.0.1)")
parser.add_argument("--port", type=int, default=None, help="port (default: FACECMP_PORT or 8000)")
commands = parser.add_subparsers(dest="command")
cluster = commands.add_parser(
    "cluster", help="run it on a Ray cluster (Ray Serve), N replicas behind Ray's proxy (serve/cluster.py)",
    description="Deploy the service on Ray Serve and serve until interrupted; settings: FACECMP_RAY_* "
                "(docs/service.md).")
cluster.add_argument("--address", dest="ray_address", default=None, metavar="HOST:PORT",
                     help="Ray cluster, HOST:PORT of `ray start --head` or 'auto' "
                          "(default: FACECMP_RAY_ADDRESS, else a Ray instance started here)")
cluster.add_argument("--replicas", dest="ray_replicas", type=int, default=None, metavar="N",
                     help="replicas (default: FACECMP_RAY_REPLICAS or 2)")
cluster.add_argument("--min-replicas", dest="ray_autoscaling_min", type=int, default=None, metavar="N",
                     help="autoscaling: fewest replicas (default: FACECMP_RAY_AUTOSCALING_MIN or 1)")
cluster.add_argument("--max-replicas", dest="ray_autoscaling_max", type=int, default=None, metavar="N",
                     help="autoscaling: most replicas; turns autoscaling on (default: FACECMP_RAY_AUTOSCALING_MAX)")
cluster.add_argument("--host", default=None, help="interface of Ray's HTTP proxy (default: FACECMP_HOST or 127.0.0.1)")
cluster.add_argument("--port", type=int, default=None, help="port of Ray's HTTP proxy (default: FACECMP_PORT or 8000)")
args = parser.parse_args()
if args.command == "cluster":
    from serve.cluster import main as cluster_main

    options = vars(args)
    options.pop("command")
    cluster_main(**options)
else:
    from serve.runner import main

    main(args.host, args.port)
