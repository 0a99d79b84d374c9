"""The pipeline end to end on real photos: decisions, errors, batching, the result's contents."""
from __future__ import annotations

import base64
import itertools
import warnings

import numpy as np
import pytest
from PIL import Image

from facecmp import FaceNotDetectedError, ImageDecodeError
from facecmp.centres import load_centres


def test_same_person_matches_and_different_people_do_not(fast_comparer, celebrity_photos):
    people = sorted(celebrity_photos)
    same = [fast_comparer.compare(*celebrity_photos[p][:2]) for p in people]
    different = [fast_comparer.compare(celebrity_photos[a][0], celebrity_photos[b][0])
                 for a, b in itertools.combinations(people, 2)]
    assert min(r.score for r in same) > max(r.score for r in different)
    assert sum(r.is_match for r in same) >= 4
    assert not any(r.is_match for r in different)
    assert all(0.0 <= r.score <= 1.0 for r in same + different)


def test_result_carries_faces_versions_and_timings(fast_comparer, celebrity_photos):
    a, b = celebrity_photos["elton_john"][:2]
    result = fast_comparer.compare(a, b, min_similarity_score=0.5)
    assert result.min_similarity_score == 0.5 and result.is_match == (result.score >= 0.5)
    assert result.mode == "fast" and result.weights == fast_comparer.weights_versions("fast")
    assert result.calibration == fast_comparer.calibration("fast").id
    for report, path in zip(result.faces, (a, b)):
        width, height = Image.open(path).size
        assert report.image_size == (width, height) and report.face_count >= 1
        x1, y1, x2, y2 = report.face.box
        assert 0 <= x1 < x2 <= width + 5 and 0 <= y1 < y2 <= height + 5
        assert report.face.landmarks.shape == (5, 2) and 0.9 <= report.face.probability <= 1
    assert {"decode", "detect", "crop", "embed", "score", "total"} <= set(result.timings_ms)
    assert result.to_dict()["faces"][0]["face_count"] == result.faces[0].face_count


def test_identical_image_scores_near_one(fast_comparer, celebrity_photos):
    photo = celebrity_photos["madonna"][0]
    result = fast_comparer.compare(photo, photo.read_bytes())
    assert result.cosine > 0.999 and result.score > 0.95


def test_inputs_in_every_form_give_the_same_score(fast_comparer, celebrity_photos):
    a, b = celebrity_photos["jerry_seinfeld"][:2]
    reference = fast_comparer.compare(a, b).score
    image = Image.open(a)
    for source in (str(a), a.read_bytes(), base64.b64encode(a.read_bytes()).decode(),
                   "data:image/jpeg;base64," + base64.b64encode(a.read_bytes()).decode(), image, np.asarray(image)):
        assert fast_comparer.compare(source, b).score == pytest.approx(reference, abs=1e-5)


def test_no_face_raises_face_not_detected(fast_comparer, celebrity_photos):
    blank = np.full((240, 320, 3), 127, np.uint8)
    with pytest.raises(FaceNotDetectedError) as info:
        fast_comparer.compare(celebrity_photos["madonna"][0], blank)
    assert info.value.code == "ERR_FACE_NOT_DETECTED" and info.value.metadata == {"image": "reference"}


def test_undecodable_input_raises_decode_error(fast_comparer, celebrity_photos):
    with pytest.raises(ImageDecodeError):
        fast_comparer.compare("bm90IGFuIGltYWdl", celebrity_photos["madonna"][0])


def test_a_pair_scores_the_same_on_every_path_and_in_any_company(fast_comparer, celebrity_photos):
    """Issue 25: a face's embedding does not depend on the path that computes it (compare,
    represent, represent_batch) nor on the order or company of its batch, so neither do a pair's
    score, cosine and within_calibration. Checked on the compute this machine runs by default:
    the case the issue is about, bfloat16 (whose kernels change with the batch's shape), runs
    only where the CPU computes it natively; elsewhere the test says so (a warning)."""
    photos = [p for person in sorted(celebrity_photos) for p in celebrity_photos[person][:4]]
    alone = [fast_comparer.represent(photo) for photo in photos]
    together = fast_comparer.represent_batch(photos)  # 20 faces: bf16 kernels differ from 16 up (measured)
    backward = fast_comparer.represent_batch(photos[::-1])[::-1]
    mixed = {}
    for group in np.array_split(np.random.default_rng(0).permutation(len(photos)), 6):
        results = fast_comparer.represent_batch([b"not an image", *(photos[i] for i in group)])
        assert isinstance(results[0], ImageDecodeError)  # a failure keeps its place, the others their faces
        mixed.update(zip(group.tolist(), results[1:]))
    for single, *others in zip(alone, together, backward, [mixed[i] for i in range(len(photos))]):
        for other in others:
            np.testing.assert_array_equal(other.embedding, single.embedding)
            assert other.face.to_dict() == single.face.to_dict() and other.trust == single.trust
    calibration = fast_comparer.calibration()
    embeddings = np.stack([rep.embedding for rep in together])
    stats, widths = calibration.face_stats(embeddings), np.array([rep.face.width for rep in together])
    scores = fast_comparer.score_embeddings(embeddings, embeddings)
    outside = calibration.outside(stats.column(), widths[:, None], stats, widths)
    for i, j in [(0, 1), (0, 4), (2, 3), (5, 17), (9, 12), (19, 6), (14, 15)]:
        result = fast_comparer.compare(photos[i], photos[j])
        # The same embeddings; only the order of float sums differs (cohort cosines of 2 faces vs 20).
        assert abs(result.score - scores[i, j]) < 1e-5 and abs(result.cosine - embeddings[i] @ embeddings[j]) < 1e-6
        assert result.within_calibration == (not outside[i, j])
    if fast_comparer.compute.precision != "bf16":
        warnings.warn(f"checked on {fast_comparer.compute.backend} {fast_comparer.compute.precision}: this CPU "
                      "has no native bfloat16, the compute whose batch dependence issue 25 is about", stacklevel=1)


def test_large_photo_is_detected_downscaled_but_cropped_from_the_original(fast_comparer, celebrity_photos):
    photo = Image.open(celebrity_photos["mindy_kaling"][0]).convert("RGB")
    big = photo.resize((photo.width * 6, photo.height * 6), Image.BICUBIC)
    small_result = fast_comparer.represent(photo)
    big_result = fast_comparer.represent(big)
    # Boxes come back in original-image pixels: equal up to detector jitter (5% of the face width),
    # far from the factor-of-2 error a box left in the downscaled frame would show.
    assert np.allclose(np.array(big_result.face.box) / 6, small_result.face.box, atol=0.05 * small_result.face.width)
    assert float(big_result.embedding @ small_result.embedding) > 0.9


def test_most_prominent_face_is_used_and_faces_counted(fast_comparer, celebrity_photos):
    big = Image.open(celebrity_photos["madonna"][1]).convert("RGB")
    big = big.resize((big.width * 2, big.height * 2))
    small = Image.open(celebrity_photos["ben_afflek"][0]).convert("RGB")
    small = small.resize((small.width // 2, small.height // 2))
    canvas = Image.new("RGB", (big.width + small.width + 20, max(big.height, small.height)), "white")
    canvas.paste(big, (0, 0))
    canvas.paste(small, (big.width + 20, 0))
    rep = fast_comparer.represent(canvas)
    assert rep.face_count == 2 and rep.face.box[0] < big.width
    assert float(rep.embedding @ fast_comparer.represent(big).embedding) > 0.95


def test_accurate_mode_separates_people(accurate_comparer, celebrity_photos):
    same = accurate_comparer.compare(*celebrity_photos["madonna"][:2])
    other = accurate_comparer.compare(celebrity_photos["madonna"][0], celebrity_photos["elton_john"][0])
    assert same.mode == "accurate" and same.score > other.score and not other.is_match
    # msceleb-128 aligned and box crops, casia-webface box crop: fused into one vector
    assert accurate_comparer.represent(celebrity_photos["madonna"][0]).embedding.shape == (128 + 128 + 512,)


def _png(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_batch_with_thumbnails_banners_and_strips_answers_each_image(fast_comparer, celebrity_photos):
    """One image MTCNN could not search (an empty pyramid) used to abort the whole batch."""
    portrait = np.asarray(Image.open(celebrity_photos["madonna"][0]).convert("RGB"))
    banner = np.full((300, 3000, 3), 90, np.uint8)
    banner[10:290, 1500:1780] = np.asarray(Image.fromarray(portrait).resize((280, 280), Image.BICUBIC))
    images = [celebrity_photos["madonna"][1], _png(np.full((1, 1, 3), 200, np.uint8)), _png(banner),
              _png(np.full((16, 16, 3), 90, np.uint8)), _png(np.full((200, 2400, 3), 90, np.uint8)),
              _png(np.full((3000, 120, 3), 90, np.uint8))]
    results = fast_comparer.represent_batch(images)
    assert [type(r).__name__ for r in results] == ["FaceRepresentation", "FaceNotDetectedError", "FaceRepresentation",
                                                   "FaceNotDetectedError", "FaceNotDetectedError",
                                                   "FaceNotDetectedError"]
    assert results[2].image_size == (3000, 300) and 1500 <= results[2].face.box[0] < 1780
    # The banner's face is the portrait's person: it matches the same photo on its own.
    assert fast_comparer.compare(_png(banner), portrait).is_match
    with pytest.raises(FaceNotDetectedError) as info:
        fast_comparer.compare(_png(np.full((16, 16, 3), 90, np.uint8)), portrait)
    assert info.value.metadata == {"image": "probe"}


def test_a_candidate_configuration_embeds_through_the_pipeline_uncentred(fast_comparer, celebrity_photos):
    """training/select_pipeline.py embeds candidates (configurations outside MODES) with
    represent_batch: FAST's embedder, uncentred, then centred with FAST's centres, is FAST."""
    from dataclasses import replace

    from facecmp.embed import centre_embeddings
    from facecmp.errors import CalibrationError
    from facecmp.modes import MODES, PipelineConfig

    fast = MODES["fast"]
    candidate = PipelineConfig("candidate", (replace(fast.embedders[0], centred=False),), fast.flip)
    photos = celebrity_photos["madonna"][:3]
    parts = fast_comparer.represent_batch(photos, mode=candidate)
    assert all(part.trust == {} for part in parts)   # no calibration: no trust figures
    centred = centre_embeddings([np.stack([part.embedding for part in parts])], load_centres(MODES["fast"]))[0]
    shipped = np.stack([rep.embedding for rep in fast_comparer.represent_batch(photos, mode="fast")])
    np.testing.assert_allclose(centred, shipped, atol=1e-6)
    assert fast_comparer.pipeline_id(candidate).startswith("candidate-")
    assert fast_comparer.pipeline_id(candidate) != fast_comparer.pipeline_id("fast")
    with pytest.raises(CalibrationError, match="candidate"):
        fast_comparer.score_embeddings(centred, centred, mode=candidate)
    with pytest.raises(CalibrationError, match="centres"):
        fast_comparer.represent_batch(photos, mode=replace(candidate, embedders=fast.embedders))
    with pytest.raises(CalibrationError, match="own"):
        fast_comparer.represent_batch(photos, mode=replace(fast, flip=True))
