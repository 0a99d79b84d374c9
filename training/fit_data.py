"""The data a calibration is fitted and measured on: ``training.embed_images`` files, and what
labels them.

- :func:`load_embeddings`: one file (``ok`` marks the rows with an embedding);
- :func:`load_lfw_embeddings`: LFW, with each image's identity and pairs.txt fold;
- :func:`attach_labels`: a labelled face set (a ``labels.csv``), split into a fit half and a
  held-out half by a hash of each path;
- :func:`load_degraded` and :func:`with_degraded`: ``training/degrade.py``'s copies of a set, and
  the set joined with them;
- :func:`pairs_file_rows`: a pairs file in CACD-VS's layout as rows of an embeddings file;
- :func:`group_masks`: the pair groups of a labelled set.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from eval.datasets import load_pairs_file
from training.lfw_protocol import lfw_images

AGE_BANDS = ((0, 3), (3, 6), (6, 13), (13, 18), (18, 30), (30, 45), (45, 60), (60, 200))


def load_embeddings(path: Path) -> dict:
    """An ``embed_images`` file; ``ok`` marks the rows with an embedding."""
    data = dict(np.load(path))
    data["ok"] = ~np.isnan(data["embeddings"]).any(axis=1)
    return data


def load_lfw_embeddings(path: Path, lfw_dir: Path) -> dict:
    """An ``embed_images`` file of LFW with each image's ``identity`` and pairs.txt ``fold`` (0: none)."""
    lfw = load_embeddings(path)
    lfw["identity"] = folder_identities(lfw["paths"])
    fold_of = dict(zip(*lfw_images(lfw_dir)[::2]))
    lfw["fold"] = np.array([fold_of.get(str(p), 0) for p in lfw["paths"]])
    return lfw


def folder_identities(paths) -> np.ndarray:
    """Each image's person: its first folder (the layout of LFW and of CACD-VS's images)."""
    return np.array([str(p).split("/")[0] for p in paths])


def attach_labels(data: dict, labels_csv: Path) -> dict:
    """Label columns of ``labels_csv`` (``path`` relative to it) for each embedded image (by path)."""
    root = Path(str(data["root"]))
    with open(labels_csv, newline="") as handle:
        rows = {str((labels_csv.parent / row["path"]).resolve()): row for row in csv.DictReader(handle)}
    found = [rows.get(str((root / p).resolve())) for p in data["paths"]]
    keep = np.array([row is not None for row in found])
    data = {k: (v[keep] if isinstance(v, np.ndarray) and v.ndim and len(v) == len(keep) else v) for k, v in data.items()}
    columns = [c for c in next(row for row in found if row) if c != "path"]
    for column in columns:
        data[f"label_{column}"] = np.array([row[column] for row in found if row is not None])
    data["age"] = data["label_age"].astype(float)
    data["fit"] = np.array([int(hashlib.sha256(p.encode()).hexdigest(), 16) % 2 == 0 for p in data["paths"]])
    return data


def load_degraded(path: Path, clean: dict) -> dict:
    """An ``embed_images`` file of ``training/degrade.py``'s copies of ``clean``'s images, with
    ``source`` (the row of each copy's original in ``clean``), ``kind`` and ``severity`` from the
    copies' ``degradations.csv``; copies whose original is not in ``clean`` are dropped."""
    data = load_embeddings(path)
    with open(Path(str(data["root"])) / "degradations.csv", newline="") as handle:
        made = {row["path"]: row for row in csv.DictReader(handle)}
    index = {str(p): i for i, p in enumerate(clean["paths"])}
    rows = [made[str(p)] for p in data["paths"]]
    source = np.array([index.get(row["source"], -1) for row in rows])
    keep = source >= 0
    data = {k: (v[keep] if isinstance(v, np.ndarray) and v.ndim and len(v) == len(keep) else v) for k, v in data.items()}
    data["source"] = source[keep]
    data["kind"] = np.array([row["kind"] for row, k in zip(rows, keep) if k])
    data["severity"] = np.array([float(row["severity"]) for row, k in zip(rows, keep) if k])
    return data


def with_degraded(clean: dict, degraded: dict | None, identity: np.ndarray) -> dict:
    """One face set of ``clean`` and its degraded copies (``degraded['source']`` indexes
    ``clean``): embeddings, ok, identity (a copy shares its source's, so a photo and its copy
    are never an impostor pair), ``quality_target`` (1 for clean faces, the cosine between copy
    and source for copies) and ``clean`` (bool)."""
    parts = [clean] + ([degraded] if degraded is not None else [])
    source = [np.arange(len(clean["ok"]))] + ([degraded["source"]] if degraded is not None else [])
    target = [np.ones(len(clean["ok"]))]
    if degraded is not None:
        target.append(np.einsum("ij,ij->i", np.nan_to_num(degraded["embeddings"]),
                                np.nan_to_num(clean["embeddings"][degraded["source"]])))
    ok = [clean["ok"]] + ([degraded["ok"] & clean["ok"][degraded["source"]]] if degraded is not None else [])
    return {"embeddings": np.nan_to_num(np.concatenate([p["embeddings"] for p in parts])),
            "ok": np.concatenate(ok), "source": np.concatenate(source),
            "identity": identity[np.concatenate(source)], "quality_target": np.concatenate(target),
            "clean": np.concatenate([np.full(len(p["ok"]), p is clean) for p in parts]),
            "kind": np.concatenate([np.full(len(clean["ok"]), "undegraded")] +
                                   ([degraded["kind"]] if degraded is not None else [])),
            "face_width": np.concatenate([p["face_width"] for p in parts])}



def pairs_file_rows(data: dict, pairs_tsv: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows of ``data`` (an ``embed_images`` file) of each pair of a pairs file in CACD-VS's
    layout (read by :func:`eval.datasets.load_pairs_file`: columns ``path0``, ``path1``, ``label``,
    paths under ``images/``): ``a``, ``b``, ``same`` and ``have`` (both faces embedded)."""
    dataset = load_pairs_file(pairs_tsv, col_a="path0", col_b="path1", col_same="label", root="images")
    root = Path(str(data["root"]))
    index = {str((root / p).resolve()): i for i, p in enumerate(data["paths"])}
    row = np.array([index.get(str(Path(p).resolve()), -1) for p in dataset.images])
    a, b, same = row[dataset.pairs.a], row[dataset.pairs.b], dataset.pairs.same
    have = (a >= 0) & (b >= 0) & data["ok"][np.maximum(a, 0)] & data["ok"][np.maximum(b, 0)]
    return a, b, same, have



def group_masks(data: dict, rows: np.ndarray) -> dict[str, callable]:
    """Pair groups of the held-out cohort set: younger face's age band; adult pairs by each label."""
    age = data["age"][rows]
    groups = {}
    for low, high in AGE_BANDS:
        groups[f"younger face {low}-{high - 1}"] = lambda r, low=low, high=high: (
            (np.minimum(age[r][:, None], age[None, :]) >= low) & (np.minimum(age[r][:, None], age[None, :]) < high))
    for column in ("race", "gender"):
        if f"label_{column}" not in data:
            continue
        values = data[f"label_{column}"][rows]
        for value in sorted(set(values)):
            groups[f"adults, both {value}"] = lambda r, value=value, values=values: (
                (age[r][:, None] >= 18) & (age[None, :] >= 18) & (values[r][:, None] == value) & (values[None, :] == value))
    return groups
