"""Liveness: requirement checks on images built from real photos (the 5-celebrity sample photos,
no weights needed), MiniFASNet on real samples, weights verification and installation. The
model, its weights and LFW-specific pose checks need ../shared; those tests skip with the
reason when it is absent."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facecmp.decode import load_image
from facecmp.display import liveness_text
from facecmp.errors import LIVENESS_CODES, LivenessError, WeightsError
from facecmp.liveness import CHECKS, NOT_REPORTED_CODES, LivenessChecker, LivenessSettings, estimate_pose
from facecmp.liveness.checks import markdown_table
from facecmp.liveness.crop import context_crop, enlarged_box, resize_bilinear
from facecmp.liveness.model import build_minifasnet
from facecmp.settings import FacecmpSettings
from eval.devdata import shared_root
from facecmp.liveness.model import load_minifasnet
from facecmp.weights.registry import MINIFASNET
from facecmp.weights.store import fetch, installed

REPO = Path(__file__).resolve().parents[1]
SHARED = shared_root()
needs_shared = pytest.mark.skipif(
    not (SHARED / "models" / "minifasnet").is_dir(),
    reason=f"shared data not found at {SHARED} (set FACECMP_SHARED_DIR): LFW, liveness samples and "
           "MiniFASNet weights are needed",
)
WEIGHTS = SHARED / "models" / "minifasnet"
SAMPLES = SHARED / "data" / "liveness-dev" / "samples"
LFW = SHARED / "data" / "lfw" / "images"
# Photos of the 5-celebrity sample set (train split), by person and file-name prefix.
FRONTAL = ("elton_john", "httpiamediaimdbcomimagesMMVBMTAxNDUMzUwOTdeQTJeQWpwZBbWUMDUOTAyNTIVUXCRALjpg")
SECOND_FACE = ("madonna", "httpresizeparismatch")
TURNED = ("ben_afflek", "httpssmediacacheakpinimgcomxedaed")  # looking to the side, yaw about -60
GREY = 128


# ---------------------------------------------------------------- fixtures and image builders
# ``detector`` is conftest's: the run's one default detector.

def with_limits(**limits) -> FacecmpSettings:
    return FacecmpSettings(liveness=LivenessSettings(**limits))


@pytest.fixture(scope="module")
def checker(detector):
    return LivenessChecker(with_limits(weights_dir=WEIGHTS), detector=detector)


@pytest.fixture(scope="module")
def rules(detector):
    """For the requirement checks alone, which need no weights."""
    return LivenessChecker(detector=detector)


def sample(which: tuple[str, str], factor: float = 1.0) -> np.ndarray:
    from facecmp.samples import photos_by_person

    person, prefix = which
    path = next(p for p in photos_by_person("train")[person] if p.name.startswith(prefix))
    image = Image.open(path).convert("RGB")
    if factor != 1.0:
        image = image.resize((round(image.width * factor), round(image.height * factor)), Image.BICUBIC)
    return np.asarray(image)


def lfw(relative: str) -> np.ndarray:
    return np.asarray(Image.open(LFW / relative).convert("RGB"))


def canvas(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def paste(target: np.ndarray, photo: np.ndarray, left: int, top: int) -> np.ndarray:
    """Copy ``photo`` onto ``target`` at (left, top), clipping whatever falls outside it."""
    out = target.copy()
    h, w = photo.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + w, out.shape[1]), min(top + h, out.shape[0])
    out[y0:y1, x0:x1] = photo[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


@pytest.fixture(scope="module")
def big_face(detector):
    """A frontal sample photo at 2.4x (514x761, face about 220 px wide) and its face box."""
    photo = sample(FRONTAL, 2.4)
    faces = detector.detect_for_liveness(photo)
    assert len(faces) == 1
    return photo, faces[0].box




# ---------------------------------------------------------------- requirement checks (no weights)

def test_centred_large_face_passes_every_requirement(rules, big_face):
    photo, _ = big_face
    code, checks, pose = rules.check_requirements(paste(canvas(1000, 1000), photo, 250, 120))
    assert code is None and all(c["passed"] for c in checks.values()), checks
    assert set(checks) == {"face_count", "face_fraction", "face_inside_image", "border_distance", "face_width",
                           "interpupillary_distance", "yaw", "pitch", "roll"}
    assert checks["face_count"]["value"] == 1 and 150 < checks["face_width"]["value"] < 300
    assert abs(pose["yaw"]) < 10 and abs(pose["pitch"]) < 10 and abs(pose["roll"]) < 5


@needs_shared
def test_centred_large_web_photo_is_judged_by_the_model_as_a_recapture(checker, big_face):
    # Every requirement passes, so the model decides: an upscaled web photo pasted on grey
    # is a recapture to MiniFASNet (score 0.29).
    photo, _ = big_face
    result = checker.check(paste(canvas(1000, 1000), photo, 250, 120))
    assert all(c["passed"] for name, c in result.checks.items() if name != "liveness_score")
    assert result.checks["liveness_score"] == {"value": pytest.approx(0.2896, abs=0.02),
                                               "limit": checker.settings.liveness.threshold, "passed": False}
    assert result.code == "FACE_NOT_LIVE" and result.live is False


def test_no_face_in_a_real_photo_without_people(rules):
    from sklearn.datasets import load_sample_image

    code, checks, pose = rules.check_requirements(load_sample_image("china.jpg"))  # a temple, no people
    assert code == "FACE_NOT_FOUND"
    assert checks == {"face_count": {"value": 0.0, "limit": 1.0, "passed": False}} and pose == {}


def test_two_faces_side_by_side(rules):
    image = paste(canvas(1300, 800), sample(FRONTAL, 2.4), 40, 20)
    image = paste(image, sample(SECOND_FACE, 1.6), 800, 100)  # faces of about 220 px each
    code, checks, _ = rules.check_requirements(image)
    assert code == "TOO_MANY_FACES"
    assert checks["face_count"] == {"value": 2.0, "limit": 1.0, "passed": False}


def test_small_faces_behind_the_subject_do_not_count(rules, big_face):
    # A subject of about 220 px and two people far behind it (faces of about 55 and 80 px).
    photo, _ = big_face
    image = paste(canvas(1600, 1000), photo, 500, 120)
    image = paste(image, sample(SECOND_FACE, 0.4), 40, 40)
    image = paste(image, sample(("jerry_seinfeld", "httpimgthedrumcom"), 1.0), 1250, 60)
    faces = rules.detect(image)
    assert len(faces) == 3 and sorted(round(f.width) for f in faces[1:]) == [pytest.approx(55, abs=12),
                                                                             pytest.approx(82, abs=12)]
    code, checks, _ = rules.check_requirements(image, faces)
    assert checks["face_count"] == {"value": 1.0, "limit": 1.0, "passed": True}
    assert code is None, checks
    # The same bystander at the subject's size counts: two people who could each be the subject.
    near = paste(image, sample(SECOND_FACE, 1.6), 1050, 200)
    assert rules.check_requirements(near).code == "TOO_MANY_FACES"


def test_small_face(rules):
    code, checks, _ = rules.check_requirements(paste(canvas(700, 700), sample(FRONTAL), 225, 200))
    assert code == "FACE_TOO_SMALL"
    width = checks["face_width"]
    assert not width["passed"] and 60 < width["value"] < 150 and width["limit"] == 150


def test_small_interpupillary_distance_alone_is_too_small(detector, big_face):
    photo, _ = big_face
    strict = LivenessChecker(with_limits(min_interpupillary_px=150), detector=detector)
    code, checks, _ = strict.check_requirements(paste(canvas(1000, 1000), photo, 250, 120))
    assert checks["face_width"]["passed"]
    assert not checks["interpupillary_distance"]["passed"]
    assert 50 < checks["interpupillary_distance"]["value"] < 150
    assert code == "FACE_TOO_SMALL"


def test_face_near_the_border(rules, big_face):
    photo, box = big_face
    # Face box about 20 px from the left edge of the photo's placement; MTCNN's box for a face
    # this near an edge comes out a little wider, 12 px from the edge.
    left = 20 - round(box[0])
    code, checks, _ = rules.check_requirements(paste(canvas(1000, 1000), photo, left, 120))
    assert code == "FACE_CLOSE_TO_BORDER", checks
    border = checks["border_distance"]
    assert 0 <= border["value"] < 15 and border["limit"] == 15
    assert checks["face_inside_image"]["passed"]


def test_face_cut_off_by_the_border(rules, big_face):
    photo, box = big_face
    left = -round(box[0]) - 50  # 50 px of the face box fall off the left edge
    code, checks, _ = rules.check_requirements(paste(canvas(1000, 1000), photo, left, 120))
    assert code == "FACE_CROPPED", checks
    assert checks["face_inside_image"]["value"] > 0


def test_face_filling_the_frame(rules, big_face):
    photo, box = big_face
    x1, y1, x2, y2 = (round(v) for v in box)
    tight = np.ascontiguousarray(photo[max(y1 - 10, 0):y2 + 10, max(x1 - 10, 0):x2 + 10])
    code, checks, _ = rules.check_requirements(tight)
    assert code == "FACE_TOO_CLOSE", checks
    assert checks["face_fraction"]["value"] > 0.8


def test_rotated_face_is_an_angle_failure_with_the_right_roll(rules, big_face):
    photo, _ = big_face
    upright = paste(canvas(1100, 1100), photo, 290, 170)
    roll_upright = estimate_pose(rules.detect(upright)[0].landmarks)[2]
    # PIL rotates counter-clockwise for positive angles: the face's roll becomes -45 (image y down).
    tilted = np.asarray(Image.fromarray(upright).rotate(45, resample=Image.BICUBIC, fillcolor=(GREY,) * 3))
    code, checks, pose = rules.check_requirements(tilted)
    assert code == "FACE_ANGLE_TOO_LARGE", checks
    # The roll formula is exact for given landmarks; MTCNN's landmarks on rotated faces are off
    # by up to ~9 degrees (measured on two LFW faces rotated by 10-50 degrees).
    assert pose["roll"] == pytest.approx(roll_upright - 45, abs=10)
    assert not checks["roll"]["passed"] and checks["yaw"]["passed"]


def test_turned_face_is_an_angle_failure_and_mirrors(rules):
    image = paste(canvas(900, 900), sample(TURNED, 2.0), 200, 100)
    code, checks, pose = rules.check_requirements(image)
    assert code == "FACE_ANGLE_TOO_LARGE", checks
    assert pose["yaw"] < -30 and not checks["yaw"]["passed"]
    _, _, mirrored = rules.check_requirements(np.ascontiguousarray(image[:, ::-1]))
    # MTCNN's landmarks are not exactly mirror-symmetric (yaw 2.5, pitch 4 degrees apart here).
    assert mirrored["yaw"] == pytest.approx(-pose["yaw"], abs=5)
    assert mirrored["pitch"] == pytest.approx(pose["pitch"], abs=8)
    assert mirrored["roll"] == pytest.approx(-pose["roll"], abs=3)


@needs_shared
def test_pose_of_real_frontal_and_raised_faces(detector):
    yaw, pitch, roll = estimate_pose(detector.detect_for_liveness(lfw("Tim_Allen/Tim_Allen_0002.jpg"))[0].landmarks)
    assert abs(yaw) < 10 and abs(pitch) < 10 and abs(roll) < 5
    # A volleyball player looking straight up at the ball.
    tilted = detector.detect_for_liveness(lfw("Tatiana_Gratcheva/Tatiana_Gratcheva_0001.jpg"))
    _, pitch_up, _ = estimate_pose(tilted[0].landmarks)
    assert pitch_up > 30


# ---------------------------------------------------------------- the model on real samples

@needs_shared
@pytest.mark.parametrize("name, expected", [
    ("live/image_T1.jpg", 0.9999), ("live/image_T2.jpg", 0.8772),
    ("spoof/image_F1.jpg", 0.2110), ("spoof/image_F2.jpg", 0.0018),
])
def test_model_scores_of_the_samples(checker, name, expected):
    image = load_image(SAMPLES / name)
    assert checker.score(image, checker.detect(image)[0]) == pytest.approx(expected, abs=2e-3)


@needs_shared
@pytest.mark.parametrize("name, live", [("live/image_T1.jpg", True), ("live/image_T2.jpg", True),
                                        ("spoof/image_F2.jpg", False)])
def test_samples_verdicts(checker, name, live):
    result = checker.check(load_image(SAMPLES / name))
    assert result.live is live
    assert result.code == (None if live else "FACE_NOT_LIVE")
    assert (result.score >= checker.settings.liveness.threshold) is live
    assert set(result.timings_ms) >= {"requirements", "model", "total"}
    if live:
        result.raise_for_failure()  # does not raise
    else:
        with pytest.raises(LivenessError) as info:
            result.raise_for_failure()
        meta = info.value.metadata
        assert info.value.liveness_code == "FACE_NOT_LIVE" and meta["code"] == "FACE_NOT_LIVE"
        assert meta["value"] == pytest.approx(result.score, abs=1e-4) and meta["limit"] == checker.settings.liveness.threshold
        assert meta["score"] == result.score


@needs_shared
def test_one_threshold_decides_and_a_call_may_set_it(checker):
    image = load_image(SAMPLES / "live" / "image_T2.jpg")  # scores 0.877
    default, strict = checker.check(image), checker.check(image, threshold=0.9)
    assert default.live and default.threshold == checker.settings.liveness.threshold
    assert "detect" in default.timings_ms  # the checker found the face itself
    assert not strict.live and strict.code == "FACE_NOT_LIVE" and strict.score == default.score
    assert strict.checks["liveness_score"] == {"value": pytest.approx(0.8772, abs=2e-3), "limit": 0.9, "passed": False}
    assert strict.message == LIVENESS_CODES["FACE_NOT_LIVE"] and strict.threshold == 0.9


@needs_shared
def test_requirement_failure_raises_with_value_and_limit(checker):
    result = checker.check(paste(canvas(700, 700), sample(FRONTAL), 225, 200))
    with pytest.raises(LivenessError) as info:
        result.raise_for_failure()
    assert info.value.metadata["code"] == "FACE_TOO_SMALL"
    assert info.value.metadata["limit"] == 150 and info.value.metadata["value"] < 150
    assert info.value.metadata["score"] is None
    json.dumps(result.to_dict())  # serialisable as it is
    report = liveness_text(result)
    assert "FACE_TOO_SMALL" in report and "[FAIL] face_width" in report


def test_crop_is_the_reference_box_resized_like_opencv(detector, big_face):
    cv2 = pytest.importorskip("cv2")
    photo, _ = big_face
    image = paste(canvas(1300, 900), photo, 390, 160)
    box = detector.detect_for_liveness(image)[0].box
    x, y = int(box[0]), int(box[1])
    w, h = int(box[2] - box[0] + 1), int(box[3] - box[1] + 1)
    # Enlarged by 2.7 about the centre, far from every edge: nothing is clipped or shifted.
    left, top = int(x + w / 2 - w * 2.7 / 2), int(y + h / 2 - h * 2.7 / 2)
    right, bottom = int(x + w / 2 + w * 2.7 / 2), int(y + h / 2 + h * 2.7 / 2)
    assert 0 < left and 0 < top and right < image.shape[1] - 1 and bottom < image.shape[0] - 1
    assert enlarged_box(image.shape[1], image.shape[0], (x, y, w, h), 2.7) == (left, top, right, bottom)
    expected = cv2.resize(image[top:bottom + 1, left:right + 1], (80, 80))
    assert np.array_equal(context_crop(image, box, 2.7), expected)
    # At 4.0 the box no longer fits vertically: scale shrinks to (H - 1) / h and it spans the height.
    left4, top4, right4, bottom4 = enlarged_box(image.shape[1], image.shape[0], (x, y, w, h), 4.0)
    assert top4 == 0 and bottom4 == image.shape[0] - 1 and 0 <= left4 < right4 <= image.shape[1] - 1


def test_resize_matches_opencv_when_downscaling():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for height, width in ((480, 640), (333, 251), (81, 79)):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        assert np.array_equal(resize_bilinear(image, 80, 80), cv2.resize(image, (80, 80)))
    small = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert np.abs(resize_bilinear(small, 80, 80).astype(int) - cv2.resize(small, (80, 80))).max() <= 1


# ---------------------------------------------------------------- weights

@needs_shared
@pytest.mark.parametrize("spec", MINIFASNET, ids=lambda s: s.model.arch)
def test_architecture_matches_checkpoint_exactly(spec):
    state = torch.load(WEIGHTS / spec.source.filename, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    ours = build_minifasnet(spec.model.arch).state_dict()
    assert sorted(ours) == sorted(state)
    assert all(ours[k].shape == state[k].shape for k in state)
    model = load_minifasnet(spec.name, WEIGHTS)
    assert not model.training
    assert torch.equal(model.prob.weight, state["prob.weight"])


@needs_shared
def test_corrupted_weights_fail_their_checksum(tmp_path, detector):
    for spec in MINIFASNET:
        shutil.copyfile(WEIGHTS / spec.source.filename, tmp_path / spec.source.filename)
    damaged = tmp_path / MINIFASNET[0].source.filename
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    image = load_image(SAMPLES / "live" / "image_T1.jpg")
    with pytest.raises(WeightsError, match="sha256"):
        LivenessChecker(with_limits(weights_dir=tmp_path), detector=detector).check(image)
    target = tmp_path / "installed"
    with pytest.raises(WeightsError, match="sha256"):
        fetch(MINIFASNET[0].name, tmp_path, directory=target)
    assert not any(target.glob("*.pth"))


@needs_shared
def test_fetch_from_a_local_directory(tmp_path):
    target = tmp_path / "w"
    assert not any(installed(spec.name, target) for spec in MINIFASNET)
    for spec in MINIFASNET:
        assert fetch(spec.name, WEIGHTS, directory=target) == target / spec.source.filename
    assert sorted(p.name for p in target.iterdir()) == sorted(s.source.filename for s in MINIFASNET)
    for spec in MINIFASNET:
        load_minifasnet(spec.name, target)  # verified on load as well


def test_fetch_from_a_missing_directory_names_the_file(tmp_path):
    tmp_path.joinpath("nowhere").mkdir()
    with pytest.raises(WeightsError, match=MINIFASNET[0].source.filename):
        fetch(MINIFASNET[0].name, tmp_path / "nowhere", directory=tmp_path / "w")


def test_empty_weights_dir_is_a_license_error(tmp_path):
    # No model runs, so the image content does not matter: the weights are looked for first.
    frame = np.full((480, 640, 3), GREY, dtype=np.uint8)
    checker = LivenessChecker(with_limits(weights_dir=tmp_path))
    with pytest.raises(LivenessError) as info:
        checker.check(frame, [])
    assert info.value.liveness_code == "LICENSE_ERROR"
    assert "facecmp weights fetch minifasnet --from DIR" in info.value.message
    assert "FACECMP_LIVENESS_WEIGHTS_DIR" in info.value.message


# ---------------------------------------------------------------- settings and pose maths

def test_settings_from_env_and_validation(tmp_path, monkeypatch):
    default = LivenessSettings()
    monkeypatch.setenv("FACECMP_LIVENESS_THRESHOLD", "0.8")
    monkeypatch.setenv("FACECMP_LIVENESS_MIN_FACE_WIDTH_PX", "200")
    monkeypatch.setenv("FACECMP_LIVENESS_WEIGHTS_DIR", str(tmp_path))
    settings = LivenessSettings()
    assert settings.threshold == 0.8 and settings.min_face_width_px == 200 and settings.weights_dir == tmp_path
    assert settings != default and default.threshold == 0.45
    monkeypatch.setenv("FACECMP_LIVENESS_THRESHOLD", "high")
    with pytest.raises(ValueError, match="threshold"):
        LivenessSettings()
    monkeypatch.delenv("FACECMP_LIVENESS_THRESHOLD")
    with pytest.raises(ValueError):
        LivenessSettings(threshold=1.5)


def test_pose_roll_is_exact_for_in_plane_rotation():
    points = np.array([[100, 100], [160, 100], [130, 133], [108, 165], [152, 165]], dtype=float)
    yaw0, pitch0, roll0 = estimate_pose(points)
    angle = np.radians(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    yaw, pitch, roll = estimate_pose(points @ rotation.T)
    assert roll == pytest.approx(roll0 + 25, abs=1e-6)
    assert (yaw, pitch) == pytest.approx((yaw0, pitch0), abs=1e-6)
    shifted = points.copy()
    shifted[2, 0] += 12  # nose towards the image right: positive yaw
    assert estimate_pose(shifted)[0] > 15


def test_every_api_code_is_reported_by_a_check_or_said_not_to_be():
    reported = {code for check in CHECKS for code in check.codes}
    assert reported <= set(LIVENESS_CODES)
    assert set(LIVENESS_CODES) == reported | {"LICENSE_ERROR", "UNKNOWN_ERROR"} | set(NOT_REPORTED_CODES)
    assert NOT_REPORTED_CODES == ("EYES_CLOSED", "FACE_IS_OCCLUDED")  # what docs/liveness.md says is never reported


def test_the_docs_table_is_the_table_of_checks(monkeypatch):
    monkeypatch.setenv("FACECMP_LIVENESS_MIN_FACE_WIDTH_PX", "40")  # the docs give the defaults, whatever the environment
    docs = (REPO / "docs" / "liveness.md").read_text()
    assert "\n".join("   " + line for line in markdown_table().splitlines()) in docs


@needs_shared
def test_checking_liveness_leaves_the_compare_as_it_is(fast_comparer, detector, checker):
    """The probe's face for recognition is the same detection with liveness on or off (the one
    the calibration was fitted on); the liveness check gets its own, finest-pass detection. On the
    live sample T2 (1617x2160) the two detections' boxes differ, so a compare that used the
    liveness one would score differently."""
    from facecmp import FaceComparer
    from facecmp.samples import photos_by_person

    comparer = FaceComparer("fast", detector=fast_comparer.detector,
                            settings=FacecmpSettings(liveness=LivenessSettings(weights_dir=WEIGHTS)))
    probe = load_image(SAMPLES / "live" / "image_T2.jpg")
    assert detector.detect(probe)[0].box != detector.detect_for_liveness(probe)[0].box
    for reference in (SAMPLES / "live" / "image_T1.jpg", photos_by_person("val")["elton_john"][0]):
        plain = comparer.compare(probe, reference)
        checked = comparer.compare(probe, reference, check_liveness=True)
        assert checked.liveness.live and plain.liveness is None
        assert (checked.cosine, checked.similarity, checked.score) == (plain.cosine, plain.similarity, plain.score)
        assert checked.faces[0].face.box == plain.faces[0].face.box
        assert checked.liveness.score == checker.check(probe).score
