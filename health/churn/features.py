"""Turning an account feature frame into a numeric matrix the churn models can learn from.

The encoder is fitted on training examples and reused unchanged at scoring, so a business's new
attribute keys, new categories and empty columns never break a trained model: numeric columns are
imputed with the training median plus a missing indicator, categorical ones are one-hot encoded
with rare levels grouped and unseen levels ignored.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Facts that are written when (or because) an account churns: using them would let the model
# see the outcome it is asked to predict.
OUTCOME_COLUMNS = frozenset(
    {
        "status",
        "churned_on",
        "churn_reason",
        "lifecycle_stage",
        "last_event_received_at",
        "churned",
        "churn_date",
        "obs_date",
        "account_id",
    }
)
MISSING_LEVEL = "(none)"
OTHER_LEVEL = "(other)"
CLIP_QUANTILE = 0.01


@dataclass
class FeatureEncoder:
    """Fitted column layout: `columns` are the encoded columns, `groups[i]` the frame column that
    encoded column i comes from (drivers add effects up per frame column)."""

    min_level_count: int = 10
    min_level_share: float = 0.01
    numeric: list[str] = field(default_factory=list)
    medians: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    with_indicator: list[str] = field(default_factory=list)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    rare_levels: dict[str, list[str]] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def fit(self, frame: pd.DataFrame) -> "FeatureEncoder":
        for name in frame.columns:
            if name in OUTCOME_COLUMNS:
                continue
            column = frame[name]
            if pd.api.types.is_numeric_dtype(column):
                self._fit_numeric(name, column.astype(float))
            else:
                self._fit_categorical(name, _as_levels(column))
        self._layout()
        return self

    def _fit_numeric(self, name: str, column: pd.Series) -> None:
        present = column.dropna()
        has_missing = len(present) < len(column)
        if present.empty or (present.nunique() == 1 and not has_missing):
            return  # nothing to learn from an empty or constant column
        self.numeric.append(name)
        self.medians[name] = float(present.median())
        # Values beyond what training saw are held at its 1st/99th percentile: a linear model
        # must not extrapolate (tenure, for one, keeps growing past every training example).
        low, high = present.quantile([CLIP_QUANTILE, 1 - CLIP_QUANTILE])
        self.bounds[name] = (float(low), float(high))
        if has_missing:
            self.with_indicator.append(name)

    def _fit_categorical(self, name: str, column: pd.Series) -> None:
        counts = column.value_counts()
        threshold = max(self.min_level_count, self.min_level_share * len(column))
        kept = sorted(str(level) for level in counts[counts >= threshold].index)
        rare = counts[counts < threshold]
        if len(kept) + (1 if len(rare) else 0) < 2:
            return  # a single level carries no information
        self.categorical[name] = kept
        if len(rare):
            self.rare_levels[name] = sorted(str(level) for level in rare.index)
        self.modes[name] = str(counts.index[0])

    def _layout(self) -> None:
        columns, groups = [], []
        for name in self.numeric:
            columns.append(name)
            groups.append(name)
            if name in self.with_indicator:
                columns.append(f"{name}__missing")
                groups.append(name)
        for name, levels in self.categorical.items():
            for level in levels:
                columns.append(f"{name}={level}")
                groups.append(name)
            if name in self.rare_levels:
                columns.append(f"{name}={OTHER_LEVEL}")
                groups.append(name)
        self.columns, self.groups = columns, groups

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded matrix (rows in frame order). Columns missing from `frame` count as
        missing values; extra columns are ignored."""
        n = len(frame)
        parts: list[np.ndarray] = []
        for name in self.numeric:
            raw = _numeric(frame, name, n)
            missing = np.isnan(raw)
            low, high = self.bounds[name]
            parts.append(np.clip(np.where(missing, self.medians[name], raw), low, high))
            if name in self.with_indicator:
                parts.append(missing.astype(float))
        for name, levels in self.categorical.items():
            values = _as_levels(frame[name]) if name in frame else pd.Series([MISSING_LEVEL] * n)
            values = values.to_numpy()
            for level in levels:
                parts.append((values == level).astype(float))
            if name in self.rare_levels:
                # Rare training levels go to "other"; levels never seen in training are ignored.
                parts.append(np.isin(values, self.rare_levels[name]).astype(float))
        if not parts:
            return np.zeros((n, 0))
        return np.column_stack(parts)

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)

    def reference_row(self) -> np.ndarray:
        """The encoding of a typical account: numeric medians, no missing values, most common
        level. Drivers measure an account against it."""
        typical = pd.DataFrame(
            {
                **{n: [self.medians[n]] for n in self.numeric},
                **{n: [m] for n, m in self.modes.items()},
            }
        )
        return self.transform(typical)[0]

    def typical_value(self, name: str) -> float | str | None:
        if name in self.medians:
            return self.medians[name]
        return self.modes.get(name)


def _numeric(frame: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name not in frame:
        return np.full(n, np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _as_levels(column: pd.Series) -> pd.Series:
    """Strings for one-hot encoding; empty and missing values become one explicit level."""
    text = column.astype("object").where(column.notna(), MISSING_LEVEL).astype(str).str.strip()
    return text.where(text != "", MISSING_LEVEL).reset_index(drop=True)
