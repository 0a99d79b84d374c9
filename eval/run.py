"""One evaluation: dataset + pipeline -> a JSON-ready summary and the curves to plot.

:func:`measure` computes; :mod:`eval.report` and :mod:`eval.plots` write; :mod:`eval.api` is the
whole evaluation from Python (load, embed, measure, tables and figures). The summary
(``metrics.json``) holds, per *comparison set*:

* ``protocol`` — the dataset's listed pairs (LFW pairs.txt, a pairs file, or the seeded
  folds of a folder); k-fold best-threshold accuracy when folds are given;
* ``all_vs_all`` — every pair of images (when identities are trustworthy), which resolves
  false-match rates far below 1 / (number of listed impostor pairs).

Each set is also broken down by group (``groups``: per-pair label columns and the
:class:`eval.groups.Grouping` of each group-by spec): pairs, FMR and FNMR at every cutoff
with intervals, and the measured FMR as a multiple of the promised one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from eval import metrics
from eval.datasets import FaceDataset
from eval.embeddings import EmbeddingResult
from eval.groups import Grouping, PairCollector
from eval.scoring import PairScorer, all_vs_all

SCHEMA_VERSION = 1
PLOT_GRID = np.arange(1001) / 1000          # cutoffs at which FMR/FNMR-vs-cutoff curves are drawn
HISTOGRAM_EDGES = np.arange(101) / 100      # score histogram bins for plots
GROUP_RESAMPLES = 500                       # bootstrap resamples per group (many groups, each smaller)


@dataclass
class EvaluationOptions:
    """What an evaluation computes.

    cutoffs : score cutoffs to report (a match is ``score >= cutoff``); the first is the
        reference (the service default, 0.7) that the others are compared with.
    fmr_targets : FMR values for TAR@FAR and the cutoff reaching a target FMR.
    n_resamples, confidence, seed : identity bootstrap.
    all_pairs : score all different-identity pairs (None: when the dataset allows it).
    n_bins : resolution of the all-vs-all impostor histogram.
    """

    cutoffs: tuple[float, ...] = metrics.DEFAULT_CUTOFFS
    fmr_targets: tuple[float, ...] = metrics.DEFAULT_FMR_TARGETS
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    all_pairs: bool | None = None
    n_bins: int = 100_000


@dataclass
class Measurements:
    """What :func:`measure` found: ``summary`` (``metrics.json``) and ``curves`` (``curves.npz``:
    ``<set>_det_fmr``, ``<set>_grid_fnmr``, ``<set>_hist_genuine``, ... per comparison set)."""

    summary: dict
    curves: dict[str, np.ndarray] = field(default_factory=dict)


def _rounded(value, digits: int = 8):
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else round(value, digits)


def operating_points(false_matches, n_impostor, false_non_matches, n_genuine, *, cutoffs, fmr_ci, fnmr_ci,
                     promised_fmr=None) -> list[dict]:
    """One dict per cutoff: counts, rates, 95% intervals ((n_cutoffs, 2) ``fmr_ci``/``fnmr_ci``), the promise."""
    points = []
    for k, cutoff in enumerate(cutoffs):
        fm, fnm = float(false_matches[k]), float(false_non_matches[k])
        fmr = fm / n_impostor if n_impostor else np.nan
        point = {
            "cutoff": cutoff,
            "fmr": _rounded(fmr), "false_matches": int(fm), "n_impostor": int(n_impostor),
            "fmr_ci": [_rounded(fmr_ci[k][0]), _rounded(fmr_ci[k][1])],
            "fnmr": _rounded(fnm / n_genuine if n_genuine else np.nan), "false_non_matches": int(fnm),
            "n_genuine": int(n_genuine), "fnmr_ci": [_rounded(fnmr_ci[k][0]), _rounded(fnmr_ci[k][1])],
        }
        if fm == 0 and n_impostor:
            point["fmr_upper_rule_of_three"] = _rounded(3.0 / n_impostor)
        if promised_fmr is not None:
            promised = float(promised_fmr(cutoff))
            point["promised_fmr"] = _rounded(promised)
            point["fmr_to_promised"] = _rounded(fmr / promised, 4) if n_impostor else None
        points.append(point)
    return points


def summarise_scores(genuine, impostor, *, settings: EvaluationOptions, intervals: metrics.RateIntervals,
                     exact_false_matches=None, promised_fmr=None, genuine_weight=None, impostor_weight=None
                     ) -> tuple[dict, dict[str, np.ndarray]]:
    """Operating points, EER, TAR@FAR and cutoffs at target FMRs of one comparison set.

    ``exact_false_matches`` (n_cutoffs,) overrides the impostor counts at the cutoffs (all-vs-all
    passes exact counts while its impostor scores are a histogram).
    """
    fm, n_imp, fnm, n_gen = metrics.match_counts(genuine, impostor, cutoffs=settings.cutoffs,
                                                 genuine_weight=genuine_weight, impostor_weight=impostor_weight)
    if exact_false_matches is not None:
        fm = np.asarray(exact_false_matches, dtype=np.float64)
    points = operating_points(fm, n_imp, fnm, n_gen, cutoffs=settings.cutoffs,
                              fmr_ci=np.c_[intervals.fmr_low, intervals.fmr_high],
                              fnmr_ci=np.c_[intervals.fnmr_low, intervals.fnmr_high], promised_fmr=promised_fmr)
    summary: dict = {"n_genuine": int(n_gen), "n_impostor": int(n_imp), "operating_points": points}
    curves: dict[str, np.ndarray] = {}
    if n_gen and n_imp:
        eer, eer_threshold = metrics.equal_error_rate(genuine, impostor, genuine_weight=genuine_weight,
                                                      impostor_weight=impostor_weight)
        summary["eer"], summary["eer_threshold"] = _rounded(eer), _rounded(eer_threshold)
        summary["tar_at_far"] = []
        summary["cutoff_at_fmr"] = []
        for target in settings.fmr_targets:
            tar, threshold, reason = metrics.tar_at_far(genuine, impostor, far=target, genuine_weight=genuine_weight,
                                                        impostor_weight=impostor_weight)
            summary["tar_at_far"].append({"far": target, "tar": _rounded(tar), "threshold": _rounded(threshold),
                                          "reason": reason})
            entry = {"fmr": target, "cutoff": None, "measured_fmr": None, "reason": reason}
            if reason is None:
                cutoff, measured = metrics.cutoff_at_fmr(impostor, fmr=target, impostor_weight=impostor_weight)
                entry.update(cutoff=_rounded(cutoff), measured_fmr=_rounded(measured))
            summary["cutoff_at_fmr"].append(entry)
        det_fmr, det_fnmr, _ = metrics.det_curve(genuine, impostor, genuine_weight=genuine_weight,
                                                 impostor_weight=impostor_weight)
        grid_fmr, grid_fnmr = metrics.fmr_fnmr(genuine, impostor, cutoffs=PLOT_GRID, genuine_weight=genuine_weight,
                                               impostor_weight=impostor_weight)
        curves = {"det_fmr": det_fmr, "det_fnmr": det_fnmr, "grid": PLOT_GRID, "grid_fmr": grid_fmr,
                  "grid_fnmr": grid_fnmr, "hist_edges": HISTOGRAM_EDGES,
                  "hist_genuine": np.histogram(np.clip(genuine, 0, 1), HISTOGRAM_EDGES, weights=genuine_weight)[0],
                  "hist_impostor": np.histogram(np.clip(impostor, 0, 1), HISTOGRAM_EDGES, weights=impostor_weight)[0]}
    return summary, curves


def enrolment_summary(dataset: FaceDataset, embedding: EmbeddingResult, *, max_examples: int = 25) -> dict:
    """Failure-to-enrol: images the pipeline could not embed, by error, with examples."""
    failed = [i for i, r in enumerate(embedding.records) if r is not None and not r.ok]
    multi = sum(1 for r in embedding.records if r is not None and r.ok and r.face_count > 1)
    return {
        "n_images": dataset.n_images, "n_failed": len(failed),
        "failure_to_enrol_rate": _rounded(len(failed) / dataset.n_images) if dataset.n_images else None,
        "by_error": embedding.failures(),
        "n_multiple_faces": multi,
        "failed_examples": [{"image": str(dataset.images[i]), "error": embedding.records[i].error_type,
                             "code": embedding.records[i].error_code} for i in failed[:max_examples]],
    }


def _protocol(dataset: FaceDataset, embedding: EmbeddingResult, scorer: PairScorer, settings: EvaluationOptions, promised_fmr,
              groupings: list[Grouping]):
    pairs = dataset.pairs
    valid = embedding.ok[pairs.a] & embedding.ok[pairs.b]
    scores = np.full(len(pairs), np.nan)
    scores[valid] = scorer.pairs(pairs.a[valid], pairs.b[valid])
    ids_a, ids_b = dataset.identities[pairs.a], dataset.identities[pairs.b]

    def one_set(selection: np.ndarray, n_resamples: int):
        gen = selection & valid & pairs.same
        imp = selection & valid & ~pairs.same
        intervals = metrics.bootstrap_fmr_fnmr(
            scores[gen], scores[imp], genuine_ids=ids_a[gen], impostor_ids=np.c_[ids_a[imp], ids_b[imp]],
            cutoffs=settings.cutoffs, n_resamples=n_resamples, confidence=settings.confidence,
            random_state=settings.seed)
        summary, curves = summarise_scores(scores[gen], scores[imp], settings=settings, intervals=intervals,
                                           promised_fmr=promised_fmr)
        failed_genuine = int((selection & ~valid & pairs.same).sum())
        summary["excluded_pairs"] = {"genuine": failed_genuine, "impostor": int((selection & ~valid & ~pairs.same).sum())}
        total_genuine = summary["n_genuine"] + failed_genuine
        for point in summary["operating_points"]:
            # As the service would: a pair it cannot compare turns the genuine person away.
            point["generalized_fnmr"] = _rounded((point["false_non_matches"] + failed_genuine) / total_genuine) \
                if total_genuine else None
        return summary, curves

    everything = np.ones(len(pairs), dtype=bool)
    summary, curves = one_set(everything, settings.n_resamples)
    if pairs.fold is not None and np.unique(pairs.fold[valid]).size >= 2:
        result = metrics.kfold_accuracy(scores[valid], pairs.same[valid], folds=pairs.fold[valid])
        summary["kfold_accuracy"] = {
            "mean": _rounded(result.mean), "std": _rounded(result.std), "n_folds": int(result.fold_accuracies.size),
            "fold_accuracies": [_rounded(a) for a in result.fold_accuracies],
            "thresholds": [_rounded(t) for t in result.thresholds],
            "n_pairs": int(valid.sum()), "excluded_pairs": int((~valid).sum())}
    by_column = {column: (values, sorted(set(values.tolist()))) for column, values in pairs.groups.items()}
    for grouping in groupings:
        group = grouping.of_pairs(pairs.a, pairs.b)
        by_column[grouping.spec.name] = (np.where(group >= 0, np.array(grouping.names + [""])[group], ""),
                                         grouping.names)
    summary["groups"] = {}
    for column, (values, names) in by_column.items():
        summary["groups"][column] = {}
        for value in names:
            if not (values == value).any():
                continue
            group_summary, _ = one_set(values == value, min(settings.n_resamples, GROUP_RESAMPLES))
            summary["groups"][column][value] = {k: group_summary[k] for k in
                                                ("n_genuine", "n_impostor", "operating_points", "excluded_pairs")}
    return summary, curves, scores


def cutoff_at_group_fmr(accepted, n_impostor: int, *, fmr: float, floor: float) -> dict:
    """The lowest cutoff keeping a group's FMR <= ``fmr``, from its impostor scores >= ``floor``.

    Exact when it lies at or above ``floor`` (the group's FMR at ``floor`` exceeds ``fmr``);
    otherwise ``cutoff`` is None and the group meets ``fmr`` already at ``floor``.
    """
    entry = {"fmr": fmr, "cutoff": None, "measured_fmr": None, "floor": floor}
    if n_impostor < metrics.min_impostors_for_fmr(fmr):
        return {**entry, "reason": f"{n_impostor:,} impostor pairs cannot resolve an FMR of {fmr:g}"}
    if len(accepted) <= fmr * n_impostor:
        return {**entry, "reason": f"FMR <= {fmr:g} already at {floor:g}"}
    below = np.nextafter(floor, -np.inf)          # stands for every impostor pair scoring under the floor
    cutoff, measured = metrics.cutoff_at_fmr(np.r_[accepted, below], fmr=fmr,
                                             impostor_weight=np.r_[np.ones(len(accepted)), n_impostor - len(accepted)])
    if cutoff > accepted.max():
        top = int((accepted == accepted.max()).sum())
        return {**entry, "reason": f"no cutoff reaches it: {top:,} pairs ({top / n_impostor:.2g}) score the "
                                   f"highest score, {accepted.max():g}"}
    return {**entry, "cutoff": _rounded(cutoff), "measured_fmr": _rounded(measured), "reason": None}


def _all_vs_all_groups(dataset: FaceDataset, ok: np.ndarray, collector: PairCollector, groupings: list[Grouping],
                       settings: EvaluationOptions, promised_fmr) -> dict:
    """Per grouping and group: every pair of the images with a face, from what ``collector`` kept."""
    genuine_pairs, genuine = collector.genuine()
    impostor_pairs, impostor = collector.accepted_impostors()
    reference = settings.cutoffs[0]
    groups = {}
    for grouping in groupings:
        impostor_group = grouping.of_pairs(impostor_pairs[:, 0], impostor_pairs[:, 1])
        rates = metrics.grouped_pair_rates(
            dataset.identities, np.where(ok, grouping.codes, -1), grouping.table, genuine_pairs=genuine_pairs,
            genuine=genuine, impostor_pairs=impostor_pairs, impostor=impostor, cutoffs=settings.cutoffs,
            n_resamples=min(settings.n_resamples, GROUP_RESAMPLES), confidence=settings.confidence,
            random_state=settings.seed)
        ci = rates.intervals
        groups[grouping.spec.name] = {
            name: {"n_genuine": int(rates.n_genuine[g]), "n_impostor": int(rates.n_impostor[g]),
                   "operating_points": operating_points(
                       rates.false_matches[g], rates.n_impostor[g], rates.false_non_matches[g], rates.n_genuine[g],
                       cutoffs=settings.cutoffs, fmr_ci=np.c_[ci.fmr_low[g], ci.fmr_high[g]],
                       fnmr_ci=np.c_[ci.fnmr_low[g], ci.fnmr_high[g]], promised_fmr=promised_fmr),
                   "cutoff_at_promised_fmr": cutoff_at_group_fmr(
                       impostor[impostor_group == g], int(rates.n_impostor[g]), fmr=float(promised_fmr(reference)),
                       floor=min(settings.cutoffs))}
            for g, name in enumerate(grouping.names) if rates.n_genuine[g] + rates.n_impostor[g] > 0}
    return groups


def _all_vs_all(dataset: FaceDataset, embedding: EmbeddingResult, scorer: PairScorer, settings: EvaluationOptions, promised_fmr,
                groupings: list[Grouping]):
    ok = embedding.ok
    collector = PairCollector(min(settings.cutoffs)) if groupings else None
    result = all_vs_all(scorer, np.flatnonzero(ok), dataset.identities[ok], cutoffs=settings.cutoffs,
                        n_bins=settings.n_bins, on_block=collector)
    n_ids = result.impostor_totals.shape[0]
    genuine_totals = np.bincount(result.genuine_ids, minlength=n_ids).astype(np.float64)
    false_non_matches = np.stack([np.bincount(result.genuine_ids, weights=(result.genuine < c).astype(float),
                                              minlength=n_ids) for c in settings.cutoffs])
    intervals = metrics.bootstrap_rates(genuine_totals, false_non_matches, result.impostor_totals,
                                        list(result.false_match_matrices), n_resamples=settings.n_resamples,
                                        confidence=settings.confidence, random_state=settings.seed)
    impostor, weight = result.impostor_as_weighted()
    summary, curves = summarise_scores(result.genuine, impostor, settings=settings, intervals=intervals,
                                       exact_false_matches=result.false_matches, promised_fmr=promised_fmr,
                                       impostor_weight=weight)
    summary["impostor_histogram_resolution"] = 1.0 / settings.n_bins
    if groupings:
        summary["groups"] = _all_vs_all_groups(dataset, ok, collector, groupings, settings, promised_fmr)
    return summary, curves


def calibration_check(comparer, mode, comparison_sets: dict, reference_cutoff: float) -> dict:
    """The FMR measured at the reference cutoff next to the one the calibration promises."""
    calibration = comparer.calibration(mode)
    promised = float(calibration.fmr_at_score(reference_cutoff))
    name = "all_vs_all" if "all_vs_all" in comparison_sets else "protocol"
    check = {"cutoff": reference_cutoff, "promised_fmr": promised, "calibration_id": calibration.id,
             "calibration_dataset": calibration.dataset, "measured_on": name}
    point = next((p for p in comparison_sets.get(name, {}).get("operating_points", []) if p["cutoff"] == reference_cutoff),
                 None)
    if point is None or not point["n_impostor"]:
        return {**check, "verdict": "not measured", "reason": "no impostor comparisons"}
    check.update(measured_fmr=point["fmr"], fmr_ci=point["fmr_ci"], false_matches=point["false_matches"],
                 n_impostor=point["n_impostor"])
    needed = metrics.min_impostors_for_fmr(promised)
    low, high = point["fmr_ci"]
    if point["n_impostor"] < needed:
        verdict, reason = "unresolved", (f"{point['n_impostor']} impostor comparisons cannot resolve an FMR of "
                                         f"{promised:g}; at least {needed} are needed")
    elif low is not None and low > promised:
        verdict, reason = "worse than promised", "the whole 95% interval lies above the promised FMR"
    elif high is not None and high < promised:
        verdict, reason = "better than promised", "the whole 95% interval lies below the promised FMR"
    else:
        verdict, reason = "consistent", "the promised FMR lies inside the 95% interval"
    return {**check, "verdict": verdict, "reason": reason}


def evaluated_versions(comparer, mode: str) -> dict:
    """The comparer's versions with only the evaluated mode: a report says what produced its
    figures, not which other modes its comparer happened to have loaded (the same run from the
    CLI and from a comparer that also served ACCURATE wrote different reports)."""
    versions = comparer.versions()
    return {**versions, "modes": {mode: versions["modes"][mode]} if mode in versions["modes"] else {}}


def measure(dataset: FaceDataset, comparer, embedding: EmbeddingResult, *, mode: str | None = None,
            settings: EvaluationOptions | None = None, groupings: list[Grouping] = ()) -> Measurements:
    """Score ``dataset`` from its embeddings and summarise; see the module docstring.

    Parameters
    ----------
    dataset : FaceDataset
    comparer : facecmp.FaceComparer — supplies the score calibration (and its promise).
    embedding : EmbeddingResult of ``dataset.images`` (complete).
    mode : pipeline mode.
    settings : EvaluationOptions
    groupings : breakdowns by per-image labels (:func:`eval.groups.make_grouping`), applied to every set.
    """
    settings = settings or EvaluationOptions()
    if not embedding.complete:
        raise ValueError("embeddings are incomplete (the run stopped early); finish embedding first")
    scorer = PairScorer(comparer, embedding.embeddings, mode=mode)
    groupings = list(groupings)
    calibration = comparer.calibration(mode)
    promised_fmr = calibration.fmr_at_score
    timings: dict[str, float] = {}
    comparison_sets: dict[str, dict] = {}
    curves: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    if dataset.pairs is not None:
        summary, set_curves, _ = _protocol(dataset, embedding, scorer, settings, promised_fmr, groupings)
        comparison_sets["protocol"] = summary
        curves.update({f"protocol_{k}": v for k, v in set_curves.items()})
    timings["protocol_s"] = time.perf_counter() - start
    use_all = dataset.all_vs_all if settings.all_pairs is None else settings.all_pairs
    if use_all and embedding.ok.sum() >= 2:
        start = time.perf_counter()
        summary, set_curves = _all_vs_all(dataset, embedding, scorer, settings, promised_fmr, groupings)
        seconds = time.perf_counter() - start
        summary["seconds"] = round(seconds, 3)
        summary["pairs_per_second"] = round((summary["n_genuine"] + summary["n_impostor"]) / max(seconds, 1e-9))
        comparison_sets["all_vs_all"] = summary
        curves.update({f"all_vs_all_{k}": v for k, v in set_curves.items()})
        timings["all_vs_all_s"] = seconds
    summary = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset.describe(),
        "pipeline": {"mode": mode or comparer.mode, "pipeline_id": comparer.pipeline_id(mode),
                     "calibration": {"id": calibration.id, "dataset": calibration.dataset,
                                     "method": calibration.method},
                     "versions": evaluated_versions(comparer, mode or comparer.mode)},
        "settings": {"cutoffs": list(settings.cutoffs), "fmr_targets": list(settings.fmr_targets),
                     "bootstrap": {"n_resamples": settings.n_resamples, "confidence": settings.confidence,
                                   "seed": settings.seed, "unit": "identity"},
                     "match_rule": "score >= cutoff",
                     "group_by": [{"name": g.spec.name, "title": g.spec.title(), "groups": g.names}
                                  for g in groupings]},
        "enrolment": enrolment_summary(dataset, embedding),
        "comparison_sets": comparison_sets,
        "calibration_check": calibration_check(comparer, mode, comparison_sets, settings.cutoffs[0]),
        "timing": {"embedding_s": round(embedding.seconds, 3), "images_embedded": embedding.n_computed,
                   "images_from_cache": embedding.n_cached,
                   **{k: round(v, 3) for k, v in timings.items()}},
    }
    return Measurements(summary, curves)
