"""Evaluate a score cutoff from Python: ``eval.evaluate(dataset) -> Evaluation``.

One call loads a dataset (any ``python -m eval run`` reads, by the same options), embeds its
images through :class:`facecmp.FaceComparer` (cached, with a progress bar), scores and
measures (:func:`eval.run.measure`), and returns an :class:`Evaluation`: tables as pandas
DataFrames, figures as matplotlib Figures, and the report the CLI writes.

>>> ev = evaluate("photos/", mode="fast", group_by=["age:min", "race@age>=18"],   # doctest: +SKIP
...               bands={"age": "0,3,6,13,18,inf"})
>>> ev.at(0.7)            # FMR, FNMR, 95% intervals and counts per comparison set   # doctest: +SKIP
>>> ev.by_group("race")   # one row per group                                        # doctest: +SKIP
>>> ev.det()              # DET curves, a Figure                                     # doctest: +SKIP

``python -m eval run`` is :func:`evaluate` followed by :meth:`Evaluation.report`.
"""
from __future__ import annotations

import dataclasses
import html
import sys
import time
from pathlib import Path

import numpy as np

from eval import datasets, groups, metrics, plots, report
from eval.datasets import FaceDataset
from eval.embeddings import EmbeddingCache, EmbeddingResult, check_backend, embed_images
from eval.run import EvaluationOptions, measure
from facecmp.calibration import ANCHOR_SCORE
from facecmp.errors import FacecmpError
from facecmp.extras import require

#: Columns of an operating point, in the order tables show them.
POINT_COLUMNS = ("cutoff", "fmr", "fmr_low", "fmr_high", "false_matches", "n_impostor", "promised_fmr",
                 "fmr_to_promised", "fmr_upper_rule_of_three", "fnmr", "fnmr_low", "fnmr_high", "false_non_matches",
                 "n_genuine", "generalized_fnmr")


class InputError(FacecmpError, ValueError):
    """A dataset, group-by spec or band that cannot be used; the message says why and what to write."""

    code = "ERR_EVAL_INPUT"


class EmbeddingIncomplete(FacecmpError, RuntimeError):
    """Embedding stopped at ``limit`` before every image had its embedding; the same call again
    continues from the cache."""

    code = "ERR_EVAL_INCOMPLETE"


def evaluate(dataset: str | Path | FaceDataset, *, mode: str | None = None, group_by=None, bands=None,
             cutoffs=metrics.DEFAULT_CUTOFFS, fmr_targets=metrics.DEFAULT_FMR_TARGETS, bootstrap: int = 1000,
             seed: int = 0, all_pairs: bool | None = None, comparer=None, cache: str | Path | EmbeddingCache | None = None,
             batch_size: int = 32, backend: str = "local", ray_actors: int = 1, ray_address: str | None = None,
             threads: int | None = None, limit: int | None = None, progress: bool = True,
             **dataset_options) -> Evaluation:
    """Embed, score and measure a dataset through the service pipeline.

    Parameters
    ----------
    dataset : a path (a folder of identities, an LFW folder, a pairs CSV/TSV) or a
        :class:`~eval.datasets.FaceDataset`.
    mode : pipeline mode, "fast" or "accurate" (default: the comparer's).
    group_by : group-by specs (``"age:min"``, ``"race@age>=18"``; docs/eval.md), default every
        label column with few values.
    bands : numeric label columns to band, ``{"age": "0,3,6,13,18,inf"}`` (or edges as numbers,
        or ``["age=0,3,6,13,18,inf"]``).
    cutoffs : cutoffs to measure (a match is ``score >= cutoff``); the first is the reference.
    fmr_targets : FMRs for TAR@FAR and the cutoff reaching each.
    bootstrap : identity-bootstrap resamples of the 95% intervals.
    seed : of the pairs a folder draws, of a ``max_images`` sample and of the bootstrap.
    all_pairs : score every different-identity pair (None: when the dataset's identities allow it;
        a pairs file needs True).
    comparer : a loaded :class:`facecmp.FaceComparer` to use (default: a new one for ``mode``).
    cache : embedding cache file, an :class:`~eval.embeddings.EmbeddingCache`, or ":memory:"
        (default: ``<facecmp cache>/embeddings/embeddings.sqlite``).
    batch_size, backend, ray_actors, ray_address : how images are embedded ("local" or "ray").
    threads : torch threads of this process (and of each Ray actor; default: torch's, 1 per actor).
    limit : embed at most this many new images, then raise :class:`EmbeddingIncomplete`.
    progress : print what is evaluated and show a progress bar while embedding.
    **dataset_options : how a path is read, as :func:`eval.datasets.load` (``format``, ``labels``,
        ``impostors_all_pairs``, ``max_images``, ``max_pairs``, ``folds``, ``col_a`` ...).

    Raises InputError for a dataset, spec, band or backend that cannot be used.
    """
    started = time.perf_counter()
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        if isinstance(dataset, FaceDataset):
            if dataset_options:
                raise TypeError(f"options for reading a dataset ({', '.join(dataset_options)}) given with a "
                                "dataset already loaded")
        else:
            dataset = datasets.load(dataset, seed=seed, all_pairs=all_pairs, **dataset_options)
        check_backend(backend)
        # Columns the pipeline gives each image (quality, estimated age) are known only after
        # embedding: checked now with empty values, filled in below.
        pending = {column: np.full(dataset.n_images, "") for column in groups.PIPELINE_COLUMNS
                   if column not in dataset.labels}
        groupings, notes = groups.make_groupings({**pending, **dataset.labels}, group_by, bands)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise InputError(exc.args[0] if exc.args else str(exc)) from exc
    dataset = dataclasses.replace(dataset, notes=[*dataset.notes, *notes])
    load_s = time.perf_counter() - started
    if comparer is None:
        from facecmp import FaceComparer

        comparer = FaceComparer(mode=mode)
    cache = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
    if backend == "ray" and ray_address:
        import ray

        ray.init(address=ray_address)
    if progress:
        print(f"{dataset.name}: {dataset.n_images} images, {dataset.n_identities} identities; "
              f"pipeline {comparer.pipeline_id(mode)}; cache {cache.path}", file=sys.stderr)
    embedding = embed_images(dataset.images, comparer, mode=mode, cache=cache, batch_size=batch_size, backend=backend,
                             limit=limit, progress=progress, ray_actors=ray_actors, torch_threads=threads or 1)
    if not embedding.complete:
        missing = sum(r is None for r in embedding.records)
        raise EmbeddingIncomplete(f"stopped after {embedding.n_computed} new images (limit); {missing} still to "
                                  "embed. Run the same command again to continue.")
    if any(column in pending for g in groupings for column in (g.spec.column, *(c.column for c in g.spec.where))):
        calibration = comparer.calibration(mode)
        columns = {**groups.pipeline_columns(embedding.embeddings, embedding.ok, calibration), **dataset.labels}
        coverage = calibration.coverage
        groupings, _ = groups.make_groupings(columns, group_by, groups.with_default_bands(
            bands, {"quality": groups.quality_bands(coverage), "old_print": groups.old_print_bands(coverage)}))
    options = EvaluationOptions(cutoffs=tuple(cutoffs), fmr_targets=tuple(fmr_targets), n_resamples=bootstrap,
                                seed=seed, all_pairs=all_pairs)
    found = measure(dataset, comparer, embedding, mode=mode, settings=options, groupings=groupings)
    timing = found.summary["timing"]
    timing["load_s"] = round(load_s, 3)
    timing["total_s"] = round(time.perf_counter() - started, 3)     # to the numbers; writing files is not counted
    return Evaluation(found.summary, found.curves, dataset=dataset, embedding=embedding)


def _pandas():
    return require("pandas", "eval")


def _point_row(point: dict) -> dict:
    row = {k: v for k, v in point.items() if k not in ("fmr_ci", "fnmr_ci")}
    row["fmr_low"], row["fmr_high"] = point["fmr_ci"]
    row["fnmr_low"], row["fnmr_high"] = point["fnmr_ci"]
    return row


def _ordered(frame):
    return frame[[c for c in POINT_COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in POINT_COLUMNS]]


@dataclasses.dataclass(repr=False)
class Evaluation:
    """One evaluation: what :func:`evaluate` measured, as tables and figures.

    summary : the ``metrics.json`` dictionary (docs/eval.md, "What the report says").
    curves : the ``curves.npz`` arrays (``<set>_det_fmr``, ``<set>_hist_genuine``, ...).
    dataset, embedding : what was evaluated (None for an evaluation read back by :meth:`load`).

    A *comparison set* is ``"protocol"`` (the dataset's listed pairs) or ``"all_vs_all"`` (every
    pair of images); methods taking ``on`` default to all pairs where there are, else the listed.
    """

    summary: dict
    curves: dict[str, np.ndarray]
    dataset: FaceDataset | None = None
    embedding: EmbeddingResult | None = None

    @classmethod
    def load(cls, run_dir: str | Path) -> "Evaluation":
        """Read back what ``python -m eval run`` (or :meth:`report`) wrote to ``run_dir``."""
        with np.load(Path(run_dir) / "curves.npz") as data:
            curves = {k: data[k] for k in data.files}
        return cls(report.load_summary(run_dir), curves)

    # -- what was measured -----------------------------------------------------------------

    @property
    def cutoffs(self) -> tuple[float, ...]:
        return tuple(self.summary["settings"]["cutoffs"])

    @property
    def comparison_sets(self) -> list[str]:
        return list(self.summary["comparison_sets"])

    def _set(self, on: str | None) -> str:
        sets = self.comparison_sets
        if on is None:
            if not sets:
                raise ValueError("nothing was measured: no pairs of images with a face")
            return "all_vs_all" if "all_vs_all" in sets else sets[0]
        if on not in sets:
            raise KeyError(f"no comparison set {on!r}; this evaluation has {', '.join(sets)}")
        return on

    def _cutoff_index(self, cutoff: float) -> int:
        for k, measured in enumerate(self.cutoffs):
            if np.isclose(measured, cutoff, rtol=0, atol=1e-9):
                return k
        raise ValueError(f"cutoff {cutoff:g} was not measured (this evaluation has {', '.join(map(str, self.cutoffs))});"
                         f" pass cutoffs=(..., {cutoff:g}) to evaluate (embeddings come from the cache)")

    def group_by_names(self, on: str | None = None) -> list[str]:
        """The breakdowns of a comparison set: group-by specs and per-pair group columns."""
        return list(self.summary["comparison_sets"][self._set(on)].get("groups", {}))

    def _breakdown(self, column: str, on: str | None) -> str:
        names = self.group_by_names(on)
        if column in names:
            return column
        matching = [n for n in names if groups.GroupSpec.parse(n).column == column]
        if len(matching) == 1:
            return matching[0]
        if matching:
            raise KeyError(f"{column!r} is broken down several ways: {', '.join(matching)}; name one")
        raise KeyError(f"no breakdown by {column!r}; this evaluation has {', '.join(names) or 'none'} "
                       "(pass group_by=[...] to evaluate)")

    # -- tables ----------------------------------------------------------------------------

    def at(self, cutoff: float = ANCHOR_SCORE, *, on: str | None = None):
        """FMR and FNMR at ``cutoff`` (one the evaluation measured) with 95% intervals and counts:
        a DataFrame, one row per comparison set (only ``on`` when given)."""
        k = self._cutoff_index(cutoff)
        names = self.comparison_sets if on is None else [self._set(on)]
        rows = {name: _point_row(self.summary["comparison_sets"][name]["operating_points"][k]) for name in names}
        return _ordered(_pandas().DataFrame.from_dict(rows, orient="index")).rename_axis("comparison set")

    def operating_points(self):
        """Every measured cutoff of every comparison set: a DataFrame indexed by (set, cutoff)."""
        rows = [{"comparison set": name, **_point_row(point)}
                for name, info in self.summary["comparison_sets"].items() for point in info["operating_points"]]
        return _ordered(_pandas().DataFrame(rows).set_index(["comparison set", "cutoff"]))

    def overview(self):
        """Per comparison set: pairs, EER, TAR at each FAR target, k-fold accuracy (a DataFrame)."""
        rows = {}
        for name, info in self.summary["comparison_sets"].items():
            row = {"n_genuine": info["n_genuine"], "n_impostor": info["n_impostor"], "eer": info.get("eer"),
                   "eer_cutoff": info.get("eer_threshold")}
            for tar in info.get("tar_at_far", []):
                row[f"tar_at_far_{tar['far']:g}"] = tar["tar"]
            if "kfold_accuracy" in info:
                row["kfold_accuracy"] = info["kfold_accuracy"]["mean"]
                row["kfold_accuracy_std"] = info["kfold_accuracy"]["std"]
            rows[name] = row
        return _pandas().DataFrame.from_dict(rows, orient="index").rename_axis("comparison set")

    def by_group(self, column: str, *, cutoff: float = ANCHOR_SCORE, on: str | None = None):
        """FMR and FNMR at ``cutoff`` per group of one breakdown: a DataFrame, one row per group.

        ``column`` is a group-by spec (``"race@age>=18"``) or its column (``"race"``) when it was
        broken down one way. On all pairs, ``cutoff_at_promised_fmr`` is the cutoff at which the
        group's FMR equals the promise at the reference cutoff (None with the reason when none is
        needed or none can be told). ``attrs["title"]`` says how pairs were grouped.
        """
        name, k = self._set(on), self._cutoff_index(cutoff)
        spec = self._breakdown(column, name)
        rows = {}
        for group, info in self.summary["comparison_sets"][name]["groups"][spec].items():
            row = _point_row(info["operating_points"][k])
            if "cutoff_at_promised_fmr" in info:
                at = info["cutoff_at_promised_fmr"]
                row["cutoff_at_promised_fmr"] = at["cutoff"]
                row["cutoff_at_promised_fmr_reason"] = at["reason"]
            rows[group] = row
        frame = _ordered(_pandas().DataFrame.from_dict(rows, orient="index")).rename_axis(spec)
        titles = {g["name"]: g["title"] for g in self.summary["settings"].get("group_by", [])}
        frame.attrs["title"] = f"{name}, by {titles.get(spec, f'`{spec}`')}"
        return frame

    # -- figures ---------------------------------------------------------------------------

    def _with_curves(self, on: str | None) -> str:
        name = self._set(on)
        if name not in plots.curve_sets(self.summary, self.curves):
            raise ValueError(f"{name} has no curves: it needs both genuine and impostor pairs "
                             f"({self.summary['comparison_sets'][name]['n_genuine']} genuine here)")
        return name

    def det(self):
        """DET curves (FNMR against FMR) of every comparison set with both kinds of pairs, with the
        operating points at the measured cutoffs."""
        if not plots.curve_sets(self.summary, self.curves):
            raise ValueError("no comparison set has both genuine and impostor pairs: no DET curve")
        return plots.run_det(self.summary, self.curves)

    def histogram(self, *, on: str | None = None):
        """Genuine and impostor score distributions of one comparison set, the cutoffs drawn."""
        return plots.run_histogram(self.summary, self.curves, self._with_curves(on))

    def rates_vs_cutoff(self, *, on: str | None = None):
        """FMR and FNMR of one comparison set as the cutoff moves (every 0.001)."""
        return plots.run_rates(self.summary, self.curves, self._with_curves(on))

    def fmr_by_group(self, column: str, *, cutoff: float = ANCHOR_SCORE, on: str | None = None):
        """FMR at ``cutoff`` by group with 95% intervals, the promised FMR as a line."""
        name = self._set(on)
        figure = plots.run_group_fmr(self.summary, name, self._breakdown(column, name),
                                     cutoff_index=self._cutoff_index(cutoff))
        if figure is None:
            raise ValueError(f"no group of {column!r} has impostor pairs in {name}")
        return figure

    # -- files and display -----------------------------------------------------------------

    def report(self, out_dir: str | Path) -> Path:
        """Write what ``python -m eval run`` writes (report.md, metrics.json, curves.npz, PNG plots)
        into ``out_dir`` (created); returns the report's path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = plots.write_plots(out, self.summary, self.curves)
        report.write_run(out, self.summary, self.curves, written)
        return out / "report.md"

    def _headline(self) -> tuple[str, str, str]:
        ds, pipe, enrol = self.summary["dataset"], self.summary["pipeline"], self.summary["enrolment"]
        what = f"{ds['name']}: {ds['n_images']:,} images of {ds['n_identities']:,} identities ({ds['kind']})"
        how = (f"pipeline {pipe['pipeline_id']}, calibration {pipe['calibration']['id']}; "
               f"{enrol['n_failed']:,} of {enrol['n_images']:,} images without an embedding")
        check = self.summary["calibration_check"]
        verdict = f"calibration check at {check['cutoff']:g}: {check['verdict']} ({check['reason']})"
        return what, how, verdict

    def __repr__(self) -> str:
        return "<Evaluation " + "; ".join(self._headline()) + ">"

    def _repr_html_(self) -> str:
        what, how, verdict = (html.escape(line) for line in self._headline())
        parts = [f"<p><b>{what}</b><br>{how}<br>{verdict}</p>"]
        if self.comparison_sets:
            table = self.operating_points()[["fmr", "fmr_low", "fmr_high", "false_matches", "n_impostor",
                                             "promised_fmr", "fnmr", "fnmr_low", "fnmr_high", "n_genuine"]]
            parts.append(table.to_html(float_format=lambda v: f"{v:.4g}", na_rep="", border=0))
        breakdowns = {name: self.group_by_names(name) for name in self.comparison_sets}
        listed = sorted({b for names in breakdowns.values() for b in names})
        if listed:
            parts.append("<p>By group: " + ", ".join(f"<code>.by_group({html.escape(repr(b))})</code>" for b in listed)
                         + "</p>")
        return "\n".join(parts)
