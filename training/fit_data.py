"""The data a calibration is fitted and measured on: ``training.embed_images`` files, and what
labels them.

- :func:`load_embeddings`: one file (``ok`` marks the rows with an embedding);
- :func:`load_lfw_embeddings`: LFW, with each image's identity and pairs.txt fold;
- :func:`attach_labels`: a labelled face set (a ``labels.csv``), split into a fit half and a
  held-out half by a hash of each path;
- :func:`load_degraded` and :func:`with_degraded`: ``training/degrade.py``'s copies of a set, and
  the set joined with them;
- :func:`pairs_file_rows`: a pairs file in CACD-VS's layout as rows of an embeddings file;
- :func:`labelled_groups`: the pair groups of a labelled set.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from eval.datasets import load_pairs_file
from eval.groups import AGE_EDGES, MIXED, Condition, Grouping, GroupSpec, band_names, make_grouping
from training.lfw_protocol import lfw_images

ADULT_AGE = 18
ADULT_COLUMNS = ("race", "gender")   # adult pairs are grouped by each of these labels, where given


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


def labelled_groups(data: dict, rows: np.ndarray, *, adult_age_bands: bool = True) -> dict[str, tuple[Grouping, int]]:
    """The pair groups of the faces ``rows`` of a labelled set, by eval's group-by specs
    (:mod:`eval.groups`): "younger face 0-2" ... (``age:min`` in :data:`eval.groups.AGE_EDGES`
    bands, those from 18 on only with ``adult_age_bands``; a band no face lies in is left out) and
    "adults, both X" (``race@age>=18``, ``gender@age>=18``, where labelled). name -> (grouping,
    index of the group in it)."""
    labels = {column: data[f"label_{column}"][rows] for column in ("age", *ADULT_COLUMNS) if f"label_{column}" in data}
    ages = make_grouping(GroupSpec("age", "min"), labels, {"age": AGE_EDGES})
    low_of = dict(zip(band_names(AGE_EDGES), AGE_EDGES))
    groups = {f"younger face {name}": (ages, k) for k, name in enumerate(ages.names)
              if adult_age_bands or low_of[name] < ADULT_AGE}
    for column in ADULT_COLUMNS:
        if column in labels:
            adults = make_grouping(GroupSpec(column, where=(Condition("age", ">=", str(ADULT_AGE)),)), labels)
            groups.update({f"adults, {name}": (adults, k) for k, name in enumerate(adults.names) if name != MIXED})
    return groups


def group_masks(groups: dict[str, tuple[Grouping, int]], n: int) -> dict[str, callable]:
    """Each group of :func:`labelled_groups` as ``select(rows)`` -> (len(rows), n) bool, for
    :func:`training.pair_walks.all_pairs`."""
    return {name: lambda r, grouping=grouping, k=k: grouping.of_pairs(r[:, None], np.arange(n)[None, :]) == k
            for name, (grouping, k) in groups.items()}
