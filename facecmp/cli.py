"""``facecmp`` command line: compare, weights, liveness, and the commands other packages add.

Exit status: 0 on success (whatever the match decision), 2 on a usage error (a missing or
unreadable image file among them, named on stderr), 1 on a pipeline error (printed as the API's
``{"code", "message"}``), 141 when the reader of stdout went away (``| head``), quietly.

An image argument is a file path; base64 comes only from ``-`` (the next line of stdin) or an
argument prefixed ``base64:`` (a data URL after it is fine; a file named so is ``./base64:...``).
A string that looks like base64 is still a path: the command never guesses.

Packages that build on the library add subcommands through the ``facecmp.commands`` entry-point
group: each entry point is a ``register(subparsers)`` function (the service's ``facecmp serve``
is ``serve.cli:register``). The library imports none of them by name.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from facecmp.contract import DEFAULT_SCORE_CUTOFF
from facecmp.errors import FacecmpError
from facecmp.modes import MODES

COMMAND_GROUP = "facecmp.commands"  # entry points: register(subparsers) functions
BASE64_PREFIX = "base64:"
IMAGE_HELP = f"an image file, {BASE64_PREFIX}<base64 or data URL>, or - for one line of base64 on stdin"
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process that SIGPIPE ended


class UsageError(Exception):
    """A command line the command cannot run (exit status 2, the message on stderr)."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = _run(args)
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's exit flush
    except BrokenPipeError:
        # `facecmp ... | head -1`: the rest of the output is not wanted. stdout goes to devnull so
        # that the interpreter's own flush at exit does not report the same broken pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return status


def _run(args) -> int:
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"facecmp: {exc}", file=sys.stderr)
        return 2
    except FacecmpError as exc:
        print(json.dumps(exc.to_dict()) if getattr(args, "json", False) else f"error {exc.code}: {exc.message}",
              file=sys.stdout if getattr(args, "json", False) else sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecmp", description="1:1 face compare with calibrated scores")
    commands = parser.add_subparsers(dest="command", required=True)

    compare = commands.add_parser("compare", help="compare the faces of two images")
    compare.add_argument("image_a", help=f"the probe: {IMAGE_HELP}")
    compare.add_argument("image_b", help=f"the reference: {IMAGE_HELP} (a line each when both are -)")
    compare.add_argument("--min-score", type=float, default=DEFAULT_SCORE_CUTOFF,
                         help=f"match cutoff on the calibrated score (default {DEFAULT_SCORE_CUTOFF})")
    compare.add_argument("--mode", choices=list(MODES), help="pipeline mode (default $FACECMP_MODE or accurate)")
    compare.add_argument("--check-liveness", action="store_true", help="also require the probe to be live")
    compare.add_argument("--json", action="store_true", help="one JSON object on stdout")
    compare.set_defaults(handler=_compare)

    weights = commands.add_parser("weights", help="list or fetch pretrained weights")
    weights_commands = weights.add_subparsers(dest="weights_command", required=True)
    weights_commands.add_parser("list", help="the model zoo and what is installed").set_defaults(handler=_weights_list)
    fetch = weights_commands.add_parser("fetch", help="download, verify, convert and cache weights")
    fetch.add_argument("names", nargs="+", help="registry names, a group ('minifasnet': the liveness models), "
                                                "or 'default' (what the modes need)")
    fetch.add_argument("--from", dest="source",
                       help="offline machines: the source file, or a folder holding it under its published name")
    fetch.add_argument("--base-url", help="fetch URL sources as BASE_URL/<file name> (a mirror)")
    fetch.set_defaults(handler=_weights_fetch)

    liveness = commands.add_parser("liveness", help="liveness (presentation attack) check of one image")
    liveness.add_argument("image", help=IMAGE_HELP)
    liveness.add_argument("--json", action="store_true")
    liveness.set_defaults(handler=_liveness)

    for entry in {entry.name: entry for entry in entry_points(group=COMMAND_GROUP)}.values():
        try:
            register = entry.load()
        except ImportError as exc:  # the package is there, the extra its command needs is not
            _unavailable(commands, entry.name, entry.extras, exc)
        else:
            register(commands)
    return parser


def _unavailable(commands, name: str, extras: list[str], error: ImportError) -> None:
    install = f"pip install 'facecmp[{','.join(extras)}]'" if extras else "install its dependencies"
    message = f"facecmp {name} needs {error.name or 'a package'}, which is not installed: {install}"

    def refuse(args) -> int:
        print(message, file=sys.stderr)
        return 2

    commands.add_parser(name, help=f"(not available: {install})").set_defaults(handler=refuse)


def _image_sources(arguments: list[str]) -> list:
    """Each image argument as what the pipeline decodes: a checked file path, or the bytes of
    base64 from ``base64:...`` or from the next non-empty line of stdin for each ``-``.

    Raises UsageError for a file that cannot be opened (naming it) or too few stdin lines, and
    ImageDecodeError for base64 that does not decode."""
    from facecmp.decode import decode_base64

    lines = iter([line for line in sys.stdin.read().splitlines() if line.strip()]) if "-" in arguments else iter(())
    sources = []
    for argument in arguments:
        if argument == "-":
            line = next(lines, None)
            if line is None:
                raise UsageError("expected one base64 image per line on stdin for each '-'")
            sources.append(decode_base64(line))
        elif argument.startswith(BASE64_PREFIX):
            sources.append(decode_base64(argument[len(BASE64_PREFIX):]))
        else:
            sources.append(_readable_file(argument))
    return sources


def _readable_file(argument: str) -> Path:
    path = Path(argument)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read image file {argument}: {exc.strerror or exc}") from exc
    return path


def _compare(args) -> int:
    from facecmp.display import compare_text
    from facecmp.pipeline import FaceComparer

    image_a, image_b = _image_sources([args.image_a, args.image_b])
    result = FaceComparer(args.mode).compare(image_a, image_b, min_similarity_score=args.min_score,
                                             check_liveness=args.check_liveness)
    print(json.dumps(result.to_dict()) if args.json else compare_text(result))
    return 0


def _weights_list(args) -> int:
    from facecmp.weights.registry import REGISTRY, DetectorModel, EmbedderModel
    from facecmp.weights.store import installed, weights_path

    for spec in REGISTRY.values():
        state = f"installed at {weights_path(spec.name)}" if installed(spec.name) else "not installed"
        model = spec.model
        if isinstance(model, EmbedderModel):
            about = (f"{model.embedding_size:4d}-d  LFW {model.lfw_accuracy_published:.2%} (published)"
                     f"  {model.training_data:14s}")
        elif isinstance(model, DetectorModel):
            about = f"detector MTCNN {model.network}"
        else:
            about = f"liveness {model.arch} (face box x{model.scale})"
        print(f"{spec.name:16s} {about} {state}")
    return 0


def _weights_fetch(args) -> int:
    from facecmp.modes import MODES
    from facecmp.weights.registry import GROUPS
    from facecmp.weights.store import fetch, installed

    groups = {"default": tuple(sorted({w for m in MODES.values() for w in m.weights})), **GROUPS}
    names = [member for name in args.names for member in groups.get(name, (name,))]
    for name in names:
        if installed(name) and args.source is None:
            print(f"{name}: already installed")
        else:
            print(f"{name}: {fetch(name, args.source, base_url=args.base_url)}")
    return 0


def _liveness(args) -> int:
    # Detector and liveness models only: a liveness check needs no embedder weights.
    from facecmp.decode import load_image
    from facecmp.display import liveness_text
    from facecmp.liveness import LivenessChecker

    result = LivenessChecker().check(load_image(_image_sources([args.image])[0]))
    print(json.dumps(result.to_dict()) if args.json else liveness_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
