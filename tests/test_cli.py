"""The ``facecmp`` command as a user runs it: a real subprocess, real files, stdin."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys


def _facecmp(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facecmp.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_compare_json_from_paths_and_stdin(celebrity_photos):
    a, b = celebrity_photos["ben_afflek"][:2]
    other = celebrity_photos["elton_john"][0]
    stdin = base64.b64encode(b.read_bytes()).decode() + "\n" + base64.b64encode(other.read_bytes()).decode() + "\n"
    done = _facecmp("compare", str(a), "-", "--json", "--mode", "fast", stdin=stdin)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["is_match"] is True and 0.7 <= result["score"] <= 1
    assert len(result["faces"]) == 2 and len(result["faces"][0]["landmarks"]) == 5
    # Both images from stdin, one line each, with a stricter cutoff.
    done = _facecmp("compare", "-", "-", "--json", "--mode", "fast", "--min-score", "0.99", stdin=stdin)
    result = json.loads(done.stdout)
    assert result["is_match"] is False and result["score"] < 0.7  # b vs a different person


def test_compare_human_output_and_errors(celebrity_photos, tmp_path):
    a, b = celebrity_photos["jerry_seinfeld"][:2]
    done = _facecmp("compare", str(a), str(b), "--mode", "fast")
    assert done.returncode == 0 and ("MATCH" in done.stdout) and "faces in image" in done.stdout
    assert "estimated_age" in done.stdout and "calibration: " in done.stdout
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a jpeg")
    done = _facecmp("compare", str(junk), str(b), "--json", "--mode", "fast")
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "ERR_BASE64_IMAGE_CANNOT_BE_DECODED"


def test_tiny_image_is_an_error_message_not_a_traceback(celebrity_photos, tmp_path):
    from PIL import Image

    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), "white").save(tiny)
    done = _facecmp("compare", str(tiny), str(celebrity_photos["madonna"][0]), "--mode", "fast")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "error ERR_FACE_NOT_DETECTED: A face could not be detected in the image(s)."
    # The liveness command detects before it looks for its weights (none here: LICENSE_ERROR).
    done = _facecmp("liveness", str(tiny), "--json", env={"FACECMP_LIVENESS_WEIGHTS_DIR": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["metadata"]["code"] == "LICENSE_ERROR"
