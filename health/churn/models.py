"""Fitting and choosing the churn model: regularised logistic regression against gradient
boosting, compared on a time-based validation, then refitted on every example.

Nothing here is tuned to one business: the candidates are few, regularised and sized by the data,
and the choice (and whether to recalibrate) is made on that business's own later history.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .backtest import auc_score, brier_score
from .features import FeatureEncoder

LOGISTIC = "logistic_regression"
BOOSTING = "gradient_boosting"
# OpenMP threads per process. Workers already run one process per core, and busy-waiting OpenMP
# threads on a shared machine make gradient boosting tens of times slower, not faster.
THREADS = 1
# Within this AUC of each other two candidates are as good; the better-calibrated one wins.
AUC_TIE = 0.005


@dataclass
class ChurnPredictor:
    """A fitted encoder and estimator, plus an optional Platt recalibration (a, b) learned on the
    time-based validation: p = sigmoid(a * logit(raw) + b)."""

    encoder: FeatureEncoder
    estimator: object
    algorithm: str
    params: dict
    platt: tuple[float, float] | None = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_encoded(self.encoder.transform(frame))

    def predict_encoded(self, matrix: np.ndarray) -> np.ndarray:
        if not self.encoder.columns:
            return np.full(len(matrix), self.params.get("base_rate", 0.0))
        with threadpool_limits(limits=THREADS):
            raw = self.estimator.predict_proba(matrix)[:, 1]
        return self.calibrate(raw)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.platt is None:
            return raw
        a, b = self.platt
        return _sigmoid(a * _logit(raw) + b)


@dataclass
class Selection:
    algorithm: str
    params: dict
    scores: dict = field(default_factory=dict)
    platt: tuple[float, float] | None = None
    note: str = ""


def candidates(n_rows: int) -> list[tuple[str, dict]]:
    """Few, regularised candidates sized by the data rather than tuned to any dataset. Examples
    of one account at successive observation dates are near-copies, so trees get large leaves
    and a fixed, modest number of rounds: they must not learn to recognise accounts."""
    leaf = int(max(50, n_rows // 50))
    return [
        (LOGISTIC, {"C": 0.1}),
        (LOGISTIC, {"C": 1.0}),
        (
            BOOSTING,
            {
                "learning_rate": 0.05,
                "max_iter": 150,
                "max_leaf_nodes": 8,
                "min_samples_leaf": leaf,
                "l2_regularization": 1.0,
            },
        ),
    ]


def build_estimator(algorithm: str, params: dict, n_rows: int):
    if algorithm == LOGISTIC:
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=params["C"], max_iter=2000)),
            ]
        )
    # No early stopping: its random hold-out shares accounts with the training rows, so it
    # would reward memorising them.
    return HistGradientBoostingClassifier(**params, early_stopping=False, random_state=0)


def fit_predictor(
    frame: pd.DataFrame, labels: np.ndarray, algorithm: str, params: dict
) -> ChurnPredictor:
    """Fit encoder and estimator on these examples (both classes must be present)."""
    encoder = FeatureEncoder()
    matrix = encoder.fit_transform(frame)
    labels = np.asarray(labels, dtype=int)
    estimator = None
    if encoder.columns:
        estimator = build_estimator(algorithm, params, len(labels))
        with warnings.catch_warnings(), threadpool_limits(limits=THREADS):
            warnings.simplefilter("ignore", category=RuntimeWarning)
            estimator.fit(matrix, labels)
    params = {**params, "base_rate": float(labels.mean()) if len(labels) else 0.0}
    return ChurnPredictor(encoder, estimator, algorithm, params)


def select_and_fit(
    frame: pd.DataFrame, labels: np.ndarray, obs_dates: pd.Series, *, horizon_days: int
) -> tuple[ChurnPredictor, Selection]:
    """Choose algorithm and calibration on a time-based split, then refit on all examples."""
    selection = select_model(frame, labels, obs_dates, horizon_days=horizon_days)
    predictor = fit_predictor(frame, labels, selection.algorithm, selection.params)
    predictor.platt = selection.platt
    return predictor, selection


def time_split(obs_dates: pd.Series, *, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate on the latest ~30% of observation dates; train on dates whose label window closes
    before the first validation date, so training labels never peek into the validation period."""
    dates = pd.to_datetime(obs_dates)
    unique = np.sort(dates.unique())
    if len(unique) < 2:
        return np.zeros(len(dates), bool), np.zeros(len(dates), bool)
    n_val = max(1, int(round(len(unique) * 0.3)))
    first_val = unique[-n_val]
    val = (dates >= first_val).to_numpy()
    train = (dates + pd.Timedelta(days=horizon_days) <= first_val).to_numpy()
    if not train.any():  # short history: give up the gap rather than validating on nothing
        train = ~val
    return train, val


def select_model(
    frame: pd.DataFrame, labels: np.ndarray, obs_dates: pd.Series, *, horizon_days: int
) -> Selection:
    labels = np.asarray(labels, dtype=int)
    train, val = time_split(obs_dates, horizon_days=horizon_days)
    options = candidates(int(train.sum()))
    if _one_class(labels[train]) or _one_class(labels[val]):
        return Selection(*options[0], note="time-based validation skipped: one class only")
    frame = frame.reset_index(drop=True)
    results = []
    for algorithm, params in options:
        predictor = fit_predictor(frame[train], labels[train], algorithm, params)
        predicted = predictor.predict(frame[val])
        results.append((algorithm, params, predicted))
    scored = [
        (auc_score(labels[val], p), brier_score(labels[val], p), a, params, p)
        for a, params, p in results
    ]
    best_auc = max(s[0] for s in scored)
    tied = [s for s in scored if s[0] >= best_auc - AUC_TIE]
    auc, brier, algorithm, params, predicted = min(tied, key=lambda s: s[1])
    scores = {
        f"{a}(C={p['C']})" if a == LOGISTIC else a: {"auc": round(x, 4), "brier": round(b, 5)}
        for x, b, a, p, _ in scored
    }
    selection = Selection(algorithm, params, scores=scores)
    selection.platt, selection.scores["calibration"] = choose_calibration(
        predicted, labels[val], pd.to_datetime(obs_dates).to_numpy()[val]
    )
    return selection


def choose_calibration(
    predicted: np.ndarray, labels: np.ndarray, dates: np.ndarray
) -> tuple[tuple[float, float] | None, dict]:
    """Platt recalibration is kept only if, fitted on one half of the validation dates and
    checked on the other (both ways), it lowers the Brier score by more than 2%."""
    unique = np.sort(np.unique(dates))
    halves = (
        dates >= unique[len(unique) // 2] if len(unique) > 1 else np.arange(len(dates)) % 2 == 0
    )
    raw = brier_score(labels, predicted)
    crossed = np.empty_like(predicted)
    for part in (halves, ~halves):
        if _one_class(labels[~part]) or not part.any():
            return None, {"raw_brier": round(raw, 5), "method": "none"}
        a, b = fit_platt(predicted[~part], labels[~part])
        crossed[part] = _sigmoid(a * _logit(predicted[part]) + b)
    recalibrated = brier_score(labels, crossed)
    report = {"raw_brier": round(raw, 5), "platt_brier": round(recalibrated, 5)}
    if recalibrated < raw * 0.98:
        return fit_platt(predicted, labels), {**report, "method": "platt"}
    return None, {**report, "method": "none"}


def fit_platt(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    model = LogisticRegression(C=1e4, max_iter=1000)
    model.fit(_logit(predicted).reshape(-1, 1), labels)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def _one_class(labels: np.ndarray) -> bool:
    return len(labels) == 0 or labels.min() == labels.max()


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))
