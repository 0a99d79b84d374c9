"""Break an evaluation down by label columns: age band, gender, race, quality band, ...

Labels belong to images (a ``labels.csv`` beside a folder, per-image columns of a pairs file)
or to pairs (``--col-group`` columns of a pairs file). A *group-by spec* says how a pair gets
its group from the labels of its two faces::

    COLUMN[:RULE][@CONDITION[@CONDITION...]]

RULE (default ``same``):

* ``same`` — "both X" when both faces are labelled X, else "mixed";
* ``pair`` — "both X", or "X/Y" (in the column's order) when they differ;
* ``min`` / ``max`` — the lower / higher of the two labels in the column's order (for an age
  band: ``min`` is the band of the younger face).

CONDITION (``age>=18``, ``gender=female``, ``race!=other``; operators ``= != < <= > >=``,
numeric when both sides are numbers) must hold for *both* faces, on the raw column value.
A face without the label (empty cell, no row) puts its pairs in no group of that spec.

Numeric columns can be banded: ``age=0,3,6,13,18,inf`` makes bands ``0-2``, ``3-5``,
``6-12``, ``13-17``, ``18+`` (a band holds ``lower <= value < upper``; values outside every
band are unlabelled). A numeric column named in a spec without bands, with more than
MAX_UNBANDED_VALUES values, is banded by :func:`automatic_bands` (and the notes say so).
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

import numpy as np


RULES = ("same", "pair", "min", "max")
MIXED = "mixed"
#: Without --group-by, label columns with more distinct values than this are not broken down.
MAX_DEFAULT_GROUPS = 30
#: A numeric column named in a group-by spec without bands, with more distinct values than this, is banded.
MAX_UNBANDED_VALUES = 12
#: Age bands: where the false-match rate of a pair changes with the younger face's age (children
#: by stage, adults by 15 years); used for ``age`` and ``estimated_age`` when no bands are given.
AGE_EDGES = (0, 3, 6, 13, 18, 30, 45, 60, 200)
AGE_COLUMNS = ("age", "estimated_age")
AUTOMATIC_BANDS = 5   # other numeric columns: this many bands of about equal count
_OPERATORS = {"!=": operator.ne, ">=": operator.ge, "<=": operator.le, "=": operator.eq, ">": operator.gt,
              "<": operator.lt}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class Condition:
    """``column op value`` on one face's raw label, e.g. ``age>=18``."""

    column: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "Condition":
        """Read ``COLUMN OP VALUE``.

        >>> Condition.parse("age>=18")
        Condition(column='age', op='>=', value='18')
        """
        match = re.fullmatch(r"\s*([^!<>=]+?)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*", text)
        if not match or not match.group(3):
            raise ValueError(f"cannot read the condition {text!r}; write e.g. age>=18 or gender=female")
        return cls(*match.groups())

    def holds(self, values: np.ndarray) -> np.ndarray:
        """(n,) bool: the condition on each label (str array); False where the label is empty, or
        not a number while the condition compares numbers (``<``, ``>``, ...).

        >>> Condition.parse("age<18").holds(np.array(["3", "18", "", "40"])).tolist()
        [True, False, False, False]
        """
        compare = _OPERATORS[self.op]
        target = _number(self.value)
        out = np.zeros(len(values), dtype=bool)
        ordering = self.op not in ("=", "!=")
        for k, text in enumerate(values):
            number = _number(text) if (text and target is not None) else None
            if number is not None:
                out[k] = compare(number, target)
            elif text and not (ordering and target is not None):   # "old" is not >= 18
                out[k] = compare(text, self.value)
        return out

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.value}"


@dataclass(frozen=True)
class GroupSpec:
    """How pairs are grouped by one label column (see the module docstring)."""

    column: str
    rule: str = "same"
    where: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "GroupSpec":
        """Read ``COLUMN[:RULE][@CONDITION...]``.

        >>> GroupSpec.parse("race@age>=18").where[0].op
        '>='
        >>> GroupSpec.parse("age:min").rule
        'min'
        """
        head, *conditions = text.split("@")
        column, _, rule = head.partition(":")
        rule = rule or "same"
        if rule not in RULES:
            raise ValueError(f"{text!r}: unknown rule {rule!r}; use one of {', '.join(RULES)}")
        if not column:
            raise ValueError(f"{text!r} names no column")
        return cls(column, rule, tuple(Condition.parse(c) for c in conditions))

    @property
    def name(self) -> str:
        """The canonical spec text, e.g. ``age:min`` or ``race@age>=18``."""
        return self.column + ("" if self.rule == "same" else f":{self.rule}") + "".join(f"@{c}" for c in self.where)

    def title(self) -> str:
        """How the report says it: "`age` band of the lower face, pairs where both faces have ..."."""
        what = {"same": f"`{self.column}` of both faces", "pair": f"the two faces' `{self.column}`",
                "min": f"the lower `{self.column}` of the two faces", "max": f"the higher `{self.column}` of the two faces"}
        text = what[self.rule]
        if self.where:
            text += ", pairs where both faces have " + " and ".join(f"`{c}`" for c in self.where)
        return text


_BANDS_HELP = ("cannot read the bands {!r}; write COLUMN=EDGE,EDGE,... with increasing edges, "
               "e.g. age=0,3,6,13,18,inf")


def parse_bands(text: str) -> tuple[str, tuple[float, ...]]:
    """``'age=0,3,6,13,18,inf'`` -> ``('age', (0, 3, 6, 13, 18, inf))``; edges must increase."""
    column, _, spec = text.partition("=")
    if not column.strip():
        raise ValueError(_BANDS_HELP.format(text))
    return column.strip(), band_edges(spec, what=text)


def band_edges(edges, *, what: str | None = None) -> tuple[float, ...]:
    """Increasing band edges from ``'0,3,6,13,18,inf'`` or a sequence of numbers; else ValueError."""
    try:
        values = tuple(float(v) for v in (edges.split(",") if isinstance(edges, str) else edges))
    except (TypeError, ValueError):
        values = ()
    if len(values) < 2 or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(_BANDS_HELP.format(edges if what is None else what))
    return values


def band_names(edges) -> list[str]:
    """Names of the bands ``[edges[k], edges[k+1])``.

    Integer edges name whole numbers: ``3-5``, ``7`` for ``[7, 8)``, ``18+`` when the upper edge
    is infinite; other edges name intervals, ``[0.5, 1.5)``.

    >>> band_names([0, 3, 6, 13, 18, float("inf")])
    ['0-2', '3-5', '6-12', '13-17', '18+']
    >>> band_names([0, 3, 6, 13, 18, 200])[-1]
    '18-199'
    >>> band_names([0.5, 1.5])
    ['[0.5, 1.5)']
    """
    names = []
    for low, high in zip(edges, edges[1:]):
        if float(low).is_integer() and (math.isinf(high) or float(high).is_integer()):
            if math.isinf(high):
                names.append(f"{int(low)}+")
            else:
                names.append(f"{int(low)}" if high - low == 1 else f"{int(low)}-{int(high) - 1}")
        else:
            names.append(f"[{low:g}, {high:g})")
    return names


def band(values: np.ndarray, edges) -> np.ndarray:
    """(n,) str band names of numeric labels; empty where a value is missing, not a number or outside.

    >>> band(np.array(["1", "5", "17", "18", "99", "", "x", "-1"]), [0, 3, 6, 13, 18, float("inf")]).tolist()
    ['0-2', '3-5', '13-17', '18+', '18+', '', '', '']
    """
    names = band_names(edges)
    out = np.full(len(values), "", dtype=object)
    for k, text in enumerate(values):
        number = _number(text) if text else None
        if number is not None and edges[0] <= number < edges[-1]:
            out[k] = names[int(np.searchsorted(edges, number, side="right")) - 1]
    return out.astype(str)


def automatic_bands(column: str, values: np.ndarray) -> tuple[float, ...] | None:
    """Bands for a numeric label column named without bands: None when some value is not a number
    or there are at most MAX_UNBANDED_VALUES distinct values (each is a group then); AGE_EDGES for
    an age column; else AUTOMATIC_BANDS bands of about equal count, their edges rounded to the
    power of ten below a twentieth of the range (0.01 for values from 0.3 to 1), the last open-ended.

    >>> automatic_bands("age", np.array([str(a) for a in range(70)]))
    (0, 3, 6, 13, 18, 30, 45, 60, 200)
    >>> automatic_bands("score", np.array([f"{v / 100:g}" for v in range(30, 100)]))
    (0.3, 0.44, 0.58, 0.71, 0.85, inf)
    >>> automatic_bands("grade", np.array(["1", "2", "3", ""])) is None
    True
    """
    numbers = [_number(text) for text in values if text]
    if not numbers or None in numbers or len(set(numbers)) <= MAX_UNBANDED_VALUES:
        return None
    if column in AGE_COLUMNS:
        return AGE_EDGES
    low, high = min(numbers), max(numbers)
    decimals = -math.floor(math.log10((high - low) / 20))
    inner = np.quantile(numbers, np.linspace(0, 1, AUTOMATIC_BANDS + 1)[1:-1])
    edges = [math.floor(low * 10 ** decimals) / 10 ** decimals, *(round(float(q), decimals) for q in inner)]
    return tuple(sorted(set(edges))) + (math.inf,)


def _value_order(values: list[str], bands: tuple[float, ...] | None) -> list[str]:
    if bands is not None:
        return [name for name in band_names(bands) if name in values]
    if all(_number(v) is not None for v in values):
        return sorted(values, key=float)
    return sorted(values)


def rule_table(values: list[str], rule: str) -> tuple[np.ndarray, list[str]]:
    """The group of a pair from its two faces' labels, for labels ``values`` (in their order).

    Returns ``table`` (L, L) int, symmetric: ``table[u, v]`` is the group index of a pair whose
    faces have labels ``values[u]`` and ``values[v]``; and the group names.

    >>> table, names = rule_table(["asian", "white"], "same")
    >>> names, table.tolist()
    (['both asian', 'both white', 'mixed'], [[0, 2], [2, 1]])
    >>> table, names = rule_table(["0-2", "3-5", "18+"], "min")
    >>> [names[g] for g in table[2]]
    ['0-2', '3-5', '18+']
    >>> rule_table(["f", "m"], "pair")[1]
    ['both f', 'f/m', 'both m']
    """
    n = len(values)
    u, v = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    if rule in ("min", "max"):
        return (np.minimum(u, v) if rule == "min" else np.maximum(u, v)), list(values)
    if rule == "same":
        table = np.where(u == v, u, n)
        return table, [f"both {x}" for x in values] + ([MIXED] if n > 1 else [])
    if rule == "pair":
        low, high = np.minimum(u, v), np.maximum(u, v)
        names, index = [], {}
        for a in range(n):
            for b in range(a, n):
                index[a, b] = len(names)
                names.append(f"both {values[a]}" if a == b else f"{values[a]}/{values[b]}")
        return np.vectorize(lambda a, b: index[a, b])(low, high).astype(np.int64).reshape(n, n), names
    raise ValueError(f"unknown rule {rule!r}; use one of {', '.join(RULES)}")


@dataclass
class Grouping:
    """One group-by spec applied to the images of a dataset.

    codes : (n_images,) int, each image's label index (-1: no label, or a condition fails).
    table : (L, L) int group index of a pair from its faces' label indices (see :func:`rule_table`).
    names : group names.
    """

    spec: GroupSpec
    codes: np.ndarray
    table: np.ndarray
    names: list[str]

    def of_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n_pairs,) group index of pairs (a[k], b[k]) of images; -1 outside every group."""
        ca, cb = self.codes[a], self.codes[b]
        inside = (ca >= 0) & (cb >= 0)
        return np.where(inside, self.table[np.maximum(ca, 0), np.maximum(cb, 0)], -1)


def make_grouping(spec: GroupSpec, labels: dict[str, np.ndarray],
                  bands: dict[str, tuple[float, ...]] | None = None) -> Grouping:
    """Apply ``spec`` to per-image ``labels`` (column -> (n_images,) str, "" when missing).

    >>> labels = {"age": np.array(["1", "30", "4", "50"]), "race": np.array(["asian"] * 3 + ["white"])}
    >>> g = make_grouping(GroupSpec.parse("race@age>=18"), labels)
    >>> g.codes.tolist(), g.names
    ([-1, 0, -1, 1], ['both asian', 'both white', 'mixed'])
    >>> g = make_grouping(GroupSpec.parse("age:min"), labels, {"age": (0, 3, 18, float("inf"))})
    >>> [g.names[k] for k in g.of_pairs(np.array([0, 1, 2]), np.array([1, 3, 3]))]
    ['0-2', '18+', '3-17']
    """
    bands = bands or {}
    for column in (spec.column, *(c.column for c in spec.where)):
        if column not in labels:
            raise KeyError(f"no label column {column!r}; the dataset's label columns are {sorted(labels) or 'none'}")
    raw = labels[spec.column]
    values = band(raw, bands[spec.column]) if spec.column in bands else raw
    keep = values != ""
    for condition in spec.where:
        keep &= condition.holds(labels[condition.column])
    order = _value_order(sorted(set(values[keep].tolist())), bands.get(spec.column))
    position = {value: k for k, value in enumerate(order)}
    codes = np.array([position[v] if ok else -1 for v, ok in zip(values, keep)], dtype=np.int64)
    table, names = rule_table(order, spec.rule)
    return Grouping(spec, codes, table, names)


#: Columns every evaluated image gets from the pipeline itself (its face's ``trust``), beside its labels.
PIPELINE_COLUMNS = ("quality", "estimated_age", "old_print")


def pipeline_columns(embeddings: np.ndarray, ok: np.ndarray, calibration) -> dict[str, np.ndarray]:
    """Per image, the pipeline's own figures as label columns ("" where the image failed), computed
    from its embedding by ``calibration`` (a :class:`facecmp.calibration.Calibration`) now, not
    read from a cache that an earlier calibration filled: its quality, estimated age (clamped to the
    ages the age model was fitted on, as the answers give it) and old-print figure.
    """
    stats = calibration.face_stats(embeddings)
    low, high = calibration.coverage.get("age_range", (0.0, math.inf))
    values = {"quality": stats.quality, "estimated_age": np.clip(stats.estimated_age, low, high),
              "old_print": stats.old_print}
    return {column: np.where(ok, np.char.mod("%g", np.round(values[column].astype(float), 3)), "")
            for column in PIPELINE_COLUMNS}


def quality_bands(coverage: dict) -> tuple[float, ...]:
    """Default bands of ``quality`` from a calibration's coverage: below its quality floor (outside
    the calibration), then up to the 5th and the 50th percentile of its undegraded faces, and above.

    >>> quality_bands({"quality": 0.6, "quality_percentiles": [0.5, 0.8] + [0.85] * 8 + [0.9] + [0.95] * 10})
    (0.0, 0.6, 0.8, 0.9, inf)
    """
    grid = coverage.get("quality_percentiles") or [0.0] * 21
    edges = [0.0, coverage.get("quality", 0.0), grid[1], grid[10], math.inf]
    return tuple(sorted(set(float(e) for e in edges)))


def old_print_bands(coverage: dict) -> tuple[float, ...]:
    """Default bands of ``old_print`` (a probability): ordinary photos (below 0.5), old prints up
    to the calibration's flag limit (where pairs of two were measured to miss the promise), above.

    >>> old_print_bands({"old_print": 0.7})
    (0.0, 0.5, 0.7, inf)
    """
    return tuple(sorted({0.0, 0.5, float(coverage.get("old_print", 0.5)), math.inf}))


def with_default_bands(bands, defaults: dict[str, tuple[float, ...]]) -> dict:
    """``bands`` (None, a dict or ``COLUMN=EDGES`` texts, as :func:`make_groupings` takes them) with
    ``defaults`` for the columns it does not band.

    >>> with_default_bands(["age=0,18,inf"], {"quality": (0.0, 0.9, math.inf)})
    {'quality': (0.0, 0.9, inf), 'age': (0.0, 18.0, inf)}
    """
    if bands is None or isinstance(bands, dict):
        given = {column: band_edges(edges, what=f"{column}: {edges}") for column, edges in (bands or {}).items()}
    else:
        given = dict(parse_bands(text) for text in ([bands] if isinstance(bands, str) else bands))
    return {**defaults, **given}


def default_specs(labels: dict[str, np.ndarray], bands: dict[str, tuple[float, ...]]) -> tuple[list[GroupSpec], list[str]]:
    """Without --group-by: every label column (rule ``same``) with at most MAX_DEFAULT_GROUPS values.

    Returns the specs and a note for each column left out.
    """
    specs, notes = [], []
    for column, raw in labels.items():
        values = band(raw, bands[column]) if column in bands else raw
        distinct = len(set(values.tolist()) - {""})
        if distinct > MAX_DEFAULT_GROUPS:
            notes.append(f"label column `{column}` has {distinct} values and is not broken down: band it "
                         f"(--bands {column}=...) or name it in --group-by")
        else:
            specs.append(GroupSpec(column))
    return specs, notes


def make_groupings(labels: dict[str, np.ndarray], specs=None, bands=None) -> tuple[list[Grouping], list[str]]:
    """The :class:`Grouping` of each spec over per-image columns, and notes for the report.

    labels : column -> (n_images,) str, "" where an image has no value (a dataset's labels, or
        any other per-image column).
    specs : spec texts (``"race@age>=18"``) or :class:`GroupSpec`; None: :func:`default_specs`.
    bands : column -> edges (``"0,3,6,13,18,inf"`` or numbers), or ``COLUMN=EDGES`` texts.

    A numeric column a spec names without bands, with many values, is banded by
    :func:`automatic_bands` (a note says how).

    Raises ValueError for a spec or band that cannot be read, KeyError for an unknown column.
    """
    if isinstance(bands, str):
        bands = [bands]
    if bands is None or isinstance(bands, dict):
        bands = {column: band_edges(edges, what=f"{column}: {edges}") for column, edges in (bands or {}).items()}
    else:
        bands = dict(parse_bands(text) for text in bands)
    notes: list[str] = []
    if specs is None:
        specs, notes = default_specs(labels, bands)
    else:
        specs = [spec if isinstance(spec, GroupSpec) else GroupSpec.parse(spec)
                 for spec in ([specs] if isinstance(specs, str) else specs)]
        for column in dict.fromkeys(spec.column for spec in specs):
            edges = None if column in bands or column not in labels else automatic_bands(column, labels[column])
            if edges is not None:
                bands[column] = edges
                notes.append(f"label column `{column}` has many values and was banded: {', '.join(band_names(edges))} "
                             f"(--bands {column}=EDGES, or bands= in Python, chooses others)")
    return [make_grouping(spec, labels, bands) for spec in specs], notes


class PairCollector:
    """An ``on_block`` visitor of :func:`eval.scoring.all_vs_all` keeping what a breakdown needs.

    Keeps every genuine pair and every impostor pair scoring ``>= min_cutoff`` (the others are
    rejected at every cutoff), as image indices and scores. Memory grows with the false matches
    at the lowest cutoff, not with the number of pairs.
    """

    def __init__(self, min_cutoff: float):
        self.min_cutoff = min_cutoff
        self._genuine: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._accepted: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __call__(self, rows, cols, scores, genuine, impostor) -> None:
        for mask, kept in ((genuine, self._genuine), (impostor & (scores >= self.min_cutoff), self._accepted)):
            r, c = np.nonzero(mask)
            kept.append((rows[r].astype(np.int32), cols[c].astype(np.int32), scores[r, c]))

    @staticmethod
    def _joined(parts) -> tuple[np.ndarray, np.ndarray]:
        if not parts:
            return np.zeros((0, 2), np.int64), np.zeros(0)
        return (np.c_[np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])].astype(np.int64),
                np.concatenate([p[2] for p in parts]))

    def genuine(self) -> tuple[np.ndarray, np.ndarray]:
        """(pairs (n, 2) image indices, scores (n,)) of every genuine pair."""
        return self._joined(self._genuine)

    def accepted_impostors(self) -> tuple[np.ndarray, np.ndarray]:
        """(pairs (n, 2), scores (n,)) of the impostor pairs scoring >= ``min_cutoff``."""
        return self._joined(self._accepted)
