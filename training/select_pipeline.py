"""Measure candidate pipeline configurations on LFW View 2 (crop, flip, fusion).

For each candidate: pairs.txt accuracy (k-fold, over the folds embedded), and TAR at FAR
1e-3 / 1e-4 where FAR runs over all different-person pairs of the embedded images and TAR
over pairs.txt's same-person pairs. Prints a markdown table for README.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facecmp.align import CropConfig
from facecmp.modes import PipelineConfig
from facecmp.weights.store import cache_dir
from training.lfw_features import config_embeddings
from facecmp.metrics import cutoff_at_fmr, kfold_accuracy
from training.lfw_protocol import all_pair_cosines, view2_pairs


def measure(out: Path, lfw: Path, config: PipelineConfig) -> dict:
    det = np.load(out / "detections.npz")
    emb = config_embeddings(out, config)
    pairs, same, folds = view2_pairs(lfw, det["paths"])
    have = ~np.isnan(emb[pairs[:, 0], 0]) & ~np.isnan(emb[pairs[:, 1], 0])
    in_folds = np.isin(folds, np.unique(det["folds"][~np.isnan(emb[:, 0])]))
    keep = in_folds
    # A pair whose face was not found counts as a mismatch decision (cosine -1), as a service would fail it.
    cos = np.where(have, np.einsum("ij,ij->i", np.nan_to_num(emb[pairs[:, 0]]), np.nan_to_num(emb[pairs[:, 1]])), -1.0)
    _, impostor = all_pair_cosines(emb, det["identities"])
    row = {"pairs": int(keep.sum()), "impostors": len(impostor),
           "accuracy": kfold_accuracy(cos[keep], same[keep], folds=folds[keep]).mean}
    genuine = cos[keep & same]
    for fmr in (1e-3, 1e-4):
        row[f"tar@{fmr:g}"] = float(np.mean(genuine >= cutoff_at_fmr(impostor, fmr=fmr)[0]))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/lfw")
    parser.add_argument("--out", type=Path, default=cache_dir() / "training" / "lfw")
    parser.add_argument("--weights", nargs="+", default=["msceleb-128", "casia-webface"])
    parser.add_argument("--crops", nargs="+", default=["box0.2"], help="e.g. box0.1 box0.3 similarity0")
    args = parser.parse_args()
    print("| weights | crop | flip | pairs | accuracy | TAR@FAR1e-3 | TAR@FAR1e-4 |\n|---|---|---|---|---|---|---|")
    combos = [(w,) for w in args.weights] + ([tuple(args.weights)] if len(args.weights) > 1 else [])
    for crop_name in args.crops:
        method = "similarity" if crop_name.startswith("similarity") else "box"
        crop = CropConfig(method, float(crop_name[len(method):] or 0))
        for weights in combos:
            for flip in (False, True):
                try:
                    row = measure(args.out, args.lfw, PipelineConfig("candidate", weights, crop, flip))
                except FileNotFoundError:
                    continue
                print(f"| {'+'.join(weights)} | {crop_name} | {flip} | {row['pairs']} | {row['accuracy']:.2%} "
                      f"| {row['tar@0.001']:.2%} | {row['tar@0.0001']:.2%} |", flush=True)


if __name__ == "__main__":
    main()
