"""Candidates for real old photos, measured before choosing (README, docs/score.md "Real old photos").

Each candidate is a full fit (:func:`training.fit_calibration.fit`) on the same embeddings:

- ``before``: no old photos (the calibration as it was);
- ``old photos in the cohort``: the fit people's old photos join the AS-norm cohort, so an old
  print's neighbourhood shows how crowded old prints are;
- ``old-print flag``: the old-print model, no shift, only the flag;
- ``old-print shift``: the model and its shift;
- ``cohort + shift`` (the chosen one): both.

Every candidate's flags stand where held-out data still miss the promise, as the fit's do
(:func:`training.fit_calibration.heldout_limits`; the old-print limit only with the model).

Printed per candidate, held out: fgnet-dev's held-out people (FMR at 0.7 over all different-person
pairs, adults, younger face 6+, the share of false matches flagged, same-person acceptance by age
gap), LFW folds 6-10 (FMR at 0.7 ÷ 1e-3, share of faces flagged) and the cohort set's held-out
half (the worst-served labelled adult group). ``--erc`` draws error versus reject for the chosen
candidate: FMR at 0.7 of the pairs kept when pairs are rejected in order of their lower old-print
figure, quality or cohort similarity, on fgnet-dev's held-out people together with LFW folds 6-10.

    python -m training.old_photo_candidates fast --erc docs/old_photos_erc.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE
from eval.devdata import FGNET, LFW, UTKFACE, dataset_dir
from training.embed_images import embeddings_file
from training.fit_calibration import fit, heldout_limits
from training.fit_data import attach_labels, load_degraded, load_embeddings, load_lfw_embeddings
from training.heldout import flagged_faces, heldout_groups, old_photo_rates
from training.old_photos import attach_identities
from training.pair_walks import all_pairs

CANDIDATES = {
    "before": {"old_photos": False},
    "old photos in the cohort": {"old_print_shift": False},
    "old-print flag": {"old_photos_in_cohort": False, "old_print_shift": False},
    "old-print shift": {"old_photos_in_cohort": False},
    "cohort + shift": {},
}

AT = f"{ANCHOR_SCORE:g}"


def measure(name: str, options: dict, data: dict, mode: str) -> dict:
    lfw, cohort_set, old = data["lfw"], data["cohort"], data["old"]
    calibration, fitted = fit(mode, lfw, cohort_set, top_k=100, age_clamp=20.0, lfw_degraded=data["lfw_degraded"],
                              cohort_degraded=data["cohort_degraded"],
                              old_photos=old if options.get("old_photos", True) else None,
                              **{k: v for k, v in options.items() if k != "old_photos"})
    # The fit people's photos as the fit saw them (cross-fitted figures, against the cohort less
    # their own photos); without the old-photo fit no photo of theirs is in the cohort.
    stats_old = fitted["stats_old_photos"]
    if stats_old is None:
        stats_old = calibration.face_stats(old["embeddings"])
    held_old = np.flatnonzero(~old["fit"])
    # The flags' limits, as the fit sets them (the old-print limit only for candidates with the model).
    calibration = heldout_limits(calibration, fitted, lfw, cohort_set,
                                 old if calibration.normaliser.old_print_weights is not None else None)
    rates = old_photo_rates(calibration, old, stats_old, held_old)
    fit_rates = old_photo_rates(calibration, old, stats_old, np.flatnonzero(old["fit"]))
    held_lfw = np.flatnonzero(lfw["ok"] & (lfw["fold"] >= 6))
    _, impostor = all_pairs(lfw["embeddings"][held_lfw], fitted["stats_lfw"][held_lfw], calibration.score_pairs,
                            lfw["identity"][held_lfw])
    groups = heldout_groups(calibration, cohort_set, fitted["stats_cohort_set"])
    adult_groups = {k: v[AT] for k, v in groups.items() if k.startswith("adults")}
    worst = max(adult_groups, key=adult_groups.get)
    return {"candidate": name, "fgnet": rates, "fgnet_fit": fit_rates,
            "lfw_fmr_ratio": float(np.mean(impostor >= ANCHOR_SCORE) / ANCHOR_FMR),
            "lfw_faces_flagged": flagged_faces(calibration, fitted["stats_lfw"][held_lfw],
                                               lfw["face_width"][held_lfw])["any"],
            "worst_adult_group": (worst, adult_groups[worst] / ANCHOR_FMR),
            "calibration": calibration, "stats_lfw": fitted["stats_lfw"]}


def table(rows: list[dict]) -> str:
    head = ("| candidate (held out) | fgnet-dev all: FMR at 0.7 ÷ 1e-3 | flagged | adults | younger face 6-12 | "
            "13-17 | same person at 0.7, gap 0-5 / 6-15 / 16+ | fit people: all ÷ 1e-3, flagged | LFW 6-10 ÷ 1e-3 | "
            "LFW faces flagged | worst adult group |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        rates, fit_all = row["fgnet"], row["fgnet_fit"]["all"][AT]

        def ratio(group):
            return f"{rates[group][AT]['fmr'] / ANCHOR_FMR:.1f}"
        accept = " / ".join(f"{rates[g][AT]['accept_same'] * 100:.0f}" for g in ("age gap 0-6", "age gap 6-16", "age gap 16-"))
        lines.append(f"| {row['candidate']} | {ratio('all')} | {(rates['all'][AT]['flagged_false_matches'] or 0) * 100:.0f} % | "
                     f"{ratio('adults (both 18+)')} | {ratio('younger face 6-12')} | {ratio('younger face 13-17')} | "
                     f"{accept} % | {fit_all['fmr'] / ANCHOR_FMR:.1f}, {(fit_all['flagged_false_matches'] or 0) * 100:.0f} % | "
                     f"{row['lfw_fmr_ratio']:.2f} | {row['lfw_faces_flagged'] * 100:.1f} % | "
                     f"{row['worst_adult_group'][0]} {row['worst_adult_group'][1]:.2f} |")
    return "\n".join(lines)


def error_versus_reject(row: dict, data: dict, path: Path) -> None:
    """What rejecting pairs by each figure buys on old photos and costs on ordinary ones: FMR at
    0.7 of the kept pairs of fgnet-dev's held-out people against the share of LFW folds 6-10's
    different-person pairs rejected at the same threshold (pairs rejected in order of the
    figure: lower old-print figure, higher quality, lower cohort similarity: both faces alike)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    calibration, old, lfw = row["calibration"], data["old"], data["lfw"]
    held_lfw = np.flatnonzero(lfw["ok"] & (lfw["fold"] >= 6))
    sets = {"old": (old["embeddings"][~old["fit"]], calibration.face_stats(old["embeddings"][~old["fit"]]),
                    old["identity"][~old["fit"]]),
            "lfw": (lfw["embeddings"][held_lfw], row["stats_lfw"][held_lfw], lfw["identity"][held_lfw])}
    figures = {"lower old-print figure": lambda s, a, b: np.minimum(s.old_print[a], s.old_print[b]),
               "higher quality (low = rejected first)": lambda s, a, b: -np.maximum(s.quality[a], s.quality[b]),
               "lower cohort similarity": lambda s, a, b: np.minimum(s.cohort_mean[a], s.cohort_mean[b])}
    pairs = {}
    for name, (emb, stats, identity) in sets.items():
        a, b = np.triu_indices(len(emb), 1)
        if len(a) > 1_000_000:   # LFW: a sample of its pairs
            keep = np.random.default_rng(0).choice(len(a), 1_000_000, replace=False)
            a, b = a[keep], b[keep]
        a, b = a[identity[a] != identity[b]], b[identity[a] != identity[b]]
        scores = calibration.score_pairs(np.einsum("ij,ij->i", emb[a], emb[b]), stats[a], stats[b])
        pairs[name] = (scores, {label: key(stats, a, b) for label, key in figures.items()})
    figure, axes = plt.subplots(figsize=(6.4, 4))
    for label in figures:
        old_key, lfw_key = pairs["old"][1][label], pairs["lfw"][1][label]
        thresholds = np.unique(np.quantile(old_key, np.linspace(0, 1, 201)))[::-1]
        matched = pairs["old"][0] >= ANCHOR_SCORE
        fmr = [np.sum(matched & (old_key < t)) / max(np.sum(old_key < t), 1) for t in thresholds]
        rejected = [np.mean(lfw_key >= t) for t in thresholds]
        axes.plot(rejected, np.array(fmr) / ANCHOR_FMR, label=label)
    axes.axhline(3, color="grey", linestyle=":", label="3x the promise")
    axes.set(xlabel="share of LFW folds 6-10 different-person pairs rejected",
             ylabel="fgnet-dev held out: FMR at 0.7 of kept pairs ÷ 1e-3", xlim=(0, 0.1),
             title=f"Error versus reject, held out ({row['candidate']})")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--erc", type=Path, help="write the error-versus-reject plot of the last candidate here")
    args = parser.parse_args()
    lfw = load_lfw_embeddings(embeddings_file(LFW, args.mode), dataset_dir(LFW))
    cohort = attach_labels(load_embeddings(embeddings_file(UTKFACE, args.mode)), dataset_dir(UTKFACE) / "labels.csv")
    data = {"lfw": lfw, "cohort": cohort,
            "lfw_degraded": load_degraded(embeddings_file(f"{LFW}-degraded", args.mode), lfw),
            "cohort_degraded": load_degraded(embeddings_file(f"{UTKFACE}-degraded", args.mode), cohort),
            "old": attach_identities(load_embeddings(embeddings_file(FGNET, args.mode)),
                                     dataset_dir(FGNET) / "labels.csv")}
    rows = [measure(name, CANDIDATES[name], data, args.mode) for name in args.candidates]
    print(table(rows))
    if args.erc:
        error_versus_reject(rows[-1], data, args.erc)


if __name__ == "__main__":
    main()
