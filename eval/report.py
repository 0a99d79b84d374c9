"""Markdown from evaluation summaries: one run's ``report.md``, and runs side by side.

Pure formatting of the ``metrics.json`` dictionary that :func:`eval.run.measure` builds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def pct(value, digits: int = 3) -> str:
    """0.00123 -> '0.123%'; None -> 'n/a'."""
    if value is None:
        return "n/a"
    return f"{100 * value:.{digits}g}%" if value else "0%"


def one_in(value) -> str:
    """0.001 -> '1 in 1,000'."""
    if not value:
        return "none"
    return f"1 in {1 / value:,.0f}"


def interval(ci) -> str:
    if not ci or ci[0] is None:
        return ""
    return f" [{pct(ci[0])}, {pct(ci[1])}]"


def _fmr_cell(point: dict) -> str:
    text = f"{pct(point['fmr'])}{interval(point['fmr_ci'])} ({point['false_matches']:,}/{point['n_impostor']:,})"
    if "fmr_upper_rule_of_three" in point:
        text += f", < {pct(point['fmr_upper_rule_of_three'])} (95%, rule of 3)"
    return text


def _fnmr_cell(point: dict) -> str:
    return f"{pct(point['fnmr'])}{interval(point['fnmr_ci'])} ({point['false_non_matches']:,}/{point['n_genuine']:,})"


def operating_table(points: list[dict], *, generalized: bool = False) -> list[str]:
    head = "| cutoff | FMR (impostors accepted) [95% CI] (k/n) | FNMR (genuine rejected) [95% CI] (k/n) |"
    rule = "|---|---|---|"
    if points and "promised_fmr" in points[0]:
        head += " promised FMR |"
        rule += "---|"
    if generalized:
        head += " FNMR incl. pairs without a face |"
        rule += "---|"
    lines = [head, rule]
    for p in points:
        row = f"| {p['cutoff']:g} | {_fmr_cell(p)} | {_fnmr_cell(p)} |"
        if "promised_fmr" in p:
            row += f" {one_in(p['promised_fmr'])} |"
        if generalized:
            row += f" {pct(p.get('generalized_fnmr'))} |"
        lines.append(row)
    return lines


def tradeoff_sentence(points: list[dict]) -> list[str]:
    """What moving from the first cutoff to each other one buys (FNMR) and costs (FMR)."""
    if len(points) < 2:
        return []
    ref = points[0]
    lines = []
    for p in points[1:]:
        if None in (p["fnmr"], ref["fnmr"], p["fmr"], ref["fmr"]):
            continue
        direction = "Lowering" if p["cutoff"] < ref["cutoff"] else "Raising"
        fewer_rejected = ref["false_non_matches"] - p["false_non_matches"]
        more_accepted = p["false_matches"] - ref["false_matches"]
        if more_accepted == 0:
            ratio = "no change"
        elif ref["fmr"]:
            ratio = f"{p['fmr'] / ref['fmr']:.2g}x the false matches"
        else:
            ratio = f"{more_accepted:,} false matches where there were none"
        lines.append(
            f"{direction} the cutoff from {ref['cutoff']:g} to {p['cutoff']:g} "
            f"{'buys' if fewer_rejected >= 0 else 'costs'}: FNMR {pct(ref['fnmr'])} -> {pct(p['fnmr'])} "
            f"({abs(fewer_rejected):,} of {p['n_genuine']:,} genuine pairs {'no longer' if fewer_rejected >= 0 else 'now'} "
            f"turned away); and {'costs' if more_accepted >= 0 else 'buys'}: FMR {pct(ref['fmr'])} -> {pct(p['fmr'])} "
            f"({abs(more_accepted):,} {'more' if more_accepted >= 0 else 'fewer'} of {p['n_impostor']:,} impostor pairs "
            f"let through; {ratio}).")
    return lines


def ratio(value) -> str:
    """1.234 -> '1.23x'; None -> 'n/a'."""
    return "n/a" if value is None else f"{value:.3g}x"


def group_table(groups: dict) -> list[str]:
    """Rows per group and cutoff: pairs, FMR, the FMR as a multiple of the promise, FNMR."""
    lines = ["| group | genuine / impostor pairs | cutoff | FMR [95% CI] (k/n) | x the promise | FNMR [95% CI] (k/n) |",
             "|---|---|---|---|---|---|"]
    for value, group in groups.items():
        for k, p in enumerate(group["operating_points"]):
            head = f"{value} | {group['n_genuine']:,} / {group['n_impostor']:,}" if k == 0 else " | "
            fmr = _fmr_cell(p) if p["n_impostor"] else "n/a"
            fnmr = _fnmr_cell(p) if p["n_genuine"] else "n/a"
            lines.append(f"| {head} | {p['cutoff']:g} | {fmr} | {ratio(p.get('fmr_to_promised'))} | {fnmr} |")
    at_promise = {value: g["cutoff_at_promised_fmr"] for value, g in groups.items() if "cutoff_at_promised_fmr" in g}
    if at_promise:
        fmr = next(iter(at_promise.values()))["fmr"]
        cells = [f"{value} {c['cutoff']:.3f}" if c["cutoff"] is not None else f"{value} n/a ({c['reason']})"
                 for value, c in at_promise.items()]
        lines += ["", f"Cutoff at which each group's FMR is the promised {fmr:g} ({one_in(fmr)}): " + "; ".join(cells) + "."]
    return lines


def _set_section(name: str, info: dict, group_titles: dict[str, str]) -> list[str]:
    titles = {"protocol": "Listed pairs (the dataset's protocol)",
              "all_vs_all": "All pairs of images (every genuine and every impostor comparison)"}
    lines = [f"### {titles.get(name, name)}", ""]
    lines.append(f"{info['n_genuine']:,} genuine and {info['n_impostor']:,} impostor comparisons"
                 + (f" in {info['seconds']:.1f} s ({info['pairs_per_second']:,.0f} pairs/s)" if "seconds" in info else "")
                 + ".")
    if info.get("excluded_pairs") and sum(info["excluded_pairs"].values()):
        ex = info["excluded_pairs"]
        lines.append(f"Pairs not compared because an image has no usable face: {ex['genuine']} genuine, "
                     f"{ex['impostor']} impostor (the last column counts them as rejected, as the service would).")
    lines.append("")
    lines += operating_table(info["operating_points"], generalized="excluded_pairs" in info)
    lines.append("")
    lines += tradeoff_sentence(info["operating_points"])
    if "eer" in info:
        lines += ["", f"- EER: {pct(info['eer'])} (at cutoff {info['eer_threshold']:.4f})"]
        for t in info["tar_at_far"]:
            value = f"{pct(t['tar'])} (cutoff {t['threshold']:.4f})" if t["tar"] is not None else f"n/a — {t['reason']}"
            lines.append(f"- TAR at FAR {t['far']:g}: {value}")
        for c in info["cutoff_at_fmr"]:
            if c["cutoff"] is not None:
                lines.append(f"- cutoff reaching FMR <= {c['fmr']:g}: {c['cutoff']:.4f} (measured FMR {pct(c['measured_fmr'])})")
    if "impostor_histogram_resolution" in info:
        lines.append(f"- curves, EER and TAR use impostor scores binned to {info['impostor_histogram_resolution']:g}; "
                     "the rows of the table are exact counts")
    if "kfold_accuracy" in info:
        k = info["kfold_accuracy"]
        lines.append(f"- {k['n_folds']}-fold best-threshold accuracy: {100 * k['mean']:.2f}% ± {100 * k['std']:.2f}% "
                     f"(threshold chosen on the other folds; {k['n_pairs']:,} pairs, {k['excluded_pairs']} excluded)")
    for column, groups in info.get("groups", {}).items():
        title = f" — {group_titles[column]}" if column in group_titles else ""
        lines += ["", f"By `{column}`{title}:", ""] + group_table(groups)
    return lines + [""]


def render_report(summary: dict, plots: list[str] = ()) -> str:
    """The Markdown of ``report.md`` for one evaluation summary."""
    ds, pipe, enrol = summary["dataset"], summary["pipeline"], summary["enrolment"]
    check, timing = summary["calibration_check"], summary["timing"]
    lines = [f"# Threshold evaluation: {ds['name']} — {pipe['mode']} pipeline", ""]
    lines += [f"- dataset: `{ds['source']}` ({ds['kind']}): {ds['n_images']:,} images of {ds['n_identities']:,} identities"
              + (f", {ds['n_pairs']:,} listed pairs in {ds['n_folds']} folds" if "n_pairs" in ds else ""),
              f"- pipeline: `{pipe['pipeline_id']}`; calibration `{pipe['calibration']['id']}` "
              f"(fitted on {pipe['calibration']['dataset']})",
              f"- a pair matches when score >= cutoff; 95% intervals: percentile bootstrap over identities, "
              f"{summary['settings']['bootstrap']['n_resamples']} resamples, seed {summary['settings']['bootstrap']['seed']}",
              f"- time: {timing['total_s']:.1f} s in all; embedding {timing['embedding_s']:.1f} s "
              f"({timing['images_embedded']:,} images computed, {timing['images_from_cache']:,} from cache)", ""]
    for note in ds.get("notes", []):
        lines.append(f"> {note}")
    lines += ["", "## Calibration check", ""]
    if "measured_fmr" in check:
        lines.append(f"At cutoff {check['cutoff']:g} the calibration `{check['calibration_id']}` (fitted on "
                     f"{check['calibration_dataset']}) promises an FMR of {one_in(check['promised_fmr'])} "
                     f"({check['promised_fmr']:g}). Measured on this dataset ({check['measured_on']}): "
                     f"{pct(check['measured_fmr'])}{interval(check['fmr_ci'])} — {check['false_matches']:,} of "
                     f"{check['n_impostor']:,} impostor comparisons accepted. Verdict: **{check['verdict']}** "
                     f"({check['reason']}).")
    else:
        lines.append(f"Not measured: {check.get('reason')}.")
    lines += ["", "## Failure to enrol", "",
              f"{enrol['n_failed']:,} of {enrol['n_images']:,} images ({pct(enrol['failure_to_enrol_rate'])}) gave no "
              f"embedding" + (": " + ", ".join(f"{k} {v}" for k, v in enrol["by_error"].items()) if enrol["by_error"] else "")
              + f". {enrol['n_multiple_faces']:,} images held more than one face (the most prominent was used)."]
    if enrol["failed_examples"]:
        lines += ["", "<details><summary>images without an embedding</summary>", ""]
        lines += [f"- `{e['image']}`: {e['error']} ({e['code']})" for e in enrol["failed_examples"]]
        if enrol["n_failed"] > len(enrol["failed_examples"]):
            lines.append(f"- ... and {enrol['n_failed'] - len(enrol['failed_examples'])} more")
        lines += ["", "</details>"]
    lines += ["", "## Error rates at the cutoffs", ""]
    group_titles = {g["name"]: g["title"] for g in summary["settings"].get("group_by", [])}
    for name, info in summary["comparison_sets"].items():
        lines += _set_section(name, info, group_titles)
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    lines += ["## Timing", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k.removesuffix('_s')} | {v:.2f} |" for k, v in sorted(timing.items(), key=lambda kv: kv[0] == "total_s")
              if k.endswith("_s")]
    return "\n".join(lines) + "\n"


def load_summary(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def _default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_run(out_dir: str | Path, summary: dict, curves: dict[str, np.ndarray], plots: list[str]) -> None:
    """``metrics.json``, ``curves.npz`` and ``report.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, default=_default) + "\n")
    np.savez_compressed(out_dir / "curves.npz", **curves)
    (out_dir / "report.md").write_text(render_report(summary, plots))


def compare_table(summaries: dict[str, dict]) -> str:
    """Markdown table of several runs (label -> summary), one row per run and comparison set."""
    cutoffs = sorted({c for s in summaries.values() for c in s["settings"]["cutoffs"]}, reverse=True)
    targets = sorted({t for s in summaries.values() for t in s["settings"]["fmr_targets"]}, reverse=True)
    head = ["run", "dataset", "pipeline", "pairs", "FTE"]
    head += [f"FMR @ {c:g}" for c in cutoffs] + [f"FNMR @ {c:g}" for c in cutoffs]
    head += ["EER"] + [f"TAR @ FAR {t:g}" for t in targets] + ["k-fold acc.", "time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, s in summaries.items():
        for name, info in s["comparison_sets"].items():
            points = {p["cutoff"]: p for p in info["operating_points"]}
            tars = {t["far"]: t for t in info.get("tar_at_far", [])}
            cells = [label, s["dataset"]["name"], f"`{s['pipeline']['pipeline_id']}`",
                     f"{name}: {info['n_genuine']:,} gen / {info['n_impostor']:,} imp",
                     pct(s["enrolment"]["failure_to_enrol_rate"])]
            cells += [f"{pct(points[c]['fmr'])}{interval(points[c]['fmr_ci'])}" if c in points else "" for c in cutoffs]
            cells += [f"{pct(points[c]['fnmr'])}{interval(points[c]['fnmr_ci'])}" if c in points else "" for c in cutoffs]
            cells.append(pct(info.get("eer")))
            cells += [pct(tars[t]["tar"]) if t in tars and tars[t]["tar"] is not None else "n/a" for t in targets]
            k = info.get("kfold_accuracy")
            cells.append(f"{100 * k['mean']:.2f}% ± {100 * k['std']:.2f}" if k else "")
            cells.append(f"{s['timing']['total_s']:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
