"""eval.datasets adapters on real files: a folder of identities, LFW pairs.txt, CACD-VS pairs.tsv."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval import datasets


@pytest.fixture(scope="module")
def celebrity_val_dir(celebrity_photos) -> Path:
    return next(iter(celebrity_photos.values()))[0].parents[1]


@pytest.fixture(scope="module")
def cacd_dir(shared) -> Path:
    path = shared / "data" / "cacd-vs-dev"
    if not (path / "pairs.tsv").exists():
        pytest.skip("../shared/data/cacd-vs-dev is not present")
    return path


def test_folder_of_identities_gives_seeded_pairs_in_identity_disjoint_folds(celebrity_val_dir):
    dataset = datasets.load_folder(celebrity_val_dir, n_folds=2, pairs_per_fold=5, seed=3)
    assert dataset.kind == "folder" and dataset.all_vs_all
    assert dataset.n_identities == 5 and dataset.n_images == sum(1 for p in celebrity_val_dir.glob("*/*.jpg"))
    assert [dataset.identity_names[i] for i in dataset.identities] == [p.parent.name for p in dataset.images]
    pairs = dataset.pairs
    ids_a, ids_b = dataset.identities[pairs.a], dataset.identities[pairs.b]
    assert np.all((ids_a == ids_b) == pairs.same)
    assert np.all(pairs.a != pairs.b)
    folds_of = {}
    for fold, ia, ib in zip(pairs.fold, ids_a, ids_b):
        for identity in (ia, ib):
            assert folds_of.setdefault(identity, fold) == fold, "an identity appears in two folds"
    assert pairs.same.sum() > 0 and (~pairs.same).sum() > 0
    again = datasets.load_folder(celebrity_val_dir, n_folds=2, pairs_per_fold=5, seed=3).pairs
    np.testing.assert_array_equal(again.a, pairs.a)
    np.testing.assert_array_equal(again.b, pairs.b)
    other = datasets.load_folder(celebrity_val_dir, n_folds=2, pairs_per_fold=5, seed=4).pairs
    assert not (np.array_equal(other.a, pairs.a) and np.array_equal(other.b, pairs.b))


def test_assign_folds_balances_images_and_never_splits_a_person():
    identities = np.repeat(np.arange(20), np.arange(1, 21))
    folds = datasets.assign_folds(identities, n_folds=4, seed=0)
    for identity in range(20):
        assert np.unique(folds[identities == identity]).size == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 20


def test_generic_pairs_file_with_header_groups_and_relative_root(tmp_path, celebrity_val_dir):
    people = sorted(p.name for p in celebrity_val_dir.iterdir() if p.is_dir())
    photos = {p: sorted((celebrity_val_dir / p).glob("*.jpg")) for p in people}
    rows = ["first,second,is_same,split,band"]
    for k, person in enumerate(people):
        a, b = photos[person][:2]
        rows.append(f"{person}/{a.name},{person}/{b.name},same,{k % 2},young")
        other = people[(k + 1) % len(people)]
        rows.append(f"{person}/{a.name},{other}/{photos[other][0].name},different,{k % 2},old")
    table = tmp_path / "pairs.csv"
    table.write_text("# my pairs\n" + "\n".join(rows) + "\n")
    dataset = datasets.load_pairs_file(table, col_a="first", col_b="second", col_same="is_same", col_fold="split",
                                       group_columns=("band",), root=str(celebrity_val_dir))
    assert len(dataset.pairs) == 10 and dataset.pairs.same.sum() == 5
    assert set(dataset.pairs.fold) == {"0", "1"}
    assert set(dataset.pairs.groups["band"]) == {"young", "old"}
    assert dataset.n_identities == 5 and not dataset.all_vs_all
    assert all(p.is_file() for p in dataset.images)
    # The same file without its header row, columns by number.
    bare = tmp_path / "bare.csv"
    bare.write_text("\n".join(rows[1:]) + "\n")
    by_number = datasets.load_pairs_file(bare, col_a=0, col_b="1", col_same=2, root=str(celebrity_val_dir))
    np.testing.assert_array_equal(by_number.pairs.same, dataset.pairs.same)
    named = datasets.load_pairs_file(bare, col_a="x", col_b="y", col_same="s", names=["x", "y", "s", "f", "g"],
                                     root=str(celebrity_val_dir))
    assert len(named.pairs) == 10
    with pytest.raises(KeyError, match="--names"):
        datasets.load_pairs_file(bare, col_a="first", col_b="second", col_same="is_same", root=str(celebrity_val_dir))


def test_parse_same_refuses_unknown_labels():
    assert datasets.parse_same(" Same ") and not datasets.parse_same("0")
    with pytest.raises(ValueError):
        datasets.parse_same("maybe")


@pytest.mark.needs_shared
def test_lfw_pairs_txt_is_view_2(lfw_dir):
    dataset = datasets.load_lfw(lfw_dir)
    assert len(dataset.pairs) == 6000 and dataset.pairs.same.sum() == 3000
    assert np.unique(dataset.pairs.fold).size == 10
    assert (dataset.n_images, dataset.n_identities) == (7701, 4281)
    first = dataset.pairs.take(np.array([0]))
    assert dataset.images[first.a[0]].name == "Abel_Pacheco_0001.jpg"
    assert dataset.images[first.b[0]].name == "Abel_Pacheco_0004.jpg"
    ids = dataset.identities
    assert np.all((ids[dataset.pairs.a] == ids[dataset.pairs.b]) == dataset.pairs.same)
    small = datasets.load_lfw(lfw_dir, max_pairs=20)
    assert len(small.pairs) == 20 and np.unique(small.pairs.fold).size == 10 and small.pairs.same.sum() == 10
    assert small.n_images <= 40 and all(p.is_file() for p in small.images)


@pytest.mark.needs_shared
def test_cacd_pairs_tsv_loads_with_a_column_mapping(cacd_dir):
    dataset = datasets.load_pairs_file(cacd_dir / "pairs.tsv", col_a="path0", col_b="path1", col_same="label",
                                       col_fold="fold", root="images/")
    assert len(dataset.pairs) == 2000 and dataset.pairs.same.sum() == 1000
    assert sorted(set(dataset.pairs.fold)) == ["1", "2", "3", "4", "5"]
    assert dataset.n_images == 1998
    ids = dataset.identities
    assert np.all(ids[dataset.pairs.a][dataset.pairs.same] == ids[dataset.pairs.b][dataset.pairs.same])
    assert not dataset.all_vs_all, "CACD folders are not guaranteed to be different people"
