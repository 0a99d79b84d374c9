"""eval.evaluate on real photos: the tables and figures hold what was measured, and the CLI writes
what Evaluation.report writes."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import eval
from eval import datasets
from eval.api import EmbeddingIncomplete, InputError
from eval.cli import main
from summaries import without_timing
from facecmp.calibration import ANCHOR_SCORE, fmr_promised

REPO = Path(__file__).resolve().parents[1]
AGES = (8, 30, 52)      # per photo, so that pairs of one person fall in several age bands
GENDER = {"ben_afflek": "male", "elton_john": "male", "jerry_seinfeld": "male", "madonna": "female",
          "mindy_kaling": "female"}
OPTIONS = dict(mode="fast", group_by=["age:min", "age:max", "gender", "gender@age>=18"], bands={"age": "0,18,inf"},
               bootstrap=100, folds=2, progress=False)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, celebrity_photos) -> tuple[Path, Path]:
    """(folder of 4 people x 3 photos with labels.csv: age per photo, gender per person; its cache)."""
    root = tmp_path_factory.mktemp("api") / "people"
    rows = []
    for person in sorted(celebrity_photos)[1:]:
        (root / person).mkdir(parents=True)
        for photo, age in zip(celebrity_photos[person], AGES):
            shutil.copy(photo, root / person / photo.name)
            rows.append({"path": f"{person}/{photo.name}", "age": age, "gender": GENDER[person]})
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "age", "gender"])
        writer.writeheader()
        writer.writerows(rows)
    return root, root.parent / "cache.sqlite"


@pytest.fixture(scope="module")
def evaluation(labelled, fast_comparer):
    root, cache = labelled
    return eval.evaluate(root, comparer=fast_comparer, cache=cache, **OPTIONS)


def test_the_cli_writes_what_the_api_reports(tmp_path, labelled, evaluation):
    root, cache = labelled
    code = main(["run", str(root), "--mode", "fast", "--cache", str(cache), "--no-progress", "--bootstrap", "100",
                 "--folds", "2", "--bands", "age=0,18,inf", "--group-by", *OPTIONS["group_by"],
                 "--out", str(tmp_path / "cli")])
    assert code == 0
    report = evaluation.report(tmp_path / "api")
    assert report == tmp_path / "api" / "report.md"
    cli, api = sorted(p.name for p in (tmp_path / "cli").iterdir()), sorted(p.name for p in (tmp_path / "api").iterdir())
    assert cli == api and "groups_all_vs_all_gender_age__18.png" in cli
    written = {name: json.loads((tmp_path / d / "metrics.json").read_text()) for name, d in (("cli", "cli"), ("api", "api"))}
    assert without_timing(written["cli"]) == without_timing(written["api"])
    assert written["cli"]["timing"]["images_embedded"] == 0          # the API's run filled the cache
    with np.load(tmp_path / "cli" / "curves.npz") as a, np.load(tmp_path / "api" / "curves.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for name in cli:
        if name.endswith(".png"):
            assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes(), name

    def untimed(path: Path) -> list[str]:
        lines = path.read_text().split("## Timing")[0].splitlines()
        return [line for line in lines if not line.startswith("- time:") and " pairs/s)" not in line]

    assert untimed(tmp_path / "cli" / "report.md") == untimed(report)
    again = eval.Evaluation.load(tmp_path / "cli")
    assert again.at(0.67).equals(evaluation.at(0.67)) and again.by_group("gender").equals(evaluation.by_group("gender"))


def test_at_gives_rates_intervals_and_counts_of_each_comparison_set(evaluation):
    table = evaluation.at(ANCHOR_SCORE)
    assert list(table.index) == ["protocol", "all_vs_all"]
    assert table.equals(evaluation.at())                  # the default cutoff is the calibration's anchor
    for name, row in table.iterrows():
        point = evaluation.summary["comparison_sets"][name]["operating_points"][0]
        assert row["cutoff"] == point["cutoff"] == ANCHOR_SCORE
        assert row["fmr"] == pytest.approx(row["false_matches"] / row["n_impostor"], abs=1e-8)
        assert row["fnmr"] == pytest.approx(row["false_non_matches"] / row["n_genuine"], abs=1e-8)
        assert [row["fmr_low"], row["fmr_high"]] == point["fmr_ci"]
        assert [row["fnmr_low"], row["fnmr_high"]] == point["fnmr_ci"]
        assert row["fnmr_low"] <= row["fnmr"] <= row["fnmr_high"]
        assert row["promised_fmr"] == pytest.approx(fmr_promised(ANCHOR_SCORE))
    n = 12
    every = table.loc["all_vs_all"]
    assert every["n_genuine"] == 4 * 3 and every["n_genuine"] + every["n_impostor"] == n * (n - 1) // 2
    assert list(evaluation.at(0.67, on="protocol").index) == ["protocol"]
    with pytest.raises(ValueError, match=r"cutoff 0.5 was not measured .*0.7, 0.67"):
        evaluation.at(0.5)
    with pytest.raises(KeyError, match="no comparison set 'listed'"):
        evaluation.at(on="listed")


def test_operating_points_and_overview_cover_every_set_and_cutoff(evaluation):
    points = evaluation.operating_points()
    assert list(points.index) == [(s, c) for s in ("protocol", "all_vs_all") for c in (0.7, 0.67)]
    for (name, cutoff), row in points.iterrows():
        at = evaluation.at(cutoff).loc[name]
        assert (row["fmr"], row["fnmr"], row["n_impostor"]) == (at["fmr"], at["fnmr"], at["n_impostor"])
    overview = evaluation.overview()
    assert overview.loc["protocol", "kfold_accuracy"] == evaluation.summary["comparison_sets"]["protocol"][
        "kfold_accuracy"]["mean"]
    assert {"eer", "tar_at_far_0.001"} <= set(overview.columns)


def test_by_group_rows_are_the_groups_of_a_breakdown(evaluation):
    groups = evaluation.summary["comparison_sets"]["all_vs_all"]["groups"]
    younger = evaluation.by_group("age:min")
    assert younger.index.name == "age:min" and list(younger.index) == ["0-17", "18+"]
    assert younger["n_impostor"].sum() == evaluation.at().loc["all_vs_all", "n_impostor"]
    for group, row in younger.iterrows():
        assert row["n_genuine"] == groups["age:min"][group]["n_genuine"]
        assert row["fmr"] == groups["age:min"][group]["operating_points"][0]["fmr"]
        assert "cutoff_at_promised_fmr_reason" in row
    assert "the lower `age` of the two faces" in younger.attrs["title"]
    # A column broken down one way is found by its name; "gender" names its own spec exactly.
    assert evaluation.by_group("gender").index.name == "gender"
    assert list(evaluation.by_group("gender").index) == ["both female", "both male", "mixed"]
    assert evaluation.by_group("gender@age>=18", cutoff=0.67)["cutoff"].eq(0.67).all()
    with pytest.raises(KeyError, match="several ways: age:min, age:max"):
        evaluation.by_group("age")
    with pytest.raises(KeyError, match="no breakdown by 'race'"):
        evaluation.by_group("race")
    listed = evaluation.by_group("gender", on="protocol")
    assert listed["n_genuine"].sum() + listed["n_impostor"].sum() <= len(evaluation.dataset.pairs)


def test_figures_are_drawn_once_and_left_closed(evaluation):
    plt.close("all")
    det = evaluation.det()
    ax = det.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert sum("impostor pairs" in line.get_label() for line in ax.get_lines()) == 2     # both comparison sets
    histogram = evaluation.histogram(on="protocol")
    assert "protocol scores" in histogram.axes[0].get_title()
    by_gender = evaluation.fmr_by_group("gender")
    assert [t.get_text().split(" (")[0] for t in by_gender.axes[0].get_yticklabels()] == list(
        evaluation.by_group("gender").index)
    assert "FMR at 0.7 by gender" in by_gender.axes[0].get_title()
    assert evaluation.rates_vs_cutoff().axes[0].get_yscale() == "log"
    assert plt.get_fignums() == [], "a figure was left to pyplot (Jupyter would draw it twice)"


def test_html_summary_names_the_data_the_verdict_and_the_breakdowns(evaluation):
    page = evaluation._repr_html_()
    assert "people: 12 images of 4 identities" in page
    assert evaluation.summary["calibration_check"]["verdict"] in page
    assert "<table" in page and "promised_fmr" in page
    assert ".by_group(&#x27;age:min&#x27;)" in page
    assert repr(evaluation).startswith("<Evaluation people: 12 images")


def test_bad_input_is_refused_before_anything_is_embedded(tmp_path, labelled):
    root, _ = labelled
    with pytest.raises(InputError, match="no label column 'race'"):
        eval.evaluate(root, group_by=["race"], progress=False)
    with pytest.raises(InputError, match="unknown rule 'youngest'"):
        eval.evaluate(root, group_by=["age:youngest"], progress=False)
    with pytest.raises(InputError, match="cannot read the bands"):
        eval.evaluate(root, bands={"age": "18,3"}, progress=False)
    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in sorted(root.glob("*/*.jpg"))[:3]:
        shutil.copy(photo, flat / photo.name)
    with pytest.raises(InputError, match="has no identities.*--impostors-all-pairs"):
        eval.evaluate(flat, progress=False)
    with pytest.raises(InputError, match="needs col_a, col_b and col_same"):
        eval.evaluate(root / "labels.csv", progress=False)
    with pytest.raises(InputError, match="unknown backend 'gpu'; use 'local' or 'ray'"):
        eval.evaluate(root, backend="gpu", progress=False)
    with pytest.raises(TypeError, match="max_images"):
        eval.evaluate(datasets.load(root), max_images=3, progress=False)


def test_the_cli_names_a_missing_file_before_it_imports_the_pipeline(tmp_path):
    # In a fresh interpreter: neither torch nor the pipeline is imported when the answer comes.
    probe = ("import sys\nfrom eval.cli import main\n"
             "try:\n    main(['run', sys.argv[1], '--labels', sys.argv[2], '--out', sys.argv[3]])\n"
             "except SystemExit as exc:\n    print(exc)\n"
             "print(sorted(m for m in ('torch', 'facecmp.pipeline', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "photos"), str(tmp_path / "labels.csv"),
                           str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == [f"error: dataset {tmp_path / 'photos'} does not exist; --labels "
                                        f"{tmp_path / 'labels.csv'} does not exist", "[]"], done.stderr
    assert not (tmp_path / "out").exists()


def test_a_set_without_genuine_pairs_has_tables_but_no_curves(tmp_path, labelled, fast_comparer):
    root, cache = labelled
    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in sorted(root.glob("*/*.jpg"))[::3]:
        shutil.copy(photo, flat / photo.name)
    stopped = dict(comparer=fast_comparer, cache=tmp_path / "c.sqlite", impostors_all_pairs=True, progress=False)
    with pytest.raises(EmbeddingIncomplete, match="stopped after 2 new images"):
        eval.evaluate(flat, limit=2, **stopped)
    impostors = eval.evaluate(flat, bootstrap=50, **stopped)
    assert impostors.embedding.n_cached == 2
    assert impostors.comparison_sets == ["all_vs_all"]
    assert impostors.at()["n_impostor"].item() == 4 * 3 // 2
    with pytest.raises(ValueError, match="no comparison set has both genuine and impostor pairs"):
        impostors.det()
    with pytest.raises(ValueError, match="all_vs_all has no curves"):
        impostors.histogram()


def test_a_breakdown_by_the_pipelines_own_quality(people_folder, fast_comparer):
    """``group_by=["quality"]`` needs no label: each face's quality comes from the pipeline, banded
    at the calibration's quality floor and its undegraded faces' percentiles; ``old_print`` alike."""
    from eval import evaluate
    from eval.groups import band_names, old_print_bands, quality_bands

    comparer = fast_comparer
    ev = evaluate(people_folder, mode="fast", comparer=comparer, group_by=["quality", "old_print"], bootstrap=10,
                  progress=False)
    table = ev.by_group("quality")
    names = set(band_names(quality_bands(comparer.calibration("fast").coverage)))
    groups = set(table.index)
    assert groups - {"mixed"} and groups <= {"mixed"} | {f"both {name}" for name in names}, groups
    # The old-print figure too: these modern photos are all ordinary (below 0.5), so one group.
    old_print = ev.by_group("old_print")
    assert set(old_print.index) == {f"both {band_names(old_print_bands(comparer.calibration('fast').coverage))[0]}"}
