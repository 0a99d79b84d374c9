"""Real old photographs in the calibration: the old-print model and shift, and their held-out rates.

Input: an ``embed_images`` file of a set of real old photos with a labels CSV holding ``path``,
``subject`` (the person) and ``age`` (years, at the photo) — by default fgnet-dev (FG-NET: 41
people photographed across their lives, most photos scanned prints). It is split **by person**
(:func:`split_by_person`): the fit half fits the old-print model and shift, the held-out half
only measures (``fit_calibration --old-photo-fit-half second`` swaps the halves, to check the
method the other way round).

- :func:`fit_old_print_model`: a logistic regression on the embedding, old photos of the fit
  people against the ordinary fit faces (LFW folds 1-5 and the cohort set's fit half, undegraded);
  its strength chosen by cross-validation by person. Fit faces get cross-fitted values.
- :func:`fit_old_print_shift`: per bin of the pair's *lower* old-print figure, how far the
  FMR-1e-3 quantile of the normalised similarity of impostor pairs lies above that of ordinary
  pairs; never negative, non-decreasing in the figure, 0 below the first knot. The fit people's
  photos are in the cohort, so their pairs are measured with cohort statistics from the cohort
  without their own person (:func:`cohort_stats_without_own_person`): a person's other photos in the
  cohort crowd the neighbourhood, AS-norm then lowers their impostor pairs, and a shift fitted on
  them fell short for people the calibration has never seen (held out: 2.3x the promise, fit
  people 0.6x).
- :func:`old_print_limit`: where pairs of two old prints still miss the promise, on held-out
  people (the flag's limit);

Measured held out by :func:`training.heldout.old_photo_rates`.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_predict

from eval.metrics import cutoff_at_fmr
from facecmp.calibration import Calibration
from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, PROMISE_TOLERANCE
from facecmp.normalisation import FaceStats, ScoreNormaliser
from training.pair_walks import identity_pairs

OLD_PRINT_CS = (0.03, 0.1, 0.3, 1.0, 3.0)   # logistic regression strengths, chosen by CV by person
SHIFT_MIN_PAIRS = 2_000    # per bin of the old-print shift: 2 pairs above its FMR-1e-3 quantile
#: A photo whose old-print figure (a probability) is at least this, the model calls an old print;
#: pairs of two are shifted and measured for the flag. (0.3 was measured too, docs/score.md.)
OLD_PRINT = 0.5



def split_by_person(subjects: np.ndarray, fit_half: str = "first") -> np.ndarray:
    """Fit (True) or held out: half the people (sorted by a hash of the subject name, so the
    split is the same on every machine and balanced in people), all photos of a person together.
    ``fit_half``: which half fits, "first" (the shipped calibrations) or "second" (the same
    method checked the other way round)."""
    order = sorted(set(subjects.tolist()), key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    fit_people = set({"first": order[: len(order) // 2], "second": order[len(order) // 2:]}[fit_half])
    return np.array([s in fit_people for s in subjects.tolist()])


def attach_identities(data: dict, labels_csv: Path, fit_half: str = "first") -> dict:
    """``data`` (an ``embed_images`` file with ``ok``) restricted to embedded photos listed in
    ``labels_csv`` (``path`` relative to it, ``subject``, ``age``), with ``identity``, ``age``
    and ``fit`` (:func:`split_by_person` of ``fit_half``)."""
    root = Path(str(data["root"]))
    with open(labels_csv, newline="") as handle:
        rows = {str((labels_csv.parent / row["path"]).resolve()): row for row in csv.DictReader(handle)}
    found = [rows.get(str((root / p).resolve())) for p in data["paths"]]
    keep = np.array([row is not None for row in found]) & data["ok"]
    out = {k: (v[keep] if isinstance(v, np.ndarray) and v.ndim and len(v) == len(keep) else v) for k, v in data.items()}
    out["identity"] = np.array([row["subject"] for row, k in zip(found, keep) if k])
    out["label_age"] = np.array([row["age"] for row, k in zip(found, keep) if k])
    out["age"] = out["label_age"].astype(float)
    out["fit"] = split_by_person(out["identity"], fit_half)
    return out


def fit_old_print_model(old: np.ndarray, old_people: np.ndarray, ordinary: np.ndarray,
                        ordinary_people: np.ndarray) -> tuple[LogisticRegression, np.ndarray, dict]:
    """Logistic regression, old photos (1) against ordinary faces (0), classes balanced; the
    strength by 5-fold cross-validation grouped by person. Returns the model, the cross-fitted
    probabilities of ``old`` then ``ordinary`` (no face judges itself) and a summary."""
    x = np.concatenate([old, ordinary])
    y = np.r_[np.ones(len(old)), np.zeros(len(ordinary))]
    groups = np.concatenate([np.char.add("old:", old_people.astype(str)),
                             np.char.add("ordinary:", ordinary_people.astype(str))])
    base = LogisticRegression(max_iter=3000, class_weight="balanced")
    search = GridSearchCV(base, {"C": OLD_PRINT_CS}, cv=GroupKFold(5), scoring="roc_auc").fit(x, y, groups=groups)
    cross = cross_val_predict(search.best_estimator_, x, y, groups=groups, cv=GroupKFold(5), method="predict_proba")[:, 1]
    info = {"model": "logistic regression on the embedding: real old photos against ordinary faces",
            "C": float(search.best_params_["C"]), "cv_roc_auc_by_person": round(float(search.best_score_), 4),
            "old_photos": len(old), "old_people": len(set(old_people.tolist())), "ordinary_faces": len(ordinary)}
    return search.best_estimator_, cross.astype(np.float32), info


def fit_old_print_shift(values: np.ndarray, pair_old_print: np.ndarray, reference: float, old_pairs: np.ndarray,
                        *, start: float = OLD_PRINT, bins: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Knots (lower old-print figure, shift): per bin of the pairs whose lower figure is at least
    ``start`` (the bins' edges are quantiles of the old photos' pairs, ``old_pairs`` marking them,
    so each bin holds as many of those), how far the FMR-1e-3 quantile of ``values`` lies above
    ``reference`` (that of ordinary pairs); never negative, non-decreasing in the figure, and 0 at
    ``start``: a photo the model calls ordinary is never shifted."""
    chosen = pair_old_print >= start
    if not (chosen & old_pairs).any():
        return np.array([0.0, 1.0]), np.zeros(2)
    edges = np.unique(np.quantile(pair_old_print[chosen & old_pairs], np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = start, 1.0
    key, vals = pair_old_print[chosen], values[chosen]
    which = np.clip(np.searchsorted(edges, key, "right") - 1, 0, len(edges) - 2)
    medians, cutoffs = [], []
    for b in range(len(edges) - 1):
        if (which == b).sum() >= SHIFT_MIN_PAIRS:
            medians.append(float(np.median(key[which == b])))
            cutoffs.append(cutoff_at_fmr(vals[which == b], fmr=ANCHOR_FMR)[0])
    if not medians:
        return np.array([0.0, 1.0]), np.zeros(2)
    shift = np.maximum.accumulate(np.maximum(np.array(cutoffs) - reference, 0.0))
    return np.concatenate([[start], medians, [1.0]]), np.concatenate([[0.0], shift, [shift[-1]]])


def cohort_stats_without_own_person(normaliser: ScoreNormaliser, embeddings: np.ndarray, identity: np.ndarray,
                                    cohort_identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cohort mean and spread of each of ``embeddings`` as a person outside the cohort would
    get them: each person's photos against the cohort less that person's rows
    (``cohort_identity`` names each cohort row's person, "" for faces of no listed person)."""
    mean, std = np.empty(len(embeddings), np.float32), np.empty(len(embeddings), np.float32)
    for person in sorted(set(identity.tolist())):
        own = identity == person
        apart = dataclasses.replace(normaliser, cohort=normaliser.cohort[cohort_identity != person])
        alone = apart.face_stats(embeddings[own])
        mean[own], std[own] = alone.cohort_mean, alone.cohort_std
    return mean, std


def fit_old_prints(normaliser: ScoreNormaliser, old_photos: dict, both_c: dict, stats_c: FaceStats, fit_c: np.ndarray,
                   both_l: dict, stats_l: FaceStats, fit_l: np.ndarray, *, reference: float,
                   sampled: list[tuple[FaceStats, np.ndarray, np.ndarray, np.ndarray]], cohort_identity: np.ndarray,
                   shift: bool = True) -> tuple[ScoreNormaliser, FaceStats, dict]:
    """``normaliser`` with the old-print model and shift (see the module docstring).

    ``both_c``/``both_l``: the cohort set's and LFW's faces with their copies (fit_calibration's
    ``with_degraded``), ``stats_*`` their statistics (their ``old_print`` is filled in, cross-fitted
    for the ordinary fit faces), ``fit_*`` their fit rows; ``reference``: the FMR-1e-3 quantile of
    ordinary impostor pairs after the age shift; ``sampled``: (stats, rows a, rows b, normalised
    similarity after the age and quality shifts) of the sampled impostor pairs of faces and copies.
    ``shift`` False: the model alone (the figure and the flag; a candidate measured in
    docs/score.md); ``cohort_identity``: each cohort row's person ("" for ordinary faces). Returns
    the normaliser, the old photos' statistics (fit people cross-fitted, and against the cohort
    less their own person) and a summary."""
    ordinary_c, ordinary_l = np.flatnonzero(fit_c & both_c["clean"]), np.flatnonzero(fit_l & both_l["clean"])
    old_rows = np.flatnonzero(old_photos["fit"])
    people = np.concatenate([np.char.add("cohort:", both_c["identity"][ordinary_c].astype(str)),
                             np.char.add("lfw:", both_l["identity"][ordinary_l].astype(str))])
    model, cross, info = fit_old_print_model(
        old_photos["embeddings"][old_rows], old_photos["identity"][old_rows],
        np.concatenate([both_c["embeddings"][ordinary_c], both_l["embeddings"][ordinary_l]]), people)
    modelled = dataclasses.replace(normaliser, old_print_weights=model.coef_[0].astype(np.float32),
                                   old_print_bias=float(model.intercept_[0]))
    n_old, n_c = len(old_rows), len(ordinary_c)
    stats_c.old_print[:] = modelled.old_print(both_c["embeddings"])
    stats_l.old_print[:] = modelled.old_print(both_l["embeddings"])
    stats_c.old_print[ordinary_c], stats_l.old_print[ordinary_l] = cross[n_old:n_old + n_c], cross[n_old + n_c:]
    stats_old = modelled.face_stats(old_photos["embeddings"])
    stats_old.cohort_mean[old_rows], stats_old.cohort_std[old_rows] = cohort_stats_without_own_person(
        modelled, old_photos["embeddings"][old_rows], old_photos["identity"][old_rows], cohort_identity)
    stats_old.old_print[old_rows] = cross[:n_old]
    a, b, same = identity_pairs(old_photos["identity"][old_rows])
    a, b = old_rows[a[~same]], old_rows[b[~same]]
    emb = old_photos["embeddings"]
    values = [modelled.normalise(np.einsum("ij,ij->i", emb[a], emb[b]), stats_old[a], stats_old[b])]
    pair_old_print = [np.minimum(stats_old.old_print[a], stats_old.old_print[b])]
    for stats, rows_a, rows_b, shifted in sampled:
        values.append(shifted)
        pair_old_print.append(np.minimum(stats.old_print[rows_a], stats.old_print[rows_b]))
    old_pairs = np.arange(sum(len(v) for v in values)) < len(values[0])
    values, pair_old_print = np.concatenate(values), np.concatenate(pair_old_print)
    info.update({"old_photo_impostor_pairs": len(a),
                 "ordinary_faces_over_0.5": round(float(np.mean(cross[n_old:] >= 0.5)), 4),
                 "old_photos_over_0.5": round(float(np.mean(cross[:n_old] >= 0.5)), 4)})
    if shift:
        knots, shifts = fit_old_print_shift(values, pair_old_print, reference, old_pairs)
        modelled = dataclasses.replace(modelled, shift_old_prints=knots, shift_old_print_values=shifts)
    return modelled, stats_old, info


def old_print_limit(calibration: Calibration, data: dict, stats: FaceStats, rows: np.ndarray,
                    grid=(OLD_PRINT, 0.6, 0.7, 0.8, 0.9)) -> float | None:
    """Where pairs of two old prints were measured to miss the promise, on held-out people: the
    lowest figure ``t`` of ``grid`` such that the different-person pairs among ``rows`` whose lower
    old-print figure is at least ``t`` match at 0.7 more than PROMISE_TOLERANCE times as often as
    promised; None where none do."""
    emb, s = data["embeddings"][rows], stats[rows]
    a, b, same = identity_pairs(data["identity"][rows])
    a, b = a[~same], b[~same]
    key = np.minimum(s.old_print[a], s.old_print[b])
    matched = calibration.score_pairs(np.einsum("ij,ij->i", emb[a], emb[b]), s[a], s[b]) >= ANCHOR_SCORE
    for limit in grid:
        chosen = key >= limit
        if chosen.any() and np.mean(matched[chosen]) > PROMISE_TOLERANCE * ANCHOR_FMR:
            return limit
    return None
