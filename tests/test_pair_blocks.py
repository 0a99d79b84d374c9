"""All-pairs cosines are walked in one place (eval.metrics.all_pair_blocks) for the
calibration fit and the eval suite. The fit's input must not move by a bit: it is compared
here with the walk the calibrations were fitted with (kept below as the reference)."""
from __future__ import annotations

import numpy as np
import pytest

from eval.metrics import all_pair_blocks
from training.lfw_protocol import all_pair_cosines


def fitted_with(embeddings: np.ndarray, identities: np.ndarray, block: int = 2048):
    """training.lfw_protocol.all_pair_cosines as the shipped calibrations were fitted (f1527db)."""
    ok = ~np.isnan(embeddings).any(axis=1)
    emb, ids = embeddings[ok], identities[ok]
    _, codes = np.unique(ids, return_inverse=True)
    genuine, impostor = [], []
    for start in range(0, len(emb), block):
        sims = emb[start:start + block] @ emb.T
        rows = np.arange(start, min(start + block, len(emb)))
        upper = np.arange(len(emb))[None, :] > rows[:, None]
        same = codes[rows][:, None] == codes[None, :]
        genuine.append(sims[upper & same])
        impostor.append(sims[upper & ~same])
    return np.concatenate(genuine).astype(np.float32), np.concatenate(impostor).astype(np.float32)


@pytest.mark.parametrize("dim", [128, 768])  # FAST's embedding; ACCURATE's fused one
def test_calibration_input_is_bit_identical(dim):
    rng = np.random.default_rng(dim)
    n = 4500  # more than two blocks of 2048
    identities = np.sort(rng.integers(0, 1700, n)).astype(str)[rng.permutation(n)]  # LFW-like: few per person
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb[rng.choice(n, 40, replace=False)] = np.nan  # images without a face
    for new, old in zip(all_pair_cosines(emb, identities), fitted_with(emb, identities)):
        assert new.dtype == old.dtype and new.shape == old.shape
        np.testing.assert_array_equal(new, old)


def test_blocks_cover_each_pair_once():
    codes = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])
    emb = np.eye(10, dtype=np.float32)
    seen = np.zeros((10, 10), int)
    for block in all_pair_blocks(emb, codes, block_size=3, identity_blocks=True):
        assert block.stop == 10 or codes[block.stop] != codes[block.stop - 1]  # ends at an identity boundary
        rows, cols = np.nonzero(block.genuine | block.impostor)
        np.add.at(seen, (rows + block.start, cols + block.start), 1)
        assert np.all(codes[rows + block.start] == codes[cols + block.start]) == (not block.impostor.any())
    assert np.array_equal(seen, np.triu(np.ones((10, 10), int), 1))


def test_eval_all_vs_all_walks_the_same_pairs_as_the_fit():
    from eval.scoring import all_vs_all

    rng = np.random.default_rng(3)
    codes = np.sort(rng.integers(0, 300, 1200))
    emb = rng.normal(size=(1200, 128)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    class CosineScorer:  # eval.scoring.PairScorer's interface, with the cosine as its own score
        embeddings = emb

        def scores(self, cosine, a, b):
            return (np.clip(cosine, -1, 1) + 1.0) / 2

    result = all_vs_all(CosineScorer(), np.arange(len(emb)), codes, cutoffs=(0.55,), block_size=256)
    genuine, impostor = all_pair_cosines(emb, codes)
    # Other row blocks (eval's end at identity boundaries): the same cosines up to float32 rounding.
    np.testing.assert_allclose(np.sort(result.genuine), np.sort((np.clip(genuine, -1, 1) + 1.0) / 2), atol=1e-7)
    assert result.n_impostor == impostor.size
    assert result.false_matches[0] == np.sum((np.clip(impostor, -1, 1).astype(np.float64) + 1) / 2 >= 0.55)
