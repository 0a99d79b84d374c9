"""The view: every rendering of a result, as text (the CLI's) and as HTML (notebook cards).

``compare_text`` and ``liveness_text`` are what ``facecmp compare`` and ``facecmp liveness``
print; ``compare_html``, ``face_html`` and ``liveness_html`` are the ``_repr_html_`` of
CompareResult, FaceReport and LivenessResult. The results know nothing of how they look, and
this module imports nothing of theirs: a liveness check's rule and unit come with the result
(``LivenessResult.checked``).

Each card is compact plain HTML with inline styles; pictures are PNG in ``data:`` URLs.
No JavaScript and no network address: a saved notebook shows the same card offline.

The faces a comparison used come from :class:`Thumbnail` (the face's region, scaled down), cut
from the decoded images when the card is first drawn (:class:`FacePictures`) and kept in memory
on the result only; the card shows it at most ``THUMBNAIL_SIZE`` pixels a side, box and
landmarks drawn on a copy when the card is built.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

THUMBNAIL_SIZE = 160   # px, the longer side at most
FACE_MARGIN = 0.5      # of the box's width and height, kept around the face on each side

_CARD = ("font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;line-height:1.4;"
         "color:#222;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 12px;"
         "display:inline-block;max-width:640px")
_MUTED = "color:#57606a;font-size:12px"
_BADGE = "display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;color:#fff;background:{}"
_GOOD, _BAD, _WARN = "#1a7f37", "#cf222e", "#9a6700"
_FACE_CARD = _CARD.replace("max-width:640px", "width:300px;box-sizing:border-box")
_CELL = "padding:1px 8px 1px 0;vertical-align:top;text-align:left;white-space:nowrap"


@dataclass(frozen=True, eq=False)
class Thumbnail:
    """A face's region of its image, every k-th pixel of it (a copy) so that a side is under twice
    ``THUMBNAIL_SIZE``: 0.05 ms, where a resampling resize cost a compare 0.5-1.5 ms a face
    (measured); the card resamples it when it is drawn. ``pixels`` (h, w, 3) uint8 RGB; ``origin``
    (x, y) of its top-left corner in the image and ``scale`` (its pixels per image pixel) map the
    face's box and landmarks onto it."""

    pixels: np.ndarray
    origin: tuple[int, int]
    scale: float

    @classmethod
    def of_face(cls, image: np.ndarray, face) -> "Thumbnail":
        """The region of ``face`` (a :class:`facecmp.faces.Face`) in the (H, W, 3) ``image``, with a margin."""
        x1, y1, x2, y2 = face.box
        dx, dy = FACE_MARGIN * (x2 - x1), FACE_MARGIN * (y2 - y1)
        height, width = image.shape[:2]
        left, top = max(int(x1 - dx), 0), max(int(y1 - dy), 0)
        right, bottom = min(int(np.ceil(x2 + dx)), width), min(int(np.ceil(y2 + dy)), height)
        if right <= left or bottom <= top:  # a box wholly off the image (MTCNN boxes may overhang)
            left, top, right, bottom = 0, 0, width, height
        step = max(1, max(right - left, bottom - top) // THUMBNAIL_SIZE)
        return cls(np.ascontiguousarray(image[top:bottom:step, left:right:step]), (left, top), 1.0 / step)

    def drawn(self, face) -> Image.Image:
        """The picture the card shows, at most ``THUMBNAIL_SIZE`` a side, with ``face``'s box
        (green) and five landmarks (orange) drawn on it."""
        picture = Image.fromarray(self.pixels)
        fit = min(1.0, THUMBNAIL_SIZE / max(picture.size))
        if fit < 1.0:
            picture = picture.resize((max(1, round(picture.width * fit)), max(1, round(picture.height * fit))),
                                     Image.Resampling.LANCZOS)
        draw = ImageDraw.Draw(picture)
        (ox, oy), s = self.origin, self.scale * fit
        x1, y1, x2, y2 = face.box
        draw.rectangle([(x1 - ox) * s, (y1 - oy) * s, (x2 - ox) * s, (y2 - oy) * s], outline=(0, 200, 80), width=2)
        for x, y in np.asarray(face.landmarks, float):
            cx, cy = (x - ox) * s, (y - oy) * s
            draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=(255, 140, 0))
        return picture


class FacePictures:
    """The pictures of a comparison's faces for its card, made when the card is first drawn: until
    then the decoded images are held by reference (no copy, no work: a compare whose result is
    never shown, the service's, pays nothing), then they are cut to a :class:`Thumbnail` each
    and let go. A result kept but never shown keeps its decoded images alive."""

    def __init__(self, images: list[np.ndarray], faces: list):
        self._images, self._faces = images, faces
        self._thumbnails: tuple[Thumbnail, ...] | None = None

    def thumbnails(self) -> tuple[Thumbnail, ...]:
        if self._thumbnails is None:
            self._thumbnails = tuple(Thumbnail.of_face(image, face) for image, face in zip(self._images, self._faces))
            self._images = None
        return self._thumbnails


def png_data_url(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def compare_text(result) -> str:
    """A few lines for a :class:`facecmp.pipeline.CompareResult`: decision, score and what it stands
    for, each face, the calibration's verdict, liveness when checked, timings."""
    verdict = "MATCH" if result.is_match else "NO MATCH"
    lines = [f"{verdict}  score {result.score:.4f} (cutoff {result.min_similarity_score})  cosine {result.cosine:.4f}"
             f"  mode {result.mode}", f"  the score means: {result.score_meaning}"]
    for role, report in zip(("probe", "reference"), result.faces):
        box = ", ".join(f"{v:.0f}" for v in report.face.box)
        age = f"  estimated_age {report.trust['estimated_age']}" if "estimated_age" in report.trust else ""
        lines.append(f"  {role:9s} face box [{box}] p={report.face.probability:.3f}  faces in image: "
                     f"{report.face_count}{age}")
    lines.append("  calibration: " + ("within it — the score's promise was measured on faces like these"
                                      if result.within_calibration else
                                      "outside it — the promise may not hold: " + "; ".join(result.calibration_notes)))
    if result.liveness is not None:
        lines.append(f"  liveness  score {result.liveness.score:.3f} live={result.liveness.live}")
    lines.append("  timings ms: " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items()))
    return "\n".join(lines)


def liveness_text(result) -> str:
    """A few lines for a :class:`facecmp.liveness.LivenessResult`: verdict and code, score, one
    line per check (value, limit, pass/FAIL), timing."""
    verdict = "LIVE" if result.live else f"NOT LIVE ({result.code})"
    score = "not computed (a requirement failed first)" if result.score is None else f"{result.score:.4f}"
    lines = [f"liveness: {verdict}", f"  {result.message}", f"  score: {score}"]
    for check, outcome in result.checked():
        mark = "ok  " if outcome["passed"] else "FAIL"
        unit = _unit(check)
        lines.append(f"  [{mark}] {check.name:<24} {outcome['value']:>10.4g}{unit}   "
                     f"(required {check.rule} {outcome['limit']:g}{unit})")
    if "total" in result.timings_ms:
        lines.append(f"  time: {result.timings_ms['total']:.1f} ms")
    return "\n".join(lines)


def compare_html(result) -> str:
    """The card of a :class:`facecmp.pipeline.CompareResult`: decision, score and what it stands
    for, both faces (pictures when the result holds thumbnails), the calibration's notes,
    liveness when checked, timings, weights and calibration ids."""
    colour = _GOOD if result.is_match else _BAD
    decision = "MATCH" if result.is_match else "NO MATCH"
    header = (f'<div><span style="{_BADGE.format(colour)}">{decision}</span> '
              f'score <b style="font-size:15px">{result.score:.4f}</b> '
              f'<span style="{_MUTED}">(cutoff {_text(result.min_similarity_score)} · cosine {result.cosine:.4f}'
              f' · mode {_text(result.mode)})</span></div>'
              f'<div style="margin:2px 0 8px 0">{_text(result.score_meaning)}</div>')
    thumbnails = tuple(getattr(result, "thumbnails", ())) or (None,) * len(result.faces)
    faces = "".join(face_html(report, thumbnail, role=role)
                    for role, report, thumbnail in zip(("probe", "reference"), result.faces, thumbnails))
    parts = [header, f'<div style="display:flex;gap:10px;flex-wrap:wrap">{faces}</div>',
             _calibration_html(result)]
    if result.liveness is not None:
        live = result.liveness
        parts.append(f'<div style="margin-top:6px">liveness of the probe: {_verdict(live.live, "LIVE", "NOT LIVE")}'
                     f' score {_number(live.score)}</div>')
    parts.append(f'<div style="{_MUTED};margin-top:6px">timings (ms): {_timings(result.timings_ms)}</div>')
    weights = ", ".join(f"{_text(name)} {_text(digest)}" for name, digest in result.weights.items())
    parts.append(f'<div style="{_MUTED}">calibration {_text(result.calibration)} · weights {weights}</div>')
    return _card("".join(parts))


def face_html(report, thumbnail: Thumbnail | None = None, *, role: str = "face") -> str:
    """The card of a :class:`facecmp.pipeline.FaceReport`: its picture when there is a thumbnail,
    box, probability, faces in the image, image size, and every entry of its ``trust``."""
    face = report.face
    rows = [("box", ", ".join(f"{v:.0f}" for v in face.box)), ("probability", f"{face.probability:.3f}"),
            ("faces in image", str(report.face_count)),
            ("image size", "×".join(str(v) for v in report.image_size))]
    rows += [(key.replace("_", " "), _value(value)) for key, value in report.trust.items()]
    picture = ""
    if thumbnail is not None:
        drawn = thumbnail.drawn(face)
        picture = (f'<img src="{png_data_url(drawn)}" width="{drawn.width}" height="{drawn.height}" '
                   f'alt="{_text(role)} face" style="display:block;border-radius:4px;margin-bottom:4px">')
    table = "".join(f'<tr><td style="{_CELL};{_MUTED}">{_text(name)}</td><td style="{_CELL}">{_text(value)}</td></tr>'
                    for name, value in rows)
    return (f'<div style="{_FACE_CARD}"><div style="font-weight:600;margin-bottom:4px">{_text(role)}</div>{picture}'
            f'<table style="border-collapse:collapse;font-size:12px">{table}</table></div>')


def liveness_html(result) -> str:
    """The card of a :class:`facecmp.liveness.LivenessResult`: verdict and code, message, score,
    each check against its limit, pose and timings."""
    code = "" if result.live else f' <span style="{_MUTED}">{_text(result.code)}</span>'
    rows = "".join(
        f'<tr><td style="{_CELL}">{_verdict(outcome["passed"], "ok", "FAIL")}</td>'
        f'<td style="{_CELL}">{_text(check.name.replace("_", " "))}</td>'
        f'<td style="{_CELL}">{_number(outcome["value"])}{_text(_unit(check))}</td>'
        f'<td style="{_CELL};{_MUTED}">required {_text(check.rule)} '
        f'{_number(outcome["limit"])}{_text(_unit(check))}</td></tr>'
        for check, outcome in result.checked())
    pose = ", ".join(f"{_text(k)} {v:.1f}°" for k, v in result.pose.items())
    parts = [f'<div>{_verdict(result.live, "LIVE", "NOT LIVE")}{code} score <b>{_number(result.score)}</b></div>',
             f'<div style="margin:2px 0 6px 0">{_text(result.message)}</div>',
             f'<table style="border-collapse:collapse;font-size:12px">{rows}</table>']
    if pose:
        parts.append(f'<div style="{_MUTED};margin-top:4px">pose: {pose}</div>')
    parts.append(f'<div style="{_MUTED}">timings (ms): {_timings(result.timings_ms)}</div>')
    return _card("".join(parts))


def _calibration_html(result) -> str:
    if result.within_calibration:
        return (f'<div style="margin-top:8px"><span style="color:{_GOOD}">✔ within calibration</span>: the score\'s '
                "promise was measured on faces like these</div>")
    notes = "".join(f"<li>{_text(note)}</li>" for note in result.calibration_notes)
    return (f'<div style="margin-top:8px"><span style="color:{_WARN}">⚠ outside calibration</span>: the promise '
            f'may not hold<ul style="margin:2px 0 0 0;padding-left:18px">{notes}</ul></div>')


def _unit(check) -> str:
    return f" {check.unit}" if check.unit else ""


def _card(body: str) -> str:
    return f'<div style="{_CARD}">{body}</div>'


def _verdict(good: bool, yes: str, no: str) -> str:
    return f'<span style="{_BADGE.format(_GOOD if good else _BAD)}">{yes if good else no}</span>'


def _timings(timings: dict[str, float]) -> str:
    return " · ".join(f"{_text(stage)} {ms:.0f}" for stage, ms in timings.items())


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _text(value) -> str:
    return html.escape(str(value))
