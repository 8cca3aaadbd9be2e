"""Scores a feature frame with one scorecard definition, vectorised over accounts.

Every measure yields a raw value, 0-100 points, and a contribution (points x effective weight).
A measure without data is marked missing and its weight is redistributed proportionally over the
present ones (each row keeps its base weight, so the redistribution is visible). The total is the
sum of the rounded contributions, so the parts always add up to the score. If nothing is present
the account gets no score (NaN, grade "none") rather than an invented number.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .definition import SENTIMENT_MEASURE, grade_for, sentiment_grade_points

__all__ = [
    "ScoredFrame",
    "measure_names",
    "measure_points",
    "measures_render",
    "score_frame",
    "sentiment_points",
]

SENTIMENT_LABEL = "CSM sentiment"


@dataclass
class ScoredFrame:
    # index account_id; columns score (NaN when nothing was measurable) and grade
    totals: pd.DataFrame
    # (accounts x measures) matrices, columns in definition order, sentiment last
    raw: pd.DataFrame
    points: pd.DataFrame
    weights: pd.DataFrame  # effective weight in percent of the score (0 when missing)
    contributions: pd.DataFrame
    missing: pd.DataFrame
    base_weights: dict
    labels: dict

    def parts(self) -> list[list[list]]:
        """Per account (in index order), per measure (definition order, sentiment last):
        [raw value, points, effective weight, contribution], None where there is no value. This
        compact form is what a snapshot stores; measures_render adds names, labels and base
        weights back from the scorecard version. Built with array operations, not per account."""
        points = self.points.to_numpy(dtype=float)
        numeric_raw = self.raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        stacked = np.stack(
            [
                np.round(numeric_raw, 4),
                np.round(points, 2),
                np.round(self.weights.to_numpy(dtype=float), 2),
                np.round(self.contributions.to_numpy(dtype=float), 2),
            ],
            axis=2,
        ).astype(object)
        stacked[np.isnan(stacked.astype(float))] = None
        rows = stacked.tolist()
        # Text raw values (a sentiment grade) are few: patched in after the numeric pass.
        text = self.raw.map(lambda v: isinstance(v, str)).to_numpy()
        raw = self.raw.to_numpy(dtype=object)
        for i, j in zip(*np.nonzero(text), strict=True):
            rows[i][j][0] = raw[i, j]
        return rows


RAW, POINTS, WEIGHT, CONTRIBUTION = range(4)


def measure_names(definition: dict) -> list[tuple[str, str, float]]:
    """(name, label, base weight) of a definition's measures in scoring order, sentiment last."""
    names = [
        (m["name"], m.get("label") or m["name"], float(m["weight"])) for m in definition["measures"]
    ]
    names.append((SENTIMENT_MEASURE, SENTIMENT_LABEL, float(definition.get("sentiment_weight", 0))))
    return names


def measures_render(definition: dict, parts: list[list]) -> list[dict]:
    """A snapshot's measures explained: name, label, raw value, points, effective and base
    weight, contribution, and whether it was missing (its weight then went to the others)."""
    return [
        {
            "name": name,
            "label": label,
            "raw_value": part[RAW],
            "points": part[POINTS],
            "weight": part[WEIGHT],
            "base_weight": base_weight,
            "contribution": part[CONTRIBUTION],
            "missing": part[POINTS] is None,
        }
        for (name, label, base_weight), part in zip(measure_names(definition), parts, strict=True)
    ]


def measure_points(values: pd.Series, measure: dict) -> pd.Series:
    """0-100 points for numeric values (NaN stays NaN)."""
    x = pd.to_numeric(values, errors="coerce").astype(float)
    if measure["mapping"] == "linear":
        low, high = float(measure["low"]), float(measure["high"])
        share = ((x - low) / (high - low)).clip(0.0, 1.0)
        if measure.get("direction") == "lower":
            share = 1.0 - share
        return share * 100.0
    bounds = np.array([float(b) for b, _ in measure["thresholds"]])
    table = np.array([0.0, *(float(p) for _, p in measure["thresholds"])])
    slot = np.searchsorted(bounds, x.to_numpy(), side="right")
    return pd.Series(np.where(x.isna(), np.nan, table[slot]), index=x.index)


def sentiment_points(overrides: pd.DataFrame, grades: dict) -> pd.Series:
    """Points of active overrides (index account_id, columns grade and points)."""
    if overrides.empty:
        return pd.Series(dtype=float)
    by_grade = overrides["grade"].map(
        lambda g: sentiment_grade_points(g, grades) if isinstance(g, str) and g else np.nan
    )
    return overrides["points"].astype(float).fillna(by_grade.astype(float))


def score_frame(
    features: pd.DataFrame, definition: dict, overrides: pd.DataFrame | None = None
) -> ScoredFrame:
    """Score every row of `features` with `definition`. `overrides` holds the active CSM
    sentiment per account (index account_id; columns grade, points)."""
    index = features.index
    raw, points, base, labels = {}, {}, {}, {}
    for measure in definition["measures"]:
        name = measure["name"]
        column = features[measure["feature"]] if measure["feature"] in features else None
        values = column if column is not None else pd.Series(np.nan, index=index)
        raw[name] = pd.to_numeric(values, errors="coerce").astype(float)
        points[name] = measure_points(values, measure)
        base[name] = float(measure["weight"])
        labels[name] = measure.get("label") or name
    overrides = overrides if overrides is not None else pd.DataFrame(columns=["grade", "points"])
    active = overrides.reindex(index)
    raw[SENTIMENT_MEASURE] = (
        active["grade"].where(active["grade"].fillna("") != "", active["points"]).astype(object)
    )
    points[SENTIMENT_MEASURE] = sentiment_points(active.dropna(how="all"), definition["grades"])
    points[SENTIMENT_MEASURE] = points[SENTIMENT_MEASURE].reindex(index).astype(float)
    base[SENTIMENT_MEASURE] = float(definition.get("sentiment_weight", 0))
    labels[SENTIMENT_MEASURE] = SENTIMENT_LABEL

    points_frame = pd.DataFrame(points, index=index)
    missing = points_frame.isna()
    base_row = pd.Series(base)[points_frame.columns]
    present_weight = (~missing).mul(base_row, axis=1)
    total_weight = present_weight.sum(axis=1)
    weights = present_weight.div(total_weight.where(total_weight > 0), axis=0) * 100.0
    weights = weights.fillna(0.0)
    contributions = (points_frame.fillna(0.0) * weights / 100.0).round(2)
    score = contributions.sum(axis=1).round(2).where(total_weight > 0)
    totals = pd.DataFrame({"score": score})
    totals["grade"] = [grade_for(s, definition["grades"]) for s in score.tolist()]
    raw_frame = pd.DataFrame(raw, index=index).astype(object)
    return ScoredFrame(
        totals=totals,
        raw=raw_frame,
        points=points_frame,
        weights=weights,
        contributions=contributions,
        missing=missing,
        base_weights=base,
        labels=labels,
    )
