"""Measure the MiniFASNet liveness ensemble on liveness-dev: APCER and BPCER, and time per check.

APCER = attacks (spoof crops) accepted as live; BPCER = live crops rejected; reported
separately (ISO/IEC 30107-3). The crops are split into a fit part and a test part by blocks of
50 consecutive frame numbers (even blocks fit, odd blocks test) so near-duplicate neighbouring
frames rarely straddle the split; the threshold picked on the fit part is reported on both.
Crops are scored with ``LivenessChecker.score`` on the most prominent MTCNN face, skipping the
requirement checks (these tight crops fail them: their requirement codes are counted too).

    .venv/bin/python eval/liveness_pad.py --shared ../shared --json out/liveness_pad.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from eval.devdata import shared_root
from eval.metrics import fmr_fnmr
from facecmp.decode import load_image
from facecmp.liveness import LivenessChecker
from facecmp.settings import FacecmpSettings, LivenessSettings

BLOCK = 50


# Liveness is scored like verification: live faces are the genuine comparisons and attacks the
# impostors, so APCER (attacks accepted) is metrics' FMR and BPCER (live faces refused) its FNMR.
THRESHOLD_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


def error_rates(live_scores: np.ndarray, spoof_scores: np.ndarray, threshold: float) -> dict[str, float]:
    """APCER (spoof score >= threshold) and BPCER (live score < threshold), as fractions."""
    apcer, bpcer = fmr_fnmr(live_scores, spoof_scores, cutoffs=[threshold])
    return {"threshold": threshold, "apcer": float(apcer[0]), "bpcer": float(bpcer[0]),
            "n_live": int(live_scores.size), "n_spoof": int(spoof_scores.size)}


def pick_threshold(live_scores: np.ndarray, spoof_scores: np.ndarray, max_apcer: float) -> float:
    """Lowest threshold on a 0.01 grid whose APCER is at most ``max_apcer`` on the given scores
    (0.99 when none is). :func:`eval.metrics.cutoff_at_fmr` would return a score, not a grid
    point; the grid keeps the documented threshold (0.45) a round number."""
    apcer, _ = fmr_fnmr(live_scores, spoof_scores, cutoffs=THRESHOLD_GRID)
    passing = np.flatnonzero(apcer <= max_apcer)
    return float(THRESHOLD_GRID[passing[0]]) if passing.size else 0.99


def score_folder(folder: Path, checker: LivenessChecker) -> dict:
    scores, folds, codes, no_face = [], [], Counter(), 0
    for path in sorted(folder.glob("*.png"), key=lambda p: int(p.stem)):
        image = load_image(path)
        faces = checker.detect(image)
        codes[checker.check(image, faces).code] += 1
        if not faces:
            no_face += 1
            continue
        scores.append(checker.score(image, faces[0]))
        folds.append((int(path.stem) // BLOCK) % 2)
    return {"scores": np.array(scores), "folds": np.array(folds), "codes": dict(codes), "no_face": no_face}


def time_checks(image: np.ndarray, checker: LivenessChecker, repeats: int) -> dict:
    """Median ms of ``check`` (requirements + both models) for one image, detection excluded,
    with 1 torch thread and with torch's default (one per core)."""
    faces = checker.detect(image)
    checker.check(image, faces)  # loads the models
    result = {}
    for threads in (1, os.cpu_count() or 1):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            checker.check(image, faces)
            times.append((time.perf_counter() - start) * 1000)
        torch.set_num_threads(previous)
        result[f"threads_{threads}"] = round(statistics.median(times), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=shared_root())
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="MiniFASNet directory (default: <shared>/models/minifasnet)")
    parser.add_argument("--max-apcer", type=float, default=0.01, help="APCER target on the fit part")
    parser.add_argument("--threshold", type=float, action="append", default=[],
                        help="also report these thresholds (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while scoring")
    parser.add_argument("--timing-repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = args.shared / "data" / "liveness-dev"
    weights_dir = args.weights_dir or args.shared / "models" / "minifasnet"
    checker = LivenessChecker(FacecmpSettings(liveness=LivenessSettings(weights_dir=weights_dir)))
    live = score_folder(data / "live", checker)
    spoof = score_folder(data / "spoof", checker)

    parts = {"fit": 0, "test": 1}
    live_fit, spoof_fit = live["scores"][live["folds"] == 0], spoof["scores"][spoof["folds"] == 0]
    chosen = pick_threshold(live_fit, spoof_fit, args.max_apcer)
    report: dict = {"chosen_threshold": chosen, "max_apcer_on_fit": args.max_apcer,
                    "no_face": {"live": live["no_face"], "spoof": spoof["no_face"]},
                    "requirement_codes": {"live": live["codes"], "spoof": spoof["codes"]},
                    "operating_points": []}
    for threshold in sorted({chosen, 0.5, checker.settings.liveness.threshold, *args.threshold}):
        for name, fold in (*parts.items(), ("all", None)):
            keep_l = slice(None) if fold is None else live["folds"] == fold
            keep_s = slice(None) if fold is None else spoof["folds"] == fold
            rates = error_rates(live["scores"][keep_l], spoof["scores"][keep_s], threshold)
            report["operating_points"].append({"part": name, **rates})
    report["score_quantiles"] = {
        label: {q: round(float(np.quantile(group["scores"], q)), 4) for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)}
        for label, group in (("live", live), ("spoof", spoof))
    }
    samples = {}
    for path in sorted((data / "samples").glob("*/*.jpg")):
        image = load_image(path)
        faces = checker.detect(image)
        result = checker.check(image, faces)
        samples[f"{path.parent.name}/{path.name}"] = {
            "code": result.code, "score_model": round(checker.score(image, faces[0]), 4) if faces else None,
            "pose": {k: round(v, 1) for k, v in result.pose.items()}}
    report["samples"] = samples
    sample_live = load_image(data / "samples" / "live" / "image_T1.jpg")
    report["check_ms_median"] = time_checks(sample_live, checker, args.timing_repeats)

    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
