"""The demo page (``GET /demo``): served, self-contained and switchable in-process; then driven in
a real headless Chromium (Playwright on the system ``chromium``) against a real uvicorn server
(conftest's ``server``):
key typed, two photos chosen, the decision, boxes, score meaning, trust notes and errors read
from the rendered page, and a screenshot kept.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from conftest import SERVER_KEY
from facecmp.errors import FaceNotDetectedError
from serve.app import create_app
from serve.errors import ApiKeyNotValidError, NotFoundError
from serve.routers.demo import ASSET_TYPES, PAGE, STATIC_DIR
from serve.schemas import EXAMPLES_DIR
from serve.settings import Settings
from serve.testing import chromium_path

KEY = SERVER_KEY  # conftest's ``server`` accepts it
EXAMPLE_PAIR = (EXAMPLES_DIR / "astronaut_probe.jpg", EXAMPLES_DIR / "astronaut_reference.jpg")
ROLES = ("probe", "reference")


def app_client(**settings) -> TestClient:
    """The app without its start-up (no models loaded): enough for a static page."""
    return TestClient(create_app(Settings(api_keys=KEY, **settings)), raise_server_exceptions=False)


# -- in-process: served, switchable, self-contained ----------------------------------------------

def test_demo_page_and_assets_are_served_with_a_strict_policy():
    client = app_client()
    page = client.get("/demo")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == (STATIC_DIR / PAGE).read_text(encoding="utf-8")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    for asset, media_type in ASSET_TYPES.items():
        answer = client.get(f"/demo/{asset}")
        assert answer.status_code == 200 and answer.headers["content-type"] == media_type
        assert answer.content == (STATIC_DIR / asset).read_bytes()
    # only the page's own assets: no other file of the folder or of the package
    for path in ("/demo/demo.html", "/demo/..%2Fapp.py", "/demo/%2E%2E/settings.py", "/demo/nothing.js"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.json() == NotFoundError().to_dict(), path
    assert "/demo" not in client.get("/openapi.json").json()["paths"]


def test_demo_off_answers_the_documented_not_found():
    client = app_client(demo=False)
    for path in ("/demo", "/demo/demo.js", "/demo/demo.css"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.json() == {"code": "ERR_NOT_FOUND", "message": NotFoundError.default_message}


def test_demo_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACECMP_DEMO", "false")
    assert Settings().demo is False
    monkeypatch.delenv("FACECMP_DEMO")
    assert Settings().demo is True


class _References(HTMLParser):
    """Every URL-valued attribute of the page, and whether any script or style is inline."""

    URL_ATTRIBUTES = {"src", "href", "action", "formaction", "poster", "data", "srcset", "background"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag = None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        attributes = dict(attrs)
        self.urls += [value for name, value in attrs if name in self.URL_ATTRIBUTES and value is not None]
        if tag == "script" and "src" not in attributes:
            self.inline.append("script")
        if any(name == "style" or name.startswith("on") for name, _ in attrs):
            self.inline.append(f"{tag} attribute")

    def handle_data(self, data):
        if self._tag in ("script", "style") and data.strip():
            self.inline.append(self._tag)


def test_demo_page_references_no_external_url():
    parser = _References()
    parser.feed((STATIC_DIR / PAGE).read_text(encoding="utf-8"))
    assert parser.urls, "the parser found none of the page's references"
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # relative: this service
    assert sorted(url for url in parser.urls if url.startswith("demo/")) == sorted(f"demo/{a}" for a in ASSET_TYPES)
    assert parser.inline == []  # all script and style in the files the policy allows
    scheme_url = re.compile(r"\b[a-z][a-z0-9+.-]*://|(?<![:/\w])//[\w.-]+\.[a-z]{2,}", re.IGNORECASE)
    for asset in ASSET_TYPES:
        text = (STATIC_DIR / asset).read_text(encoding="utf-8")
        assert not scheme_url.search(text), (asset, scheme_url.search(text))
    css = (STATIC_DIR / "demo.css").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


# -- a real browser against a real server --------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium binary (Debian: apt-get install chromium, or `make browser`)")
    from playwright.sync_api import sync_playwright  # the dev extra; never `playwright install`

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield launched
        launched.close()


@dataclass
class DemoPage:
    """The demo page in a browser tab, with every request it made and every error it logged."""

    page: object
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record_console(self, message) -> None:
        # An error answer of /compare is logged as a failed resource load: that is the answer shown.
        if message.type == "error" and not RESOURCE_ANSWER.match(message.text):
            self.errors.append(message.text)


RESOURCE_ANSWER = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture()
def demo(browser, server):  # no browser: skipped before the server starts
    context = browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(180_000)
    recorded = DemoPage(page)
    page.on("request", lambda request: recorded.requests.append(request.url))
    page.on("console", recorded.record_console)
    page.on("pageerror", lambda error: recorded.errors.append(str(error)))  # any uncaught exception
    page.goto(f"{server.url}/demo")
    yield recorded
    context.close()


def submit(page, probe: Path, reference: Path, key: str = KEY) -> str:
    """Type the key, choose the photos, press Compare; returns which section was rendered."""
    page.fill("#api-key", key)
    page.set_input_files("#probe-file", str(probe))
    page.set_input_files("#reference-file", str(reference))
    page.click("#compare-button")
    page.wait_for_selector("#result:not([hidden]), #error:not([hidden])")
    return "result" if page.is_visible("#result") else "error"


def compare_answer(server, probe: Path, reference: Path) -> dict:
    """What /compare itself answers for the pair (the page must show this)."""
    body = {name: base64.b64encode(path.read_bytes()).decode("ascii")
            for name, path in (("face_base_64", probe), ("ref_face_base_64", reference))}
    answer = requests.post(f"{server.url}/compare", json=body, headers={"x-api-key": KEY}, timeout=180)
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_only_this_service(demo: DemoPage, server):
    """The page asked nothing of anyone but this service, and no script error or policy refusal occurred."""
    assert demo.requests and all(url.startswith(f"{server.url}/") or url.startswith("data:")
                                 for url in demo.requests), demo.requests
    assert demo.errors == [], demo.errors


@pytest.mark.slow  # a real server and browser: not in the quick tier
def test_demo_shows_decision_boxes_meaning_and_trust_in_chromium(demo, server, tmp_path):
    page = demo.page
    assert submit(page, *EXAMPLE_PAIR) == "result"
    expected = compare_answer(server, *EXAMPLE_PAIR)
    assert page.inner_text("#decision") == ("Match" if expected["is_match"] else "No match")
    assert expected["is_match"]  # the bundled pair is one person
    assert page.inner_text("#score") == f"{expected['score']:.3f}"
    assert expected["score_meaning"] in page.inner_text("#score-meaning")
    assert page.inner_text("#calibration").startswith(
        "Within calibration" if expected["within_calibration"] else "Outside calibration")
    assert page.locator("#calibration-notes li").all_inner_texts() == expected["calibration_notes"]

    for role, photo_path, face in zip(ROLES, EXAMPLE_PAIR, expected["faces"], strict=True):
        # every trust figure of the answer, and nothing else, in the face's list
        shown = page.locator(f"#{role}-trust dd").evaluate_all("nodes => nodes.map(n => [n.dataset.key, n.textContent])")
        assert [key for key, _ in shown] == [key for key in face if key not in ("box", "landmarks")]
        assert all(float(text) == face[key] for key, text in shown)  # as sent: every trust figure is a number
        # the box drawn where the answer puts it, scaled to the photo's displayed size
        photo = page.locator(f"#{role}-photo")
        natural = photo.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert natural == list(Image.open(photo_path).size)
        shown_photo, drawn = photo.bounding_box(), page.locator(f"#{role}-frame .box").bounding_box()
        scale = shown_photo["width"] / natural[0]
        x1, y1, x2, y2 = face["box"]
        assert drawn["x"] - shown_photo["x"] == pytest.approx(x1 * scale, abs=1.5)
        assert drawn["y"] - shown_photo["y"] == pytest.approx(y1 * scale, abs=1.5)
        assert drawn["width"] == pytest.approx((x2 - x1) * scale, abs=1.5)
        assert drawn["height"] == pytest.approx((y2 - y1) * scale, abs=1.5)
        assert page.locator(f"#{role}-frame .landmark").count() == len(face["landmarks"]) == 5
    assert_only_this_service(demo, server)

    screenshot = tmp_path / "demo.png"
    page.screenshot(path=str(screenshot), full_page=True)
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.width == 1200 and image.height >= 600
    print(f"demo page screenshot: {screenshot}")

    # nothing the user sent reached the server's log: not the key, not the photos
    log = server.log()
    assert KEY not in log
    assert base64.b64encode(EXAMPLE_PAIR[0].read_bytes()).decode("ascii")[:40] not in log


@pytest.mark.slow  # a real server and browser: not in the quick tier
def test_demo_shows_no_match_for_two_people(demo, server, celebrity_photos):
    page = demo.page
    pair = (celebrity_photos["ben_afflek"][0], celebrity_photos["madonna"][0])
    assert submit(page, *pair) == "result"
    expected = compare_answer(server, *pair)
    assert expected["is_match"] is False
    assert page.inner_text("#decision") == "No match"
    assert page.inner_text("#score") == f"{expected['score']:.3f}"


@pytest.mark.slow  # a real server and browser: not in the quick tier
def test_demo_shows_the_documented_errors(demo, server, tmp_path):
    page = demo.page
    assert submit(page, *EXAMPLE_PAIR, key="not-the-key") == "error"
    assert page.inner_text("#error-code") == ApiKeyNotValidError.code
    assert page.inner_text("#error-status") == "403"
    assert page.inner_text("#error-message") == ApiKeyNotValidError.default_message

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(blank)
    assert submit(page, blank, EXAMPLE_PAIR[1]) == "error"
    assert page.is_hidden("#result")
    assert page.inner_text("#error-code") == FaceNotDetectedError.code
    assert page.inner_text("#error-status") == "400"
    assert page.inner_text("#error-message") == FaceNotDetectedError.default_message
    assert page.locator("#error-metadata dd[data-key=image]").inner_text() == "probe"
    assert_only_this_service(demo, server)
