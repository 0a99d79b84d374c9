"""What the calibration's one free constant, its *level*, trades held out: proof for the targets
no single level meets together.

The level is an offset of the normalised-similarity axis (``balance_level`` in
:mod:`training.fit_calibration`, set on the fit data so that the worst-served group is as close to
the promise at 0.7 as it can be). Raising it makes every pair stricter together. For offsets
around the fitted one, this prints, on the data the fit held out, the FMR at 0.7 as a multiple of
the promised 1e-3 for LFW folds 6-10, for each pair group of the cohort set's held-out half, and
for CACD-VS (the protocol's different-person pairs and all pairs across folders) and for the
held-out people of the real old photos (fgnet-dev: all, adults, each band of the younger face
from 6 years),
beside same-person acceptance at 0.7 and 0.67 (CACD-VS: one person years apart; fgnet-dev: by
the gap between the two photos' ages)::

    python -m training.level_tradeoff accurate --offsets -0.25 0 0.25 0.5

It reads the mode's shipped calibration and the embeddings ``fit_calibration`` reads.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval.devdata import CACD_VS, FGNET, LFW, UTKFACE, dataset_dir
from eval.metrics import fmr_fnmr
from eval.groups import AGE_EDGES, band_names
from facecmp.calibration import Calibration, load_calibration
from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, CROSS_AGE_SCORE_CUTOFF
from facecmp.modes import MODES
from training.embed_images import embeddings_file
from training.fit_data import (ADULT_AGE, attach_labels, group_masks, labelled_groups, load_embeddings,
                               load_lfw_embeddings, pairs_file_rows)
from training.heldout import OLD_PHOTO_AGE_GAP_EDGES
from training.old_photos import attach_identities
from training.pair_walks import all_pairs, identity_pairs, pairs_across_folders

OLD_PHOTO_BANDS_FROM = 6   # the issue judges old photos by the younger face's band from 6 years


def held_out_similarities(calibration: Calibration, lfw_npz: Path, lfw_dir: Path, cohort_npz: Path,
                          cohort_labels: Path, pairs_npz: Path, pairs_tsv: Path
                          ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Normalised similarities of the held-out different-person pairs, by group, and of CACD-VS's
    same-person pairs (where its embeddings exist)."""
    impostors, genuine = {}, {}
    lfw = load_lfw_embeddings(lfw_npz, lfw_dir)
    held = np.flatnonzero(lfw["ok"] & (lfw["fold"] >= 6))
    emb = lfw["embeddings"][held]
    _, impostors["LFW folds 6-10"] = all_pairs(emb, calibration.face_stats(emb), calibration.similarity,
                                               lfw["identity"][held])
    cohort = attach_labels(load_embeddings(cohort_npz), cohort_labels)
    rows = np.flatnonzero(cohort["ok"] & ~cohort["fit"])
    emb = cohort["embeddings"][rows]
    stats = calibration.face_stats(emb)
    for name, mask in tqdm(group_masks(labelled_groups(cohort, rows), len(rows)).items(), desc="held-out groups"):
        _, impostors[name] = all_pairs(emb, stats, calibration.similarity, select=mask)
    if pairs_tsv.exists() and pairs_npz.exists():
        data = load_embeddings(pairs_npz)
        a, b, same, have = pairs_file_rows(data, pairs_tsv)
        emb = np.nan_to_num(data["embeddings"])
        stats = calibration.face_stats(emb)
        similarity = np.where(have, calibration.similarity(np.einsum("ij,ij->i", emb[a], emb[b]), stats[a], stats[b]),
                              -np.inf)
        impostors["CACD-VS different-person pairs"] = similarity[~same]
        genuine["CACD-VS same-person pairs"] = similarity[same]
        impostors["CACD-VS all pairs across folders"] = pairs_across_folders(data, stats, calibration.similarity)
    return impostors, genuine


def old_photo_similarities(calibration: Calibration, npz: Path, labels_csv: Path
                           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Normalised similarities of the pairs of the old-photo set's held-out people
    (:func:`training.old_photos.attach_identities`; their photos are not in the cohort):
    different people by the younger face's labelled age, one person by the age gap."""
    data = attach_identities(load_embeddings(npz), labels_csv)
    rows = np.flatnonzero(~data["fit"])
    emb, age = data["embeddings"][rows], data["age"][rows]
    stats = calibration.face_stats(emb)
    a, b, same = identity_pairs(data["identity"][rows])
    similarity = calibration.similarity(np.einsum("ij,ij->i", emb[a], emb[b]), stats[a], stats[b])
    younger, gap = np.minimum(age[a], age[b]), np.abs(age[a] - age[b])
    name = f"{FGNET} held-out people"
    bands = {f"{name}, younger face {band}": ~same & (low <= younger) & (younger < high)
             for band, low, high in zip(band_names(AGE_EDGES), AGE_EDGES[:-1], AGE_EDGES[1:])
             if low >= OLD_PHOTO_BANDS_FROM}
    impostors = {f"{name}, all": similarity[~same],
                 f"{name}, adults (both {ADULT_AGE}+)": similarity[~same & (younger >= ADULT_AGE)],
                 **{band: similarity[inside] for band, inside in bands.items() if inside.any()}}
    edges = OLD_PHOTO_AGE_GAP_EDGES
    genuine = {f"{name}, same person {band} years apart": similarity[same & (low <= gap) & (gap < high)]
               for band, low, high in zip(band_names(edges), edges[:-1], edges[1:])}
    return impostors, genuine


def tradeoff_rows(calibration: Calibration, impostors: dict[str, np.ndarray], genuine: dict[str, np.ndarray],
                  offsets) -> list[tuple[str, int, list[str]]]:
    """(name, pairs, one cell per offset): FMR at 0.7 ÷ 1e-3 for impostor sets, acceptance at
    0.7 / 0.67 in percent for same-person sets. An offset ``d`` moves the similarity at each score
    by ``d``, as ``balance_level``'s offset does; rates by :func:`eval.metrics.fmr_fnmr`."""
    offsets = np.asarray(offsets, dtype=np.float64)
    at_anchor, at_cross_age = calibration.similarity_at(ANCHOR_SCORE), calibration.similarity_at(CROSS_AGE_SCORE_CUTOFF)
    rows = [(name, len(values), [f"{fmr / ANCHOR_FMR:.2f}" for fmr in fmr_fnmr([], values, cutoffs=at_anchor + offsets)[0]])
            for name, values in impostors.items()]
    for name, values in genuine.items():
        anchor, cross_age = (1 - fmr_fnmr(values, [], cutoffs=cut + offsets)[1] for cut in (at_anchor, at_cross_age))
        rows.append((name, len(values), [f"{100 * a:.1f} / {100 * c:.1f} %" for a, c in zip(anchor, cross_age)]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--offsets", type=float, nargs="+", default=[-0.25, 0.0, 0.25, 0.5, 0.75],
                        help="relative to the shipped level; positive is stricter")
    parser.add_argument("--lfw", type=Path, default=dataset_dir(LFW))
    parser.add_argument("--cohort-labels", type=Path, default=dataset_dir(UTKFACE) / "labels.csv")
    parser.add_argument("--pairs", type=Path, default=dataset_dir(CACD_VS) / "pairs.tsv")
    parser.add_argument("--old-photo-labels", type=Path, default=dataset_dir(FGNET) / "labels.csv")
    args = parser.parse_args()
    calibration = load_calibration(args.mode, MODES[args.mode].fingerprint())
    impostors, genuine = held_out_similarities(
        calibration, embeddings_file(LFW, args.mode), args.lfw, embeddings_file(UTKFACE, args.mode), args.cohort_labels,
        embeddings_file(CACD_VS, args.mode), args.pairs)
    if args.old_photo_labels.exists():
        old_impostors, old_genuine = old_photo_similarities(calibration, embeddings_file(FGNET, args.mode),
                                                            args.old_photo_labels)
        impostors.update(old_impostors)
        genuine.update(old_genuine)
    header = ["held out", "pairs"] + [f"offset {d:+g}" for d in args.offsets]
    print(f"{args.mode}: FMR at 0.7 / 1e-3 (different-person pairs); accepted at 0.7 / 0.67 (same-person pairs)")
    print(" | ".join(header))
    for name, pairs, cells in tradeoff_rows(calibration, impostors, genuine, args.offsets):
        print(" | ".join([name, f"{pairs:,}", *cells]))


if __name__ == "__main__":
    main()
