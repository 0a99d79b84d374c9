"""``facecmp`` command line: compare, weights, liveness, and the commands other packages add.

Exit status: 0 on success (whatever the match decision), 2 on a usage error, 1 on a
pipeline error (printed as the API's ``{"code", "message"}``).

Packages that build on the library add subcommands through the ``facecmp.commands`` entry-point
group: each entry point is a ``register(subparsers)`` function (the service's ``facecmp serve``
is ``serve.cli:register``). The library imports none of them by name.
"""
from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points

from facecmp.contract import DEFAULT_SCORE_CUTOFF
from facecmp.errors import FacecmpError
from facecmp.modes import MODES

COMMAND_GROUP = "facecmp.commands"  # entry points: register(subparsers) functions


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except FacecmpError as exc:
        print(json.dumps(exc.to_dict()) if getattr(args, "json", False) else f"error {exc.code}: {exc.message}",
              file=sys.stdout if getattr(args, "json", False) else sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecmp", description="1:1 face compare with calibrated scores")
    commands = parser.add_subparsers(dest="command", required=True)

    compare = commands.add_parser("compare", help="compare the faces of two images")
    compare.add_argument("image_a", help="probe image path, or - for base64 on stdin")
    compare.add_argument("image_b", help="reference image path, or - for base64 on stdin (one line each)")
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
    liveness.add_argument("image")
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


def _read_sources(paths: list[str]) -> list[str]:
    """Replace each ``-`` by the next non-empty line of stdin (base64, data URL allowed)."""
    lines = iter([line for line in sys.stdin.read().splitlines() if line.strip()]) if "-" in paths else iter(())
    sources = []
    for path in paths:
        if path != "-":
            sources.append(path)
            continue
        line = next(lines, None)
        if line is None:
            raise SystemExit("facecmp: expected one base64 image per line on stdin for each '-'")
        sources.append(line.strip())
    return sources


def _compare(args) -> int:
    from facecmp.pipeline import FaceComparer

    image_a, image_b = _read_sources([args.image_a, args.image_b])
    result = FaceComparer(args.mode).compare(image_a, image_b, min_similarity_score=args.min_score,
                                             check_liveness=args.check_liveness)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    verdict = "MATCH" if result.is_match else "NO MATCH"
    print(f"{verdict}  score {result.score:.4f} (cutoff {result.min_similarity_score})  cosine {result.cosine:.4f}"
          f"  mode {result.mode}")
    for role, report in zip(("probe", "reference"), result.faces):
        box = ", ".join(f"{v:.0f}" for v in report.face.box)
        print(f"  {role:9s} face box [{box}] p={report.face.probability:.3f}  faces in image: {report.face_count}"
              + "".join(f"  {key} {value}" for key, value in report.trust.items() if key == "estimated_age"))
    print("  calibration: " + ("within what it was fitted and measured on" if result.within_calibration
                               else "outside it — " + "; ".join(result.calibration_notes)))
    if result.liveness is not None:
        print(f"  liveness  score {result.liveness.score:.3f} live={result.liveness.live}")
    print("  timings ms: " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items()))
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
    from facecmp.detect import FaceDetector
    from facecmp.liveness import LivenessChecker, LivenessSettings, format_liveness_report

    image = load_image(args.image)
    result = LivenessChecker(LivenessSettings()).check(image, FaceDetector().detect_for_liveness(image))
    print(json.dumps(result.to_dict()) if args.json else format_liveness_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
