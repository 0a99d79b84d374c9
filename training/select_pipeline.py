"""Measure candidate pipeline configurations on LFW View 2 (crop, flip, fusion).

``python -m training.select_pipeline``: every configuration embeds LFW through the pipeline
itself, :meth:`facecmp.FaceComparer.represent_batch`, by eval's cached embedding path
(:func:`eval.embeddings.embed_images`). A shipped mode (``--modes``) is embedded as it is,
centred by its calibration. A candidate embeds each of its parts as a one-embedder, uncentred
configuration with the candidate's flip (the pipeline has no centres for it); a centred
candidate's parts are then centred on their mean over folds 1-5 and fused by the functions the
pipeline uses (:func:`facecmp.embed.centre_embeddings`, :func:`facecmp.embed.fuse_embeddings`).
A part shared by candidates is embedded once (the cache is keyed by its pipeline id); each part
costs one pass of the pipeline over the images of ``--folds``.

For each configuration: pairs.txt accuracy (k-fold, over the folds embedded), and TAR at FAR
1e-3 / 1e-4 where FAR runs over all different-person pairs of the embedded images and TAR
over pairs.txt's same-person pairs. Prints a markdown table for README.
"""
from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from eval.devdata import LFW, dataset_dir
from eval.embeddings import EmbeddingCache, embed_images
from eval.metrics import DEFAULT_CUTOFFS, cutoff_at_fmr, kfold_accuracy
from facecmp.align import CropConfig
from facecmp.backends import ComputeOptions
from facecmp.calibration import load_calibration
from facecmp.embed import centre_embeddings, fuse_embeddings
from facecmp.modes import MODES, EmbedderConfig, PipelineConfig
from facecmp.pipeline import FaceComparer
from training.heldout import face_set_rates
from training.lfw_protocol import all_pair_cosines, fold_range, lfw_images, view2_pairs


def embed_chosen(comparer: FaceComparer, images: list[Path], chosen: np.ndarray, config: PipelineConfig,
                 cache: EmbeddingCache | None) -> np.ndarray:
    """(len(images), D) embeddings of ``config`` for the ``chosen`` images; NaN rows elsewhere and
    where the pipeline found no face."""
    result = embed_images([images[i] for i in chosen], comparer, mode=config, cache=cache)
    out = np.full((len(images), result.embeddings.shape[1]), np.nan, np.float32)
    out[chosen[result.ok]] = result.embeddings[result.ok]
    return out


def fit_centres(parts: list[np.ndarray], config: PipelineConfig, fit: np.ndarray) -> tuple[np.ndarray | None, ...]:
    """The mean embedding over the images selected by ``fit`` of each centred embedder (else None)."""
    return tuple(np.nanmean(part[fit], axis=0).astype(np.float32) if embedder.centred else None
                 for part, embedder in zip(parts, config.embedders))


def config_embeddings(comparer: FaceComparer, images: list[Path], image_folds: np.ndarray, config: PipelineConfig,
                      folds: set[int], cache: EmbeddingCache | None = None) -> np.ndarray:
    """(N, D) embeddings of ``config`` for the LFW images of ``folds`` (NaN rows: not embedded)."""
    chosen = np.flatnonzero(np.isin(image_folds, list(folds)))
    if config.mode in MODES:
        return embed_chosen(comparer, images, chosen, config, cache)
    parts = [embed_chosen(comparer, images, chosen, PipelineConfig("candidate", (EmbedderConfig(e.weights, e.crop),),
                                                                   config.flip), cache)
             for e in config.embedders]
    centres = fit_centres(parts, config, image_folds <= 5)
    return fuse_embeddings(centre_embeddings(parts, centres), config.fusion_shares())


def measure(comparer: FaceComparer, lfw: Path, config: PipelineConfig, *, folds: set[int],
            eval_folds: set[int] | None = None, cache: EmbeddingCache | None = None) -> dict:
    """Accuracy and TAR of ``config`` on the images of ``folds``; ``eval_folds``: only pairs and
    images of those folds."""
    paths, identities, image_folds = lfw_images(lfw)
    emb = config_embeddings(comparer, [lfw / "images" / p for p in paths], image_folds, config, folds, cache)
    pairs, same, folds_of_pairs = view2_pairs(lfw, np.array(paths))
    embedded = ~np.isnan(emb).any(axis=1)
    have = embedded[pairs[:, 0]] & embedded[pairs[:, 1]]
    keep = np.isin(folds_of_pairs, np.unique(image_folds[embedded]))
    if eval_folds:
        keep &= np.isin(folds_of_pairs, list(eval_folds))
        emb = np.where(np.isin(image_folds, list(eval_folds))[:, None], emb, np.nan)
    # A pair whose face was not found counts as a mismatch decision (cosine -1), as a service would fail it.
    cos = np.where(have, np.einsum("ij,ij->i", np.nan_to_num(emb[pairs[:, 0]]), np.nan_to_num(emb[pairs[:, 1]])), -1.0)
    _, impostor = all_pair_cosines(emb, np.array(identities))
    row = {"pairs": int(keep.sum()), "impostors": len(impostor),
           "accuracy": kfold_accuracy(cos[keep], same[keep], folds=folds_of_pairs[keep]).mean}
    genuine = cos[keep & same]
    for fmr in (1e-3, 1e-4):
        row[f"tar@{fmr:g}"] = float(np.mean(genuine >= cutoff_at_fmr(impostor, fmr=fmr)[0]))
    held = np.flatnonzero(~np.isnan(emb).any(axis=1) & (image_folds >= 6))
    if config.mode in MODES and held.size:   # the shipped calibration on the folds it was not fitted on
        calibration = load_calibration(config.mode, config.fingerprint())
        rates, _ = face_set_rates(calibration, emb[held], calibration.face_stats(emb[held]),
                                  np.array(identities)[held], cutoffs=DEFAULT_CUTOFFS)
        row.update({f"fmr@{cut:g}": rates[f"{cut:g}"]["fmr"] for cut in DEFAULT_CUTOFFS})
    return row


def crop_of(name: str) -> CropConfig:
    """``box0.2`` / ``similarity0`` -> CropConfig."""
    method = "similarity" if name.startswith("similarity") else "box"
    return CropConfig(method, float(name[len(method):] or 0))


def fused_config(spec: str, centred: bool) -> PipelineConfig:
    """``weights/crop/share+weights/crop/share...`` -> a flip candidate fusing those parts."""
    parts = [part.split("/") for part in spec.split("+")]
    return PipelineConfig("candidate", tuple(EmbedderConfig(w, crop_of(c), float(share), centred=centred)
                                             for w, c, share in parts), True)


def candidates(weights: list[str], crops: list[str], fusion: list[float], centred: bool = False) -> list[PipelineConfig]:
    """Each weight set with each crop, flip on and off; then each pair of them fused."""
    singles = [EmbedderConfig(w, crop_of(c), centred=centred) for w in weights for c in crops]
    configs = [PipelineConfig("candidate", (e,), flip) for e in singles for flip in (False, True)]
    for first, second in itertools.combinations(singles, 2):
        if first.weights != second.weights:
            for share in fusion:
                pair = (replace(first, fusion_weight=1 - share), replace(second, fusion_weight=share))
                configs.append(PipelineConfig("candidate", pair, True))
    return configs


def describe(config: PipelineConfig) -> str:
    parts = [f"{e.weights} {e.crop.method}{e.crop.margin:g}" + (" centred" if e.centred else "")
             + (f" x{share:.2f}" if len(config.embedders) > 1 else "")
             for e, share in zip(config.embedders, config.fusion_shares())]
    return " + ".join(parts) + (" + flip" if config.flip else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=Path, default=dataset_dir(LFW))
    parser.add_argument("--cache", type=Path, help="eval's embedding cache (default: the shared one)")
    parser.add_argument("--folds", default="1-10", help="pairs.txt folds whose images are embedded, e.g. 1-5")
    parser.add_argument("--weights", nargs="+", default=["msceleb-128", "casia-webface"])
    parser.add_argument("--crops", nargs="+", default=["box0.2", "similarity0"], help="e.g. box0.2 similarity0")
    parser.add_argument("--fusion", nargs="*", type=float, default=[0.2, 0.35, 0.5],
                        help="share of the second weight set in fused candidates")
    parser.add_argument("--modes", nargs="*", choices=sorted(MODES),
                        help="measure these shipped modes (with their calibrations' held-out FMR) instead of candidates")
    parser.add_argument("--fused", nargs="*", metavar="SPEC",
                        help="measure these fusions (flip on) instead of the grid, e.g. "
                             "msceleb-128/similarity0/0.4+msceleb-128/box0.2/0.3+casia-webface/box0.2/0.3")
    parser.add_argument("--centred", action="store_true", help="centre candidates' embeddings (centres from folds 1-5)")
    parser.add_argument("--eval-folds", default=None, help="measure on these pairs.txt folds only, e.g. 6-10")
    parser.add_argument("--backend", default="torch", choices=["torch", "openvino"],
                        help="embed with this backend (default: PyTorch float32, what the calibrations are fitted with)")
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    args = parser.parse_args()
    compute = ComputeOptions(args.backend, args.precision)
    if args.modes:
        configs = [MODES[m] for m in args.modes]
    elif args.fused:
        configs = [fused_config(spec, args.centred) for spec in args.fused]
    else:
        configs = candidates(args.weights, args.crops, args.fusion, args.centred)
    comparer = FaceComparer(args.modes[0] if args.modes else None, compute=compute)
    cache = EmbeddingCache(args.cache) if args.cache else None
    folds, eval_folds = fold_range(args.folds), fold_range(args.eval_folds) if args.eval_folds else None
    print(f"embeddings by {compute.backend} {compute.precision}; pairs of folds {args.eval_folds or 'all'}; "
          "FMR: shipped calibration, folds 6-10")
    fmr_columns = [f"fmr@{cut:g}" for cut in DEFAULT_CUTOFFS]
    print("| configuration | pairs | accuracy | TAR@FAR1e-3 | TAR@FAR1e-4 | " + " | ".join(c.upper() for c in fmr_columns)
          + " |\n" + "|---" * (5 + len(fmr_columns)) + "|")
    for config in configs:
        row = measure(comparer, args.lfw, config, folds=folds, eval_folds=eval_folds, cache=cache)
        fmr = " | ".join(f"{row[k]:.2e}" if k in row else "" for k in fmr_columns)
        print(f"| {describe(config)} | {row['pairs']} | {row['accuracy']:.2%} "
              f"| {row['tar@0.001']:.2%} | {row['tar@0.0001']:.2%} | {fmr} |", flush=True)


if __name__ == "__main__":
    main()
