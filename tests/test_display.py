"""The notebook cards (``_repr_html_``) of real compares and liveness checks, read back with
html.parser: two PNG faces of the size the card says, the decision, what the score stands for,
every trust entry, the calibration's notes; no script and no network address."""
from __future__ import annotations

import base64
import dataclasses
import html.parser
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facecmp.display import FACE_MARGIN, THUMBNAIL_SIZE


class Card(html.parser.HTMLParser):
    """The tags, images and visible text of an HTML fragment."""

    def __init__(self, markup: str):
        super().__init__()
        self.tags: list[str] = []
        self.images: list[dict[str, str]] = []
        self.texts: list[str] = []
        self.feed(markup)
        self.close()
        self.text = " ".join(" ".join(self.texts).split())

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.texts.append(data)


def png_of(image: dict[str, str]) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert image["src"].startswith(prefix)
    picture = Image.open(io.BytesIO(base64.b64decode(image["src"][len(prefix):], validate=True)))
    assert picture.format == "PNG"
    return picture


def best_shift(picture: Image.Image, photo: Image.Image, box: tuple[float, float, float, float]) -> tuple[int, int]:
    """The (dx, dy) in -6..6 px, steps of 3, whose shifted ``box`` of ``photo``, resized to
    ``picture``'s size, differs least from it (mean absolute difference)."""
    shown = np.asarray(picture.convert("RGB"), dtype=int)
    errors = {}
    for dx in range(-6, 7, 3):
        for dy in range(-6, 7, 3):
            moved = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
            if moved[0] < 0 or moved[1] < 0 or moved[2] > photo.width or moved[3] > photo.height:
                continue
            cut = np.asarray(photo.resize(picture.size, Image.Resampling.LANCZOS, box=moved), dtype=int)
            errors[dx, dy] = np.abs(shown - cut).mean()
    return min(errors, key=errors.get)


def assert_offline(markup: str) -> None:
    lowered = markup.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert "http://" not in lowered and "https://" not in lowered


@pytest.fixture(scope="module")
def photos(celebrity_photos) -> tuple[np.ndarray, np.ndarray]:
    """Two photos of one person; the first on a grey border, so that its face's region lies
    inside the image (the second's reaches past its top and left edges)."""
    a, b = (np.asarray(Image.open(path).convert("RGB")) for path in celebrity_photos["ben_afflek"][:2])
    bordered = np.full((a.shape[0] + 200, a.shape[1] + 240, 3), 128, np.uint8)
    bordered[90:90 + a.shape[0], 130:130 + a.shape[1]] = a
    return bordered, b


@pytest.fixture(scope="module")
def match(fast_comparer, photos):
    return fast_comparer.compare(*photos)


def test_compare_card_shows_both_faces_decision_meaning_trust_and_timings(match, fast_comparer, photos):
    markup = match._repr_html_()
    card = Card(markup)
    assert_offline(markup)
    assert len(card.images) == 2
    for image, report, photo in zip(card.images, match.faces, photos):
        picture = png_of(image)
        assert picture.size == (int(image["width"]), int(image["height"]))
        # The face's region (the box and its margin, inside the photo), fitted into THUMBNAIL_SIZE.
        x1, y1, x2, y2 = report.face.box
        w, h = report.image_size
        mx, my = FACE_MARGIN * (x2 - x1), FACE_MARGIN * (y2 - y1)
        region = (min(x2 + mx, w) - max(x1 - mx, 0), min(y2 + my, h) - max(y1 - my, 0))
        fit = min(1.0, THUMBNAIL_SIZE / max(region))
        assert max(picture.size) <= THUMBNAIL_SIZE
        assert picture.size == pytest.approx((region[0] * fit, region[1] * fit), abs=2)
        # The pixels are that region of the photo: of the regions shifted by up to 6 px, it fits best.
        region_box = (max(x1 - mx, 0), max(y1 - my, 0), min(x2 + mx, w), min(y2 + my, h))
        assert best_shift(picture, Image.fromarray(photo), region_box) == (0, 0)
    assert "MATCH" in card.text and "NO MATCH" not in card.text
    assert f"score {match.score:.4f}" in card.text and match.score_meaning in card.text
    assert "within calibration" in card.text
    assert all(f"{stage} {ms:.0f}" in card.text for stage, ms in match.timings_ms.items())
    assert match.calibration in card.text


def test_notes_of_a_pair_outside_the_calibration_are_listed(fast_comparer, photos):
    def blurred(pixels):   # sigma 6 px of a 250 px photo: below the quality floor (test_quality)
        image = Image.fromarray(pixels)
        return np.asarray(image.filter(ImageFilter.GaussianBlur(6 * min(image.size) / 250)))
    result = fast_comparer.compare(blurred(photos[1]), blurred(photos[0]))
    assert not result.within_calibration  # two photos of low quality
    card = Card(result._repr_html_())
    assert "outside calibration" in card.text and "may not hold" in card.text
    assert card.tags.count("li") == len(result.calibration_notes)
    for note in result.calibration_notes:
        assert " ".join(note.split()) in card.text


def test_text_is_escaped_and_new_trust_keys_show_without_code_changes(match):
    trust = dataclasses.replace(match.faces[0].trust, quality=0.8125, quality_percentile=41.5)
    report = dataclasses.replace(match.faces[0], trust=trust)
    hostile = dataclasses.replace(match, faces=(report, match.faces[1]),
                                  calibration_notes=("<script>alert(1)</script> & <img src=x>",))
    markup = hostile._repr_html_()
    card = Card(markup)
    assert "script" not in card.tags and len(card.images) == 2
    assert "<script>alert(1)</script> & <img src=x>" in card.text
    assert "quality 0.8125" in card.text and "quality percentile 41.5" in card.text


def test_thumbnails_stay_out_of_repr_to_dict_and_equality(match):
    assert len(match.thumbnails) == 2
    assert "thumbnail" not in repr(match) and "thumbnail" not in str(match.to_dict())
    assert "pictures" not in repr(match) and dataclasses.replace(match, pictures=None) == match
    assert dataclasses.replace(match, pictures=None).thumbnails == ()


def test_face_report_card_without_pixels(match):
    report = match.faces[1]
    markup = report._repr_html_()
    card = Card(markup)
    assert_offline(markup)
    assert card.images == []
    assert f"faces in image {report.face_count}" in card.text
    assert f"image size {report.image_size[0]}×{report.image_size[1]}" in card.text
    assert all(key.replace("_", " ") in card.text for key in report.trust)


def test_liveness_card_and_text_list_each_check_against_its_limit(celebrity_photos, fast_comparer):
    from facecmp.display import liveness_text
    from facecmp.weights.registry import MINIFASNET
    from facecmp.weights.store import installed

    if not all(installed(spec.name, fast_comparer.liveness_checker.weights_dir) for spec in MINIFASNET):
        pytest.skip("the MiniFASNet weights are not installed (facecmp weights fetch minifasnet)")
    photo = Image.open(celebrity_photos["jerry_seinfeld"][0]).convert("RGB")
    small = np.full((700, 700, 3), 128, np.uint8)
    small[200:200 + photo.height, 225:225 + photo.width] = np.asarray(photo)  # a face far under 150 px wide
    result = fast_comparer.check_liveness(small)
    assert result.code == "FACE_TOO_SMALL"
    markup = result._repr_html_()
    card = Card(markup)
    assert_offline(markup)
    assert "NOT LIVE FACE_TOO_SMALL" in card.text and result.message in card.text
    assert ("FAIL" in card.text) and ("score —" in card.text)  # the model did not run
    assert "required >= 150 px" in card.text and "required |x| <= 30 deg" in card.text  # each check's rule and unit
    text = liveness_text(result)
    assert text.startswith("liveness: NOT LIVE (FACE_TOO_SMALL)") and "score: not computed" in text
    assert "[FAIL] face_width" in text and "(required >= 150 px)" in text and "(required |x| <= 30 deg)" in text
