"""``FaceComparer``: the one pipeline shared by the library, CLI, eval suite, notebooks and service.

decode -> detect (MTCNN, most prominent face) -> crop -> embed (InceptionResnetV1, per mode)
-> cosine -> normalised similarity (cohort AS-norm, age shift: :mod:`facecmp.normalisation`)
-> calibrated score in [0, 1] -> ``is_match = score >= min_similarity_score`` (:func:`is_match`).
With ``check_liveness`` the probe is also judged by :mod:`facecmp.liveness`'s checker, which
detects it again its own way with the same detector; the score never depends on whether it was.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from facecmp import __version__
from facecmp.align import crop_face
from facecmp.backends import ComputeOptions
from facecmp.calibration import Calibration, FaceTrust, load_calibration, score_meaning
from facecmp.centres import load_centres
from facecmp.contract import DEFAULT_SCORE_CUTOFF
from facecmp.decode import ImageSource, load_image
from facecmp.detect import FaceDetector
from facecmp.display import FacePictures, Thumbnail, compare_html, face_html
from facecmp.embed import Embedder, centre_embeddings, fuse_embeddings
from facecmp.errors import CalibrationError, FacecmpError, FaceNotDetectedError
from facecmp.faces import Face
from facecmp.liveness import LivenessChecker, LivenessResult
from facecmp.modes import MODES, PipelineConfig, get_mode
from facecmp.settings import FacecmpSettings
from facecmp.weights.registry import get_spec


def is_match(score: float, min_similarity_score: float) -> bool:
    """The one match decision: a calibrated score at or above the cutoff."""
    return score >= min_similarity_score


@dataclass(frozen=True)
class FaceReport:
    """The face a comparison used, how many faces the image held, and the image size (w, h).

    trust : where the face falls relative to the calibration's faces: a
        :class:`~facecmp.calibration.FaceTrust`, whose fields say what each figure is (estimated
        age, cohort similarity, image quality, their percentiles, face width percentile); empty
        for a candidate pipeline, which has no calibration.
    """

    face: Face
    face_count: int
    image_size: tuple[int, int]
    trust: FaceTrust = field(default_factory=FaceTrust)

    def to_dict(self) -> dict:
        return {**self.face.to_dict(), "face_count": self.face_count, "image_size": list(self.image_size),
                "trust": self.trust.to_dict()}

    def _repr_html_(self) -> str:
        return face_html(self)


@dataclass(frozen=True)
class FaceRepresentation(FaceReport):
    """A face and its (D,) float32 unit-norm embedding."""

    embedding: np.ndarray = field(repr=False, default=None)


@dataclass(frozen=True)
class CompareResult:
    is_match: bool
    score: float              # calibrated, [0, 1]
    cosine: float             # raw cosine similarity, [-1, 1]
    similarity: float         # normalised similarity, what the score is a monotone map of
    min_similarity_score: float
    mode: str
    faces: tuple[FaceReport, FaceReport]
    weights: dict[str, str]
    calibration: str
    timings_ms: dict[str, float]
    # Why the score's false-match promise may not hold for this pair (empty: it was measured to).
    calibration_notes: tuple[str, ...] = ()
    liveness: LivenessResult | None = None   # when checked
    # The faces' pictures for the notebook card (_repr_html_), cut when it is first drawn: in memory
    # only, never in to_dict, repr or ==.
    pictures: FacePictures | None = field(default=None, repr=False, compare=False)

    @property
    def within_calibration(self) -> bool:
        return not self.calibration_notes

    @property
    def thumbnails(self) -> tuple[Thumbnail, ...]:
        """The faces' regions, scaled down (made on first use; empty without pictures)."""
        return () if self.pictures is None else self.pictures.thumbnails()

    @property
    def score_meaning(self) -> str:
        """The score in words ("about 1 in 1,000 different people score this high")."""
        return score_meaning(self.score)

    def _repr_html_(self) -> str:
        return compare_html(self)

    def to_dict(self) -> dict:
        return {
            "is_match": self.is_match, "score": round(self.score, 6), "cosine": round(self.cosine, 6),
            "similarity": round(self.similarity, 6), "score_meaning": self.score_meaning,
            "within_calibration": self.within_calibration,
            "calibration_notes": list(self.calibration_notes),
            "min_similarity_score": self.min_similarity_score, "mode": self.mode,
            "faces": [f.to_dict() for f in self.faces], "weights": self.weights,
            "calibration": self.calibration,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "liveness": self.liveness.to_dict() if self.liveness is not None else None,
        }


class FaceComparer:
    """Load once, compare many. Thread-safe for concurrent ``compare`` calls.

    Parameters
    ----------
    mode : a name of ``facecmp.modes.MODES`` (any case) | None
        Default pipeline mode (``None``: ``settings.mode``); every call may override it. The
        weights of the default mode load now; others on first use.
    settings : facecmp.settings.FacecmpSettings | None
        Everything else the pipeline reads, in one object (``None``: the environment's, read
        once here): default mode, embed backend and precision, the cache (weights, compiled
        models), image byte and pixel limits, and the liveness check. The service passes its own.
    device : str
        torch device of the embedders and detector.
    compute : facecmp.backends.ComputeOptions | None
        How the embedders run (default ``ComputeOptions.from_settings(settings)``: OpenVINO on a
        CPU, in bfloat16 where the CPU has it natively); ``ComputeOptions.reference()`` is
        PyTorch eager in float32, what the calibrations were fitted with.
    """

    def __init__(self, mode: str | None = None, *, settings: FacecmpSettings | None = None, device: str = "cpu",
                 detector: FaceDetector | None = None, compute: ComputeOptions | None = None):
        self.settings = settings or FacecmpSettings()
        self.mode = get_mode(mode or self.settings.mode).mode
        self.device = device
        self.compute = ComputeOptions.for_device(device, compute, self.settings)
        self.decode_limits = self.settings.decode_limits
        self._embedders: dict[str, Embedder] = {}
        self._calibrations: dict[str, Calibration] = {}
        self._centres: dict[str, tuple[np.ndarray | None, ...]] = {}
        self._lock = threading.Lock()
        self._prepare(self.mode)  # before the detector: missing weights are reported before it compiles
        self.detector = detector or FaceDetector(device=device, compute=self.compute, settings=self.settings)
        self.liveness_checker = LivenessChecker(self.settings, detector=self.detector)  # its models load on first use

    # -- public API -------------------------------------------------------------------------

    def load_image(self, source: ImageSource) -> np.ndarray:
        return load_image(source, self.decode_limits)

    def compare(self, image_a: ImageSource, image_b: ImageSource, *,
                min_similarity_score: float = DEFAULT_SCORE_CUTOFF, check_liveness: bool = False,
                mode: str | None = None) -> CompareResult:
        """Compare the most prominent face of ``image_a`` (the probe) with that of ``image_b``.

        Raises ImageDecodeError, FaceNotDetectedError (metadata ``image``: "probe" or
        "reference"), and with ``check_liveness`` LivenessError for the probe.
        """
        config = self._prepare(mode)
        timings: dict[str, float] = {}
        with _timed(timings, "decode"):
            images = [self.load_image(image_a), self.load_image(image_b)]
        with _timed(timings, "detect"):  # the same faces whether or not liveness is checked
            detections = self.detector.detect_batch(images)
        for role, faces in zip(("probe", "reference"), detections):
            if not faces:
                raise FaceNotDetectedError(metadata={"image": role})
        liveness = None
        if check_liveness:
            with _timed(timings, "liveness"):
                liveness = self.liveness_checker.check(images[0])
            liveness.raise_for_failure()
        chosen = [faces[0] for faces in detections]
        with _timed(timings, "crop"):
            crops = self._crops(config, images, chosen)
        with _timed(timings, "embed"):
            embeddings = self._embed(config, crops)
        calibration = self.calibration(config.mode)
        with _timed(timings, "score"):
            cosine = float(np.clip(embeddings[0] @ embeddings[1], -1.0, 1.0))
            stats = calibration.face_stats(embeddings)
            similarity = float(calibration.similarity(cosine, stats[0], stats[1]))
            score = float(calibration.score(similarity))
            notes = calibration.coverage_notes(stats, [face.width for face in chosen])
        timings["total"] = sum(timings.values())
        reports = tuple(FaceReport(face, len(faces), (img.shape[1], img.shape[0]), calibration.face_trust(stats[i], face))
                        for i, (face, faces, img) in enumerate(zip(chosen, detections, images)))
        return CompareResult(
            is_match=is_match(score, min_similarity_score), score=score, cosine=cosine, similarity=similarity,
            min_similarity_score=min_similarity_score, mode=config.mode, faces=reports,
            weights=self.weights_versions(config.mode), calibration=calibration.id,
            timings_ms=timings, calibration_notes=tuple(notes), liveness=liveness,
            pictures=FacePictures(images, chosen),
        )

    def represent(self, image: ImageSource, *, mode: str | None = None) -> FaceRepresentation:
        """Embedding of the most prominent face; raises like :meth:`compare`."""
        result = self.represent_batch([image], mode=mode)[0]
        if isinstance(result, FacecmpError):
            raise result
        return result

    def represent_batch(self, images: Sequence[ImageSource], *, mode: str | PipelineConfig | None = None
                        ) -> list[FaceRepresentation | FacecmpError]:
        """Batched :meth:`represent`; a failing image yields its error in place, never a gap.

        ``mode`` may also be a candidate :class:`~facecmp.modes.PipelineConfig` outside
        :data:`~facecmp.modes.MODES` (``training/select_pipeline.py``): its embedders must be
        uncentred (it has no calibration, so no centres), and its faces carry no ``trust``."""
        config = self._prepare(mode)
        results: list[FaceRepresentation | FacecmpError | None] = [None] * len(images)
        decoded: dict[int, np.ndarray] = {}
        for i, source in enumerate(images):
            try:
                decoded[i] = self.load_image(source)
            except FacecmpError as exc:
                results[i] = exc
        order = list(decoded)
        detections = self.detector.detect_batch([decoded[i] for i in order]) if order else []
        found = [(i, faces) for i, faces in zip(order, detections) if faces]
        for i, faces in zip(order, detections):
            if not faces:
                results[i] = FaceNotDetectedError()
        if found:
            crops = self._crops(config, [decoded[i] for i, _ in found], [f[0] for _, f in found])
            embeddings = self._embed(config, crops)
            calibration = self._calibrations.get(config.mode)
            stats = calibration.face_stats(embeddings) if calibration else None
            for k, ((i, faces), embedding) in enumerate(zip(found, embeddings)):
                image = decoded[i]
                trust = calibration.face_trust(stats[k], faces[0]) if calibration else FaceTrust()
                results[i] = FaceRepresentation(faces[0], len(faces), (image.shape[1], image.shape[0]), trust,
                                                embedding)
        return results

    def score_embeddings(self, a: np.ndarray, b: np.ndarray, *, mode: str | None = None) -> np.ndarray:
        """(N, M) calibrated scores of every pair of ``mode``'s embeddings ``a`` (N, D) and ``b`` (M, D)."""
        calibration = self.calibration(mode)
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        return calibration.score_pairs(a @ b.T, calibration.face_stats(a).column(), calibration.face_stats(b))

    def calibration(self, mode: str | None = None) -> Calibration:
        config = self._prepare(mode)
        if config.mode not in self._calibrations:
            raise CalibrationError(f"{config.mode!r} is a candidate pipeline: it has no calibration to score with")
        return self._calibrations[config.mode]

    def check_liveness(self, image: ImageSource, *, threshold: float | None = None) -> LivenessResult:
        """The liveness verdict for the face in ``image`` (see :mod:`facecmp.liveness`): live when
        its score reaches ``threshold`` (default ``settings.liveness.threshold``)."""
        return self.liveness_checker.check(self.load_image(image), threshold=threshold)

    def weights_versions(self, mode: str | PipelineConfig | None = None) -> dict[str, str]:
        """Weight set name -> first 12 hex digits of its state-dict digest."""
        config = self._config(mode)
        return {name: get_spec(name).state_dict_sha256[:12] for name in config.weights}

    def pipeline_id(self, mode: str | PipelineConfig | None = None) -> str:
        """Stable identity of what an image maps to in ``mode`` (or a candidate configuration; its
        fingerprint holds the centres' digest): use it to key embedding caches."""
        config = self._config(mode)
        blob = json.dumps({"fingerprint": config.fingerprint(), "weights": self.weights_versions(config),
                           "compute": [self.compute.backend, self.compute.precision],
                           "detect_passes": self.detector.passes}, sort_keys=True)
        return f"{config.mode}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def versions(self) -> dict:
        return {
            "facecmp": __version__, "mode": self.mode,
            "compute": {"backend": self.compute.backend, "precision": self.compute.precision,
                        "threads": self.compute.threads, "streams": self.compute.streams,
                        "detect_passes": [list(p) for p in self.detector.passes]},
            "modes": {name: {"weights": self.weights_versions(name), "pipeline_id": self.pipeline_id(name),
                             "calibration": self._calibrations[name].id if name in self._calibrations else None}
                      for name in MODES},
        }

    # -- internals ---------------------------------------------------------------------------

    def _config(self, mode: str | PipelineConfig | None) -> PipelineConfig:
        if isinstance(mode, PipelineConfig):
            if mode.mode in MODES and mode != MODES[mode.mode]:
                raise CalibrationError(f"a configuration named {mode.mode!r} must be that mode's own")
            return mode
        return get_mode(mode or self.mode)

    def _prepare(self, mode: str | PipelineConfig | None) -> PipelineConfig:
        """Load (once) the embedders of ``mode`` and, for a mode of MODES, its calibration."""
        config = self._config(mode)
        calibrated = config.mode in MODES
        if config.mode in self._calibrations or (not calibrated and all(w in self._embedders for w in config.weights)):
            return config
        with self._lock:
            for name in config.weights:
                if name not in self._embedders:
                    self._embedders[name] = Embedder(name, device=self.device, compute=self.compute,
                                                     settings=self.settings)
            if calibrated and config.mode not in self._calibrations:
                self._centres[config.mode] = load_centres(config)
                self._calibrations[config.mode] = load_calibration(config.mode, config.fingerprint())
        return config

    def _embed(self, config: PipelineConfig, crops: np.ndarray) -> np.ndarray:
        """(N, K, S, S, 3) uint8 face crops, one per embedder of ``config`` -> (N, sum D) float32
        fused unit-norm embeddings: one forward pass per embedder for all N; centred parts lose
        their mode's centre (:mod:`facecmp.centres`); shares scale the parts so that the fused cosine is their
        weighted mean."""
        parts = [self._embedders[e.weights].embed(crops[:, k], flip=config.flip) for k, e in enumerate(config.embedders)]
        centres = self._centres.get(config.mode)
        if centres is None and any(e.centred for e in config.embedders):
            raise CalibrationError(f"candidate {config.mode!r} has centred embedders but no centres file: embed "
                                   "them uncentred and centre with embed.centre_embeddings")
        return fuse_embeddings(centre_embeddings(parts, centres or (None,) * len(parts)), config.fusion_shares())

    @staticmethod
    def _crops(config: PipelineConfig, images: list[np.ndarray], faces: list[Face]) -> np.ndarray:
        """(N, K, S, S, 3): each face cut as each of the K embedders wants it."""
        crops = []
        for img, face in zip(images, faces):
            by_config = {crop: crop_face(img, face, crop) for crop in dict.fromkeys(e.crop for e in config.embedders)}
            crops.append(np.stack([by_config[e.crop] for e in config.embedders]))   # accurate's box crop is cut once
        return np.stack(crops)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0
