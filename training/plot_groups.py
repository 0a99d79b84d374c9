"""Plot the held-out false-match rate at 0.7 by group, before and after normalisation.

Reads what ``training/fit_calibration.py`` stored in the packaged calibrations (nothing is
recomputed) and writes ``docs/fmr_by_group.png``: one panel per mode, one row per group, the
cosine-only calibration and the normalised one on a log scale, the promise (1e-3) and the
3x band around it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from facecmp.calibration import load_calibration
from facecmp.extras import require
from facecmp.modes import MODES

PROMISE, TOLERANCE = 1e-3, 3.0


def plot(out: Path) -> Path:
    plt = require("matplotlib.pyplot", "eval")
    modes = sorted(MODES)
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 6), sharey=True)
    for ax, mode in zip(axes, modes):
        heldout = load_calibration(mode, MODES[mode].fingerprint()).info["heldout"]
        groups = {name: value for key, part in heldout.items() if key.endswith("held-out half")
                  for name, value in part.items()}
        groups["LFW folds 6-10"] = {"normalised": {"0.7": heldout["lfw"]["at"]["0.7"]["fmr"]},
                                    "cosine-only": {"0.7": heldout["lfw_cosine_only"]["at"]["0.7"]["fmr"]}}
        names = list(groups)[::-1]
        rows = range(len(names))
        ax.axvspan(PROMISE / TOLERANCE, PROMISE * TOLERANCE, color="tab:green", alpha=0.12, label="within 3x")
        ax.axvline(PROMISE, color="tab:green", lw=1)
        for label, colour, marker in (("cosine-only", "tab:red", "x"), ("normalised", "tab:blue", "o")):
            values = [max(groups[n][label]["0.7"], 1e-6) for n in names]
            ax.scatter(values, rows, color=colour, marker=marker,
                       label={"cosine-only": "before (cosine only)", "normalised": "after (normalised)"}[label])
        ax.set_xscale("log")
        ax.set_yticks(list(rows), names)
        ax.set_xlabel("false-match rate at score 0.7 (held out)")
        ax.set_title(f"{mode}: promise 1 in 1,000")
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
