"""PNG plots of an evaluation, from arrays only (no model, no dataset).

The first functions take arrays (the curves that :func:`eval.run.measure` computed, or any of
the same form); ``run_*`` take a run's summary and curves and name what they draw as the report
does; :func:`write_plots` saves them all. Every function returns a matplotlib ``Figure``
detached from pyplot: a notebook shows it once, where it is returned, and a script leaves no
figure open.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

CUTOFF_COLOURS = ("tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink")


def _figure(figsize):
    fig, ax = plt.subplots(figsize=figsize)
    plt.close(fig)      # pyplot no longer shows it by itself (Jupyter would draw it twice)
    return fig, ax


def _cutoff_lines(ax, cutoffs) -> None:
    for cutoff, colour in zip(cutoffs, CUTOFF_COLOURS):
        ax.axvline(cutoff, color=colour, linestyle="--", linewidth=1, label=f"cutoff {cutoff:g}")


def score_histograms(edges, genuine_counts, impostor_counts, *, cutoffs=(), title="") -> plt.Figure:
    """Genuine and impostor score distributions (each normalised to 1), log scale, cutoffs drawn.

    edges : (n_bins + 1,); genuine_counts, impostor_counts : (n_bins,).
    """
    fig, ax = _figure((7, 4))
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
    fig, ax = _figure((6, 5))
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
    fig, ax = _figure((7, 4))
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
    fig, ax = _figure((7, 1.2 + 0.4 * len(names)))
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


def run_histogram(summary: dict, curves: dict[str, np.ndarray], name: str) -> plt.Figure:
    """Genuine and impostor scores of comparison set ``name`` of a run, its cutoffs drawn."""
    return score_histograms(curves[f"{name}_hist_edges"], curves[f"{name}_hist_genuine"],
                            curves[f"{name}_hist_impostor"], cutoffs=summary["settings"]["cutoffs"],
                            title=f"{summary['dataset']['name']}: {name} scores")


def run_rates(summary: dict, curves: dict[str, np.ndarray], name: str) -> plt.Figure:
    """FMR and FNMR of comparison set ``name`` against the cutoff."""
    return rates_vs_cutoff(curves[f"{name}_grid"], curves[f"{name}_grid_fmr"], curves[f"{name}_grid_fnmr"],
                           cutoffs=summary["settings"]["cutoffs"],
                           title=f"{summary['dataset']['name']}: {name} FMR / FNMR")


def curve_sets(summary: dict, curves: dict[str, np.ndarray]) -> list[str]:
    """The comparison sets of a run that have curves (both genuine and impostor pairs)."""
    return [name for name in summary["comparison_sets"] if f"{name}_det_fmr" in curves]


def run_det(summary: dict, curves: dict[str, np.ndarray]) -> plt.Figure:
    """DET curves of every comparison set of a run, with its operating points."""
    det, points = {}, []
    for name in curve_sets(summary, curves):
        info = summary["comparison_sets"][name]
        det[f"{name} ({info['n_impostor']:,} impostor pairs)"] = (curves[f"{name}_det_fmr"],
                                                                  curves[f"{name}_det_fnmr"])
        points += [(f"{name} @ {p['cutoff']:g}", p["fmr"], p["fnmr"]) for p in info["operating_points"]]
    return det_curves(det, operating_points=points, title=f"{summary['dataset']['name']}: DET")


def run_group_fmr(summary: dict, name: str, column: str, *, cutoff_index: int = 0) -> plt.Figure | None:
    """FMR by group of breakdown ``column`` of set ``name`` at one of the run's cutoffs (default the
    first), the promised FMR drawn; None when no group has impostor pairs."""
    groups = summary["comparison_sets"][name].get("groups", {})[column]
    at_cutoff = {value: group["operating_points"][cutoff_index] for value, group in groups.items()}
    if not any(p["n_impostor"] for p in at_cutoff.values()):
        return None
    cutoff = summary["settings"]["cutoffs"][cutoff_index]
    return group_fmr(at_cutoff, promised=next(iter(at_cutoff.values())).get("promised_fmr"),
                     title=f"{summary['dataset']['name']} ({name}): FMR at {cutoff:g} by {column}")


def write_plots(out_dir: str | Path, summary: dict, curves: dict[str, np.ndarray]) -> list[str]:
    """Write ``<set>_histogram.png``, ``<set>_rates.png``, ``det.png`` and, per breakdown,
    ``groups_<set>_<spec>.png`` (FMR at the first cutoff by group); returns file names."""
    out_dir = Path(out_dir)
    figures = {}
    for name in curve_sets(summary, curves):
        figures[f"{name}_histogram.png"] = run_histogram(summary, curves, name)
        figures[f"{name}_rates.png"] = run_rates(summary, curves, name)
    if figures:
        figures["det.png"] = run_det(summary, curves)
    for name, info in summary["comparison_sets"].items():
        for column in info.get("groups", {}):
            figures[f"groups_{name}_{_file_safe(column)}.png"] = run_group_fmr(summary, name, column)
    written = []
    for file_name, fig in figures.items():
        if fig is not None:
            fig.savefig(out_dir / file_name, dpi=110)
            written.append(file_name)
    return written
