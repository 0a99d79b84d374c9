"""Held-out measurement of a fitted calibration: what ``training/fit_calibration.py`` stores under
``heldout`` (its docstring, step 4), and the age bands the answers flag.

Every figure is counted by :mod:`eval.metrics` (:func:`pair_rates`). The engine for a face set
with identities is :func:`face_set_rates`: over every pair of its faces, FMR at the cutoffs
overall and by group, the share of false matches the answer flags (``within_calibration =
False``) and same-person acceptance by group. LFW folds 6-10, the cohort set's held-out half and
the pairs across CACD-VS's folders are measured with it; a new held-out set (say one with
identities and ages, such as fgnet-dev's ``labels.csv``) needs its loader and one call::

    data = attach_labels(load_embeddings(npz), labels_csv)      # label_subject, label_age, age, fit
    rows = np.flatnonzero(data["ok"])
    groups = {**labelled_groups(data, rows),                      # younger face's age band
              **named_groups(GapBands(data["age"][rows], AGE_GAP_EDGES, "age gap"))}
    overall, by_group = face_set_rates(calibration, data["embeddings"][rows], stats[rows],
                                       data["label_subject"][rows], groups, face_widths=data["face_width"][rows])
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval.groups import AGE_EDGES, GroupSpec, make_grouping
from eval.metrics import cutoff_at_fmr, exact_rate_interval, kfold_accuracy, match_counts
from facecmp.calibration import Calibration
from facecmp.contract import ANCHOR_FMR, ANCHOR_SCORE, CROSS_AGE_SCORE_CUTOFF, PROMISE_TOLERANCE, SCORE_PER_DECADE
from facecmp.normalisation import FaceStats
from training.fit_data import ADULT_AGE, folder_identities, labelled_groups, pairs_file_rows
from training.lfw_protocol import view2_pairs
from training.pair_walks import identity_pairs, pair_blocks

#: One decade looser than the anchor, the cross-age cutoff, the anchor, one decade stricter.
CUTOFFS = (round(ANCHOR_SCORE - SCORE_PER_DECADE, 2), CROSS_AGE_SCORE_CUTOFF, ANCHOR_SCORE,
           round(ANCHOR_SCORE + SCORE_PER_DECADE, 2))
#: The cutoffs of the pairs-file trade-off: the anchor to one decade stricter, in steps of 0.01.
TRADEOFF_CUTOFFS = tuple(np.round(np.arange(ANCHOR_SCORE, ANCHOR_SCORE + SCORE_PER_DECADE + 1e-9, 0.01), 2))
AGE_GAP_EDGES = (0, 5, 10, 20, math.inf)
#: Age gaps between two photos of one person on real old photos: 0-5, 6-15 and 16 years or more.
OLD_PHOTO_AGE_GAP_EDGES = (0, 6, 16, math.inf)
PEOPLE_DRAWS = 1_000   # draws of the people of a small set for its FMR's interval


def _key(cutoff: float) -> str:
    return f"{cutoff:g}"


def pair_rates(genuine, impostor, *, cutoffs=CUTOFFS, impostor_flagged=None, interval: bool = False) -> dict:
    """Rates at each cutoff of scored pairs, counted by :func:`eval.metrics.match_counts`.

    Returns ``impostor_pairs``, ``genuine_pairs`` and per cutoff (key ``f"{cutoff:g}"``): ``fmr``
    (None without impostor pairs), ``false_matches``; with genuine pairs ``fnmr`` and
    ``accept_same`` (1 - FNMR, the share of same-person pairs accepted); with ``interval`` the exact
    95 % interval of the FMR (:func:`eval.metrics.exact_rate_interval`, to 3 significant digits)
    as ``fmr_95``. With ``impostor_flagged`` ((n_impostor,) bool: the answer says
    ``within_calibration = False``): ``flagged_pairs`` (share of impostor pairs flagged) and per
    cutoff ``flagged_false_matches`` (share of the false matches flagged; None without any) and
    ``fmr_unflagged`` (FMR among the unflagged pairs; 0 where every pair is flagged: then no
    unflagged pair is a false match).
    """
    impostor = np.asarray(impostor, dtype=np.float64)
    false_matches, n_impostor, false_non_matches, n_genuine = match_counts(genuine, impostor, cutoffs=cutoffs)
    out = {"impostor_pairs": int(n_impostor), "genuine_pairs": int(n_genuine)}
    if impostor_flagged is not None:
        flagged = np.asarray(impostor_flagged, dtype=bool)
        flagged_matches, n_flagged, _, _ = match_counts([], impostor[flagged], cutoffs=cutoffs)
        out["flagged_pairs"] = n_flagged / n_impostor if n_impostor else None
    if interval:
        low, high = exact_rate_interval(false_matches, np.full(len(cutoffs), n_impostor))
    for k, cutoff in enumerate(cutoffs):
        row = {"fmr": false_matches[k] / n_impostor if n_impostor else None, "false_matches": int(false_matches[k])}
        if n_genuine:
            row["fnmr"] = false_non_matches[k] / n_genuine
            row["accept_same"] = (n_genuine - false_non_matches[k]) / n_genuine
        if interval:
            row["fmr_95"] = [float(f"{low[k]:.3g}"), float(f"{high[k]:.3g}")]
        if impostor_flagged is not None:
            unflagged = n_impostor - n_flagged
            row["flagged_false_matches"] = flagged_matches[k] / false_matches[k] if false_matches[k] else None
            row["fmr_unflagged"] = (false_matches[k] - flagged_matches[k]) / unflagged if unflagged else 0.0
        out[_key(cutoff)] = row
    return out


@dataclass(frozen=True)
class GapBands:
    """Pairs grouped by the gap between a number of each face (an age): band k holds the pairs whose
    gap lies in ``[edges[k], edges[k + 1])``; named "<label> 0-5", ..., "<label> 20-". Groups pairs
    as :class:`eval.groups.Grouping` does (``of_pairs``, ``names``)."""

    values: np.ndarray
    edges: tuple[float, ...]
    label: str

    @property
    def names(self) -> list[str]:
        return [f"{self.label} {low:g}-{'' if math.isinf(high) else f'{high:g}'}"
                for low, high in zip(self.edges, self.edges[1:])]

    def of_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        gap = np.abs(self.values[a] - self.values[b])
        band = np.searchsorted(self.edges, gap, side="right") - 1
        return np.where((band >= 0) & (band < len(self.edges) - 1), band, -1)


def named_groups(grouping) -> dict[str, tuple[object, int]]:
    """Every group of a grouping (:class:`eval.groups.Grouping`, :class:`GapBands`) by its name."""
    return {name: (grouping, k) for k, name in enumerate(grouping.names)}


def face_set_rates(calibration: Calibration, embeddings: np.ndarray, stats: FaceStats,
                   identities: np.ndarray | None = None, groups: dict[str, tuple[object, int]] | None = None, *,
                   cutoffs=CUTOFFS, face_widths: np.ndarray | None = None, interval: bool = False
                   ) -> tuple[dict, dict[str, dict]]:
    """Rates of a face set over every pair of its faces (one walk of :func:`training.pair_walks.pair_blocks`).

    Parameters
    ----------
    calibration : the calibration that scores the pairs.
    embeddings : (N, D) unit-norm embeddings; stats : their :class:`FaceStats` (N,).
    identities : (N,) each face's person; None: every pair is a different-person pair.
    groups : name -> (grouping, index): the pairs whose ``grouping.of_pairs`` is ``index`` (see
        :func:`training.fit_data.labelled_groups`, :func:`named_groups`, :class:`GapBands`).
    face_widths : (N,) px; given, each pair is also flagged as the answer would flag it
        (:meth:`Calibration.outside`).
    cutoffs, interval : as :func:`pair_rates`.

    Returns
    -------
    overall : :func:`pair_rates` of all pairs.
    by_group : name -> :func:`pair_rates` of the group's pairs.
    """
    groups = groups or {}
    names = [None, *groups]
    kept = {name: {"genuine": [], "impostor": [], "flagged": []} for name in names}
    for rows, cols, scores, genuine, impostor in pair_blocks(embeddings, stats, calibration.score_pairs, identities):
        flagged = None
        if face_widths is not None:
            flagged = np.broadcast_to(calibration.outside(stats[rows].column(), face_widths[rows][:, None], stats[cols],
                                                          face_widths[cols]), scores.shape)
        codes = {}
        for name in names:
            inside = True
            if name is not None:
                grouping, k = groups[name]
                if id(grouping) not in codes:
                    codes[id(grouping)] = grouping.of_pairs(rows[:, None], cols[None, :])
                inside = codes[id(grouping)] == k
            kept[name]["genuine"].append(scores[genuine & inside])
            kept[name]["impostor"].append(scores[impostor & inside])
            if flagged is not None:
                kept[name]["flagged"].append(flagged[impostor & inside])
    rates = {name: pair_rates(np.concatenate(part["genuine"]), np.concatenate(part["impostor"]), cutoffs=cutoffs,
                              impostor_flagged=np.concatenate(part["flagged"]) if part["flagged"] else None,
                              interval=interval)
             for name, part in kept.items()}
    return rates.pop(None), rates


def _only(rates: dict, keys: tuple[str, ...], cutoffs=CUTOFFS) -> dict:
    """``rates`` (:func:`pair_rates`) cut down to ``keys`` at each of ``cutoffs``."""
    return {_key(c): {k: rates[_key(c)][k] for k in keys if k in rates[_key(c)]} for c in cutoffs}


def heldout_lfw(calibration: Calibration, lfw: dict, stats: FaceStats, lfw_dir: Path,
                ages: np.ndarray) -> tuple[dict, dict]:
    """LFW folds 6-10 (all pairs: FMR, FNMR); pairs.txt 10-fold accuracy and TAR at FAR 1e-3 over all
    pairs of all folds, as README's tables; and same-person acceptance at 0.67 and 0.7 by the
    pair's estimated age gap (``ages``: the age model's estimates, whose error is several years;
    LFW has no age labels), what the age-aware score costs, or wins, for photos years apart."""
    held = np.flatnonzero(lfw["ok"] & (lfw["fold"] >= 6))
    gaps = GapBands(ages[held], AGE_GAP_EDGES, "estimated age gap")
    overall, by_gap = face_set_rates(calibration, lfw["embeddings"][held], stats[held], lfw["identity"][held],
                                     named_groups(gaps))
    out = {"folds": "6-10", "impostor_pairs": overall["impostor_pairs"], "genuine_pairs": overall["genuine_pairs"],
           "at": _only(overall, ("fmr", "false_matches", "fnmr"))}
    emb = np.nan_to_num(lfw["embeddings"])
    pairs, same, folds = view2_pairs(lfw_dir, lfw["paths"])
    a, b = pairs[:, 0], pairs[:, 1]
    have = lfw["ok"][a] & lfw["ok"][b]
    scores = np.where(have, calibration.score_pairs(np.einsum("ij,ij->i", emb[a], emb[b]), stats[a], stats[b]), 0.0)
    out["accuracy_10fold"] = float(kfold_accuracy(scores, same, folds=folds).mean)
    every = np.flatnonzero(lfw["ok"])
    genuine, impostor = [], []
    for _, _, values, is_genuine, is_impostor in pair_blocks(emb[every], stats[every], calibration.score_pairs,
                                                             lfw["identity"][every]):
        genuine.append(values[is_genuine])
        impostor.append(values[is_impostor])
    impostor = np.concatenate(impostor)
    cutoff = cutoff_at_fmr(impostor, fmr=ANCHOR_FMR)[0]
    out["tar_at_far_1e-3_all_pairs"] = pair_rates(np.concatenate(genuine), [], cutoffs=(cutoff,))[_key(cutoff)]["accept_same"]
    age_gaps = {name: {"pairs": rates["genuine_pairs"],
                       **{_key(c): rates[_key(c)].get("accept_same") for c in (CROSS_AGE_SCORE_CUTOFF, ANCHOR_SCORE)}}
                for name, rates in by_gap.items()}
    return out, age_gaps


def heldout_groups(calibration: Calibration, data: dict, stats: FaceStats) -> dict:
    """FMR at each cutoff per pair group (:func:`training.fit_data.labelled_groups`) of the held-out half."""
    rows = np.flatnonzero(data["ok"] & ~data["fit"])
    _, by_group = face_set_rates(calibration, data["embeddings"][rows], stats[rows],
                                 groups=labelled_groups(data, rows))
    return {name: {"pairs": rates["impostor_pairs"], **{_key(c): rates[_key(c)]["fmr"] for c in CUTOFFS}}
            for name, rates in by_group.items()}


def heldout_pairs_file(calibrations: dict[str, Calibration], data: dict, stats: dict[str, FaceStats],
                       pairs_tsv: Path) -> dict:
    """Acceptance and FMR on a pairs file (:func:`training.fit_data.pairs_file_rows`) at 0.67 and
    0.7, with the false matches counted and their exact 95 % interval: a thousand different-person
    pairs resolve 1 in 1,000 only to about 0.03-5.6 in 1,000. ``tradeoff``: the same at
    TRADEOFF_CUTOFFS, where what keeping such a set at 1 in 1,000 costs in acceptance shows.
    ``all pairs across folders``: the FMR of every pair of images in different folders (2 M pairs
    of CACD-VS dev instead of its protocol's 1,000; a folder is one person there, though its
    SOURCE.txt warns that two folders may rarely be one person)."""
    a, b, same, have = pairs_file_rows(data, pairs_tsv)
    emb = np.nan_to_num(data["embeddings"])
    rows = np.flatnonzero(data["ok"])
    keys, both = ("accept_same", "fmr", "false_matches", "fmr_95"), (CROSS_AGE_SCORE_CUTOFF, ANCHOR_SCORE)
    out = {"pairs": len(same), "without_face": int((~have).sum())}
    for label, calibration in calibrations.items():
        s = stats[label]
        scores = np.where(have, calibration.score_pairs(np.einsum("ij,ij->i", emb[a], emb[b]), s[a], s[b]), 0.0)
        out[label] = _only(pair_rates(scores[same], scores[~same], cutoffs=both, interval=True), keys, both)
        tradeoff = pair_rates(scores[same], scores[~same], cutoffs=TRADEOFF_CUTOFFS, interval=True)
        out[label]["tradeoff"] = {f"{c:.2f}": rates for c, rates in zip(
            TRADEOFF_CUTOFFS, _only(tradeoff, keys, TRADEOFF_CUTOFFS).values())}
        across, _ = face_set_rates(calibration, emb[rows], s[rows], folder_identities(data["paths"])[rows],
                                   cutoffs=both)
        out[label]["all pairs across folders"] = {"pairs": across["impostor_pairs"],
                                                  **{_key(c): across[_key(c)]["fmr"] for c in both}}
    return out


def degraded_rates(calibration: Calibration, both: dict, stats: FaceStats, rows_a: np.ndarray, rows_b: np.ndarray,
                   same_rows: bool) -> dict:
    """Rates at 0.7 and 0.67 of the pairs rows_a x rows_b of a face set with copies (i < j when
    ``same_rows``; never a copy with its own original): FMR; false matches and the share of them
    (and of all impostor pairs) that the answer flags ``within_calibration = False``; FMR among
    unflagged pairs; same-person acceptance."""
    emb = both["embeddings"]
    cos = emb[rows_a] @ emb[rows_b].T
    sa, sb = stats[rows_a].column(), stats[rows_b]
    scores = calibration.score_pairs(cos, sa, sb)
    flagged = np.broadcast_to(calibration.outside(sa, both["face_width"][rows_a][:, None], sb,
                                                  both["face_width"][rows_b]), cos.shape)
    distinct = both["source"][rows_a][:, None] != both["source"][rows_b][None, :]
    if same_rows:
        distinct &= np.triu(np.ones(cos.shape, bool), 1)
    impostor = distinct & (both["identity"][rows_a][:, None] != both["identity"][rows_b][None, :])
    genuine = distinct & ~impostor
    cutoffs = (ANCHOR_SCORE, CROSS_AGE_SCORE_CUTOFF)
    rates = pair_rates(scores[genuine], scores[impostor], cutoffs=cutoffs, impostor_flagged=flagged[impostor])
    out = {"impostor_pairs": rates["impostor_pairs"], "flagged_pairs": rates["flagged_pairs"]}
    for cutoff, row in _only(rates, ("fmr", "false_matches", "flagged_false_matches", "fmr_unflagged",
                                     "accept_same"), cutoffs).items():
        out[cutoff] = {**row, **({"same_pairs": rates["genuine_pairs"]} if rates["genuine_pairs"] else {})}
    return out


def heldout_degraded(calibration: Calibration, both: dict, stats: FaceStats, held: np.ndarray) -> dict:
    """Per degradation kind, on the held-out faces: pairs of two copies of that kind, and pairs of
    one copy with an undegraded face; and undegraded pairs (how many the answer flags)."""
    clean = np.flatnonzero(held & both["ok"] & both["clean"])
    out = {"undegraded": degraded_rates(calibration, both, stats, clean, clean, True)}
    for kind in tqdm(sorted(set(both["kind"][~both["clean"]])), desc="held-out degradations"):
        rows = np.flatnonzero(held & both["ok"] & (both["kind"] == kind))
        out[kind] = {"copies": len(rows), "both degraded": degraded_rates(calibration, both, stats, rows, rows, True),
                     "one degraded": degraded_rates(calibration, both, stats, rows, clean, False)}
    return out


def unkept_age_bands(groups: dict) -> list[dict]:
    """Younger-face age bands whose held-out FMR at 0.7 exceeds 1e-3 by more than the tolerance
    (stricter bands are reported in ``heldout`` but not flagged: there the promise errs safe; a
    band no held-out face lies in is not measured)."""
    bands = []
    for low, high in zip(AGE_EDGES, AGE_EDGES[1:]):
        fmr = groups.get(f"younger face {low}-{high - 1}", {}).get("normalised", {}).get(_key(ANCHOR_SCORE))
        if fmr is not None and fmr > ANCHOR_FMR * PROMISE_TOLERANCE:
            bands.append({"low": low, "high": high, "fmr": fmr})
    return bands


def heldout_figures(fitted: Calibration, fitted_stats: dict[str, FaceStats], compared: dict[str, Calibration], *,
                    lfw: dict, lfw_dir: Path, cohort_set: dict, cohort_name: str,
                    degraded: dict[str, tuple[dict, FaceStats]], pairs_set: dict | None = None,
                    pairs_tsv: Path | None = None, old_photos: tuple[dict, FaceStats, str] | None = None
                    ) -> tuple[dict, list[dict]]:
    """Everything held out (the ``heldout`` of a calibration file): for the ``fitted`` calibration
    (labelled ``"normalised"``, with the fit's face statistics of ``"lfw"`` and ``"cohort"``: its
    cross-fitted ages and qualities) and for each of ``compared`` (label -> calibration, e.g. the
    cosine-only one); on ``pairs_set``, the embeddings of ``pairs_tsv``'s images, if given.
    ``degraded``: ``"lfw"`` and ``"cohort"`` -> (:func:`training.fit_data.with_degraded`, stats),
    measured with the fitted calibration only. Returns the ``heldout`` dict and the unkept age
    bands (:func:`unkept_age_bands`), with which the degraded pairs are flagged as the answers
    will flag them. ``old_photos``: (a set with identities and ages,
    :func:`training.old_photos.attach_identities`; the fit's statistics of it; its name), measured
    on its held-out and its fit people (:func:`training.old_photos.old_photo_rates`); and the share
    of ordinary faces each reason flags (:func:`flagged_faces`)."""
    calibrations = {"normalised": fitted, **compared}
    stats = {label: {"lfw": c.face_stats(lfw["embeddings"]), "cohort": c.face_stats(cohort_set["embeddings"])}
             for label, c in compared.items()}
    stats["normalised"] = fitted_stats
    heldout, groups, age_gaps = {}, {}, {}
    for label, calibration in calibrations.items():
        key = "lfw" if label == "normalised" else f"lfw_{label.replace('-', '_')}"
        heldout[key], by_gap = heldout_lfw(calibration, lfw, stats[label]["lfw"], lfw_dir,
                                           fitted_stats["lfw"].estimated_age)
        for name, rates in by_gap.items():
            age_gaps.setdefault(name, {"pairs": rates.pop("pairs")})[label] = rates
        for name, rates in heldout_groups(calibration, cohort_set, stats[label]["cohort"]).items():
            groups.setdefault(name, {})[label] = rates
    heldout[f"{cohort_name} held-out half"] = groups
    if pairs_set is not None:
        embeddings = np.nan_to_num(pairs_set["embeddings"])
        heldout[pairs_tsv.parent.name] = heldout_pairs_file(
            calibrations, pairs_set, {label: c.face_stats(embeddings) for label, c in calibrations.items()}, pairs_tsv)
    heldout["lfw same person by estimated age gap"] = age_gaps
    unkept = unkept_age_bands(groups)
    flagging = dataclasses.replace(fitted, coverage={**fitted.coverage, "unkept_age_bands": unkept})
    (lfw_both, lfw_stats), (cohort_both, cohort_stats) = degraded["lfw"], degraded["cohort"]
    heldout["degraded"] = {
        "lfw folds 6-10": heldout_degraded(flagging, lfw_both, lfw_stats, lfw["fold"][lfw_both["source"]] >= 6),
        f"{cohort_name} held-out half": heldout_degraded(flagging, cohort_both, cohort_stats,
                                                         ~cohort_set["fit"][cohort_both["source"]])}
    heldout["flagged faces"] = {
        "lfw folds 6-10": flagged_faces(flagging, fitted_stats["lfw"][lfw["ok"] & (lfw["fold"] >= 6)],
                                        lfw["face_width"][lfw["ok"] & (lfw["fold"] >= 6)]),
        f"{cohort_name} held-out half": flagged_faces(flagging, fitted_stats["cohort"][cohort_set["ok"] & ~cohort_set["fit"]],
                                                      cohort_set["face_width"][cohort_set["ok"] & ~cohort_set["fit"]])}
    if old_photos is not None:
        data, old_stats, name = old_photos
        heldout["flagged faces"][f"{name} held-out people"] = flagged_faces(flagging, old_stats[~data["fit"]],
                                                                             data["face_width"][~data["fit"]])
        compared_stats = {label: c.face_stats(data["embeddings"]) for label, c in compared.items()}
        heldout[name] = {half: {"normalised": old_photo_rates(flagging, data, old_stats, rows),
                                **{label: old_photo_rates(c, data, compared_stats[label], rows, flag=False)
                                   for label, c in compared.items()}}
                         for half, rows in (("held-out people", np.flatnonzero(~data["fit"])),
                                            ("fit people", np.flatnonzero(data["fit"])))}
    return heldout, unkept


def old_photo_rates(calibration: Calibration, data: dict, stats: FaceStats, rows: np.ndarray,
                    flag: bool = True) -> dict:
    """Every pair among ``rows`` of a set with ``identity`` and labelled ``age``
    (:func:`training.heldout.face_set_rates`, :func:`training.heldout.pair_rates`' layout): all
    pairs; adults (both 18+); by the younger face's age band; and by the age gap between the two
    photos (0-5, 6-15 and 16+ years; its different-person pairs mean little). ``flag``: also what
    the answer flags ``within_calibration = False``. At 0.7 each also says who its false matches
    come from (:func:`false_matches_by_people`)."""
    labels = {"age": data["label_age"][rows]}
    adults = make_grouping(GroupSpec("age", "min"), labels, {"age": (0, ADULT_AGE, math.inf)})
    younger = make_grouping(GroupSpec("age", "min"), labels, {"age": AGE_EDGES})
    groups = {"adults (both 18+)": (adults, 1),
              **{f"younger face {name}": (younger, k) for k, name in enumerate(younger.names)},
              **named_groups(GapBands(data["age"][rows], OLD_PHOTO_AGE_GAP_EDGES, "age gap"))}
    overall, by_group = face_set_rates(calibration, data["embeddings"][rows], stats[rows], data["identity"][rows],
                                       groups, face_widths=data["face_width"][rows] if flag else None)
    people = false_matches_by_people(calibration, data["embeddings"][rows], stats[rows], data["identity"][rows],
                                     {"all": None, **groups})
    for name, rates in (("all", overall), *by_group.items()):
        rates[_key(ANCHOR_SCORE)].update(people[name])
    return {"photos": len(rows), "people": len(set(data["identity"][rows].tolist())), "all": overall, **by_group}


def false_matches_by_people(calibration: Calibration, embeddings: np.ndarray, stats: FaceStats,
                            identities: np.ndarray, groups: dict[str, tuple[object, int] | None], *,
                            draws: int = PEOPLE_DRAWS, seed: int = 0) -> dict[str, dict]:
    """Who the false matches at 0.7 of a small set come from, per group (None: every pair): how
    many pairs of people (``false_match_people``), the share of the false matches from the pair
    of people with most (``top_people_share``), and the FMR's 95 % interval over draws of the
    people with replacement (``fmr_95_by_people``: a pair weighs the product of its two people's
    counts). With a few dozen people one pair of lookalikes can make most of a group's false
    matches; the exact interval of ``pair_rates`` treats every pair of photos as independent and
    is far too narrow then."""
    a, b, same = identity_pairs(identities)
    a, b = a[~same], b[~same]
    person, codes = np.unique(identities, return_inverse=True)
    matched = calibration.score_pairs(np.einsum("ij,ij->i", embeddings[a], embeddings[b]), stats[a], stats[b]) >= ANCHOR_SCORE
    counts = np.random.default_rng(seed).multinomial(len(person), np.full(len(person), 1 / len(person)), draws)
    out = {}
    for name, group in groups.items():
        inside = np.ones(len(a), bool) if group is None else group[0].of_pairs(a, b) == group[1]
        pa, pb = codes[a[inside]], codes[b[inside]]
        weights = (counts[:, pa] * counts[:, pb]).astype(np.float32)
        total = weights.sum(axis=1)
        rates = (weights @ matched[inside].astype(np.float32))[total > 0] / total[total > 0]
        hits = np.sort(np.stack([pa, pb])[:, matched[inside]], axis=0)
        _, per_people = np.unique(hits, axis=1, return_counts=True) if hits.size else (None, np.zeros(0, int))
        out[name] = {"false_match_people": int(len(per_people)),
                     "top_people_share": float(per_people.max() / per_people.sum()) if len(per_people) else None,
                     "fmr_95_by_people": [float(f"{v:.3g}") for v in np.quantile(rates, [0.025, 0.975])]
                     if len(rates) else None}
    return out


def flagged_faces(calibration: Calibration, stats: FaceStats, widths: np.ndarray) -> dict:
    """The share of faces each reason marks (:meth:`Calibration.face_flags`) and of faces with any.
    A pair is outside the calibration only when both its photos are poor (or a face is beyond the
    cohort limits), so for ordinary photos these bound the share of flagged answers from above."""
    flags = calibration.face_flags(stats, widths)
    return {"faces": len(widths), **{reason: round(float(np.mean(flag)), 4) for reason, flag in flags.items()},
            "any": round(float(np.mean(np.logical_or.reduce(list(flags.values())))), 4)}
