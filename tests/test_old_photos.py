"""Real old photos: the old-print figure and shift act on pairs of two old prints only, the fit
recovers a known shift, a pair is flagged only where the calibration measured the promise to fail
(two poor photos, not one), held-out false matches are traced to the pairs of people behind
them, and on real old prints (fgnet-dev, when ../shared is present) the figure tells old prints
from ordinary photos."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facecmp.calibration import POOR_PHOTO_REASONS, Calibration
from facecmp.normalisation import FaceStats, ScoreNormaliser
from training.heldout import GapBands, false_matches_by_people
from training.old_photos import fit_old_print_shift, split_by_person
from training.pair_walks import identity_pairs


def _stats(old_print: float, quality: float = 1.0, cohort_mean: float = 0.0) -> FaceStats:
    return FaceStats(np.float32(cohort_mean), np.float32(1), np.float32(40), np.float32(quality), np.float32(old_print))


def _normaliser(old_print_shift) -> ScoreNormaliser:
    dim = 4
    return ScoreNormaliser(np.eye(dim, dtype=np.float32), 1, np.zeros(dim, np.float32), 0.0, 20.0,
                           np.array([0.0, 20.0]), np.zeros(2), np.zeros(dim, np.float32), 1.0,
                           np.array([0.0, 1.0]), np.zeros(2), np.full(dim, 5.0, np.float32), -2.0,
                           *old_print_shift)


def test_two_old_prints_are_shifted_an_old_print_beside_a_new_photo_is_not():
    normaliser = _normaliser((np.array([0.05, 0.5, 1.0]), np.array([0.0, 1.0, 1.5])))
    old, new = _stats(0.9), _stats(0.02)
    assert normaliser.normalise(0.5, old, old) == pytest.approx(0.5 - 1.4)
    assert normaliser.normalise(0.5, old, new) == pytest.approx(0.5)   # the lower figure decides


def test_the_old_print_figure_is_a_probability_from_the_embedding():
    normaliser = _normaliser((np.array([0.0, 1.0]), np.zeros(2)))
    embeddings = np.array([[1, 0, 0, 0], [-1, 0, 0, 0]], np.float32)   # logits 3 and -7
    np.testing.assert_allclose(normaliser.face_stats(embeddings).old_print, 1 / (1 + np.exp([-3.0, 7.0])), rtol=1e-5)
    without = dataclasses.replace(normaliser, old_print_weights=None)
    assert np.all(without.face_stats(embeddings).old_print == 0)   # fitted without old photos


def test_fit_old_print_shift_recovers_a_known_shift_and_never_loosens():
    rng = np.random.default_rng(5)
    figure = np.concatenate([rng.uniform(0, 0.05, 1_000_000), rng.uniform(0.05, 1.0, 300_000)])
    true_shift = np.clip((figure - 0.3) * 2.0, 0, None)          # two old prints' impostors sit higher
    values = rng.normal(size=figure.size) + true_shift
    reference = float(np.quantile(rng.normal(size=1_000_000), 1 - 1e-3))
    knots, shift = fit_old_print_shift(values, figure, reference, figure >= 0.05)
    assert knots[0] == 0.5 and shift[0] == 0.0 and knots[-1] == 1.0
    assert np.all(shift >= 0) and np.all(np.diff(shift) >= 0)
    assert np.interp(0.9, knots, shift) == pytest.approx(1.2, abs=0.25)
    assert np.interp(0.3, knots, shift) == 0.0   # below the model's "old print" no shift


def test_the_split_keeps_each_person_on_one_side_and_halves_the_people():
    subjects = np.array([f"{i:03d}" for i in range(41) for _ in range(3)])
    fit = split_by_person(subjects)
    for person in set(subjects):
        assert len(set(fit[subjects == person])) == 1
    assert len(set(subjects[fit])) == 20 and len(set(subjects[~fit])) == 21
    np.testing.assert_array_equal(split_by_person(subjects, "second"), ~fit)   # the check the other way round
    a, b, same = identity_pairs(subjects[:6])
    assert same.sum() == 6 and len(a) == 15


def test_false_matches_are_traced_to_the_pairs_of_people_behind_them():
    # Four people, three photos each; A and B look alike (cosine 0.71: every A-B pair scores over
    # 0.7 on this map), C and D look like nobody.
    axes = np.eye(4, dtype=np.float32)
    looks = {"A": axes[0], "B": (axes[0] + axes[1]) / np.sqrt(2), "C": axes[2], "D": axes[3]}
    people = np.repeat(list(looks), 3)
    embeddings = np.stack([looks[p] for p in people])
    cosine_map = Calibration("test", {}, "", "", np.array([-1.0, 0.5, 1.0]), np.array([0.0, 0.7, 1.0]), {})
    ages = np.tile([20.0, 30.0, 40.0], 4)
    apart = GapBands(ages, (0, 1, np.inf), "age gap")   # band 0: photos of one age
    found = false_matches_by_people(cosine_map, embeddings, FaceStats.neutral(12), people,
                                    {"all": None, "same age": (apart, 0)})
    everyone = found["all"]
    assert everyone["false_match_people"] == 1 and everyone["top_people_share"] == 1.0
    low, high = everyone["fmr_95_by_people"]
    assert low == 0.0 < 9 / 54 < high   # draws without A or B have no false match; 9 of 54 pairs match
    same_age = found["same age"]   # A-B pairs of one age: 3 of 18 pairs
    assert same_age["false_match_people"] == 1 and same_age["fmr_95_by_people"][1] > 3 / 18
    assert false_matches_by_people(cosine_map, embeddings[6:], FaceStats.neutral(6), people[6:], {"all": None})["all"] \
        == {"false_match_people": 0, "top_people_share": None, "fmr_95_by_people": [0.0, 0.0]}


def test_one_poor_photo_keeps_the_promise_two_do_not(fast_comparer):
    calibration = fast_comparer.calibration("fast")
    floor, width = calibration.coverage["quality"], calibration.coverage["face_width"]
    typical = float(np.mean(calibration.coverage["cohort_similarity"]))   # inside the cohort limits
    good, poor = _stats(0.0, 1.0, typical), _stats(0.0, floor - 0.05, typical)
    pair = lambda a, b, wa=200.0, wb=200.0: bool(calibration.outside(a, np.float32(wa), b, np.float32(wb)))
    assert not pair(good, good) and not pair(poor, good) and pair(poor, poor)
    assert pair(poor, good, wb=width - 1)          # a low-quality photo and a small face: both poor
    assert not pair(good, good, wb=width - 1)
    notes = calibration.coverage_notes(FaceStats(*(np.array([getattr(poor, f.name), getattr(good, f.name)])
                                                   for f in dataclasses.fields(FaceStats))), [200.0, width - 1])
    assert any(note.startswith("probe: low image quality") for note in notes)
    assert any(note.startswith("reference: a small face") for note in notes)
    assert set(POOR_PHOTO_REASONS) <= set(calibration.face_flags(good, np.float32(200.0)))


def test_real_old_prints_get_a_high_old_print_figure_ordinary_photos_a_low_one(fast_comparer, celebrity_photos,
                                                                            shared):
    fgnet = shared / "data" / "fgnet-dev"
    if not fgnet.is_dir():
        pytest.skip("needs ../shared/data/fgnet-dev (real old photos)")
    old = sorted(fgnet.glob("*/*.JPG"))[::25][:12]
    figures = [r.trust["old_print"] for r in fast_comparer.represent_batch(old, mode="fast") if not isinstance(r, Exception)]
    ordinary = [fast_comparer.represent(p, mode="fast").trust["old_print"]
                for photos in celebrity_photos.values() for p in photos[:2]]
    assert np.median(figures) > 0.5 > np.median(ordinary), (figures, ordinary)
