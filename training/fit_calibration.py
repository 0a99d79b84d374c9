"""Fit the score calibration of a pipeline mode on LFW and write ``facecmp/calibrations/<mode>.json``.

Method
------
0. Centred embedders: the mean embedding over the images of the *fit* folds is the centre
   (stored in the calibration file; the pipeline subtracts it before the cosine).
1. Cosines of all different-person pairs among the LFW View 2 images of the *fit* folds
   (identity-disjoint from the held-out folds; pairs.txt folds are person-disjoint).
2. Empirical false-match rate ``FMR(t)`` = share of those pairs with cosine >= t.
3. For scores s = 0.50, 0.51, ..., 1.00 the promised FMR is ``10 ** -(3 + (s - 0.7) / 0.1)``;
   the knot cosine is the empirical cutoff reaching it while at least ``MIN_TAIL_COUNT``
   impostor pairs lie above it. Beyond, the tail is modelled as exponential,
   ``log10 FMR(t) = a + b t``, fitted by least squares over the empirical FMR between
   1e-3 and the last resolved rate (a generalised Pareto tail of shape 0), and shifted to
   join the last empirical knot; a cosine of 1 takes the score the model gives it.
4. Below 0.5 the score falls linearly to 0 at cosine -1 (no FMR promise there).
5. Held-out folds: the FMR actually measured at 0.6, 0.67, 0.7, 0.8 is stored beside the fit.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facecmp.calibration import PROMISE_FLOOR, Calibration, fmr_promised
from facecmp.modes import MODES
from facecmp.settings import cache_dir
from training.lfw_features import config_parts, fit_centres, fuse_parts
from training.lfw_protocol import all_pair_cosines, fold_range

MIN_TAIL_COUNT = 50
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "facecmp" / "calibrations"


def empirical_cutoff(impostor_desc: np.ndarray, fmr: float) -> float | None:
    """Cosine t with share(impostor >= t) ~= fmr, or None if fewer than MIN_TAIL_COUNT pairs lie above."""
    count = fmr * len(impostor_desc)
    if count < MIN_TAIL_COUNT:
        return None
    return float(impostor_desc[int(round(count)) - 1])


def fit_knots(impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    desc = np.sort(impostor)[::-1]
    scores = np.round(np.arange(PROMISE_FLOOR, 1.0 + 1e-9, 0.01), 2)
    empirical = [(s, empirical_cutoff(desc, fmr_promised(s))) for s in scores]
    resolved = [(s, t) for s, t in empirical if t is not None]
    last_s, last_t = resolved[-1]
    # Tail model: exponential in the cosine, fitted on the resolved range FMR in [last, 1e-3].
    counts = np.arange(MIN_TAIL_COUNT, int(1e-3 * len(desc)) + 1)
    t_fit, log_fmr = desc[counts - 1], np.log10(counts / len(desc))
    slope, intercept = np.polyfit(t_fit, log_fmr, 1)
    shift = np.log10(fmr_promised(last_s)) - (intercept + slope * last_t)  # continuity at the junction
    knots = [(-1.0, 0.0)] + [(t, s) for s, t in resolved]
    for s in scores[scores > last_s]:
        t = (np.log10(fmr_promised(s)) - intercept - shift) / slope
        if t >= 1.0:
            break
        knots.append((float(t), float(s)))
    if knots[-1][0] < 1.0:
        top = (intercept + shift + slope * 1.0)  # log10 FMR the tail model gives a perfect cosine
        knots.append((1.0, float(min(1.0, 0.7 - 0.1 * (top + 3)))))
    cosine, score = np.array([k[0] for k in knots]), np.array([k[1] for k in knots])
    keep = np.concatenate([[True], np.diff(cosine) > 0])  # strictly increasing cosines
    tail = {"model": "log10 FMR = a + b * cosine (exponential tail)", "a": float(intercept + shift),
            "b": float(slope), "empirical_up_to_score": float(last_s), "min_tail_count": MIN_TAIL_COUNT}
    return cosine[keep], score[keep], tail


def measured_fmr(calibration: Calibration, impostor: np.ndarray, genuine: np.ndarray) -> dict:
    scores_imp, scores_gen = calibration.score(impostor), calibration.score(genuine)
    out = {}
    for cut in (0.6, 0.67, 0.7, 0.8):
        false = int(np.sum(scores_imp >= cut))
        out[f"{cut:g}"] = {"fmr": false / len(impostor), "false_matches": false, "promised_fmr": float(fmr_promised(cut)),
                           "fnmr": float(np.mean(scores_gen < cut))}
    return {"impostor_pairs": len(impostor), "genuine_pairs": len(genuine), "at": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--out", type=Path, default=cache_dir() / "training" / "lfw")
    parser.add_argument("--fit-folds", default="1-5")
    parser.add_argument("--write", type=Path, default=None, help="default: facecmp/calibrations/<mode>.json")
    args = parser.parse_args()
    config = MODES[args.mode]
    det = np.load(args.out / "detections.npz")
    fit = np.isin(det["folds"], list(fold_range(args.fit_folds)))
    parts = config_parts(args.out, config)
    centres = fit_centres(parts, config, fit)
    emb = fuse_parts(parts, config, centres)
    _, impostor_fit = all_pair_cosines(np.where(fit[:, None], emb, np.nan), det["identities"])
    cosine, score, tail = fit_knots(impostor_fit)
    held = ~fit & ~np.isnan(emb).any(axis=1)
    genuine_held, impostor_held = all_pair_cosines(np.where(held[:, None], emb, np.nan), det["identities"])
    calibration = Calibration(
        id=f"{args.mode}-lfw-folds{args.fit_folds}-v1", pipeline=config.fingerprint(),
        dataset=f"LFW View 2 (deep-funneled), images of pairs.txt folds {args.fit_folds}: all "
                f"{len(impostor_fit):,} different-person pairs",
        method="empirical impostor quantiles at FMR = 10^-(3 + (s - 0.7)/0.1), exponential tail beyond "
               f"{MIN_TAIL_COUNT} pairs, linear below score 0.5 (training/fit_calibration.py)",
        cosine_knots=cosine, score_knots=score, info={}, centres=centres,
    )
    calibration = Calibration(**{**calibration.__dict__, "info": {
        "tail": tail, "heldout": {"folds": "the other pairs.txt folds",
                                  **measured_fmr(calibration, impostor_held, genuine_held)}}})
    target = args.write or PACKAGE_DIR / f"{args.mode}.json"
    target.write_text(json.dumps(calibration.to_dict(), indent=1) + "\n")
    print(f"wrote {target}")
    print(json.dumps(calibration.info["heldout"], indent=1))


if __name__ == "__main__":
    main()
