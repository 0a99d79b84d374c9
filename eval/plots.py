"""PNG plots of an evaluation, from arrays only (no model, no dataset).

Each function takes the curves that :func:`eval.run.evaluate` computed (or any arrays of
the same form) and returns a matplotlib ``Figure``; :func:`write_plots` saves them all.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

CUTOFF_COLOURS = ("tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink")


def _cutoff_lines(ax, cutoffs) -> None:
    for cutoff, colour in zip(cutoffs, CUTOFF_COLOURS):
        ax.axvline(cutoff, color=colour, linestyle="--", linewidth=1, label=f"cutoff {cutoff:g}")


def score_histograms(edges, genuine_counts, impostor_counts, *, cutoffs=(), title="") -> plt.Figure:
    """Genuine and impostor score distributions (each normalised to 1), log scale, cutoffs drawn.

    edges : (n_bins + 1,); genuine_counts, impostor_counts : (n_bins,).
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    widths = np.diff(edges)
    for counts, label, colour in ((genuine_counts, "genuine", "tab:green"), (impostor_counts, "impostor", "tab:blue")):
        counts = np.asarray(counts, dtype=float)
        total = counts.sum()
        if total:
            ax.stairs(counts / total / widths, edges, label=f"{label} (n={total:,.0f})", color=colour,
                      fill=True, alpha=0.35)
    ax.set_yscale("log")
    _cutoff_lines(ax, cutoffs)
    ax.set_xlabel("calibrated score")
    ax.set_ylabel("density (log)")
    ax.set_xlim(0, 1)
    ax.set_title(title or "score distributions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def det_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, operating_points=(), title="") -> plt.Figure:
    """DET curves (FNMR against FMR, log-log) with operating points marked.

    curves : label -> (fmr, fnmr) arrays.
    operating_points : iterable of (label, fmr, fnmr).
    """
    fig, ax = plt.subplots(figsize=(6, 5))
    positive = [v for fmr, fnmr in curves.values() for v in np.r_[np.asarray(fmr, float), np.asarray(fnmr, float)] if v > 0]
    positive += [v for _, fmr, fnmr in operating_points for v in (fmr, fnmr) if v]
    floor = min(positive) / 2 if positive else 1e-4   # zero rates are drawn here, at the bottom/left edge
    for label, (fmr, fnmr) in curves.items():
        ax.plot(np.maximum(np.asarray(fmr, float), floor), np.maximum(np.asarray(fnmr, float), floor), label=label,
                linewidth=1.2)
    for (label, fmr, fnmr), colour in zip(operating_points, CUTOFF_COLOURS * 10):
        if fmr is None or fnmr is None:
            continue
        zero = fmr == 0 or fnmr == 0
        ax.plot(max(fmr, floor), max(fnmr, floor), "o", color=colour, fillstyle="none" if zero else "full",
                label=label + (" (a zero rate, drawn at the edge)" if zero else ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor * 0.8, 1.05)
    ax.set_ylim(floor * 0.8, 1.05)
    ax.set_xlabel("FMR (impostors accepted)")
    ax.set_ylabel("FNMR (genuine rejected)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "DET")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def rates_vs_cutoff(grid, fmr, fnmr, *, cutoffs=(), title="") -> plt.Figure:
    """FMR and FNMR as the cutoff moves (log y), cutoffs drawn. All arrays (n_cutoffs,)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(grid, fmr, label="FMR", color="tab:blue")
    ax.plot(grid, fnmr, label="FNMR", color="tab:green")
    _cutoff_lines(ax, cutoffs)
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 1.05)
    ax.set_xlim(0, 1)
    ax.set_xlabel("cutoff (match if score >= cutoff)")
    ax.set_ylabel("rate (log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "error rates against cutoff")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def group_fmr(groups: dict[str, dict], *, promised: float | None = None, title="") -> plt.Figure:
    """FMR of each group at one cutoff with its 95% interval (log x), the promised FMR as a line.

    groups : group name -> operating point (``fmr``, ``fmr_ci``, ``n_impostor``, and
    ``fmr_upper_rule_of_three`` when no impostor was accepted: drawn as an open marker there).
    """
    names = [n for n, p in groups.items() if p["n_impostor"]]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.4 * len(names)))
    for y, name in enumerate(names):
        point = groups[name]
        if point["fmr"]:
            low, high = (v if v is not None else point["fmr"] for v in point["fmr_ci"])
            ax.errorbar(point["fmr"], y, xerr=[[point["fmr"] - max(low, 0)], [max(high - point["fmr"], 0)]], fmt="o",
                        color="tab:blue", capsize=3)
        else:
            ax.plot(point.get("fmr_upper_rule_of_three") or 1.0, y, "<", color="tab:blue", fillstyle="none")
    if promised:
        ax.axvline(promised, color="tab:red", linestyle="--", linewidth=1, label=f"promised {promised:g}")
        ax.axvspan(promised / 3, promised * 3, color="tab:red", alpha=0.08, label="within 3x of the promise")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    ax.set_yticks(range(len(names)), [f"{n} ({groups[n]['n_impostor']:,})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("FMR with 95% interval (open triangle: none accepted, at the rule-of-3 bound)", fontsize=8)
    ax.grid(True, which="both", axis="x", alpha=0.3)
    ax.set_title(title or "FMR by group", fontsize=10)
    fig.tight_layout()
    return fig


def _file_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def write_plots(out_dir: str | Path, summary: dict, curves: dict[str, np.ndarray]) -> list[str]:
    """Write ``<set>_histogram.png``, ``<set>_rates.png``, ``det.png`` and, per breakdown,
    ``groups_<set>_<spec>.png`` (FMR at the first cutoff by group); returns file names."""
    out_dir = Path(out_dir)
    cutoffs = summary["settings"]["cutoffs"]
    written = []
    det = {}
    points = []
    for name, info in summary["comparison_sets"].items():
        if f"{name}_det_fmr" not in curves:
            continue
        label = f"{name} ({info['n_impostor']:,} impostor pairs)"
        figures = {
            f"{name}_histogram.png": score_histograms(curves[f"{name}_hist_edges"], curves[f"{name}_hist_genuine"],
                                                      curves[f"{name}_hist_impostor"], cutoffs=cutoffs,
                                                      title=f"{summary['dataset']['name']}: {name} scores"),
            f"{name}_rates.png": rates_vs_cutoff(curves[f"{name}_grid"], curves[f"{name}_grid_fmr"],
                                                 curves[f"{name}_grid_fnmr"], cutoffs=cutoffs,
                                                 title=f"{summary['dataset']['name']}: {name} FMR / FNMR"),
        }
        for file_name, fig in figures.items():
            fig.savefig(out_dir / file_name, dpi=110)
            plt.close(fig)
            written.append(file_name)
        det[label] = (curves[f"{name}_det_fmr"], curves[f"{name}_det_fnmr"])
        points += [(f"{name} @ {p['cutoff']:g}", p["fmr"], p["fnmr"]) for p in info["operating_points"]]
    if det:
        fig = det_curves(det, operating_points=points, title=f"{summary['dataset']['name']}: DET")
        fig.savefig(out_dir / "det.png", dpi=110)
        plt.close(fig)
        written.append("det.png")
    for name, info in summary["comparison_sets"].items():
        for column, groups in info.get("groups", {}).items():
            at_cutoff = {value: group["operating_points"][0] for value, group in groups.items()}
            if not any(p["n_impostor"] for p in at_cutoff.values()):
                continue
            promised = next(iter(at_cutoff.values())).get("promised_fmr")
            fig = group_fmr(at_cutoff, promised=promised,
                            title=f"{summary['dataset']['name']} ({name}): FMR at {cutoffs[0]:g} by {column}")
            file_name = f"groups_{name}_{_file_safe(column)}.png"
            fig.savefig(out_dir / file_name, dpi=110)
            plt.close(fig)
            written.append(file_name)
    return written
