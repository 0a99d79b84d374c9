"""Dataset adapters: labelled face images in, :class:`FaceDataset` out.

A :class:`FaceDataset` is a list of image files, the identity of each image (when known),
and optionally a protocol: a list of pairs (:class:`Pairs`: image indices a and b, same
person or not, fold, group labels). Three adapters:

* :func:`load_folder` — ``<root>/<identity>/<image>``; protocol pairs are drawn
  deterministically (seeded) within identity-disjoint folds, and every different-person
  pair is a valid impostor comparison (``all_vs_all=True``).
* :func:`load_lfw` — the LFW View 2 ``pairs.txt`` protocol over ``images/<Name>/<Name>_NNNN.jpg``.
* :func:`load_pairs_file` — any CSV/TSV of pairs with a column mapping (path a, path b,
  same, optional fold, identity and group columns), e.g. CACD-VS's ``pairs.tsv``.

Images can carry labels (age, gender, race, a quality band ...): ``FaceDataset.labels``, read
from a ``labels.csv`` (a ``path`` column and one column per label; :func:`read_labels`) beside a
folder or given for any dataset, or from per-image columns of a pairs file. A folder without
identities (no per-person subfolders, e.g. one ``images/`` folder) is refused unless every
pair of different images is declared an impostor pair (``impostors_all_pairs=True``).
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LABELS_FILE = "labels.csv"
_TRUE = {"1", "true", "yes", "y", "same", "genuine", "match", "t"}
_FALSE = {"0", "false", "no", "n", "different", "impostor", "non-match", "nonmatch", "f", "-1"}


@dataclass(frozen=True)
class Pairs:
    """A verification protocol over the images of a :class:`FaceDataset`.

    a, b : ndarray of int, shape (n_pairs,) — indices into ``FaceDataset.images``.
    same : ndarray of bool, shape (n_pairs,) — True for same-person (genuine) pairs.
    fold : ndarray of str, shape (n_pairs,), or None.
    groups : dict column name -> ndarray of str, shape (n_pairs,) — e.g. an age-gap band.
    """

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    fold: np.ndarray | None = None
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.a.size)

    def take(self, index: np.ndarray) -> "Pairs":
        return Pairs(self.a[index], self.b[index], self.same[index],
                     None if self.fold is None else self.fold[index],
                     {k: v[index] for k, v in self.groups.items()})


@dataclass
class FaceDataset:
    """Images, their identities and an optional pair protocol.

    name : short name used in reports.
    kind : "folder", "lfw" or "pairs".
    source : where it was loaded from.
    images : list of n_images paths (unique).
    identities : ndarray of int, shape (n_images,) — index into ``identity_names``.
    identity_names : list of str.
    pairs : the protocol, or None.
    all_vs_all : whether every pair of images with different identities is a trustworthy
        impostor comparison (identity labels are complete and correct).
    notes : caveats to print in the report.
    labels : label column -> ndarray of str, shape (n_images,), "" where an image has none.
    """

    name: str
    kind: str
    source: str
    images: list[Path]
    identities: np.ndarray
    identity_names: list[str]
    pairs: Pairs | None = None
    all_vs_all: bool = False
    notes: list[str] = field(default_factory=list)
    labels: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.images)

    @property
    def n_identities(self) -> int:
        return len(np.unique(self.identities))

    def describe(self) -> dict:
        info = {"name": self.name, "kind": self.kind, "source": self.source, "n_images": self.n_images,
                "n_identities": self.n_identities, "all_vs_all": self.all_vs_all, "notes": list(self.notes),
                "label_columns": list(self.labels)}
        if self.pairs is not None:
            info["n_pairs"] = len(self.pairs)
            info["n_genuine_pairs"] = int(self.pairs.same.sum())
            info["n_folds"] = 0 if self.pairs.fold is None else int(np.unique(self.pairs.fold).size)
        return info


def parse_same(value: str) -> bool:
    """'1'/'true'/'same'/... -> True, '0'/'false'/'different'/... -> False; anything else raises."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"cannot read {value!r} as same/different (use 1/0, true/false, same/different)")


def _index(paths: list[Path], identity_of: dict[Path, str]) -> tuple[list[Path], np.ndarray, list[str]]:
    names = sorted(set(identity_of[p] for p in paths))
    code = {name: i for i, name in enumerate(names)}
    return paths, np.array([code[identity_of[p]] for p in paths], dtype=np.int64), names


def subset_pairs(pairs: Pairs, max_pairs: int) -> np.ndarray:
    """Indices of at most ``max_pairs`` pairs, spread evenly over (fold, same) strata, file order kept."""
    fold = pairs.fold if pairs.fold is not None else np.zeros(len(pairs), dtype=str)
    strata = np.char.add(fold.astype(str), np.where(pairs.same, "|1", "|0"))
    labels = list(dict.fromkeys(strata.tolist()))
    per_stratum = max(1, -(-max_pairs // len(labels)))
    keep = np.concatenate([np.flatnonzero(strata == label)[:per_stratum] for label in labels])
    return np.sort(keep)[:max_pairs] if keep.size > max_pairs else np.sort(keep)


def _restrict(images: list[Path], pairs: Pairs) -> tuple[list[Path], Pairs]:
    """Drop images no pair uses; renumber the pairs."""
    used = np.unique(np.concatenate([pairs.a, pairs.b]))
    remap = np.full(len(images), -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    kept = [images[i] for i in used]
    return kept, Pairs(remap[pairs.a], remap[pairs.b], pairs.same, pairs.fold, pairs.groups)


def _key(path: Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def read_labels(path: str | Path, images: list[Path]) -> dict[str, np.ndarray]:
    """Per-image labels from a CSV/TSV with a ``path`` column and one column per label.

    Paths resolve against the labels file's folder. Returns label column -> (n_images,) str
    ("" for an image without a row); rows naming images outside ``images`` are ignored.
    Raises ValueError when the file has no ``path`` column or labels none of ``images``.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        columns = [c for c in (reader.fieldnames or []) if c != "path"]
        if "path" not in (reader.fieldnames or []):
            raise ValueError(f"{path} needs a 'path' column (and one column per label); it has {reader.fieldnames}")
        rows = {_key(path.parent / row["path"]): row for row in reader}
    keys = [_key(p) for p in images]
    if images and not any(k in rows for k in keys):
        raise ValueError(f"{path} labels none of the {len(images)} images (its paths resolve against {path.parent})")
    return {column: np.array([(rows[k][column] or "").strip() if k in rows else "" for k in keys], dtype=str)
            for column in columns}


def _labels_note(labels: dict[str, np.ndarray], source: str) -> list[str]:
    if not labels:
        return []
    labelled = int(np.any(np.stack([v != "" for v in labels.values()]), axis=0).sum())
    n_images = len(next(iter(labels.values())))
    return [f"labels from {source}: {', '.join(labels)} ({labelled:,} of {n_images:,} images labelled)"]


# -- folder of identities -------------------------------------------------------------------

def list_identity_folder(root: str | Path) -> dict[Path, str]:
    """``{image path: identity}`` for every image in ``<root>/<identity>/``, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                found[path] = folder.name
    if not found:
        raise FileNotFoundError(f"no images in {root}/<identity>/ (looked for {', '.join(IMAGE_SUFFIXES)})")
    return found


def assign_folds(identities: np.ndarray, *, n_folds: int, seed: int = 0) -> np.ndarray:
    """Identity-disjoint folds balanced by image count: fold index (0 .. n_folds-1) per image.

    Identities are taken largest first (ties in seeded random order) and each goes to the
    fold with the fewest images so far, so no person appears in two folds.
    """
    labels, counts = np.unique(identities, return_counts=True)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.permutation(labels.size), -counts))
    fold_size = np.zeros(n_folds, dtype=np.int64)
    fold_of_identity = np.empty(labels.size, dtype=np.int64)
    for k in order:
        target = int(np.argmin(fold_size))
        fold_of_identity[k] = target
        fold_size[target] += counts[k]
    return fold_of_identity[np.searchsorted(labels, identities)]


def sample_pairs(identities: np.ndarray, folds: np.ndarray, *, pairs_per_fold: int, seed: int = 0) -> Pairs:
    """Seeded genuine and impostor pairs inside each fold (both images from that fold's people).

    Per fold: up to ``pairs_per_fold`` genuine pairs drawn without replacement from all
    same-identity pairs, and as many impostor pairs (distinct, different identities).
    """
    rng = np.random.default_rng(seed)
    a_all, b_all, same_all, fold_all = [], [], [], []
    for fold in np.unique(folds):
        members = np.flatnonzero(folds == fold)
        ids = identities[members]
        genuine = [(i, j) for label in np.unique(ids)
                   for group in [members[ids == label]]
                   for x, i in enumerate(group) for j in group[x + 1:]]
        if genuine:
            chosen = rng.choice(len(genuine), size=min(pairs_per_fold, len(genuine)), replace=False)
            genuine = [genuine[k] for k in np.sort(chosen)]
        wanted = len(genuine) if genuine else pairs_per_fold
        impostor: set[tuple[int, int]] = set()
        possible = (members.size * (members.size - 1) - sum(c * (c - 1) for c in np.unique(ids, return_counts=True)[1])) // 2
        wanted = min(wanted, possible)
        while len(impostor) < wanted:
            draws = rng.choice(members, size=(2 * (wanted - len(impostor)) + 8, 2))
            for i, j in draws:
                if identities[i] != identities[j]:
                    impostor.add((int(min(i, j)), int(max(i, j))))
                    if len(impostor) == wanted:
                        break
        pairs = genuine + sorted(impostor)
        a_all += [p[0] for p in pairs]
        b_all += [p[1] for p in pairs]
        same_all += [True] * len(genuine) + [False] * len(impostor)
        fold_all += [str(int(fold) + 1)] * len(pairs)
    return Pairs(np.array(a_all, dtype=np.int64), np.array(b_all, dtype=np.int64),
                 np.array(same_all, dtype=bool), np.array(fold_all))


def list_images(root: str | Path) -> list[Path]:
    """Every image file below ``root`` (any depth), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_impostor_folder(root: str | Path, *, seed: int = 0, max_images: int | None = None, name: str | None = None,
                         labels_file: str | Path | None = None) -> FaceDataset:
    """Every image below ``root`` as a person of its own: every pair of images is an impostor pair.

    For sets without identities where nearly every photo shows a different person (e.g.
    utkface-dev); the few same-person or near-duplicate pairs count as false matches.
    ``max_images`` keeps a seeded random sample; labels as in :func:`load_folder`.
    """
    root = Path(root)
    paths = list_images(root)
    if not paths:
        raise FileNotFoundError(f"no images below {root} (looked for {', '.join(IMAGE_SUFFIXES)})")
    if max_images is not None and max_images < len(paths):
        keep = np.sort(np.random.default_rng(seed).permutation(len(paths))[:max_images])
        paths = [paths[k] for k in keep]
    labels_path = Path(labels_file) if labels_file else root / LABELS_FILE
    labels = read_labels(labels_path, paths) if (labels_file or labels_path.is_file()) else {}
    notes = ["every pair of different images is an impostor pair (--impostors-all-pairs): a pair that shows "
             "one person twice, or near-duplicate photos, counts as a false match"]
    return FaceDataset(name or root.name, "folder", str(root), paths, np.arange(len(paths)),
                       [str(p.relative_to(root)) for p in paths], None, all_vs_all=True,
                       notes=notes + _labels_note(labels, str(labels_path)), labels=labels)


def load_folder(root: str | Path, *, n_folds: int = 10, pairs_per_fold: int = 300, seed: int = 0,
                max_images: int | None = None, name: str | None = None, labels_file: str | Path | None = None
                ) -> FaceDataset:
    """A folder of identities ``<root>/<identity>/<image>``.

    Parameters
    ----------
    root : path
    n_folds : int, keyword-only, default 10
        Identity-disjoint folds for the protocol pairs (10-fold accuracy).
    pairs_per_fold : int, default 300
        Genuine pairs per fold (and as many impostor pairs), drawn with ``seed``.
    seed : int, default 0
    max_images : int, optional
        Keep whole identities, in seeded random order, until about this many images.
    labels_file : path, optional
        Per-image labels (:func:`read_labels`); default ``<root>/labels.csv`` when it exists.

    Raises ValueError when the images are not in two or more identity folders: use
    :func:`load_impostor_folder` to treat every pair of images as an impostor pair.
    """
    root = Path(root)
    found = list_identity_folder(root) if any(p.is_dir() for p in root.iterdir()) else {}
    if len(set(found.values())) < 2:
        where = f"one folder, {next(iter(found.values()))}/" if found else "the folder itself"
        raise ValueError(
            f"{root} has no identities: {len(found) or len(list_images(root)):,} images in {where}. A folder of "
            "identities holds <identity>/<image>. If every pair of different images shows two different people, "
            "pass --impostors-all-pairs to score them all as impostor pairs.")
    paths = list(found)
    if max_images is not None and max_images < len(paths):
        by_identity: dict[str, list[Path]] = {}
        for p in paths:
            by_identity.setdefault(found[p], []).append(p)
        names = sorted(by_identity)
        rng = np.random.default_rng(seed)
        # Identities with two or more images first: they give genuine pairs.
        order = sorted(rng.permutation(len(names)), key=lambda k: len(by_identity[names[k]]) < 2)
        paths = []
        for k in order:
            if len(paths) >= max_images:
                break
            paths += by_identity[names[k]]
        paths.sort()
    paths, identities, names = _index(paths, found)
    # Each fold needs two people for impostor pairs.
    n_folds = max(2, min(n_folds, len(names) // 2))
    folds = assign_folds(identities, n_folds=n_folds, seed=seed)
    pairs = sample_pairs(identities, folds, pairs_per_fold=pairs_per_fold, seed=seed)
    labels_path = Path(labels_file) if labels_file else root / LABELS_FILE
    labels = read_labels(labels_path, paths) if (labels_file or labels_path.is_file()) else {}
    return FaceDataset(name or root.name, "folder", str(root), paths, identities, names, pairs, all_vs_all=True,
                       notes=[f"protocol pairs: {n_folds} identity-disjoint folds, up to {pairs_per_fold} genuine "
                              f"and as many impostor pairs per fold, seed {seed}"]
                       + _labels_note(labels, str(labels_path)), labels=labels)


# -- LFW View 2 -----------------------------------------------------------------------------

def load_lfw(root: str | Path, *, pairs_file: str = "pairs.txt", images_dir: str = "images",
             max_pairs: int | None = None, name: str = "lfw") -> FaceDataset:
    """LFW with the View 2 ``pairs.txt`` protocol (10 folds x 300 genuine + 300 impostor pairs).

    ``images`` are all images under ``<root>/<images_dir>/<Name>/`` (so that every
    different-person pair can be scored), or, with ``max_pairs``, only those of the kept pairs.
    """
    root = Path(root)
    image_root = root / images_dir
    lines = (root / pairs_file).read_text().splitlines()
    n_folds, per_fold = (int(v) for v in lines[0].split())

    def path(person: str, number: str) -> Path:
        return image_root / person / f"{person}_{int(number):04d}.jpg"

    a_paths, b_paths, same, fold = [], [], [], []
    for k, line in enumerate(lines[1:1 + 2 * n_folds * per_fold]):
        fields = line.split()
        if len(fields) == 3:
            a_paths.append(path(fields[0], fields[1]))
            b_paths.append(path(fields[0], fields[2]))
            same.append(True)
        elif len(fields) == 4:
            a_paths.append(path(fields[0], fields[1]))
            b_paths.append(path(fields[2], fields[3]))
            same.append(False)
        else:
            raise ValueError(f"{pairs_file} line {k + 2}: expected 3 or 4 fields, got {line!r}")
        fold.append(str(k // (2 * per_fold) + 1))
    if len(same) != 2 * n_folds * per_fold:
        raise ValueError(f"{pairs_file}: expected {2 * n_folds * per_fold} pairs, found {len(same)}")
    if max_pairs is None:
        found = list_identity_folder(image_root)
    else:
        found = {p: p.parent.name for p in a_paths + b_paths}
    missing = [str(p) for p in a_paths + b_paths if p not in found]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images named in {pairs_file} are missing, e.g. {missing[0]}")
    paths, identities, names = _index(sorted(found), found)
    position = {p: i for i, p in enumerate(paths)}
    pairs = Pairs(np.array([position[p] for p in a_paths]), np.array([position[p] for p in b_paths]),
                  np.array(same), np.array(fold))
    if max_pairs is not None:
        pairs = pairs.take(subset_pairs(pairs, max_pairs))
        paths, pairs = _restrict(paths, pairs)
        identities, names = _index(paths, found)[1:]
    return FaceDataset(name, "lfw", str(root), paths, identities, names, pairs, all_vs_all=True)


# -- generic pairs file ---------------------------------------------------------------------

def _read_table(path: Path, delimiter: str | None, names: list[str] | None) -> tuple[list[str] | None, list[list[str]]]:
    """Rows of a CSV/TSV, skipping blank and ``#`` lines; header from ``names``, a
    ``# columns: a b c`` comment, or (returned as None) to be decided by the caller."""
    text = path.read_text(encoding="utf-8-sig")
    comment_header = None
    data_lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            match = re.match(r"#\s*columns?\s*:\s*(.*)$", stripped, re.IGNORECASE)
            if match:
                # Tokens like "fold(1-10)" name the column "fold"; trailing prose after 3+ spaces is dropped.
                spec = re.split(r"\s{3,}", match.group(1).strip())[0]
                comment_header = [re.sub(r"\(.*?\)", "", t) for t in re.split(r"[\s,]+", spec) if t]
            continue
        data_lines.append(line)
    if not data_lines:
        raise ValueError(f"{path} holds no rows")
    if delimiter is None:
        delimiter = "\t" if (path.suffix.lower() == ".tsv" or "\t" in data_lines[0]) else ","
    rows = [[cell.strip() for cell in row] for row in csv.reader(data_lines, delimiter=delimiter)]
    width = len(rows[0])
    if names is None and comment_header is not None and len(comment_header) == width:
        names = comment_header
    return names, rows


def _column(header: list[str] | None, spec: str | int) -> int:
    """Position of a column given by name (needs a header) or by 0-based number."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit() and (header is None or spec not in header)):
        return int(spec)
    if header is None or spec not in header:
        raise KeyError(f"no column {spec!r}; columns are {header}. Pass --names if the file has no header row")
    return header.index(spec)


def load_pairs_file(path: str | Path, *, col_a: str | int, col_b: str | int, col_same: str | int,
                    col_fold: str | int | None = None, col_id_a: str | int | None = None,
                    col_id_b: str | int | None = None, group_columns: tuple[str | int, ...] = (),
                    root: str | Path | None = None, names: list[str] | None = None,
                    delimiter: str | None = None, max_pairs: int | None = None,
                    all_vs_all: bool = False, name: str | None = None,
                    image_label_columns: dict[str, tuple[str | int, str | int]] | None = None) -> FaceDataset:
    """A CSV/TSV of pairs: one row per pair, columns chosen by name or 0-based number.

    Parameters
    ----------
    path : path of the pairs file. Blank lines and ``#`` comments are skipped; the header
        is ``names`` if given, else a ``# columns: a b c`` comment whose names match the row
        width, else the first row when it contains every named column.
    col_a, col_b : image path columns; relative paths are resolved against ``root``.
    col_same : 1/0, true/false or same/different.
    col_fold : fold labels (for k-fold accuracy), optional.
    col_id_a, col_id_b : identity columns, optional; by default an image's identity is the
        name of the folder that holds it.
    group_columns : columns to break results down by (e.g. an age-gap band).
    root : folder of the images; relative to the pairs file's folder. Default: that folder.
    max_pairs : keep about this many pairs, spread over (fold, same).
    all_vs_all : trust the identities enough to score every different-identity pair.
    image_label_columns : label name -> (column for image a, column for image b), e.g.
        ``{"age": ("age0", "age1")}``: per-image labels (``FaceDataset.labels``).
    """
    path = Path(path)
    header, rows = _read_table(path, delimiter, list(names) if names else None)
    image_label_columns = dict(image_label_columns or {})
    label_specs = [c for pair in image_label_columns.values() for c in pair]
    referenced = [c for c in (col_a, col_b, col_same, col_fold, col_id_a, col_id_b, *group_columns, *label_specs)
                  if c is not None and not (isinstance(c, int) or str(c).isdigit())]
    if header is None and referenced and all(c in rows[0] for c in referenced):
        header, rows = rows[0], rows[1:]
    image_root = path.parent if root is None else (Path(root) if Path(root).is_absolute() else path.parent / root)
    columns = {key: _column(header, spec) for key, spec in
               {"a": col_a, "b": col_b, "same": col_same, "fold": col_fold, "id_a": col_id_a,
                "id_b": col_id_b}.items() if spec is not None}
    group_index = {str(g): _column(header, g) for g in group_columns}
    label_index = {label: (_column(header, ca), _column(header, cb)) for label, (ca, cb) in image_label_columns.items()}

    def resolve(cell: str) -> Path:
        p = Path(cell)
        return p if p.is_absolute() else image_root / p

    a_paths = [resolve(r[columns["a"]]) for r in rows]
    b_paths = [resolve(r[columns["b"]]) for r in rows]
    same = np.array([parse_same(r[columns["same"]]) for r in rows], dtype=bool)
    identity_of: dict[Path, str] = {}
    for key, paths in (("id_a", a_paths), ("id_b", b_paths)):
        for r, p in zip(rows, paths):
            label = r[columns[key]] if key in columns else p.parent.name or p.stem
            if identity_of.setdefault(p, label) != label:
                raise ValueError(f"{p} is given two identities: {identity_of[p]!r} and {label!r}")
    label_of: dict[str, dict[Path, str]] = {label: {} for label in label_index}
    for label, (ia, ib) in label_index.items():
        for r, pa, pb in zip(rows, a_paths, b_paths):
            for p, value in ((pa, r[ia]), (pb, r[ib])):
                if label_of[label].setdefault(p, value) != value:
                    raise ValueError(f"{p} is given two {label!r} labels: {label_of[label][p]!r} and {value!r}")
    missing = sorted({str(p) for p in a_paths + b_paths if not p.is_file()})
    if missing:
        raise FileNotFoundError(f"{len(missing)} images named in {path} are missing, e.g. {missing[0]} "
                                f"(relative paths resolve against {image_root}; see --root)")
    paths = sorted(identity_of)
    position = {p: i for i, p in enumerate(paths)}
    fold = np.array([r[columns["fold"]] for r in rows]) if "fold" in columns else None
    groups = {g: np.array([r[i] for r in rows]) for g, i in group_index.items()}
    pairs = Pairs(np.array([position[p] for p in a_paths]), np.array([position[p] for p in b_paths]),
                  same, fold, groups)
    if max_pairs is not None:
        pairs = pairs.take(subset_pairs(pairs, max_pairs))
        paths, pairs = _restrict(paths, pairs)
    paths, identities, id_names = _index(paths, identity_of)
    notes = [] if ("id_a" in columns and "id_b" in columns) else [
        "identities: the folder holding each image (no identity columns given)"]
    labels = {label: np.array([values[p] for p in paths], dtype=str) for label, values in label_of.items()}
    return FaceDataset(name or path.parent.name or path.stem, "pairs", str(path), paths, identities, id_names,
                       pairs, all_vs_all=all_vs_all, notes=notes, labels=labels)


def detect_format(path: str | Path) -> str:
    """'lfw' for a folder with pairs.txt and images/, 'pairs' for a file, 'folder' for a folder."""
    path = Path(path)
    if path.is_file():
        return "pairs"
    if (path / "pairs.txt").is_file() and (path / "images").is_dir():
        return "lfw"
    if path.is_dir():
        return "folder"
    raise FileNotFoundError(f"{path} does not exist")


FORMATS = ("auto", "folder", "lfw", "pairs")


def load(source: str | Path, *, format: str = "auto", name: str | None = None, labels: str | Path | None = None,
         seed: int = 0, impostors_all_pairs: bool = False, max_images: int | None = None, folds: int = 10,
         pairs_per_fold: int = 300, pairs_file: str = "pairs.txt", max_pairs: int | None = None,
         col_a: str | int | None = None, col_b: str | int | None = None, col_same: str | int | None = None,
         col_fold: str | int | None = None, col_id_a: str | int | None = None, col_id_b: str | int | None = None,
         col_group: tuple[str | int, ...] = (), col_image_label: dict[str, tuple[str | int, str | int]] | None = None,
         root: str | Path | None = None, names: list[str] | None = None, delimiter: str | None = None,
         all_pairs: bool | None = None) -> FaceDataset:
    """Any dataset ``python -m eval run`` reads, by the same options (docs/eval.md, "Datasets").

    ``format`` "auto" detects it (:func:`detect_format`): a folder of identities (``folds``,
    ``pairs_per_fold``, ``max_images``; every image a person of its own with
    ``impostors_all_pairs``), an LFW folder (``pairs_file``, ``max_pairs``) or a pairs file
    (``col_*`` as :func:`load_pairs_file`'s ``col_*``, ``group_columns`` and
    ``image_label_columns``; ``root``, ``names``, ``delimiter``, ``max_pairs``; its
    different-identity pairs are all scored only when ``all_pairs`` is True). ``labels``: a
    per-image labels file (:func:`read_labels`; a folder's own ``labels.csv`` is found without it).
    ``seed`` draws a folder's pairs and its ``max_images`` sample.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; use one of {', '.join(FORMATS)}")
    kind = detect_format(source) if format == "auto" else format
    if kind == "folder" and impostors_all_pairs:
        return load_impostor_folder(source, seed=seed, max_images=max_images, name=name, labels_file=labels)
    if kind == "folder":
        return load_folder(source, n_folds=folds, pairs_per_fold=pairs_per_fold, seed=seed, max_images=max_images,
                           name=name, labels_file=labels)
    if kind == "lfw":
        dataset = load_lfw(source, pairs_file=pairs_file, max_pairs=max_pairs, name=name or "lfw")
    else:
        if col_a is None or col_b is None or col_same is None:
            raise ValueError("a pairs file needs col_a, col_b and col_same (--col-a, --col-b, --col-same)")
        dataset = load_pairs_file(source, col_a=col_a, col_b=col_b, col_same=col_same, col_fold=col_fold,
                                  col_id_a=col_id_a, col_id_b=col_id_b, group_columns=tuple(col_group), root=root,
                                  names=names, delimiter=delimiter, max_pairs=max_pairs, all_vs_all=bool(all_pairs),
                                  name=name, image_label_columns=col_image_label)
    if labels:
        dataset.labels.update(read_labels(labels, dataset.images))
    return dataset
