"""Faces that are not the subject: how often MTCNN (probability >= 0.90) finds a "face" in
photos without people, and what the liveness rule for background faces does on full frames.

    .venv/bin/python eval/liveness_frames.py [--shared ../shared] [--frames 40]

1. Face-free photos: scikit-learn's two sample photos (china.jpg, a temple; flower.jpg), each at
   1x, 2x and 3x (640 to 1920 px wide), turned by 0/90/180/270 degrees, mirrored or not (48
   images), through the compare's detection and the liveness check's (precise) detection.
2. Composite 1920x1080 webcam frames: a subject (a sample photo scaled to a face of 450-550 px)
   with 1-3 people far behind it (other sample photos scaled to faces of 40-200 px) at seeded
   random places. TOO_MANY_FACES is counted with the rule (a face narrower than
   ``min_face_width_px`` does not count) and without it (every face counts, as before).
3. The four Minivision full frames of ../shared/data/liveness-dev/samples, when present.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image
from tqdm import tqdm

from eval.devdata import shared_root
from facecmp.decode import load_image
from facecmp.liveness import LivenessChecker
from facecmp.samples import photos_by_person


def face_free_photos() -> dict[str, np.ndarray]:
    photos = {}
    for name in ("china.jpg", "flower.jpg"):
        base = Image.fromarray(load_sample_image(name))
        for factor in (1, 2, 3):
            scaled = base.resize((base.width * factor, base.height * factor), Image.BICUBIC)
            for angle in (0, 90, 180, 270):
                turned = scaled.rotate(angle, expand=True)
                for mirrored in (False, True):
                    image = turned.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirrored else turned
                    photos[f"{name} x{factor} {angle}{' mirrored' if mirrored else ''}"] = np.asarray(image)
    return photos


def count_false_faces(checker: LivenessChecker) -> None:
    photos = face_free_photos()
    found = {"compare": [], "liveness (precise)": []}
    for name, image in tqdm(photos.items(), desc="face-free photos"):
        found["compare"] += [(name, f) for f in checker.detector.detect(image)]
        found["liveness (precise)"] += [(name, f) for f in checker.detect(image)]
    for path, faces in found.items():
        images = len({name for name, _ in faces})
        print(f"{path}: {len(faces)} false faces in {images} of {len(photos)} face-free photos")
        for name, face in faces:
            print(f"    {name}: {face.width:.0f} px wide, p={face.probability:.3f}")


def _scaled(photo: Path, checker: LivenessChecker, face_width: float) -> np.ndarray | None:
    image = np.asarray(Image.open(photo).convert("RGB"))
    faces = checker.detect(image)
    if len(faces) != 1:
        return None
    factor = face_width / faces[0].width
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))


def _paste(frame: np.ndarray, photo: np.ndarray, left: int, top: int) -> None:
    h, w = photo.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, frame.shape[1]), min(top + h, frame.shape[0])
    frame[y0:y1, x0:x1] = photo[y0 - top:y1 - top, x0 - left:x1 - left]


def composite_frames(checker: LivenessChecker, n_frames: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    people = photos_by_person("train")
    subjects = [p for paths in people.values() for p in paths]
    behind = [p for paths in photos_by_person("val").values() for p in paths]
    limit = checker.settings.liveness.min_face_width_px
    counts = {"frames": 0, "with rule": 0, "without rule": 0, "bystanders found": 0, "bystanders placed": 0,
              "bystanders >= limit": 0}
    for _ in tqdm(range(n_frames), desc="composite frames"):
        frame = np.full((1080, 1920, 3), rng.integers(60, 200, 3), np.uint8)
        placed = 0
        for _ in range(int(rng.integers(1, 4))):  # people behind, placed first (the subject covers them)
            photo = _scaled(behind[rng.integers(len(behind))], checker, float(rng.uniform(40, 200)))
            if photo is None:
                continue
            _paste(frame, photo, int(rng.integers(0, 1920 - photo.shape[1] // 2)), int(rng.integers(0, 500)))
            placed += 1
        subject = _scaled(subjects[rng.integers(len(subjects))], checker, float(rng.uniform(450, 550)))
        if subject is None:
            continue
        _paste(frame, subject, (1920 - subject.shape[1]) // 2, 1080 - subject.shape[0] + subject.shape[0] // 8)
        faces = checker.detect(frame)
        code, _, _ = checker.check_requirements(frame, faces)
        counts["frames"] += 1
        counts["bystanders placed"] += placed
        counts["bystanders found"] += max(0, len(faces) - 1)
        counts["bystanders >= limit"] += sum(f.width >= limit for f in faces[1:])
        counts["with rule"] += code == "TOO_MANY_FACES"
        counts["without rule"] += len(faces) > 1
    print(f"composite 1920x1080 frames: {counts['frames']}; people behind the subject placed "
          f"{counts['bystanders placed']}, detected {counts['bystanders found']} "
          f"({counts['bystanders >= limit']} of them >= {limit:.0f} px wide)")
    print(f"    TOO_MANY_FACES without the rule (every face counts): {counts['without rule']} frames; "
          f"with it: {counts['with rule']} frames")


def minivision_frames(checker: LivenessChecker, shared: Path) -> None:
    samples = shared / "data" / "liveness-dev" / "samples"
    for path in sorted(samples.glob("*/*.jpg")):
        image = load_image(path)
        faces = checker.detect(image)
        code, checks, _ = checker.check_requirements(image, faces)
        print(f"{path.parent.name}/{path.name} {image.shape[1]}x{image.shape[0]}: faces "
              f"{[round(f.width) for f in faces]}, counted {checks['face_count']['value']:.0f}, "
              f"requirements: {code or 'all passed'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=shared_root())
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args(argv)
    checker = LivenessChecker()
    count_false_faces(checker)
    composite_frames(checker, args.frames)
    if (args.shared / "data" / "liveness-dev" / "samples").is_dir():
        minivision_frames(checker, args.shared)


if __name__ == "__main__":
    main()
