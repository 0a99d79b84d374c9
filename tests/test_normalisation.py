"""Score normalisation and its fitting code: the score depends on who is in the photos, the fit
recovers what synthetic data was built with, and training embeds through the pipeline itself."""
from __future__ import annotations

import numpy as np
import pytest

from facecmp.calibration import Calibration, fmr_promised, load_calibration
from facecmp.modes import MODES
from facecmp.normalisation import FaceStats, ScoreNormaliser
from training.fit_calibration import failing_below, fit_age_shift, fit_knots, fit_quality_shift
from training.fit_data import group_masks, labelled_groups
from facecmp.contract import PROMISE_TOLERANCE
from training.heldout import (AGE_GAP_EDGES, GapBands, face_set_rates, named_groups, pair_rates,
                              unkept_age_bands)
from training.level_tradeoff import old_photo_similarities, tradeoff_rows
from training.old_photos import split_by_person
from training.pair_walks import pair_cosines


def _normaliser(cohort, top_k, age_weights, age_bias, age_clamp, shift_ages, shift_values, *,
                quality_shift=(np.array([0.0, 1.0]), np.zeros(2))) -> ScoreNormaliser:
    """A normaliser whose quality model says 1 for every face, with ``quality_shift`` knots."""
    return ScoreNormaliser(cohort, top_k, age_weights, age_bias, age_clamp, shift_ages, shift_values,
                           np.zeros(cohort.shape[1], np.float32), 1.0, *quality_shift)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_a_face_in_a_crowded_neighbourhood_needs_a_higher_cosine_for_the_same_score():
    rng = np.random.default_rng(0)
    centre = np.eye(16)[0]
    cluster = _unit(centre + rng.normal(size=(200, 16)) * 0.3)       # many faces alike (say, babies)
    cohort = np.concatenate([cluster, _unit(rng.normal(size=(200, 16)))])
    normaliser = _normaliser(cohort, 20, np.zeros(16, np.float32), np.log1p(30.0), 20.0,
                                 np.array([0.0, 20.0]), np.zeros(2))
    crowded = _unit(centre[None, :])
    lonely = _unit(-centre[None, :])
    stats_crowded, stats_lonely = normaliser.face_stats(crowded), normaliser.face_stats(lonely)
    assert stats_crowded.cohort_mean[0] > stats_lonely.cohort_mean[0] + 0.1
    same_cosine = 0.5
    assert normaliser.normalise(same_cosine, stats_crowded[0], stats_crowded[0]) < \
        normaliser.normalise(same_cosine, stats_lonely[0], stats_lonely[0])
    np.testing.assert_allclose(stats_crowded.estimated_age, 30.0, rtol=1e-5)  # zero weights: the bias alone


def test_a_cohort_photo_sent_as_a_query_is_not_its_own_neighbour():
    rng = np.random.default_rng(1)
    cohort = _unit(rng.normal(size=(50, 8)))
    normaliser = _normaliser(cohort, 1, np.zeros(8, np.float32), 0.0, 20.0, np.array([0.0, 20.0]), np.zeros(2))
    stats = normaliser.face_stats(cohort[:1])
    assert stats.cohort_mean[0] < 0.99  # its top-1 is another face, not itself (cosine 1)


def test_younger_face_age_shift_is_applied_and_clamped():
    normaliser = _normaliser(np.eye(4, dtype=np.float32), 1, np.zeros(4, np.float32), 0.0, 20.0,
                                 np.array([2.0, 10.0, 20.0]), np.array([-2.0, -1.0, 0.0]))
    assert normaliser.age_shift(2.0) == pytest.approx(-2.0)
    assert normaliser.age_shift(6.0) == pytest.approx(-1.5)
    assert normaliser.age_shift(60.0) == pytest.approx(0.0)  # adults share the clamped shift
    child = FaceStats(np.float32(0), np.float32(1), np.float32(2), np.float32(1), np.float32(0))
    adult = FaceStats(np.float32(0), np.float32(1), np.float32(40), np.float32(1), np.float32(0))
    # The younger face decides: a child with an adult gets the child's shift.
    assert normaliser.normalise(0.5, child, adult) == pytest.approx(0.5 + 2.0)


def test_two_poor_photos_are_shifted_a_poor_photo_beside_a_good_one_is_not():
    normaliser = _normaliser(np.eye(4, dtype=np.float32), 1, np.zeros(4, np.float32), 0.0, 20.0,
                             np.array([0.0, 20.0]), np.zeros(2),
                             quality_shift=(np.array([0.2, 0.6, 1.0]), np.array([1.5, 0.5, 0.0])))
    sharp = FaceStats(np.float32(0), np.float32(1), np.float32(40), np.float32(1.0), np.float32(0))
    blurred = FaceStats(np.float32(0), np.float32(1), np.float32(40), np.float32(0.4), np.float32(0))
    assert normaliser.quality_shift(0.4) == pytest.approx(1.0)
    assert normaliser.normalise(0.5, blurred, blurred) == pytest.approx(0.5 - 1.0)
    assert normaliser.normalise(0.5, sharp, blurred) == pytest.approx(0.5)   # the higher quality decides


def test_fit_quality_shift_recovers_a_known_shift_and_never_loosens():
    rng = np.random.default_rng(4)
    quality = rng.uniform(0.2, 1.0, 1_500_000)
    true_shift = np.where(quality < 0.6, (0.6 - quality) * 2.5, 0.0)   # poor pairs' impostors sit higher
    values = rng.normal(size=quality.size) + true_shift
    reference = float(np.quantile(rng.normal(size=1_000_000), 1 - 1e-3))
    qualities, shift = fit_quality_shift(values, quality, reference)
    assert qualities[-1] == 1.0 and shift[-1] == 0.0
    assert np.all(shift >= 0) and np.all(np.diff(shift) <= 0)
    assert np.interp(0.25, qualities, shift) == pytest.approx(0.875, abs=0.2)
    assert np.interp(0.9, qualities, shift) == pytest.approx(0.0, abs=0.1)


def test_a_flag_limit_stands_where_the_promise_was_measured_to_fail():
    rng = np.random.default_rng(6)
    quality = rng.uniform(0.0, 1.0, 1_200_000)
    cut = float(np.quantile(rng.normal(size=1_000_000), 1 - 1e-3))   # FMR 1e-3 for pairs of ordinary photos
    values = rng.normal(size=quality.size) + np.where(quality < 0.3, 1.5, 0.0)   # poor pairs match ~20x as often
    assert failing_below(quality, values, cut, lowest=0.0) == pytest.approx(0.3, abs=1 / 24)
    # A failing bin in the middle of the range is not a limit: the walk stops at the first bin that keeps it.
    middle = values + np.where((quality > 0.6) & (quality < 0.65), 1.5, 0.0)
    assert failing_below(quality, middle, cut, lowest=0.0) == pytest.approx(0.3, abs=1 / 24)
    # Where even the lowest bin keeps the promise, the limit is the lowest value measured.
    kept = rng.normal(size=quality.size)
    assert failing_below(quality, kept, cut, lowest=0.05) == 0.05


def test_fit_knots_reaches_the_promised_false_match_rates_on_the_data_it_was_fitted_on():
    impostor = np.random.default_rng(2).normal(size=2_000_000)
    similarity, score, tail = fit_knots(impostor, lowest=-10.0)
    for s in (0.5, 0.6, 0.67, 0.7, 0.8):
        cut = np.interp(s, score, similarity)
        assert np.mean(impostor >= cut) == pytest.approx(fmr_promised(s), rel=0.08)
    assert np.all(np.diff(similarity) > 0) and np.all(np.diff(score) >= 0)
    assert tail["empirical_up_to_score"] >= 0.8


def test_fit_age_shift_recovers_a_known_shift():
    rng = np.random.default_rng(3)
    ages = rng.uniform(0, 60, 1_500_000)
    true_shift = np.where(ages < 10, 1.0 - ages / 10, 0.0)  # children's impostor scores sit higher
    values = rng.normal(size=ages.size) + true_shift
    shift_ages, shift_values = fit_age_shift(values, ages, clamp=20.0)
    assert shift_values[-1] == 0.0 and shift_ages[-1] == 20.0
    assert np.interp(1.0, shift_ages, shift_values) == pytest.approx(0.9, abs=0.15)
    assert np.interp(5.0, shift_ages, shift_values) == pytest.approx(0.5, abs=0.15)


def test_only_bands_over_the_promise_are_flagged():
    def band(fmr):
        return {"normalised": {"0.7": fmr}}
    groups = {f"younger face {low}-{high - 1}": band(1e-3) for low, high in
              ((0, 3), (3, 6), (6, 13), (13, 18), (18, 30), (30, 45), (45, 60), (60, 200))}
    groups["younger face 0-2"] = band(1e-3 * PROMISE_TOLERANCE * 2)
    groups["younger face 18-29"] = band(1e-4)  # stricter than promised: reported, not flagged
    assert [b["low"] for b in unkept_age_bands(groups)] == [0]


def test_pairs_file_false_matches_are_counted_with_their_exact_interval():
    impostor = np.r_[0.9, 0.71, np.full(998, 0.3)]
    genuine = np.r_[np.full(9, 0.8), 0.2]
    rates = pair_rates(genuine, impostor, cutoffs=(0.7, 0.95), interval=True)
    at = rates["0.7"]
    assert (at["false_matches"], at["fmr"], at["accept_same"]) == (2, 0.002, 0.9)
    # Clopper-Pearson for 2 of 1,000 (tables: 0.24-7.21 in 1,000): a thousand pairs cannot tell 1 from 5 in 1,000.
    assert at["fmr_95"] == pytest.approx([2.42e-4, 7.21e-3], rel=2e-3)
    assert rates["0.95"]["fmr_95"] == pytest.approx([0.0, 3.68e-3], abs=1e-5)


def test_a_face_set_is_measured_overall_by_age_gap_and_by_what_the_answer_flags():
    # a (3 photos) and b (3) look like nobody else; c, one photo, looks like a: its 3 pairs with a
    # are the false matches. a's and c's faces are too small for the calibration: pairs of two such
    # photos are flagged (a-a, a-c), a small face beside a good one (b) is not.
    a, b, c = np.eye(4)[0], np.eye(4)[1], 0.8 * np.eye(4)[0] + 0.6 * np.eye(4)[2]
    embeddings = _unit(np.stack([a, a, a, b, b, b, c]))
    identities = np.array(["a", "a", "a", "b", "b", "b", "c"])
    ages = np.array([30, 32, 60, 20, 20, 20, 31], float)   # a's gaps 2, 30, 28; b's 0, 0, 0; c-a 1, 1, 29
    widths = np.array([20.0] * 3 + [100.0] * 3 + [20.0])
    linear = Calibration("linear", {}, "", "", np.array([-1.0, 1.0]), np.array([0.0, 1.0]), {},
                         coverage={"face_width": 50.0})                   # cosine 0.8: 0.9; cosine 0: 0.5
    overall, by_gap = face_set_rates(linear, embeddings, FaceStats.neutral(7), identities,
                                     named_groups(GapBands(ages, AGE_GAP_EDGES, "age gap")), face_widths=widths)
    assert (overall["genuine_pairs"], overall["impostor_pairs"]) == (6, 15)
    assert overall["0.7"]["fmr"] == pytest.approx(3 / 15) and overall["0.7"]["accept_same"] == 1.0
    assert overall["flagged_pairs"] == pytest.approx(3 / 15)              # c's pairs with a
    assert overall["0.7"]["flagged_false_matches"] == 1.0 and overall["0.7"]["fmr_unflagged"] == 0.0
    everyone_flagged = face_set_rates(linear, embeddings, FaceStats.neutral(7), identities, face_widths=widths * 0)[0]
    assert everyone_flagged["flagged_pairs"] == 1.0 and everyone_flagged["0.7"]["fmr_unflagged"] == 0.0
    assert list(by_gap) == ["age gap 0-5", "age gap 5-10", "age gap 10-20", "age gap 20-"]
    assert [by_gap[name]["genuine_pairs"] for name in by_gap] == [4, 0, 0, 2]
    assert [by_gap[name]["0.7"]["false_matches"] for name in by_gap] == [2, 0, 0, 1]


def test_the_pair_groups_of_a_labelled_set_are_eval_group_by_specs():
    data = {"label_age": np.array(["2", "40", "30", "10", "50"]),
            "label_race": np.array(["asian", "asian", "white", "asian", "white"])}
    groups = labelled_groups(data, np.arange(5))
    assert list(groups) == ["younger face 0-2", "younger face 6-12", "younger face 30-44", "younger face 45-59",
                            "adults, both asian", "adults, both white"]   # the bands some face lies in
    masks = group_masks(groups, 5)
    pairs = {name: [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(mask(np.arange(5)), 1)))]
             for name, mask in masks.items()}
    assert pairs["younger face 6-12"] == [(1, 3), (2, 3), (3, 4)]        # the younger face is 10
    assert pairs["adults, both white"] == [(2, 4)] and pairs["adults, both asian"] == []   # 10 is no adult
    assert list(labelled_groups(data, np.arange(5), adult_age_bands=False)) == ["younger face 0-2", "younger face 6-12",
                                                                               "adults, both asian", "adults, both white"]


def test_pair_cosines_in_chunks_equal_the_cosines_of_all_pairs_at_once():
    rng = np.random.default_rng(0)
    emb = _unit(rng.normal(size=(50, 16)))
    a, b = rng.integers(0, 50, 1000), rng.integers(0, 50, 1000)
    np.testing.assert_array_equal(pair_cosines(emb, a, b, chunk=64), np.einsum("ij,ij->i", emb[a], emb[b]))


def test_a_stricter_level_lowers_every_false_match_rate_and_acceptance_together():
    calibration = Calibration("linear", {}, "", "", np.array([-1.0, 1.0]), np.array([0.0, 1.0]), {})
    assert calibration.similarity_at(0.7) == pytest.approx(0.4)
    impostor = np.r_[0.45, 0.42, 0.41, 0.55, np.full(996, 0.0)]      # 4 of 1,000 at 0.7, 1 beyond +0.1
    genuine = np.r_[np.full(8, 0.9), 0.45, 0.37]                       # 0.67 is similarity 0.34
    rows = tradeoff_rows(calibration, {"impostors": impostor}, {"same": genuine}, [0.0, 0.1])
    assert rows == [("impostors", 1000, ["4.00", "1.00"]), ("same", 10, ["90.0 / 100.0 %", "80.0 / 90.0 %"])]


def test_packaged_calibrations_carry_their_held_out_figures_and_provenance():
    for mode in MODES:
        calibration = load_calibration(mode, MODES[mode].fingerprint())
        heldout = calibration.info["heldout"]
        groups = heldout["utkface-dev held-out half"]
        assert 0.5e-3 <= heldout["lfw"]["at"]["0.7"]["fmr"] <= 2e-3
        assert "non-commercial" in calibration.info["terms"]
        # The normalisation must beat the cosine-only map on the group it helps most.
        asian = groups["adults, both asian"]
        assert asian["normalised"]["0.7"] < asian["cosine-only"]["0.7"] / 10


def test_training_embeds_through_the_pipeline_itself(fast_comparer, tmp_path, celebrity_photos):
    from eval.embeddings import EmbeddingCache
    from facecmp.weights.store import file_sha256
    from training.embed_images import embed_folder

    folder = tmp_path / "photos"
    folder.mkdir()
    photos = celebrity_photos["madonna"][:3]
    for i, photo in enumerate(photos):
        (folder / f"{i}.jpg").write_bytes(open(photo, "rb").read())
    (folder / "not-a-face.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    cache = EmbeddingCache(tmp_path / "cache.sqlite")   # eval's cache, which the embeddings go through
    out = embed_folder(folder, tmp_path / "out.npz", fast_comparer, mode="fast", cache=cache)
    data = np.load(out)
    assert set(data) == {"paths", "embeddings", "face_width", "probability", "face_count", "pipeline_id", "root"}
    assert list(data["paths"]) == ["0.jpg", "1.jpg", "2.jpg", "not-a-face.png"]
    expected = fast_comparer.represent_batch(photos, mode="fast")
    np.testing.assert_allclose(data["embeddings"][:3], np.stack([r.embedding for r in expected]), atol=1e-6)
    np.testing.assert_allclose(data["face_width"][:3], [r.face.width for r in expected], atol=0.01)
    np.testing.assert_allclose(data["probability"][:3], [r.face.probability for r in expected], atol=1e-6)
    assert list(data["face_count"]) == [r.face_count for r in expected] + [0]
    assert data["embeddings"].dtype == np.float32 and data["face_width"][3] == 0
    assert np.isnan(data["embeddings"][3]).all() and str(data["pipeline_id"]) == fast_comparer.pipeline_id("fast")
    assert len(cache.get_many(fast_comparer.pipeline_id("fast"), [file_sha256(folder / "0.jpg")])) == 1


def test_compare_reports_how_far_its_score_can_be_trusted(fast_comparer, celebrity_photos):
    photos = celebrity_photos["madonna"]
    result = fast_comparer.compare(photos[0], photos[1], mode="fast")
    calibration = fast_comparer.calibration("fast")
    for face in result.faces:
        assert {"estimated_age", "cohort_similarity", "cohort_similarity_percentile", "face_width_percentile"} <= set(face.trust)
        assert 0 <= face.trust["cohort_similarity_percentile"] <= 100
    emb = np.stack([r.embedding for r in fast_comparer.represent_batch(photos[:2], mode="fast")])
    stats = calibration.face_stats(emb)
    # One score by both public paths: compare, and represent_batch + score_embeddings (what
    # compare_sets and eval use), from the same photos.
    paired = float(fast_comparer.score_embeddings(emb[0], emb[1], mode="fast")[0, 0])
    assert result.score == pytest.approx(paired, abs=1e-4)
    assert result.within_calibration == (not result.calibration_notes)
    # Two faces smaller than the calibration's measured limit are named in the notes; one beside
    # a face of ordinary size keeps the promise (measured), so it is not.
    limit, ordinary = calibration.coverage["face_width"], result.faces[1].face.width
    notes = calibration.coverage_notes(stats, [limit - 1, limit - 1])
    assert any(note.startswith("probe: a small face") for note in notes)
    assert any(note.startswith("reference: a small face") for note in notes)
    assert calibration.coverage_notes(stats, [limit - 1, ordinary]) == [] and not result.calibration_notes


def test_the_level_tradeoff_reads_old_photos_of_the_held_out_people_only(tmp_path):
    # Real files as embed_images writes them: 12 people, 3 photos each at ages 7, 15 and 40, one
    # image had no face. A cosine-only map, so each similarity is the pair's cosine.
    people = [f"{i:03d}" for i in range(12)]
    rows = [(f"{p}/{p}A{age:02d}.JPG", p, age) for p in people for age in (7, 15, 40)]
    rng = np.random.default_rng(3)
    embeddings = _unit(rng.normal(size=(len(rows) + 1, 8)))
    embeddings[-1] = np.nan
    paths = [path for path, _, _ in rows] + ["nobody.JPG"]
    np.savez(tmp_path / "old.npz", paths=np.array(paths), embeddings=embeddings, root=str(tmp_path))
    (tmp_path / "labels.csv").write_text("path,subject,age\n" + "".join(f"{r[0]},{r[1]},{r[2]}\n" for r in rows))
    calibration = Calibration("linear", {}, "", "", np.array([-1.0, 1.0]), np.array([0.0, 1.0]), {})
    impostors, genuine = old_photo_similarities(calibration, tmp_path / "old.npz", tmp_path / "labels.csv")
    held = [i for i, (_, person, _) in enumerate(rows) if not split_by_person(np.array(people))[people.index(person)]]
    n = len(held) // 3   # held-out people, 3 photos each
    name = "fgnet-dev held-out people"
    assert len(impostors[f"{name}, all"]) == 9 * n * (n - 1) // 2
    assert len(impostors[f"{name}, adults (both 18+)"]) == n * (n - 1) // 2            # the two 40-year-olds
    assert len(impostors[f"{name}, younger face 13-17"]) == 3 * n * (n - 1) // 2       # 15 with 15 or 40
    assert len(impostors[f"{name}, younger face 6-12"]) == 5 * n * (n - 1) // 2
    assert f"{name}, younger face 0-2" not in impostors                                # the issue judges from 6
    assert [len(genuine[f"{name}, same person {gap} years apart"]) for gap in ("0-5", "6-15", "16+")] == [0, n, 2 * n]
    first, second = held[0], held[1]   # one person at 7 and 15: 8 years apart
    assert genuine[f"{name}, same person 6-15 years apart"][0] == pytest.approx(
        float(embeddings[first] @ embeddings[second]), abs=1e-6)
