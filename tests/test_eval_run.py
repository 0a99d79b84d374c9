"""The evaluation pipeline on real photos: embedding cache and resume, CLI end to end (the Ray backend:
test_serve_ray.py, on the suite's one Ray cluster)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.cli import EXIT_INCOMPLETE, main
from eval.embeddings import EmbeddingCache, embed_images
from summaries import without_timing

pytestmark = pytest.mark.slow  # not in the quick tier (make test-quick)


@pytest.fixture()
def photo_folder(people_folder) -> Path:
    """``people_folder`` plus one image without a face and one that is not an image."""
    first = sorted(p.name for p in people_folder.iterdir())[0]
    Image.new("RGB", (200, 200), (128, 128, 128)).save(people_folder / first / "blank.png")
    (people_folder / first / "broken.jpg").write_bytes(b"not a jpeg at all")
    return people_folder


def _images(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.*"))


def test_cache_returns_the_same_records_and_counts_failures(tmp_path, photo_folder, fast_comparer):
    images = _images(photo_folder)
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    first = embed_images(images, fast_comparer, mode="fast", cache=cache, batch_size=4, progress=False)
    assert first.complete and first.n_computed == len(images) and first.n_cached == 0
    assert first.failures() == {"FaceNotDetectedError": 1, "ImageDecodeError": 1}
    assert first.ok.sum() == len(images) - 2
    assert np.allclose(np.linalg.norm(first.embeddings[first.ok], axis=1), 1, atol=1e-5)
    # A renamed copy is the same content: a cache hit.
    renamed = tmp_path / "renamed.jpg"
    shutil.copy(images[0], renamed)
    second = embed_images([*images, renamed], fast_comparer, mode="fast", cache=EmbeddingCache(cache.path),
                          progress=False)
    assert second.n_computed == 0 and second.n_cached == len(images)
    np.testing.assert_array_equal(second.embeddings[:-1], first.embeddings)
    np.testing.assert_array_equal(second.embeddings[-1], first.embeddings[0])
    assert [r.error_code for r in second.records[:-1]] == [r.error_code for r in first.records]
    assert second.records[0].face == first.records[0].face
    # Another pipeline is another cache key.
    other = embed_images(images[:1], fast_comparer, pipeline_id="other-pipeline", mode="fast", cache=cache,
                         progress=False)
    assert other.n_computed == 1


def test_embedding_resumes_after_an_interruption(tmp_path, photo_folder, fast_comparer):
    images = _images(photo_folder)
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    stopped = embed_images(images, fast_comparer, mode="fast", cache=cache, batch_size=2, limit=3, progress=False)
    assert not stopped.complete and stopped.n_computed == 3
    assert sum(r is not None for r in stopped.records) == 3
    resumed = embed_images(images, fast_comparer, mode="fast", cache=cache, batch_size=2, progress=False)
    assert resumed.complete and resumed.n_cached == 3 and resumed.n_computed == len(images) - 3


@pytest.mark.needs_shared
def test_cli_on_40_lfw_images_writes_the_report_and_reuses_the_cache(tmp_path, lfw_dir, capsys):
    """``python -m eval run`` and ``compare`` in this process (``eval.cli.main``)."""
    common = ["run", str(lfw_dir), "--max-pairs", "20", "--mode", "fast", "--cache", str(tmp_path / "cache.sqlite"),
              "--bootstrap", "200", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    for name in ("report.md", "metrics.json", "curves.npz", "det.png", "protocol_histogram.png",
                 "protocol_rates.png", "all_vs_all_histogram.png", "all_vs_all_rates.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert summary["dataset"]["n_images"] <= 40 and summary["timing"]["images_embedded"] == summary["dataset"]["n_images"]
    protocol = summary["comparison_sets"]["protocol"]
    assert [p["cutoff"] for p in protocol["operating_points"]] == [0.7, 0.67]
    assert protocol["kfold_accuracy"]["n_folds"] == 10
    check = summary["calibration_check"]
    assert check["cutoff"] == 0.7 and check["promised_fmr"] == pytest.approx(1e-3)
    assert check["verdict"] == "unresolved"          # a few hundred impostor pairs cannot show 1 in 1,000
    report = (tmp_path / "a" / "report.md").read_text()
    for text in ("Calibration check", "1 in 1,000", "Failure to enrol", "Lowering the cutoff from 0.7 to 0.67",
                 "10-fold best-threshold accuracy", "## Timing", "![det.png](det.png)"):
        assert text in report, text

    assert main([*common, "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert again["timing"]["images_embedded"] == 0
    assert again["timing"]["images_from_cache"] == summary["dataset"]["n_images"]
    assert again["timing"]["embedding_s"] < summary["timing"]["embedding_s"] / 3
    assert without_timing(again) == without_timing(summary)

    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "compare.md")]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| a ") or line.startswith("| b ")]
    assert len(rows) == 4                          # 2 runs x (protocol, all-vs-all)
    assert (tmp_path / "compare.md").read_text() == table.rstrip("\n") + "\n"
    assert (tmp_path / "det_compare.png").stat().st_size > 0


def test_cli_stops_at_the_limit_and_the_next_run_resumes(tmp_path, photo_folder, fast_comparer):
    common = ["run", str(photo_folder), "--mode", "fast", "--cache", str(tmp_path / "cache.sqlite"), "--no-progress",
              "--bootstrap", "100", "--out", str(tmp_path / "out")]
    assert main([*common, "--limit", "4"]) == EXIT_INCOMPLETE
    assert not (tmp_path / "out" / "metrics.json").exists()
    assert main(common) == 0
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["timing"]["images_from_cache"] == 4
    assert summary["timing"]["images_embedded"] == len(_images(photo_folder)) - 4
    enrolment = summary["enrolment"]
    assert enrolment["n_failed"] == 2 and enrolment["failure_to_enrol_rate"] == pytest.approx(2 / 11)
    assert enrolment["by_error"] == {"FaceNotDetectedError": 1, "ImageDecodeError": 1}
    assert {Path(e["image"]).name for e in enrolment["failed_examples"]} == {"blank.png", "broken.jpg"}
    assert "all_vs_all" in summary["comparison_sets"]
    assert "2 of 11 images" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.needs_shared
def test_cli_reads_cacd_pairs_with_a_column_mapping(tmp_path, shared):
    pairs = shared / "data" / "cacd-vs-dev" / "pairs.tsv"
    if not pairs.exists():
        pytest.skip("../shared/data/cacd-vs-dev is not present")
    code = main(["run", str(pairs), "--col-a", "path0", "--col-b", "path1", "--col-same", "label", "--col-fold", "fold",
                 "--root", "images/", "--max-pairs", "20", "--mode", "fast", "--cache", str(tmp_path / "c.sqlite"),
                 "--bootstrap", "100", "--no-progress", "--out", str(tmp_path / "cacd")])
    assert code == 0
    summary = json.loads((tmp_path / "cacd" / "metrics.json").read_text())
    protocol = summary["comparison_sets"]["protocol"]
    assert protocol["n_genuine"] + protocol["excluded_pairs"]["genuine"] == 10
    assert protocol["kfold_accuracy"]["n_folds"] == 5
    assert "all_vs_all" not in summary["comparison_sets"]
    assert "from 0.7 to 0.67" in (tmp_path / "cacd" / "report.md").read_text()
