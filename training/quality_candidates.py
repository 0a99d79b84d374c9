"""Measure face-image quality candidates before choosing one: how well each ranks the errors.

On held-out LFW (people of View 2 folds 6-10 with two or more photos, and ``training/degrade.py``'s
copies of those photos), each face gets every candidate figure:
- ``embedding quality`` — the pipeline's own (``FaceReport.trust["quality"]``): a linear model on
  the embedding predicting how close it stays to the embedding of the same photo undegraded
  (CR-FIQA / PFE-style pseudo-labels, fitted by ``training/fit_calibration.py`` on other people);
- ``SER-FIQ`` (Terhörst et al., 2020): the agreement of 10 embeddings made with InceptionResnetV1's
  own dropout (p = 0.6) active, ``2 / (1 + exp(mean pairwise distance))``;
- ``embedding norm`` — the length of the embedding before L2 normalisation (MagFace's observation);
- ``sharpness`` — variance of the Laplacian of the aligned grey crop; ``contrast`` — its standard
  deviation; ``face width`` (px) and MTCNN's ``detection probability``.
The network figures use the fast mode's embedder (msceleb-128 on aligned crops), in PyTorch.

Pairs are scored by the fast mode's cosine, with the cutoff at FMR 1e-3 over the undegraded
impostor pairs. A pair's quality is its lower face quality. The error-versus-reject curve (ISO/IEC
29794-1): reject the pairs of lowest quality, a share r at a time, and measure FNMR and FMR of
what is left at the same cutoff; a useful figure makes both fall fast. Prints the table and
writes ``--plot`` (default docs/quality_erc.png).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from eval.devdata import LFW, dataset_dir
from facecmp.align import crop_face
from facecmp.errors import FacecmpError
from facecmp.extras import require
from facecmp.modes import ALIGNED
from facecmp.pipeline import FaceComparer
from facecmp.settings import cache_dir
from facecmp.weights.inception import build_inception_resnet_v1
from facecmp.weights.registry import get_spec
from facecmp.weights.store import load_state_dict
from training.degrade import default_output
from training.embed_images import image_paths

REJECT = (0.0, 0.05, 0.1, 0.2, 0.3)
SER_FIQ_PASSES = 10
CANDIDATES = ("embedding quality", "SER-FIQ", "embedding norm", "sharpness", "contrast", "face width",
              "detection probability")


def torch_figures(model: torch.nn.Module, scale_pixels, crops: np.ndarray, rng: torch.Generator) -> dict[str, np.ndarray]:
    """Embedding norm before L2 normalisation and SER-FIQ of (N, S, S, 3) uint8 crops."""
    pooled = {}
    hook = model.avgpool_1a.register_forward_hook(lambda _m, _i, out: pooled.__setitem__("x", out.flatten(1)))
    with torch.inference_mode():
        batch = scale_pixels(torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float())
        model(batch)
        features = pooled["x"]
        norm = model.last_bn(model.last_linear(features)).norm(dim=1)
        keep = 1.0 - model.dropout.p   # dropout as in training, seeded: the same figures every run
        runs = torch.stack([F.normalize(model.last_bn(model.last_linear(
            features * (torch.rand(features.shape, generator=rng) < keep) / keep)), dim=1)
            for _ in range(SER_FIQ_PASSES)], dim=1)                  # (N, passes, D)
        distances = torch.cdist(runs, runs)                          # (N, passes, passes)
        mean = distances.sum(dim=(1, 2)) / (SER_FIQ_PASSES * (SER_FIQ_PASSES - 1))
    hook.remove()
    return {"embedding norm": norm.numpy(), "SER-FIQ": (2.0 / (1.0 + torch.exp(mean))).numpy()}


def image_figures(crop: np.ndarray) -> dict[str, float]:
    grey = crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return {"sharpness": float(laplacian.var()), "contrast": float(grey.std())}


def measure(lfw: Path, copies: Path, comparer: FaceComparer, max_people: int, batch: int = 32) -> dict:
    """Every candidate, the embedding and the identity of the chosen faces (clean and copies)."""
    from training.lfw_protocol import lfw_images

    paths, identities, folds = lfw_images(lfw)
    counts: dict[str, int] = {}
    for identity, fold in zip(identities, folds):
        if fold >= 6:
            counts[identity] = counts.get(identity, 0) + 1
    people = sorted(i for i, n in counts.items() if n >= 2)[:max_people]
    chosen = [(p, i) for p, i, f in zip(paths, identities, folds) if i in set(people) and f >= 6]
    copy_of = {str(Path(p).with_suffix("")): p for p in image_paths(copies)}
    items = [(lfw / "images" / p, i, False) for p, i in chosen] + \
            [(copies / copy_of[str(Path(p).with_suffix(""))], i, True) for p, i in chosen if str(Path(p).with_suffix("")) in copy_of]
    spec = get_spec("msceleb-128")
    model = build_inception_resnet_v1(spec.model.embedding_size)
    model.load_state_dict(load_state_dict("msceleb-128"))
    model.eval()
    scale_pixels = comparer._embedders["msceleb-128"]._scale_pixels
    calibration = comparer.calibration("fast")
    rng = torch.Generator().manual_seed(0)
    rows = {k: [] for k in (*CANDIDATES, "embedding", "identity", "degraded")}
    for start in tqdm(range(0, len(items), batch), desc="quality candidates"):
        chunk = items[start:start + batch]
        reps = comparer.represent_batch([path for path, _, _ in chunk], mode="fast")
        kept = [(rep, item) for rep, item in zip(reps, chunk) if not isinstance(rep, FacecmpError)]
        if not kept:
            continue
        crops = np.stack([crop_face(comparer.load_image(item[0]), rep.face, ALIGNED) for rep, item in kept])
        network = torch_figures(model, scale_pixels, crops, rng)
        stats = calibration.face_stats(np.stack([rep.embedding for rep, _ in kept]))
        for k, (rep, (_, identity, degraded)) in enumerate(kept):
            for name, value in image_figures(crops[k]).items():
                rows[name].append(value)
            rows["SER-FIQ"].append(network["SER-FIQ"][k])
            rows["embedding norm"].append(network["embedding norm"][k])
            rows["embedding quality"].append(stats.quality[k])
            rows["face width"].append(rep.face.width)
            rows["detection probability"].append(rep.face.probability)
            rows["embedding"].append(rep.embedding)
            rows["identity"].append(identity)
            rows["degraded"].append(degraded)
    return {k: np.array(v) for k, v in rows.items()}


def error_versus_reject(data: dict) -> dict[str, dict]:
    """Per candidate: FNMR and FMR of the pairs left after rejecting each share of lowest quality."""
    emb, ids, degraded = data["embedding"], data["identity"], data["degraded"]
    cos = emb @ emb.T
    upper = np.triu(np.ones(cos.shape, bool), 1)
    genuine, impostor = upper & (ids[:, None] == ids[None, :]), upper & (ids[:, None] != ids[None, :])
    clean_impostor = impostor & ~degraded[:, None] & ~degraded[None, :]
    cut = np.quantile(cos[clean_impostor], 1 - 1e-3)
    out = {}
    for name in CANDIDATES:
        q = data[name].astype(float)
        pair_q = np.minimum(q[:, None], q[None, :])
        row = {}
        for kind, mask, error in (("fnmr", genuine, lambda c: c < cut), ("fmr", impostor, lambda c: c >= cut)):
            values, qualities = cos[mask], pair_q[mask]
            order = np.argsort(qualities, kind="stable")        # lowest quality first
            row[kind] = [float(error(values[order[int(r * len(order)):]]).mean()) for r in REJECT]
        out[name] = row
    return out


def plot(curves: dict, path: Path) -> None:
    plt = require("matplotlib.pyplot", "eval")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, kind, title in zip(axes, ("fnmr", "fmr"), ("FNMR (same person rejected)", "FMR (different people accepted)")):
        for name, row in curves.items():
            ax.plot(np.array(REJECT) * 100, row[kind], marker="o", label=name)
        ax.set(xlabel="pairs rejected, lowest quality first (%)", ylabel=kind.upper(), title=title, yscale="log")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle("Error versus reject on held-out LFW (folds 6-10) with degraded copies, fast mode")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=dataset_dir(LFW))
    parser.add_argument("--copies", type=Path, help="default: training/degrade.py's copies of LFW in the cache")
    parser.add_argument("--max-people", type=int, default=400)
    parser.add_argument("--plot", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "quality_erc.png")
    args = parser.parse_args()
    copies = args.copies or default_output(args.lfw / "images")
    data = measure(args.lfw, copies, FaceComparer("fast"), args.max_people)
    curves = error_versus_reject(data)
    print(f"{len(data['identity'])} faces ({int(data['degraded'].sum())} degraded copies), cache {cache_dir()}")
    header = " | ".join(f"{int(r * 100)} %" for r in REJECT)
    print(f"| candidate | FNMR after rejecting {header} | FMR after rejecting {header} |")
    for name, row in curves.items():
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row["fnmr"]) + " | " +
              " | ".join(f"{v:.2e}" for v in row["fmr"]) + " |")
    plot(curves, args.plot)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
