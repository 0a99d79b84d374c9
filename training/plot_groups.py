"""Plot the held-out false-match rate at the anchor score (0.7) by group, before and after normalisation.

Reads what ``training/fit_calibration.py`` stored in the packaged calibrations (nothing is
recomputed) and writes ``docs/fmr_by_group.png``: one panel per mode, one row per group, the
cosine-only calibration and the normalised one on a log scale, the promise (1e-3) and the
3x band around it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from facecmp.calibration import load_calibration
from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, PROMISE_TOLERANCE
from facecmp.extras import require
from facecmp.modes import MODES


def plot(out: Path) -> Path:
    plt = require("matplotlib.pyplot", "eval")
    modes = sorted(MODES)
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 6), sharey=True)
    for ax, mode in zip(axes, modes):
        heldout = load_calibration(mode, MODES[mode].fingerprint()).info["heldout"]
        groups = {name: value for key, part in heldout.items() if key.endswith("held-out half")
                  for name, value in part.items()}
        anchor = f"{ANCHOR_SCORE:g}"
        groups["LFW folds 6-10"] = {"normalised": {anchor: heldout["lfw"]["at"][anchor]["fmr"]},
                                    "cosine-only": {anchor: heldout["lfw_cosine_only"]["at"][anchor]["fmr"]}}
        names = list(groups)[::-1]
        rows = range(len(names))
        ax.axvspan(ANCHOR_FMR / PROMISE_TOLERANCE, ANCHOR_FMR * PROMISE_TOLERANCE, color="tab:green", alpha=0.12,
                   label=f"within {PROMISE_TOLERANCE:g}x")
        ax.axvline(ANCHOR_FMR, color="tab:green", lw=1)
        for label, colour, marker in (("cosine-only", "tab:red", "x"), ("normalised", "tab:blue", "o")):
            values = [max(groups[n][label][anchor] or 0.0, 1e-6) for n in names]   # None: no pairs
            ax.scatter(values, rows, color=colour, marker=marker,
                       label={"cosine-only": "before (cosine only)", "normalised": "after (normalised)"}[label])
        ax.set_xscale("log")
        ax.set_yticks(list(rows), names)
        ax.set_xlabel(f"false-match rate at score {anchor} (held out)")
        ax.set_title(f"{mode}: promise 1 in {1 / ANCHOR_FMR:,.0f}")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "fmr_by_group.png")
    print(plot(parser.parse_args().out))


if __name__ == "__main__":
    main()
