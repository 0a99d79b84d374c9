"""``python -m eval run DATASET --out DIR`` and ``python -m eval compare RUN_DIR ...``.

DATASET is a folder of identities (``<identity>/<image>``; a folder without identities with
``--impostors-all-pairs``), an LFW folder (``pairs.txt`` + ``images/``), or a CSV/TSV pairs file
with a column mapping (``--col-a`` ...). Reports break down by label columns (``--group-by``).
See docs/eval.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from facecmp.extras import require
from facecmp.modes import MODES

from eval import metrics

EXIT_INCOMPLETE = 3


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="evaluate one dataset; writes report.md, metrics.json and plots")
    run.add_argument("dataset", help="folder of identities, LFW folder, or pairs CSV/TSV")
    run.add_argument("--out", required=True, help="output folder (created)")
    run.add_argument("--format", choices=("auto", "folder", "lfw", "pairs"), default="auto")
    run.add_argument("--name", help="dataset name in the report")
    run.add_argument("--mode", choices=tuple(MODES), default=None, help="pipeline mode (default: the library's)")
    run.add_argument("--cutoffs", type=_floats, default=metrics.DEFAULT_CUTOFFS,
                     help="comma-separated score cutoffs; the first is the reference "
                          f"(default {','.join(map(str, metrics.DEFAULT_CUTOFFS))})")
    run.add_argument("--fmr-targets", type=_floats, default=(1e-2, 1e-3, 1e-4), help="FMRs for TAR@FAR (default 1e-2,1e-3,1e-4)")
    run.add_argument("--bootstrap", type=int, default=1000, help="identity bootstrap resamples (default 1000)")
    run.add_argument("--seed", type=int, default=0, help="seed of pair sampling and bootstrap")
    run.add_argument("--all-pairs", choices=("auto", "yes", "no"), default="auto",
                     help="score every different-identity pair (auto: folder and LFW yes, pairs files no)")
    groups = run.add_argument_group("breakdown by group (see docs/eval.md)")
    groups.add_argument("--labels", help="per-image labels: CSV/TSV with a 'path' column (relative to its folder) "
                                         "and one column per label (default: labels.csv beside a folder dataset)")
    groups.add_argument("--group-by", nargs="+", action="extend", default=None, metavar="SPEC",
                        help="COLUMN[:same|pair|min|max][@CONDITION...], e.g. age:min 'race@age>=18' "
                             "(default: every label column with few values)")
    groups.add_argument("--bands", action="append", default=[], metavar="COLUMN=EDGES",
                        help="band a numeric label, e.g. age=0,3,6,13,18,inf (bands 0-2, 3-5, 6-12, 13-17, 18+)")
    embed = run.add_argument_group("embedding")
    embed.add_argument("--backend", choices=("local", "ray"), default="local")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--ray-actors", type=int, default=1, help="actor pool size of --backend ray")
    embed.add_argument("--ray-address", default=None, help="connect to this Ray cluster (default: start a local one)")
    embed.add_argument("--cache", default=None, help="embedding cache file (default: <facecmp cache>/embeddings/embeddings.sqlite)")
    embed.add_argument("--no-cache", action="store_true", help="keep embeddings in memory only")
    embed.add_argument("--limit", type=int, default=None,
                       help="embed at most N new images, then stop (exit 3); rerun to continue from the cache")
    embed.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    embed.add_argument("--no-progress", action="store_true")
    folder = run.add_argument_group("folder of identities")
    folder.add_argument("--folds", type=int, default=10)
    folder.add_argument("--pairs-per-fold", type=int, default=300)
    folder.add_argument("--max-images", type=int, default=None, help="keep whole identities until about N images")
    folder.add_argument("--impostors-all-pairs", action="store_true",
                        help="every image is a different person: score every pair of images as an impostor pair "
                             "(for a folder without identities, e.g. utkface-dev)")
    pairs = run.add_argument_group("LFW and pairs files")
    pairs.add_argument("--pairs-file", default="pairs.txt", help="LFW: protocol file inside the LFW folder")
    pairs.add_argument("--max-pairs", type=int, default=None, help="keep about N pairs, spread over folds and labels")
    pairs.add_argument("--col-a", help="pairs file: column of the first image path (name or 0-based number)")
    pairs.add_argument("--col-b", help="column of the second image path")
    pairs.add_argument("--col-same", help="column saying same person (1/0, true/false, same/different)")
    pairs.add_argument("--col-fold", help="column of fold labels (enables k-fold accuracy)")
    pairs.add_argument("--col-id-a", help="identity of image a (default: its folder name)")
    pairs.add_argument("--col-id-b", help="identity of image b")
    pairs.add_argument("--col-group", action="append", default=[], help="break results down by this column (repeatable)")
    pairs.add_argument("--col-image-label", action="append", default=[], metavar="LABEL=COL_A,COL_B",
                       help="a per-image label held in two columns (image a's, image b's), e.g. age=age0,age1")
    pairs.add_argument("--root", help="folder the image paths are relative to (relative to the pairs file's folder)")
    pairs.add_argument("--names", help="comma-separated column names for a file without a header row")
    pairs.add_argument("--delimiter", help="field separator (default: tab for .tsv or tab-separated rows, else comma)")

    compare = commands.add_parser("compare", help="compare runs side by side (a Markdown table)")
    compare.add_argument("runs", nargs="+", help="run folders (each with metrics.json)")
    compare.add_argument("--out", help="also write the table (and det_compare.png beside it) here")
    return parser


def _image_label_columns(specs: list[str]) -> dict[str, tuple[str, str]]:
    columns = {}
    for spec in specs:
        label, _, pair = spec.partition("=")
        col_a, _, col_b = pair.partition(",")
        if not (label and col_a and col_b):
            raise ValueError(f"--col-image-label {spec!r}: write LABEL=COL_A,COL_B, e.g. age=age0,age1")
        columns[label] = (col_a, col_b)
    return columns


def dataset_options(args) -> dict:
    """The options of :func:`eval.datasets.load` that the command line gives."""
    return dict(format=args.format, name=args.name, labels=args.labels, impostors_all_pairs=args.impostors_all_pairs,
                max_images=args.max_images, folds=args.folds, pairs_per_fold=args.pairs_per_fold,
                pairs_file=args.pairs_file, max_pairs=args.max_pairs, col_a=args.col_a, col_b=args.col_b,
                col_same=args.col_same, col_fold=args.col_fold, col_id_a=args.col_id_a, col_id_b=args.col_id_b,
                col_group=tuple(args.col_group), col_image_label=_image_label_columns(args.col_image_label),
                root=args.root, names=args.names.split(",") if args.names else None,
                delimiter=args.delimiter.encode().decode("unicode_escape") if args.delimiter else None)


def missing_inputs(args) -> list[str]:
    """The files ``run`` names that do not exist, said before the pipeline is imported and loaded
    (seconds): the dataset and the labels file."""
    named = {"dataset": args.dataset, "--labels": args.labels}
    return [f"{what} {path} does not exist" for what, path in named.items() if path and not Path(path).exists()]


def command_run(args) -> int:
    missing = missing_inputs(args)
    if missing:
        raise SystemExit("error: " + "; ".join(missing))
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")  # files only, no display needed
    from eval.api import EmbeddingIncomplete, InputError, evaluate

    try:
        evaluation = evaluate(
            args.dataset, mode=args.mode, group_by=args.group_by, bands=args.bands, cutoffs=args.cutoffs,
            fmr_targets=args.fmr_targets, bootstrap=args.bootstrap, seed=args.seed,
            all_pairs={"auto": None, "yes": True, "no": False}[args.all_pairs],
            cache=":memory:" if args.no_cache else args.cache, batch_size=args.batch_size, backend=args.backend,
            ray_actors=args.ray_actors, ray_address=args.ray_address, threads=args.threads, limit=args.limit,
            progress=not args.no_progress, **dataset_options(args))
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from None
    except EmbeddingIncomplete as exc:
        print(exc, file=sys.stderr)
        return EXIT_INCOMPLETE
    out = Path(args.out)
    evaluation.report(out)
    print(f"wrote {out / 'report.md'}, {out / 'metrics.json'} and its plots", file=sys.stderr)
    return 0


def command_compare(args) -> int:
    from eval import report

    summaries = {}
    for run_dir in args.runs:
        label = Path(run_dir).name
        while label in summaries:
            label += "'"
        summaries[label] = report.load_summary(run_dir)
    table = report.compare_table(summaries)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table)
        _compare_plot(out.parent / "det_compare.png", args.runs, list(summaries))
    return 0


def _compare_plot(path: Path, run_dirs: list[str], labels: list[str]) -> None:
    import numpy as np

    matplotlib = require("matplotlib", "eval")

    matplotlib.use("Agg")

    from eval import plots

    curves = {}
    for run_dir, label in zip(run_dirs, labels):
        npz = Path(run_dir) / "curves.npz"
        if not npz.is_file():
            continue
        data = np.load(npz)
        for name in ("all_vs_all", "protocol"):
            if f"{name}_det_fmr" in data:
                curves[f"{label} ({name})"] = (data[f"{name}_det_fmr"], data[f"{name}_det_fnmr"])
                break
    if curves:
        plots.det_curves(curves, title="DET, runs compared").savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    args = build_parser().parse_args(argv)
    return command_run(args) if args.command == "run" else command_compare(args)
