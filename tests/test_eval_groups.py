"""Reports broken down by label columns: grouping rules and bands, then ``python -m eval run --group-by`` on real photos."""
from __future__ import annotations

import csv
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from eval.cli import main
from eval.groups import Condition, GroupSpec, band, band_names, make_grouping, make_groupings, parse_bands, rule_table
from eval import datasets
from facecmp.calibration import fmr_promised

AGE_BANDS = "age=0,3,6,13,18,inf"
GENDER = {"ben_afflek": "male", "elton_john": "male", "jerry_seinfeld": "male", "madonna": "female",
          "mindy_kaling": "female"}


# -- pure rules ----------------------------------------------------------------------------

def test_bands_are_named_by_whole_years_and_hold_lower_edge_inclusive():
    edges = parse_bands(AGE_BANDS)[1]
    assert band_names(edges) == ["0-2", "3-5", "6-12", "13-17", "18+"]
    values = np.array(["0", "2", "2.9", "3", "12", "13", "17", "18", "115", "", "n/a", "-1"])
    assert band(values, edges).tolist() == ["0-2", "0-2", "0-2", "3-5", "6-12", "13-17", "13-17", "18+", "18+",
                                            "", "", ""]
    assert band_names(parse_bands("age=0,3,6,13,18,200")[1])[-1] == "18-199"
    assert band(np.array(["200"]), parse_bands("age=0,18,200")[1]).tolist() == [""]
    for bad in ("age", "age=3", "age=5,3", "=1,2", "age=a,b"):
        with pytest.raises(ValueError):
            parse_bands(bad)


def test_pair_rules_give_both_x_mixed_pairs_and_the_younger_band():
    values = ["0-2", "3-5", "18+"]
    expected = {
        "same": {("0-2", "0-2"): "both 0-2", ("0-2", "18+"): "mixed", ("18+", "18+"): "both 18+"},
        "pair": {("0-2", "0-2"): "both 0-2", ("18+", "0-2"): "0-2/18+", ("3-5", "18+"): "3-5/18+"},
        "min": {("18+", "3-5"): "3-5", ("0-2", "18+"): "0-2", ("18+", "18+"): "18+"},
        "max": {("18+", "3-5"): "18+", ("0-2", "3-5"): "3-5", ("0-2", "0-2"): "0-2"},
    }
    for rule, cases in expected.items():
        table, names = rule_table(values, rule)
        np.testing.assert_array_equal(table, table.T)
        for (a, b), group in cases.items():
            assert names[table[values.index(a), values.index(b)]] == group, (rule, a, b)
    assert rule_table(["x"], "same")[1] == ["both x"]


def test_specs_and_conditions_read_and_refuse():
    spec = GroupSpec.parse("race:pair@age>=18@gender=female")
    assert (spec.column, spec.rule, [str(c) for c in spec.where]) == ("race", "pair", ["age>=18", "gender=female"])
    assert spec.name == "race:pair@age>=18@gender=female"
    assert GroupSpec.parse("gender").name == "gender"
    ages = np.array(["17", "18", "40", "", "old"])
    assert Condition.parse("age>=18").holds(ages).tolist() == [False, True, True, False, False]
    assert Condition.parse("age != 40").holds(ages).tolist() == [True, True, False, False, True]
    assert Condition.parse("gender=female").holds(np.array(["female", "male"])).tolist() == [True, False]
    for bad in ("age:youngest", ":min", "race@age"):
        with pytest.raises(ValueError):
            GroupSpec.parse(bad)
    with pytest.raises(KeyError, match="no label column 'ethnicity'"):
        make_grouping(GroupSpec("ethnicity"), {"race": np.array(["asian"])})


def test_a_grouping_leaves_out_unlabelled_and_filtered_faces():
    labels = {"age": np.array(["1", "30", "", "50", "9"]), "race": np.array(["asian", "asian", "white", "", "white"])}
    grouping = make_grouping(GroupSpec.parse("race@age>=18"), labels)
    assert grouping.names == ["both asian"]            # only image 1 is adult and labelled
    adults = make_grouping(GroupSpec.parse("age:min"), labels, {"age": parse_bands(AGE_BANDS)[1]})
    a, b = np.array([0, 1, 2, 4]), np.array([1, 3, 3, 3])
    assert [adults.names[g] if g >= 0 else None for g in adults.of_pairs(a, b)] == ["0-2", "18+", None, "6-12"]


def test_a_numeric_column_named_without_bands_is_banded_not_split_into_every_value():
    ages = np.array([str(a) for a in range(70)])              # fgnet-dev's ages: 0-69
    (grouping,), notes = make_groupings({"age": ages}, ["age:min"])
    assert grouping.names == ["0-2", "3-5", "6-12", "13-17", "18-29", "30-44", "45-59", "60-199"]
    assert "banded" in notes[0] and "--bands age=" in notes[0]
    (given,), notes = make_groupings({"age": ages}, ["age:min"], ["age=0,18,inf"])
    assert given.names == ["0-17", "18+"] and notes == []      # bands given win
    scores = np.array([f"{v:.3f}" for v in np.linspace(0.2, 0.99, 400)])
    (quintiles,), _ = make_groupings({"score": scores}, ["score"])
    counts = np.bincount(quintiles.codes, minlength=5)
    assert len(quintiles.names) == 5 + 1 and counts.min() >= 70   # five bands of about 80, and "mixed"
    few = np.array(["1", "2", "3", "2"])
    assert make_groupings({"grade": few}, ["grade"])[0][0].names == ["both 1", "both 2", "both 3", "mixed"]


# -- end to end ----------------------------------------------------------------------------

def _labelled_folder(root: Path, photos: dict[str, list[Path]], *, per_person: int) -> list[dict]:
    """<root>/<person>/<photo> and labels.csv: age varies per photo, gender per person."""
    rows = []
    for k, person in enumerate(sorted(photos)):
        (root / person).mkdir(parents=True)
        for j, photo in enumerate(photos[person][:per_person]):
            shutil.copy(photo, root / person / photo.name)
            rows.append({"path": f"{person}/{photo.name}", "age": str([2, 10, 30, 45, 70][(k + j) % 5]),
                         "gender": GENDER[person]})
    rows[-1]["gender"] = ""                                  # one face without a gender label
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "age", "gender"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _expected_counts(rows: list[dict], identity, group_of) -> dict[str, list[int]]:
    """group -> [genuine, impostor] pairs, by brute force over every pair of labelled photos."""
    counts: dict[str, list[int]] = {}
    for x, y in itertools.combinations(rows, 2):
        group = group_of(x, y)
        if group is not None:
            counts.setdefault(group, [0, 0])[identity(x) != identity(y)] += 1
    return counts


BAND_ORDER = band_names(parse_bands(AGE_BANDS)[1])


def _younger_band(x: dict, y: dict) -> str:
    bands = band(np.array([x["age"], y["age"]]), parse_bands(AGE_BANDS)[1])
    return min(bands, key=BAND_ORDER.index)


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory, celebrity_photos):
    root = tmp_path_factory.mktemp("labelled") / "people"
    rows = _labelled_folder(root, celebrity_photos, per_person=3)
    out = root.parent / "out"
    code = main(["run", str(root), "--mode", "fast", "--cache", str(root.parent / "cache.sqlite"), "--no-progress",
                 "--bootstrap", "100", "--bands", AGE_BANDS, "--group-by", "age:min", "gender", "gender@age>=18",
                 "--folds", "2", "--out", str(out)])
    assert code == 0
    return rows, out, json.loads((out / "metrics.json").read_text())


def test_group_counts_over_all_pairs_are_what_the_labels_imply(labelled_run):
    rows, _, summary = labelled_run
    assert summary["enrolment"]["n_failed"] == 0
    groups = summary["comparison_sets"]["all_vs_all"]["groups"]
    def identity(row):
        return row["path"].split("/")[0]

    def gender(x, y):
        if not (x["gender"] and y["gender"]):
            return None
        return f"both {x['gender']}" if x["gender"] == y["gender"] else "mixed"

    expected = {
        "age:min": _expected_counts(rows, identity, _younger_band),
        "gender": _expected_counts(rows, identity, gender),
        "gender@age>=18": _expected_counts(
            rows, identity, lambda x, y: gender(x, y) if min(int(x["age"]), int(y["age"])) >= 18 else None),
    }
    for spec, counts in expected.items():
        assert {g: [v["n_genuine"], v["n_impostor"]] for g, v in groups[spec].items()} == counts, spec
    assert sum(v["n_impostor"] for v in groups["age:min"].values()) == summary["comparison_sets"]["all_vs_all"]["n_impostor"]
    for group in groups["age:min"].values():
        for point in group["operating_points"]:
            assert point["promised_fmr"] == pytest.approx(fmr_promised(point["cutoff"]), abs=1e-8)
            assert point["fmr_to_promised"] == pytest.approx(point["fmr"] / point["promised_fmr"], rel=1e-3)
            low, high = point["fnmr_ci"]
            if point["n_genuine"]:
                assert low <= point["fnmr"] <= high


def test_listed_pairs_are_grouped_by_the_same_rules(labelled_run):
    _, _, summary = labelled_run
    protocol = summary["comparison_sets"]["protocol"]
    for spec in ("age:min", "gender", "gender@age>=18"):
        in_groups = sum(g["n_genuine"] + g["n_impostor"] for g in protocol["groups"][spec].values())
        assert 0 < in_groups <= protocol["n_genuine"] + protocol["n_impostor"]
    assert sum(g["n_genuine"] + g["n_impostor"] for g in protocol["groups"]["age:min"].values()) == \
        protocol["n_genuine"] + protocol["n_impostor"]


def test_report_and_plots_hold_every_group(labelled_run):
    _, out, summary = labelled_run
    report = (out / "report.md").read_text()
    assert "By `age:min` — the lower `age` of the two faces" in report
    assert "pairs where both faces have `age>=18`" in report
    assert "x the promise" in report
    for groups in summary["comparison_sets"]["all_vs_all"]["groups"].values():
        for value, group in groups.items():
            assert f"| {value} | {group['n_genuine']:,} / {group['n_impostor']:,} |" in report
    for name in ("groups_all_vs_all_age_min.png", "groups_all_vs_all_gender.png", "groups_protocol_gender.png"):
        assert (out / name).stat().st_size > 0
        assert f"![{name}]({name})" in report
    assert [g["name"] for g in summary["settings"]["group_by"]] == ["age:min", "gender", "gender@age>=18"]


def test_a_folder_without_identities_needs_the_explicit_option(tmp_path, celebrity_photos, capsys):
    root = tmp_path / "faces"
    (root / "images").mkdir(parents=True)
    rows = ["path,gender"]
    for person in sorted(celebrity_photos):
        for photo in celebrity_photos[person][:2]:
            shutil.copy(photo, root / "images" / f"{person}-{photo.name}")
            rows.append(f"images/{person}-{photo.name},{GENDER[person]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    common = ["run", str(root), "--mode", "fast", "--cache", str(tmp_path / "cache.sqlite"), "--no-progress",
              "--bootstrap", "50", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="has no identities.*--impostors-all-pairs"):
        main(common)
    with pytest.raises(ValueError, match="has no identities"):
        datasets.load_folder(root / "images")
    assert main([*common, "--impostors-all-pairs"]) == 0
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "protocol" not in summary["comparison_sets"]
    every = summary["comparison_sets"]["all_vs_all"]
    assert every["n_genuine"] == 0 and every["n_impostor"] == 10 * 9 // 2
    # Without --group-by every label column is broken down: 4 photos of women, 6 of men.
    groups = every["groups"]["gender"]
    assert {g: v["n_impostor"] for g, v in groups.items()} == {"both female": 6, "both male": 15, "mixed": 24}
    assert "every pair of different images is an impostor pair" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.needs_shared
def test_utkface_subset_breaks_down_by_younger_face_and_adult_groups(tmp_path, shared):
    utk = shared / "data" / "utkface-dev"
    if not (utk / "labels.csv").exists():
        pytest.skip("../shared/data/utkface-dev is not present")
    out = tmp_path / "utk"
    code = main(["run", str(utk), "--impostors-all-pairs", "--max-images", "40", "--mode", "fast", "--cache",
                 str(tmp_path / "cache.sqlite"), "--no-progress", "--bootstrap", "100", "--bands", AGE_BANDS,
                 "--group-by", "age:min", "race@age>=18", "gender@age>=18", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "metrics.json").read_text())
    every = summary["comparison_sets"]["all_vs_all"]
    n_ok = summary["enrolment"]["n_images"] - summary["enrolment"]["n_failed"]
    assert summary["enrolment"]["n_images"] == 40 and every["n_impostor"] == n_ok * (n_ok - 1) // 2
    assert sum(g["n_impostor"] for g in every["groups"]["age:min"].values()) == every["n_impostor"]
    assert set(every["groups"]["age:min"]) <= {"0-2", "3-5", "6-12", "13-17", "18+"}
    assert set(every["groups"]["race@age>=18"]) <= {f"both {r}" for r in ("white", "black", "asian", "indian", "other")} | {"mixed"}
    assert (out / "groups_all_vs_all_age_min.png").stat().st_size > 0


def test_cutoff_at_a_group_fmr_is_exact_above_the_floor():
    from eval.run import cutoff_at_group_fmr

    accepted = np.array([0.95, 0.9, 0.8, 0.75, 0.7])          # 5 of 3,001 impostor pairs score >= 0.67
    at = cutoff_at_group_fmr(accepted, 3001, fmr=1e-3, floor=0.67)
    assert at["cutoff"] == 0.8 and at["measured_fmr"] == pytest.approx(3 / 3001, abs=1e-8)
    assert cutoff_at_group_fmr(accepted, 4000, fmr=1e-3, floor=0.67)["cutoff"] == 0.75    # FMR 4/4000 <= 1e-3
    assert cutoff_at_group_fmr(accepted, 10_000, fmr=1e-3, floor=0.67)["cutoff"] is None   # 5e-4 at 0.67 already
    assert "cannot resolve" in cutoff_at_group_fmr(accepted, 100, fmr=1e-3, floor=0.67)["reason"]
    saturated = cutoff_at_group_fmr(np.r_[np.ones(10), accepted], 3001, fmr=1e-3, floor=0.67)
    assert saturated["cutoff"] is None and "10 pairs" in saturated["reason"]
