"""The figures of README.md and docs/*.md, written from the files that hold them.

A held-out figure is stated once: in ``facecmp/calibrations/<mode>.json``, where
``training.fit_calibration`` stores it (``heldout``, ``coverage``, ``level``, ...). The documents
show it through markers that this module fills in, so a refit is followed by one command::

    <!-- table: KIND | ARG ... -->        a generated table (KIND: one of TABLES below)
    <!-- /table -->
    <!-- value: MODE | PATH | FORMAT -->1.64x<!-- /value -->   one figure in prose

``PATH`` names keys from the calibration's top, joined by ``/`` (``heldout/lfw/at/0.7/fmr``);
``FORMAT`` is one of FORMATS. The facecmp module table (``<!-- table: modules -->``) is read
from the library's source; speed figures (``<!-- table: bench | FILE | SECTION -->``) from the
results file a bench writes (bench/results/). Figures that no stored file holds (the
``python -m eval run`` reports, pipeline selection, the level trade-off, one-off timings) sit inside ``<!-- record: DATE · COMMAND -->``
... ``<!-- /record -->``: a record of that run, never rewritten here; ``tests/test_docs.py``
checks that each names its date and command and that no measured figure stands outside a
table, a value or a record.

    python -m training.doc_tables            # rewrite the tables and values in place
    python -m training.doc_tables --check    # exit 1 naming each that differs, and each held-out
                                             # set of a calibration that no table shows
"""
from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import re
import sys
from pathlib import Path

from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, CROSS_AGE_SCORE_CUTOFF, PROMISE_FLOOR, SCORE_PER_DECADE

REPO = Path(__file__).resolve().parents[1]
CALIBRATIONS = REPO / "facecmp" / "calibrations"
DOCUMENTS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))

BLOCK = re.compile(r"(<!-- table:(?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)
VALUE = re.compile(r"(<!-- value:(?P<spec>[^>]*?) -->)(?P<body>.*?)(<!-- /value -->)")
AT, CROSS = f"{ANCHOR_SCORE:g}", f"{CROSS_AGE_SCORE_CUTOFF:g}"
OLD_PHOTOS = "fgnet-dev"   # the held-out set of real old photos the summary shows, where a calibration has it


def calibrations() -> dict[str, dict]:
    """Each mode's calibration file as stored, by mode name."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(CALIBRATIONS.glob("*.json"))}


# -- formatting --------------------------------------------------------------------------------------

def ratio(fmr: float) -> str:
    """A false-match rate as a multiple of the promise at the anchor."""
    return f"{fmr / ANCHOR_FMR:.2f}"


def pct(share: float, digits: int = 1) -> str:
    return f"{100 * share:.{digits}f} %"


def sci(value: float) -> str:
    return f"{value:.2e}"


def power(value: float) -> str:
    """1e-3, not 0.001 or 1e-03."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def one_in(fmr: float) -> str:
    return f"1 in {float(f'{1 / fmr:.2g}'):,.0f}"


#: FORMAT of a value marker: (number format, unit); a path with ``*`` gives the range "low–high".
FORMATS = {"ratio": (ratio, "x"), "pct": (lambda v: f"{100 * v:.1f}", " %"), "sci": (sci, ""),
           "int": (lambda v: f"{v:,}", ""), "per_1000": (lambda v: f"{1000 * v:.1f}", " in 1,000"),
           "one_in": (one_in, ""), "text": (str, "")}


def table(header: list[str], rows: list[list]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "".join("| " + " | ".join(str(cell) for cell in line) + " |\n" for line in lines)


def before_after(before: str, after: str) -> str:
    return f"{before} → **{after}**"


def lookup(calibration: dict, path: str) -> list:
    """The values at ``path`` (keys joined by ``/``; a ``*`` in a key matches as in fnmatch)."""
    nodes = [calibration]
    for key in path.split("/"):
        nodes = [node[k] for node in nodes for k in (fnmatch.filter(node, key) if "*" in key else [key])]
    if not nodes:
        raise KeyError(f"nothing at {path!r}")
    return nodes


# -- the tables --------------------------------------------------------------------------------------

def promise_table(cals: dict) -> str:
    """What a score stands for (facecmp.contract): the same for every mode."""
    decades = (round(ANCHOR_SCORE + k * SCORE_PER_DECADE, 2) for k in (-1, 1, 2))
    scores = sorted({PROMISE_FLOOR, CROSS_AGE_SCORE_CUTOFF, ANCHOR_SCORE, *decades})
    fmr = [ANCHOR_FMR * 10 ** (-(s - ANCHOR_SCORE) / SCORE_PER_DECADE) for s in scores]
    return (f"    FMR(s) = {power(ANCHOR_FMR)} * 10 ** (-(s - {ANCHOR_SCORE:g}) / {SCORE_PER_DECADE:g})    "
            f"for s >= {PROMISE_FLOOR:g}\n\n"
            + table(["score", *(f"**{s:g}**" if s == ANCHOR_SCORE else f"{s:g}" for s in scores)],
                    [["promised FMR", *(f"**{one_in(f)}**" if s == ANCHOR_SCORE else one_in(f)
                                        for s, f in zip(scores, fmr))]]))


def people_interval(at: dict) -> str:
    """"low–high" of a held-out rate's 95 % interval with the people redrawn, as multiples of the promise."""
    low, high = at["fmr_95_by_people"]
    return f"{ratio(low)}–{ratio(high)}"


def span(values: list[float], number=ratio) -> str:
    """"low–high" of ``values`` as ``number`` writes them; one figure where both read the same."""
    low, high = number(min(values)), number(max(values))
    return low if low == high else f"{low}–{high}"


def summary_table(cals: dict, groups_key: str, pairs_key: str) -> str:
    """The README's one table: held-out FMR at 0.7 as a multiple of the promise, by population
    (ranges over groups and degradations), and same-person acceptance."""
    modes = list(cals)
    held = {mode: cal["heldout"] for mode, cal in cals.items()}

    def groups(mode, prefix):
        return [g["normalised"][AT] for name, g in held[mode][groups_key].items() if name.startswith(prefix)]

    def degraded(mode, kinds, pair="both degraded"):
        rates = [s[kind][pair][AT] for s in held[mode]["degraded"].values() for kind in kinds if kind in s]
        flagged = span([r["flagged_false_matches"] for r in rates], lambda v: f"{100 * v:.0f}")
        return (f"{span([r['fmr'] for r in rates])} ({flagged} % of the false matches flagged; the pairs not "
                f"flagged {span([r['fmr_unflagged'] for r in rates])})")

    kinds = sorted({kind for mode in modes for s in held[mode]["degraded"].values() for kind in s} - {"undegraded"})
    ordinary = [kind for kind in kinds if kind != "scan"]
    rows = [
        ["LFW folds 6–10 (adult celebrities), all different-person pairs",
         *(ratio(held[m]["lfw"]["at"][AT]["fmr"]) for m in modes)],
        [f"{groups_key}: pairs by the younger face's age band", *(span(groups(m, "younger face")) for m in modes)],
        [f"{groups_key}: adult pairs of one labelled race or gender", *(span(groups(m, "adults, both")) for m in modes)],
        [f"{pairs_key}: celebrities photographed years apart, all pairs of two different people",
         *(ratio(held[m][pairs_key]["normalised"]["all pairs across folders"][AT]) for m in modes)],
        [f"two degraded copies ({', '.join(ordinary)})", *(degraded(m, ordinary) for m in modes)],
        ["two copies made to look like old scanned prints", *(degraded(m, ["scan"]) for m in modes)],
        ["one degraded copy beside an undegraded photo", *(degraded(m, kinds, "one degraded") for m in modes)],
    ]
    old = [m for m in modes if OLD_PHOTOS in held[m]]

    def old_photos(mode, group):
        at = held[mode][OLD_PHOTOS]["held-out people"]["normalised"][group][AT]
        return (f"{ratio(at['fmr'])} ({people_interval(at)} with the people redrawn; {at['false_match_people']} pairs of people "
                f"behind its false matches; {100 * (at['flagged_false_matches'] or 0):.0f} % of them flagged)")
    if old:
        rows += [[f"{OLD_PHOTOS} held-out people: real old photos, all pairs of two different people",
                  *(old_photos(m, "all") if m in old else "—" for m in modes)],
                 [f"{OLD_PHOTOS} held-out people: the same, adults", *(old_photos(m, "adults (both 18+)") if m in old
                                                                       else "—" for m in modes)]]
    accept = [
        ["LFW folds 6–10 same person", *(pct(1 - held[m]["lfw"]["at"][AT]["fnmr"]) for m in modes)],
        [f"{pairs_key} same person years apart (at {AT} / {CROSS})",
         *(f"{pct(held[m][pairs_key]['normalised'][AT]['accept_same'])} / "
           f"{pct(held[m][pairs_key]['normalised'][CROSS]['accept_same'])}" for m in modes)],
    ]
    if old:
        for gap, years in (("age gap 0-6", "0–5"), ("age gap 16-", "16 or more")):
            accept.append([f"{OLD_PHOTOS} same person on real old photos {years} years apart (at {AT} / {CROSS})",
                           *(" / ".join(pct(held[m][OLD_PHOTOS]["held-out people"]["normalised"][gap][c]["accept_same"], 0)
                                        for c in (AT, CROSS)) if m in old else "—" for m in modes)])
    return (table([f"held out: FMR at {AT} ÷ {power(ANCHOR_FMR)}", *(f"`{m}`" for m in modes)], rows) + "\n"
            + table([f"held out: accepted at {AT}", *(f"`{m}`" for m in modes)], accept))


def groups_table(cals: dict, mode: str, groups_key: str) -> str:
    """Different-person pairs of the cohort set's held-out half by group, and LFW folds 6-10:
    FMR of the cosine-only map (before the normalisation) and of the shipped calibration."""
    held = cals[mode]["heldout"]
    rows = [[name, f"{g['normalised']['pairs']:,}", f"{g['cosine-only'][AT]:.1e}", f"**{g['normalised'][AT]:.1e}**",
             ratio(g["normalised"][AT]), f"{g['normalised'][CROSS]:.1e}"] for name, g in held[groups_key].items()]
    lfw, before = held["lfw"], held["lfw_cosine_only"]
    rows.append([f"LFW folds {lfw['folds']}, all pairs", f"{lfw['impostor_pairs']:,}", f"{before['at'][AT]['fmr']:.2e}",
                 f"**{lfw['at'][AT]['fmr']:.2e}**", ratio(lfw["at"][AT]["fmr"]), f"{lfw['at'][CROSS]['fmr']:.2e}"])
    return table(["different-person pairs", "pairs", f"cosine-only: FMR at {AT}", f"**now: FMR at {AT}**",
                  f"now ÷ {power(ANCHOR_FMR)}", f"now: FMR at {CROSS}"], rows)


def cost_table(cals: dict, pairs_key: str) -> str:
    """What the normalisation costs or wins on LFW (pairs.txt, all pairs) and a pairs file, per
    mode: the cosine-only map → the shipped calibration."""
    rows = []
    for mode, cal in cals.items():
        held = cal["heldout"]
        now, old = held["lfw"], held["lfw_cosine_only"]
        pairs = held[pairs_key]
        others = [cut for cut in now["at"] if cut not in (AT, CROSS)]
        rows.append([f"`{mode}`", before_after(pct(old["accuracy_10fold"], 2), pct(now["accuracy_10fold"], 2)),
                     before_after(pct(old["tar_at_far_1e-3_all_pairs"], 2), pct(now["tar_at_far_1e-3_all_pairs"], 2)),
                     before_after(pct(old["at"][AT]["fnmr"], 2), pct(now["at"][AT]["fnmr"], 2)),
                     *(before_after(pct(pairs["cosine-only"][cut]["accept_same"]),
                                    pct(pairs["normalised"][cut]["accept_same"])) for cut in (AT, CROSS)),
                     " / ".join(f"{now['at'][cut]['fmr']:.1e}" for cut in others)])
    return table(["mode (cosine-only → now)", "LFW 10-fold accuracy", f"TAR at FAR {power(ANCHOR_FMR)} (all pairs)",
                  f"LFW FNMR at {AT}", f"{pairs_key} same person accepted at {AT}", f"at {CROSS}",
                  f"LFW FMR at {' / '.join(others)}"], rows)


def matched(rates: dict) -> str:
    low, high = rates["fmr_95"]
    return f"{rates['false_matches']} ({1000 * low:.1f}–{1000 * high:.1f})"


def pairs_table(cals: dict, mode: str, pairs_key: str) -> str:
    """A pairs file (CACD-VS dev): acceptance, the protocol's false matches with their 95 %
    interval, and all pairs across its folders."""
    held = cals[mode]["heldout"][pairs_key]
    maps = ("cosine-only", "normalised")
    across = held["normalised"]["all pairs across folders"]["pairs"]
    impostors = held["pairs"] // 2

    def row(label, cell):
        return [label, *(cell(held[m]) if m == "cosine-only" else f"**{cell(held[m])}**" for m in maps)]

    return table([f"{pairs_key} ({held['pairs']:,} pairs, {held['without_face']} without a face)", "cosine-only map",
                  "**now**"], [
        row(f"same person accepted at {AT} / {CROSS}",
            lambda h: f"{pct(h[AT]['accept_same'])} / {pct(h[CROSS]['accept_same'])}"),
        row(f"protocol's different-person pairs matched at {AT} (of about {impostors:,}; 95 % interval in 1,000)",
            lambda h: matched(h[AT])),
        row(f"the same at {CROSS}", lambda h: matched(h[CROSS])),
        row(f"all {across:,} different-person pairs across folders: FMR at {AT} / {CROSS}",
            lambda h: " / ".join(f"{h['all pairs across folders'][c]:.2e}" for c in (AT, CROSS))),
        row(f"the same at {AT} ÷ {power(ANCHOR_FMR)}", lambda h: ratio(h["all pairs across folders"][AT])),
    ])


def sweep_table(cals: dict, mode: str, pairs_key: str) -> str:
    """A pairs file at cutoffs above the anchor: what holding its protocol pairs to 1 in 1,000 costs."""
    held = cals[mode]["heldout"][pairs_key]
    rows = [[cut, *(f"{pct(held[m]['tradeoff'][cut]['accept_same'])}" for m in ("normalised", "cosine-only")),
             *(matched(held[m]["tradeoff"][cut]) for m in ("normalised", "cosine-only"))]
            for cut in held["normalised"]["tradeoff"]]
    return table(["cutoff", "same person accepted: now", "cosine-only",
                  "different-person pairs matched (95 % in 1,000): now", "cosine-only"], rows)


def age_gap_table(cals: dict, mode: str, key: str) -> str:
    """Same-person pairs by estimated age gap: acceptance, cosine-only → now."""
    rows = [[band, f"{g['pairs']:,}", *(before_after(pct(g["cosine-only"][cut]), pct(g["normalised"][cut]))
                                        for cut in (AT, CROSS))]
            for band, g in cals[mode]["heldout"][key].items()]
    return table(["same-person pairs (LFW folds 6–10)", "pairs", f"accepted at {AT}: cosine-only → now", f"at {CROSS}"],
                 rows)


def degraded_table(cals: dict, mode: str) -> str:
    """Held-out sets with seeded degraded copies (heldout.degraded): at 0.7, for two copies and for
    a copy beside an undegraded photo, FMR ÷ 1e-3 (false matches), the share of false matches the
    answer flags (within_calibration false), the share of all pairs flagged, same-person acceptance."""
    rows = []
    for name, kinds in cals[mode]["heldout"]["degraded"].items():
        for kind, entry in kinds.items():
            parts = {"both degraded": entry} if kind == "undegraded" else entry
            cells = []
            for part in ("both degraded", "one degraded"):
                if kind == "undegraded" and part == "one degraded":
                    cells += ["—"] * 4
                    continue
                try:
                    at, flagged = parts[part][AT], parts[part]["flagged_pairs"]
                    cells += [f"{ratio(at['fmr'])} ({at['false_matches']:,})",
                              f"{100 * at['flagged_false_matches']:.0f} %", f"{100 * flagged:.0f} %",
                              f"{100 * at['accept_same']:.0f} % of {at['same_pairs']:,}" if "accept_same" in at else "—"]
                except (KeyError, TypeError) as exc:
                    raise ValueError(f"{mode}: heldout/degraded/{name}/{kind} is not laid out as the degraded "
                                     f"table reads it (missing {exc}); show it with <!-- table: heldout | "
                                     f"degraded/{name} --> instead") from exc
            rows.append([name, kind, f"{entry.get('copies', '—')}", *cells])
    head = [f"FMR ÷ {power(ANCHOR_FMR)} (false matches)", "false matches flagged", "pairs flagged", "same person accepted"]
    return table(["held-out set", "degradation", "copies", *(f"two copies: {h}" for h in head),
                  *(f"copy + photo: {h}" for h in head)], rows)


def fit_table(cals: dict) -> str:
    """What each calibration was fitted with and where its coverage ends."""
    def quantile(grid, q):   # the stored percentile grids run 0, 5, ..., 100
        return grid[round(q * (len(grid) - 1))]

    rows = [
        ("cohort faces (AS-norm), top k", lambda c: f"{c['normaliser']['cohort_size']:,}, {c['normaliser']['top_k']}"),
        ("level: offset of the similarity axis", lambda c: f"{c['level']['offset']:+.2f}"),
        ("quality floor (`coverage.quality`)", lambda c: f"{c['coverage']['quality']:g}"),
        ("quality, 5th percentile of the calibration faces",
         lambda c: f"{quantile(c['coverage']['quality_percentiles'], 0.05):g}"),
        ("small-face limit, px (`coverage.face_width`: measured to fail below, or the smallest measured)",
         lambda c: f"{c['coverage']['face_width']:g}"),
        ("cohort similarity limits", lambda c: "–".join(f"{v:g}" for v in c["coverage"]["cohort_similarity"])),
        ("old-print limit (`coverage.old_print`: two old prints measured to fail from here)",
         lambda c: f"{c['coverage']['old_print']:g}" if "old_print" in c["coverage"] else "none (none measured to fail)"),
        ("old-print model: old photos (people), ordinary faces, ROC AUC (cross-validated by person)",
         lambda c: (f"{c['old_print_model']['old_photos']:,} ({c['old_print_model']['old_people']}), "
                    f"{c['old_print_model']['ordinary_faces']:,}, {c['old_print_model']['cv_roc_auc_by_person']:.3f}")
         if "old_print_model" in c else "—"),
        ("ages the age model was fitted on", lambda c: "–".join(f"{v:g}" for v in c["coverage"]["age_range"])),
        ("age bands over 3x the promise held out (named in answers)",
         lambda c: ", ".join(f"{b['low']}–{b['high'] - 1} ({ratio(b['fmr'])}x)"
                             for b in c["coverage"]["unkept_age_bands"]) or "none"),
        ("quality model: faces, degraded copies, R² (cross-validated by person)",
         lambda c: f"{c['quality_model']['faces']:,}, {c['quality_model']['degraded_copies']:,}, "
                   f"{c['quality_model']['cv_r2_by_person']:.2f}"),
    ]
    fit = {mode: c["level"][f"fit_fmr_at_{AT}"] for mode, c in cals.items()}
    body = [[label, *(value_of(c) for c in cals.values())] for label, value_of in rows]
    body += [[f"fit data, FMR at {AT} ÷ {power(ANCHOR_FMR)}: {g}",
              *(ratio(fit[m][g]) if g in fit[m] else "—" for m in cals)]
             for g in dict.fromkeys(g for groups in fit.values() for g in groups)]
    return table(["", *(f"`{m}`" for m in cals)], body)


def flat(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        return {path: value for key, child in node.items()
                for path, value in flat(child, f"{prefix} / {key}" if prefix else key).items()}
    return {prefix: node}


def cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "–".join(cell(v) for v in value)
    return str(value)


def heldout_table(cals: dict, key: str) -> str:
    """Any held-out entry (``key``: a path below ``heldout``, keys joined by ``/``), every stored
    figure of it, one column per mode: for a set that no table kind above knows yet."""
    def entry(cal):
        node = cal["heldout"]
        for part in key.split("/"):
            node = node.get(part, {})
        return node

    columns = {mode: flat(entry(cal)) for mode, cal in cals.items()}
    paths = list(dict.fromkeys(p for figures in columns.values() for p in figures))
    return table([f"`heldout` / {key}", *(f"`{m}`" for m in cals)],
                 [[p, *(cell(columns[m][p]) if p in columns[m] else "—" for m in cals)] for p in paths])


def library_imports() -> dict[str, list[str]]:
    """Each module of facecmp/ (dotted, without ``facecmp.``; the package itself is ``facecmp``)
    and the library modules it imports, deferred imports too."""
    files = {}
    for path in sorted((REPO / "facecmp").rglob("*.py")):
        parts = path.relative_to(REPO / "facecmp").with_suffix("").parts
        package = parts[:-1]                      # where a relative import starts
        files[".".join(package if parts[-1] == "__init__" else parts) or "facecmp"] = (path, package)
    out = {}
    for module, (path, package) in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join((*base, *([node.module] if node.module else [])))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "facecmp":
                target = node.module.removeprefix("facecmp").lstrip(".")
            elif isinstance(node, ast.Import):
                found.update(a.name.removeprefix("facecmp").lstrip(".") or "facecmp" for a in node.names
                             if a.name.split(".")[0] == "facecmp")
                continue
            else:
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}".lstrip(".")
                found.add(child if child in files else target or "facecmp")
        out[module] = sorted(found - {module})
    return out


def modules_table(cals: dict) -> str:
    """The library's modules (read from facecmp/) and which library modules each imports."""
    return table(["module (`facecmp.`…)", "imports of the library"],
                 [[f"`{m}`", ", ".join(f"`{d}`" for d in deps) or "nothing"] for m, deps in library_imports().items()])


def old_photos_table(cals: dict, mode: str, key: str, half: str) -> str:
    """A set of real old photos with identities (heldout.<key>.<half>): per group of pairs, FMR at
    0.7 ÷ 1e-3 (cosine-only → now) with its interval over redrawn people, the false matches, how
    many pairs of people they come from, the share of them flagged, and FMR at 0.67."""
    entry = cals[mode]["heldout"][key][half]
    rows = []
    for group, now in entry["normalised"].items():
        if not isinstance(now, dict) or group.startswith("age gap") or not now["impostor_pairs"]:
            continue
        before, at, cross = entry["cosine-only"][group], now[AT], now[CROSS]
        flagged = at["flagged_false_matches"]
        people = "—" if not at["false_matches"] else f"{at['false_match_people']} ({100 * at['top_people_share']:.0f} %)"
        rows.append([group, f"{now['impostor_pairs']:,}", before_after(ratio(before[AT]["fmr"]), ratio(at["fmr"])),
                     people_interval(at), f"{at['false_matches']:,}", people,
                     "—" if flagged is None else f"{100 * flagged:.0f} %",
                     ratio(at["fmr_unflagged"]), before_after(ratio(before[CROSS]["fmr"]), ratio(cross["fmr"]))])
    return table(["different people (pairs by the younger face's labelled age)", "pairs",
                  f"FMR at {AT} ÷ {power(ANCHOR_FMR)}: cosine-only → now", "95 % interval, people redrawn",
                  "false matches", "pairs of people behind them (the largest's share)", "of them flagged",
                  "unflagged pairs: FMR ÷ 1e-3", f"FMR at {CROSS} ÷ 1e-3"], rows)


def old_photos_same_table(cals: dict, mode: str, key: str, half: str) -> str:
    """Same-person pairs of a set of real old photos (heldout.<key>.<half>): acceptance at 0.7 and
    0.67, cosine-only → now, by the age gap between the photos and by the younger face's age."""
    entry = cals[mode]["heldout"][key][half]
    rows = []
    for group, now in entry["normalised"].items():
        if not isinstance(now, dict) or not now["genuine_pairs"] or group.startswith("adults"):
            continue
        before = entry["cosine-only"][group]
        name = group.replace("age gap 0-6", "age gap 0-5 years").replace("age gap 6-16", "age gap 6-15 years") \
                    .replace("age gap 16-", "age gap 16+ years")
        rows.append([name, f"{now['genuine_pairs']:,}",
                     *(before_after(pct(before[cut]["accept_same"], 0), pct(now[cut]["accept_same"], 0)) for cut in (AT, CROSS))])
    return table(["same person", "pairs", f"accepted at {AT}: cosine-only → now", f"at {CROSS}"], rows)


def flagged_faces_table(cals: dict) -> str:
    """Share of faces each reason marks (heldout."flagged faces"), per mode and held-out set."""
    reasons = ["quality", "face_width", "old_print", "cohort_similarity", "any"]
    rows = [[mode, name, f"{entry['faces']:,}", *(pct(entry[r]) for r in reasons)]
            for mode, cal in cals.items() for name, entry in cal["heldout"]["flagged faces"].items()]
    return table(["mode", "held-out faces", "faces", "low quality", "small face", "old print", "unusual neighbourhood",
                  "any reason"], rows)


#: The speed targets of a ``bench`` table: (what, the pipeline whose ratio to the recipe is read, at least).
SPEED_TARGETS = (("FAST, dataset embedding", "fast, 2 worker processes", 4.0),
                 ("ACCURATE, dataset embedding", "accurate, 2 worker processes", 1.0),
                 ("FAST compare of two 640x480 photos", "compare", 8.0))


def bench_table(cals: dict, path: str, section: str) -> str:
    """A section of a bench's results file (``path`` from the repository root, as
    bench/bench_dataset.py writes it): ``run`` (command, machine, load), ``targets`` (each
    speed target against its ratios to the recipe, one a round), ``rounds`` (every pipeline's
    images/s and compare p50 per round), ``stages`` (CPU time a photo per stage on one thread
    and its share of the FLOP limit, per mode) or ``pass-shape`` (the embedder's rate in passes of
    FACES_PER_PASS faces and of more)."""
    results = json.loads((REPO / path).read_text())
    rounds = results["rounds"]

    def ratios(pipeline: str) -> list[float]:
        if pipeline == "compare":
            return [r["compare_p50_ms"]["recipe"] / r["compare_p50_ms"]["fast"] for r in rounds]
        return [r["images_per_s"][pipeline] / r["images_per_s"]["recipe"] for r in rounds]

    def times(values: list[float]) -> str:
        return span(values, lambda v: f"{v:.2f}") + "x"

    if section == "run":
        machine = results["machine"]
        bf16 = "AMX" if machine["amx_bf16"] else "AVX-512 BF16" if machine["avx512_bf16"] else "no native bf16"
        return table(["command", "date", "machine", "load average (1 min) before, per round"],
                     [[f"`{results['command']}`", results["date"], f"{machine['cpu']}, {machine['cores']} cores, {bf16}",
                       ", ".join(f"{v:.1f}" for v in [results["load_before"], *(r["load"] for r in rounds)])]])
    if section == "targets":
        return table(["target", "x the recipe, per round", "met"],
                     [[f"{what} ≥ {least:g}x", ", ".join(times([v]) for v in ratios(pipeline)),
                       "yes" if min(ratios(pipeline)) >= least else "no"] for what, pipeline, least in SPEED_TARGETS])
    if section == "rounds":
        rows = [[f"dataset: {name if name != 'recipe' else 'facenet-pytorch batched recipe'}",
                 *(f"{r['images_per_s'][name]:.1f} images/s" for r in rounds),
                 "—" if name == "recipe" else times(ratios(name))] for name in rounds[0]["images_per_s"]]
        rows += [[f"compare, 640x480: {name if name != 'recipe' else 'facenet-pytorch README recipe'}",
                  *(f"{r['compare_p50_ms'][name]:.0f} ms p50" for r in rounds),
                  "—" if name == "recipe" else times(ratios("compare"))] for name in rounds[0]["compare_p50_ms"]]
        rows += [[f"worker pool start ({name}: 2 processes, first 2 batches)", *(f"{r['worker_start_s'][name]:.1f} s"
                                                                                 for r in rounds), "—"]
                 for name in rounds[0]["worker_start_s"]]
        return table(["pipeline", *(f"round {n}" for n in range(1, len(rounds) + 1)), "x the recipe"], rows)
    if section == "stages":
        stages = results["stages"]
        modes = [m for m in ("fast", "accurate") if m in stages]
        names = {"embed": "embed (passes a face: " + ", ".join(f"{m.upper()} {stages[m]['passes_a_face']}" for m in modes)
                 + ")"}
        rows = [[names.get(row["stage"], row["stage"]), *(f"{stages[m]['stages'][i]['ms_a_photo']:.2f} ms" + (
                    f" ({100 * stages[m]['stages'][i]['limit_share']:.0f} % of the {row['precision']} limit)"
                    if stages[m]['stages'][i]['limit_share'] else "") for m in modes)]
                for i, row in enumerate(stages[modes[0]]["stages"])]
        rows.append(["total (one core: photos/s)", *(f"{stages[m]['ms_a_photo']:.1f} ms ({1000 / stages[m]['ms_a_photo']:.1f})"
                                                    for m in modes)])
        return table(["stage (CPU time a photo, one thread)", *(m.upper() for m in modes)], rows)
    if section == "pass-shape":
        shape = results["stages"]["pass_shape"]
        rates = {int(batch): rate for batch, rate in shape["images_per_cpu_s"].items()}
        return table(["FAST's embedder, one thread", "images per CPU second", "x passes of the pass shape"],
                     [[f"passes of {batch} faces" + (" (the pass shape, every path)" if batch == shape["faces_per_pass"]
                                                     else ""), f"{rate:.1f}", f"{rate / rates[shape['faces_per_pass']]:.2f}x"]
                      for batch, rate in rates.items()])
    raise ValueError(f"unknown bench section {section!r} (run, targets, rounds, stages, pass-shape)")


#: KIND: (function(calibrations, *args), the heldout keys it shows given its args)
TABLES = {
    "promise": (promise_table, lambda: []),
    "summary": (summary_table, lambda groups, pairs: ["lfw", groups, pairs, "degraded", OLD_PHOTOS]),
    "groups": (groups_table, lambda mode, groups: [groups, "lfw", "lfw_cosine_only"]),
    "cost": (cost_table, lambda pairs: ["lfw", "lfw_cosine_only", pairs]),
    "pairs": (pairs_table, lambda mode, pairs: [pairs]),
    "sweep": (sweep_table, lambda mode, pairs: [pairs]),
    "age-gap": (age_gap_table, lambda mode, key: [key]),
    "degraded": (degraded_table, lambda mode: ["degraded"]),
    "fit": (fit_table, lambda: []),
    "heldout": (heldout_table, lambda key: [key.split("/")[0]]),
    "modules": (modules_table, lambda: []),
    "old-photos": (old_photos_table, lambda mode, key, half: [key]),
    "old-photos-same": (old_photos_same_table, lambda mode, key, half: [key]),
    "flagged-faces": (flagged_faces_table, lambda: ["flagged faces"]),
    "bench": (bench_table, lambda path, section: []),
}


def parse_spec(spec: str) -> tuple[str, list[str]]:
    kind, *args = [part.strip() for part in spec.split("|")]
    return kind, args


def render(spec: str, cals: dict) -> str:
    kind, args = parse_spec(spec)
    if kind not in TABLES:
        raise ValueError(f"unknown table kind {kind!r} in <!-- table:{spec} --> (kinds: {', '.join(TABLES)})")
    try:
        return TABLES[kind][0](cals, *args)
    except KeyError as exc:   # a refit that stores its figures under other keys
        raise ValueError(f"<!-- table: {spec.strip()} -->: the calibration files have no {exc}; adapt the table kind "
                         f"{kind!r} in training/doc_tables.py, or show the entry with <!-- table: heldout | KEY -->"
                         ) from exc


def render_value(spec: str, cals: dict) -> str:
    mode, path, form = [part.strip() for part in spec.split("|")]
    number, unit = FORMATS[form]
    return span(lookup(cals[mode], path), number) + unit


def rewrite(text: str, cals: dict) -> str:
    text = BLOCK.sub(lambda m: m[1] + render(m["spec"], cals) + m[4], text)
    return VALUE.sub(lambda m: m[1] + render_value(m["spec"], cals) + m[4], text)


def shown_heldout_keys(documents=DOCUMENTS) -> set[str]:
    """The held-out entries that the documents' tables (and values) show."""
    shown = set()
    for path in documents:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            kind, args = parse_spec(match["spec"])
            shown.update(TABLES[kind][1](*args))
        for match in VALUE.finditer(text):
            parts = [p.strip() for p in match["spec"].split("|")][1].split("/")
            if parts[0] == "heldout":
                shown.add(parts[1])
    return shown


def unshown_heldout(cals: dict, documents=DOCUMENTS) -> dict[str, list[str]]:
    """Held-out entries of a calibration that no table shows, by mode."""
    shown = shown_heldout_keys(documents)
    return {mode: missing for mode, cal in cals.items() if (missing := sorted(set(cal["heldout"]) - shown))}


def stale(documents=DOCUMENTS) -> list[str]:
    """The documents whose generated tables or values differ from the files (relative paths)."""
    cals = calibrations()
    return [str(p.relative_to(REPO)) for p in documents if rewrite(p.read_text(), cals) != p.read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("documents", nargs="*", type=Path, default=list(DOCUMENTS),
                        help="default: README.md and docs/*.md")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is out of date")
    args = parser.parse_args(argv)
    cals, status = calibrations(), 0
    for path in args.documents:
        text = path.read_text()
        new = rewrite(text, cals)
        if new == text:
            continue
        if args.check:
            print(f"{path}: tables or values differ from the calibration files; run python -m training.doc_tables",
                  file=sys.stderr)
            status = 1
        else:
            path.write_text(new)
            print(f"rewrote {path}")
    for mode, missing in unshown_heldout(cals).items():
        print(f"{mode}: held-out entries that no table shows: {', '.join(missing)}; add "
              "<!-- table: heldout | NAME --> and <!-- /table --> on the next line (or a kind of "
              "training.doc_tables.TABLES) to docs/score.md, then run python -m training.doc_tables", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
