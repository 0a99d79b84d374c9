"""The calibrated score: its shape, its refusal to be misused, and its promise on held-out LFW."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import resources

import numpy as np
import pytest

from facecmp.calibration import fmr_promised, load_calibration
from facecmp.centres import load_centres
from facecmp.errors import CalibrationError
from facecmp.modes import MODES


@pytest.mark.parametrize("mode", sorted(MODES))
def test_packaged_calibration_is_monotone_continuous_and_bounded(mode):
    calibration = load_calibration(mode, MODES[mode].fingerprint())
    knots = calibration.similarity_knots
    similarities = np.linspace(knots[0] - 1, knots[-1] + 1, 20001)
    scores = calibration.score(similarities)
    assert scores[0] == 0.0 and 0.0 <= scores.min() and scores.max() <= 1.0
    assert np.all(np.diff(scores) >= 0)
    assert np.max(np.abs(np.diff(scores))) < 0.01  # continuous: no jumps at this resolution
    assert calibration.score(calibration.similarity_at(0.7)) == pytest.approx(0.7, abs=1e-6)
    assert "LFW" in calibration.dataset and calibration.info["heldout"]["lfw"]["impostor_pairs"] > 1_000_000
    assert calibration.normaliser is not None and "utkface-dev" in calibration.dataset


def test_calibration_for_another_pipeline_is_refused():
    other = {**MODES["fast"].fingerprint(), "flip": not MODES["fast"].flip}
    with pytest.raises(CalibrationError, match="refit"):
        load_calibration("fast", other)


def test_missing_or_broken_calibration_raises(tmp_path):
    with pytest.raises(CalibrationError):
        load_calibration("fast", MODES["fast"].fingerprint(), tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    load_calibration("fast", MODES["fast"].fingerprint()).save(broken)
    data = json.loads(broken.read_text())
    data["knots"]["score"] = data["knots"]["score"][::-1]
    broken.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="monotone"):
        load_calibration("fast", MODES["fast"].fingerprint(), broken)


def test_a_normaliser_file_that_does_not_match_its_digest_is_refused(tmp_path):
    target = tmp_path / "fast.json"
    load_calibration("fast", MODES["fast"].fingerprint()).save(target)
    load_calibration("fast", MODES["fast"].fingerprint(), target)  # intact: loads
    npz = tmp_path / "fast-normaliser.npz"
    blob = bytearray(npz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one byte changed
    npz.write_bytes(bytes(blob))
    with pytest.raises(CalibrationError, match="sha256"):
        load_calibration("fast", MODES["fast"].fingerprint(), target)
    npz.unlink()
    with pytest.raises(CalibrationError, match="no usable calibration"):
        load_calibration("fast", MODES["fast"].fingerprint(), target)


@pytest.mark.slow
def test_score_0_7_means_about_1_in_1000_false_matches_on_held_out_lfw(fast_comparer, lfw_dir):
    """Folds 6-10 of pairs.txt were not used to fit the calibration (folds 1-5 were)."""
    from eval.datasets import load_lfw

    dataset = load_lfw(lfw_dir)
    pairs = dataset.pairs
    held_out = np.unique(np.concatenate([pairs.a[pairs.fold.astype(int) > 5], pairs.b[pairs.fold.astype(int) > 5]]))
    chosen = held_out[:: max(1, len(held_out) // 700)]
    reps = fast_comparer.represent_batch([dataset.images[i] for i in chosen])
    ok = [i for i, r in enumerate(reps) if not isinstance(r, Exception)]
    assert len(ok) >= 0.98 * len(chosen)
    emb = np.stack([reps[i].embedding for i in ok])
    ids = dataset.identities[chosen[ok]]
    upper = np.triu(np.ones((len(ok), len(ok)), bool), 1)
    impostor = fast_comparer.score_embeddings(emb, emb)[upper & (ids[:, None] != ids[None, :])]
    scores = impostor
    fmr_07 = np.mean(scores >= 0.7)
    fmr_06 = np.mean(scores >= 0.6)
    # ~240k impostor pairs: 1e-3 means ~240 false matches (Poisson sd ~16); allow population drift x2.
    assert 0.5e-3 <= fmr_07 <= 2e-3, fmr_07
    assert 0.5e-2 <= fmr_06 <= 2e-2, fmr_06


def test_false_match_rates_on_the_sample_photos_stay_near_the_promise(fast_comparer):
    """Without ../shared: all 118 photos of the 5-celebrity set (5,455 different-person pairs).
    Five very different people make fewer false matches than LFW's thousands (measured: FMR 5.1 %
    at 0.5, 0.22 % at 0.6, none at 0.7); a wrong or uncentred calibration moves these by far more."""
    from facecmp.samples import photos_by_person

    paths, people = [], []
    for split in ("train", "val"):
        for person, photos in photos_by_person(split).items():
            paths += photos
            people += [person] * len(photos)
    reps = fast_comparer.represent_batch(paths)
    ok = [i for i, r in enumerate(reps) if not isinstance(r, Exception)]
    assert len(ok) >= len(paths) - 2
    emb = np.stack([reps[i].embedding for i in ok])
    ids = np.array(people)[ok]
    scores = fast_comparer.score_embeddings(emb, emb)
    upper = np.triu(np.ones(scores.shape, bool), 1)
    impostor, genuine = scores[upper & (ids[:, None] != ids[None, :])], scores[upper & (ids[:, None] == ids[None, :])]
    assert impostor.size > 5000 and genuine.size > 1000
    assert 0.02 <= np.mean(impostor >= 0.5) <= 0.2   # promised 1e-1
    assert np.mean(impostor >= 0.6) <= 2e-2           # promised 1e-2
    assert np.mean(impostor >= 0.7) <= 5e-3           # promised 1e-3: at most ~27 pairs here
    assert np.mean(genuine >= 0.5) >= 0.95 and np.median(genuine) > 0.8


@pytest.mark.parametrize("mode", sorted(MODES))
def test_centres_match_the_centred_embedders_and_their_pinned_digest(mode, tmp_path):
    config = MODES[mode]
    sizes = [{"msceleb-128": 128, "casia-webface": 512}[e.weights] for e in config.embedders]
    assert [None if c is None else c.shape for c in load_centres(config)] == \
        [(size,) if e.centred else None for size, e in zip(sizes, config.embedders)]
    with pytest.raises(CalibrationError, match="sha256"):
        load_centres(dataclasses.replace(config, centres_sha256="0" * 64))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_calibrations_round_trip(mode, tmp_path):
    config = MODES[mode]
    calibration = load_calibration(mode, config.fingerprint())
    copy = tmp_path / "copy.json"
    calibration.save(copy)
    reloaded = load_calibration(mode, config.fingerprint(), copy)
    np.testing.assert_array_equal(reloaded.similarity_knots, calibration.similarity_knots)
    np.testing.assert_array_equal(reloaded.normaliser.cohort, calibration.normaliser.cohort)


def test_new_centres_make_a_new_pipeline_id_and_refuse_the_old_calibration(fast_comparer):
    """A changed centre is a new embedding: caches keyed by pipeline_id and the calibration
    fitted on the old one both see it."""
    config = MODES["fast"]
    data = json.loads(resources.files("facecmp.centres").joinpath("fast.json").read_text())
    data["centres"][0][0] += 0.01
    # A configuration named "fast" must be MODES' own, so the two candidates differ only by centres.
    same = dataclasses.replace(config, mode="fast-candidate")
    changed = dataclasses.replace(same, centres_sha256=hashlib.sha256(json.dumps(data).encode()).hexdigest())
    assert fast_comparer.pipeline_id("fast") == fast_comparer.pipeline_id(config)
    assert fast_comparer.pipeline_id(changed) != fast_comparer.pipeline_id(same)
    with pytest.raises(CalibrationError, match="fitted for pipeline"):
        load_calibration("fast", changed.fingerprint())


def test_pipeline_embeddings_are_centred_with_the_mode_centres(fast_comparer, celebrity_photos):
    photos = celebrity_photos["madonna"][:2]
    # fast's pipeline uncentred, as a candidate configuration: the embeddings before centring
    fast = MODES["fast"]
    uncentred = dataclasses.replace(fast, mode="fast-uncentred", centres_sha256=None,
                                    embedders=tuple(dataclasses.replace(e, centred=False) for e in fast.embedders))
    raw = np.stack([rep.embedding for rep in fast_comparer.represent_batch(photos, mode=uncentred)])
    centre = load_centres(fast)[0]
    expected = (raw - centre) / np.linalg.norm(raw - centre, axis=1, keepdims=True)
    got = np.stack([rep.embedding for rep in fast_comparer.represent_batch(photos, mode="fast")])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got - raw).max() > 1e-2  # the centre really moves them


def test_score_meaning_names_the_promised_rate_within_its_rounding():
    import re

    from facecmp.calibration import PROMISE_FLOOR, score_meaning

    for score in np.linspace(PROMISE_FLOOR, 1.0, 51):
        one_in = float(re.search(r"1 in ([\d,]+) different", score_meaning(score)).group(1).replace(",", ""))
        assert abs(one_in * fmr_promised(score) - 1.0) <= 0.05, score   # two significant digits
    assert "no false-match promise" in score_meaning(PROMISE_FLOOR - 0.01)
