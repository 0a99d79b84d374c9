"""eval.metrics and eval.scoring on score sets whose answers are known analytically."""
from __future__ import annotations

import numpy as np
import pytest

from eval import metrics
from eval.groups import PairCollector
from eval.scoring import PairScorer, all_vs_all

# Impostor scores uniform on [0, 1): k / 1000; genuine uniform on [0.5, 1.5).
IMPOSTOR = np.arange(1000) / 1000
GENUINE = 0.5 + np.arange(1000) / 1000


def test_fmr_fnmr_at_cutoffs_count_score_equal_to_cutoff_as_match():
    fmr, fnmr = metrics.fmr_fnmr(GENUINE, IMPOSTOR, cutoffs=[0.7, 0.67])
    # FMR(t) = #{k/1000 >= t} / 1000; FNMR(t) = #{0.5 + k/1000 < t} / 1000.
    np.testing.assert_allclose(fmr, [0.300, 0.330])
    np.testing.assert_allclose(fnmr, [0.200, 0.170])
    assert metrics.fmr_fnmr([0.7], [0.7], cutoffs=[0.7]) == (pytest.approx([1.0]), pytest.approx([0.0]))


def test_weights_stand_in_for_repeated_scores():
    scores, counts = np.array([0.1, 0.69, 0.7, 0.9]), np.array([500, 3, 2, 1])
    expanded = np.repeat(scores, counts)
    weighted = metrics.fmr_fnmr(GENUINE, scores, cutoffs=[0.7, 0.5], impostor_weight=counts)
    plain = metrics.fmr_fnmr(GENUINE, expanded, cutoffs=[0.7, 0.5])
    np.testing.assert_allclose(weighted, plain)
    assert metrics.equal_error_rate(GENUINE, scores, impostor_weight=counts) == \
        pytest.approx(metrics.equal_error_rate(GENUINE, expanded))


def test_eer_of_separable_scores_is_zero_and_of_shifted_uniforms_a_quarter():
    assert metrics.equal_error_rate([0.8, 0.9, 0.95], [0.1, 0.2, 0.79])[0] == 0.0
    # FMR(t) = 1 - t and FNMR(t) = t - 0.5 cross at t = 0.75, rate 0.25.
    eer, threshold = metrics.equal_error_rate(GENUINE, IMPOSTOR)
    assert eer == pytest.approx(0.25, abs=2e-3)
    assert threshold == pytest.approx(0.75, abs=2e-3)


def test_det_and_roc_curves_are_monotone_and_agree():
    fmr, fnmr, thresholds = metrics.det_curve(GENUINE, IMPOSTOR)
    fmr2, tar, thresholds2 = metrics.roc_curve(GENUINE, IMPOSTOR)
    np.testing.assert_array_equal(thresholds, thresholds2)
    np.testing.assert_allclose(fnmr, 1 - tar)
    assert np.all(np.diff(fmr) >= 0) and np.all(np.diff(fnmr) <= 0)
    assert (fmr[0], fnmr[-1], fmr[-1]) == (0.0, 0.0, 1.0)


def test_tar_at_far_and_cutoff_at_fmr_on_uniform_impostors():
    # 10 of 1000 impostors (0.990 .. 0.999) are >= 0.99: FMR 1e-2 exactly there.
    assert metrics.cutoff_at_fmr(IMPOSTOR, fmr=1e-2) == (pytest.approx(0.99), pytest.approx(0.01))
    tar, threshold, reason = metrics.tar_at_far(GENUINE, IMPOSTOR, far=1e-2)
    assert reason is None and threshold == pytest.approx(0.99)
    assert tar == pytest.approx(1 - 0.490)          # genuine below 0.99: 0.5 .. 0.989
    fnmr, _, _ = metrics.fnmr_at_fmr(GENUINE, IMPOSTOR, fmr=1e-2)
    assert fnmr == pytest.approx(0.490)


def test_operating_points_the_impostors_cannot_resolve_are_none_with_a_reason():
    for far in (1e-3, 1e-4):
        point = metrics.tar_at_far(GENUINE, IMPOSTOR, far=far)
        assert point.value is None and point.threshold is None
        assert f"{metrics.min_impostors_for_fmr(far)} impostor comparisons" in point.reason
    assert metrics.min_impostors_for_fmr(1e-3) == 3000
    assert metrics.tar_at_far(GENUINE, np.r_[IMPOSTOR, IMPOSTOR, IMPOSTOR], far=1e-3).value is not None


def test_kfold_accuracy_takes_each_threshold_from_the_other_folds():
    separable = metrics.kfold_accuracy(np.r_[GENUINE, IMPOSTOR - 0.6], np.r_[np.ones(1000, bool), np.zeros(1000, bool)],
                                       folds=np.tile(np.arange(10), 200))
    assert (separable.mean, separable.std) == (1.0, 0.0)
    # Per fold: 9 genuine at 0.9 and one at 0.1, 10 impostors at 0.2: any learnt threshold in
    # (0.2, 0.9] gets 19 of 20 right.
    scores = np.tile(np.r_[[0.9] * 9, 0.1, [0.2] * 10], 10)
    same = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], 10)
    result = metrics.kfold_accuracy(scores, same, folds=np.repeat(np.arange(10), 20))
    assert result.mean == pytest.approx(0.95) and result.std == pytest.approx(0.0)
    # Threshold learnt on the other fold only: each fold's own best (1.0) is not reachable.
    crossed = metrics.kfold_accuracy([0.8, 0.6, 0.5, 0.4], [True, False, True, False], folds=[1, 1, 2, 2])
    assert crossed.mean == 0.5
    np.testing.assert_allclose(crossed.thresholds, [0.45, 0.7])


def test_identity_bootstrap_intervals_bracket_the_estimate_and_collapse_without_errors():
    rng = np.random.default_rng(1)
    genuine_ids = np.repeat(np.arange(50), 4)
    genuine = rng.uniform(0.5, 1.0, genuine_ids.size)
    impostor_ids = rng.integers(0, 50, size=(2000, 2))
    impostor_ids = impostor_ids[impostor_ids[:, 0] != impostor_ids[:, 1]]
    impostor = rng.uniform(0.0, 0.75, len(impostor_ids))
    fmr, fnmr = metrics.fmr_fnmr(genuine, impostor, cutoffs=[0.7, 0.67])
    ci = metrics.bootstrap_fmr_fnmr(genuine, impostor, genuine_ids=genuine_ids, impostor_ids=impostor_ids,
                                    cutoffs=[0.7, 0.67], n_resamples=300)
    assert np.all(ci.fmr_low <= fmr) and np.all(fmr <= ci.fmr_high) and np.all(ci.fmr_low < ci.fmr_high)
    assert np.all(ci.fnmr_low <= fnmr) and np.all(fnmr <= ci.fnmr_high)
    none = metrics.bootstrap_fmr_fnmr(genuine + 1, impostor, genuine_ids=genuine_ids, impostor_ids=impostor_ids,
                                      cutoffs=[0.9], n_resamples=100)
    assert (none.fnmr_low[0], none.fnmr_high[0]) == (0.0, 0.0)


def test_bootstrap_resamples_people_not_comparisons():
    # One person causes every false match: an identity bootstrap sees how fragile that is.
    impostor_ids = np.array([[0, k] for k in range(1, 40)] + [[i, i + 1] for i in range(1, 39)])
    impostor = np.where(impostor_ids[:, 0] == 0, 0.9, 0.1)
    ci = metrics.bootstrap_fmr_fnmr([0.9], impostor, genuine_ids=[0], impostor_ids=impostor_ids, cutoffs=[0.7],
                                    n_resamples=500)
    assert ci.fmr_low[0] == 0.0            # resamples without person 0 have no false match at all
    assert ci.fmr_high[0] > 0.5


def _brute_force(scorer, identities):
    n = len(identities)
    scores = scorer.block(np.arange(n), np.arange(n))
    i, j = np.triu_indices(n, 1)
    same = identities[i] == identities[j]
    return scores[i, j][same], scores[i, j][~same], (identities[i][~same], identities[j][~same])


@pytest.fixture(scope="module")
def clustered(fast_comparer):
    """300 embeddings of 60 people (16-d clusters) scored by the real fast pipeline's calibration."""
    rng = np.random.default_rng(0)
    identities = rng.integers(0, 60, 300)
    centres = rng.normal(size=(60, 128))  # the fast mode's embedding size: its cohort scores them
    embeddings = centres[identities] + rng.normal(size=(300, 128))
    embeddings = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)
    return PairScorer(fast_comparer, embeddings, mode="fast"), identities


def test_pair_scorer_scores_pairs_and_blocks_as_the_comparer_does(clustered, fast_comparer):
    scorer, _ = clustered
    a, b = np.array([0, 5, 7]), np.array([1, 5, 200])
    expected = np.diag(fast_comparer.score_embeddings(scorer.embeddings[a], scorer.embeddings[b], mode="fast"))
    np.testing.assert_allclose(scorer.pairs(a, b, chunk=2), expected, rtol=1e-5)
    # A matrix product and a row-wise dot differ in the last float32 bit of the cosine.
    np.testing.assert_allclose(scorer.block(a, b)[[0, 1, 2], [0, 1, 2]], scorer.pairs(a, b), rtol=1e-6)


def test_all_vs_all_in_blocks_equals_brute_force(clustered):
    scorer, identities = clustered
    visited = []
    result = all_vs_all(scorer, np.arange(300), identities, cutoffs=(0.7, 0.67), block_size=37,
                        on_block=lambda rows, cols, scores, gen, imp: visited.append(int(imp.sum())))
    genuine, impostor, (id_a, id_b) = _brute_force(scorer, identities)
    assert sum(visited) == impostor.size and len(visited) > 1
    np.testing.assert_allclose(np.sort(result.genuine), np.sort(genuine), rtol=1e-6)
    assert result.n_impostor == impostor.size
    expected = [(impostor >= c).sum() for c in (0.7, 0.67)]
    np.testing.assert_array_equal(result.false_matches, expected)
    assert expected[0] > 0
    assert result.impostor_totals.sum() == impostor.size
    np.testing.assert_allclose(result.false_match_matrices.sum(axis=(1, 2)), expected)
    # The identity bootstrap from the matrices equals the one from the listed comparisons.
    labels = np.unique(identities)
    codes_a, codes_b = np.searchsorted(labels, id_a), np.searchsorted(labels, id_b)
    gen_ids = result.genuine_ids
    listed = metrics.bootstrap_fmr_fnmr(result.genuine, impostor, genuine_ids=gen_ids,
                                        impostor_ids=np.c_[codes_a, codes_b], cutoffs=(0.7, 0.67), n_resamples=200)
    n_ids = labels.size
    gen_totals = np.bincount(gen_ids, minlength=n_ids)
    misses = np.stack([np.bincount(gen_ids, weights=result.genuine < c, minlength=n_ids) for c in (0.7, 0.67)])
    dense = metrics.bootstrap_rates(gen_totals, misses, result.impostor_totals, list(result.false_match_matrices),
                                    n_resamples=200)
    for a, b in zip(listed, dense):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    # Histogram stand-in: exact at bin edges.
    scores, weights = result.impostor_as_weighted()
    np.testing.assert_allclose(metrics.fmr_fnmr([1.0], scores, cutoffs=[0.7], impostor_weight=weights)[0],
                               [expected[0] / impostor.size])


def test_grouped_pair_rates_count_every_pair_of_each_group(clustered):
    scorer, identities = clustered
    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 3, 300)                         # -1: an image outside every group
    table = np.array([[0, 3, 3], [3, 1, 3], [3, 3, 2]])       # "both a", "both b", "both c", "mixed"
    collector = PairCollector(0.6)
    all_vs_all(scorer, np.arange(300), identities, cutoffs=(0.7,), block_size=50, on_block=collector)
    genuine_pairs, genuine = collector.genuine()
    impostor_pairs, impostor = collector.accepted_impostors()
    assert impostor.min() >= 0.6
    rates = metrics.grouped_pair_rates(identities, labels, table, genuine_pairs=genuine_pairs, genuine=genuine,
                                       impostor_pairs=impostor_pairs, impostor=impostor, cutoffs=(0.7, 0.6),
                                       n_resamples=100)
    scores = scorer.block(np.arange(300), np.arange(300))
    i, j = np.triu_indices(300, 1)
    inside = (labels[i] >= 0) & (labels[j] >= 0)
    group = np.where(inside, table[labels[i], labels[j]], -1)
    same = identities[i] == identities[j]
    for g in range(4):
        impostor = scores[i, j][(group == g) & ~same]
        genuine_scores = scores[i, j][(group == g) & same]
        assert rates.n_impostor[g] == impostor.size and rates.n_genuine[g] == genuine_scores.size
        np.testing.assert_array_equal(rates.false_matches[g], [(impostor >= c).sum() for c in (0.7, 0.6)])
        np.testing.assert_array_equal(rates.false_non_matches[g], [(genuine_scores < c).sum() for c in (0.7, 0.6)])
        low, high = rates.intervals.fmr_low[g], rates.intervals.fmr_high[g]
        assert np.all(low <= rates.false_matches[g] / impostor.size + 1e-12)
        assert np.all(rates.false_matches[g] / impostor.size <= high + 1e-12)
    assert rates.false_matches[:, 0].sum() > 0


def test_grouped_pair_rates_of_one_group_match_the_dense_identity_bootstrap(clustered):
    scorer, identities = clustered
    result = all_vs_all(scorer, np.arange(300), identities, cutoffs=(0.7, 0.67))
    n = len(identities)
    scores = scorer.block(np.arange(n), np.arange(n))
    i, j = np.triu_indices(n, 1)
    same = identities[i] == identities[j]
    accepted = ~same & (scores[i, j] >= 0.67)
    rates = metrics.grouped_pair_rates(identities, np.zeros(n, int), [[0]], genuine_pairs=np.c_[i[same], j[same]],
                                       genuine=scores[i, j][same], impostor_pairs=np.c_[i[accepted], j[accepted]],
                                       impostor=scores[i, j][accepted], cutoffs=(0.7, 0.67), n_resamples=200)
    n_ids = result.impostor_totals.shape[0]
    gen_totals = np.bincount(result.genuine_ids, minlength=n_ids)
    misses = np.stack([np.bincount(result.genuine_ids, weights=result.genuine < c, minlength=n_ids) for c in (0.7, 0.67)])
    dense = metrics.bootstrap_rates(gen_totals, misses, result.impostor_totals, list(result.false_match_matrices),
                                    n_resamples=200)
    assert rates.n_impostor[0] == result.n_impostor
    np.testing.assert_array_equal(rates.false_matches[0], result.false_matches)
    for grouped, reference in zip(rates.intervals, dense):
        np.testing.assert_allclose(grouped[0], reference, rtol=1e-5)
