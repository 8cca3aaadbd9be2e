"""Training churn models from the business's own history, backtesting them, and scoring accounts.

The numbers live in health.churn (plain pandas/scikit-learn); this module reads the history with
set-based queries (through health.features.account_feature_frame, one frame per observation date)
and writes results in bulk.
"""

import datetime as dt
import io
import logging
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import DailyUsage, Subscription
from health.churn import backtest as metrics
from health.churn import dataset
from health.churn.drivers import explain
from health.churn.models import ChurnPredictor, select_and_fit
from health.features import BASELINE_COLUMN, account_feature_frame
from health.models import AccountHealth, ChurnModel, ChurnPrediction, HealthScore
from health.models.churn import ChurnModelStatus
from health.services.bulk import rows_update, rows_upsert

logger = logging.getLogger(__name__)

OBSERVATION_STEP_DAYS = 14
# The backtest is repeated at this many earlier cut-offs, this far apart (a multiple of the
# observation step, so each cut-off is an observation date).
EARLIER_CUTOFFS = 2
EARLIER_CUTOFF_SPACING_DAYS = 2 * OBSERVATION_STEP_DAYS
LEAD_TIME_STEP_DAYS = 7
# Usage windows reach this far back (the baseline: 90 days before the last 30): observation
# dates start once the usage history covers them, or every early date would look like growth.
USAGE_WARMUP_DAYS = dataset.RECENT_DAYS + dataset.BASELINE_DAYS
ARTIFACT_SALT = "health.churn.artifact"


def churn_min_churns() -> int:
    return settings.CHURN_MIN_CHURNS


def churn_model_train(*, as_of: dt.date, horizon_days: int | None = None) -> ChurnModel:
    """Train a churn model on history up to as_of, backtest it, and store it as a new version
    (status insufficient_history, with no artifact, when there are too few churns). The horizon
    defaults to the CHURN_HORIZON_DAYS setting."""
    horizon_days = horizon_days or settings.CHURN_HORIZON_DAYS
    if horizon_days < 7:
        raise ValueError("horizon_days must be at least 7")
    examples, labels, dates = training_examples(as_of=as_of, horizon_days=horizon_days)
    churns = dataset.churn_count(examples, labels, dates)
    fields = {
        "as_of": as_of,
        "horizon_days": horizon_days,
        "training_examples": len(examples),
        "training_accounts": int(examples["account_id"].nunique()) if len(examples) else 0,
        "churn_count": churns,
    }
    need = churn_min_churns()
    if churns < need:
        message = f"not enough churn history: {churns} churns, need {need}"
        return _model_save(status=ChurnModelStatus.INSUFFICIENT_HISTORY, message=message, **fields)
    frame = examples.drop(columns=["account_id", "obs_date"])
    predictor, selection = select_and_fit(
        frame, labels.to_numpy(), examples["obs_date"], horizon_days=horizon_days
    )
    report = churn_backtest(
        examples=examples, labels=labels, dates=dates, as_of=as_of, horizon_days=horizon_days
    )
    artifact = _artifact_dump(predictor)
    return _model_save(
        status=ChurnModelStatus.TRAINED,
        algorithm=predictor.algorithm,
        features=predictor.encoder.features,
        backtest=report,
        params={
            **{k: v for k, v in predictor.params.items()},
            "calibration": "platt" if predictor.platt else "none",
            "validation": selection.scores,
            "selection_note": selection.note,
            "observation_step_days": OBSERVATION_STEP_DAYS,
        },
        artifact=artifact,
        artifact_signature=_sign(artifact),
        **fields,
    )


def training_examples(
    *, as_of: dt.date, horizon_days: int
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(examples with account_id, obs_date and features; labels; churn dates) for every
    observation date whose label window closes by as_of. Labels use subscriptions as known at
    as_of; each date's features use only data up to that date."""
    first_day = _history_start(as_of)
    if first_day is None:
        empty = pd.DataFrame(columns=["account_id", "obs_date"])
        return empty, pd.Series(dtype=int), pd.Series(dtype="datetime64[ns]")
    dates = dataset.observation_dates(
        first_day=first_day, as_of=as_of, horizon_days=horizon_days, step_days=OBSERVATION_STEP_DAYS
    )
    sample = _training_sample(as_of)
    periods = _subscription_periods(as_of)
    frames = [_dated_frame(day, sample) for day in dates]
    frames = [f for f in frames if len(f)]
    if not frames:
        empty = pd.DataFrame(columns=["account_id", "obs_date"])
        return empty, pd.Series(dtype=int), pd.Series(dtype="datetime64[ns]")
    examples = pd.concat(frames, ignore_index=True)
    spells = dataset.paying_spells(periods, known_at=as_of)
    labels = dataset.churn_labels(examples, spells, horizon_days=horizon_days)
    return examples, labels, dataset.churn_dates(examples, spells)


def churn_backtest(
    *,
    examples: pd.DataFrame,
    labels: pd.Series,
    dates: pd.Series,
    as_of: dt.date,
    horizon_days: int,
) -> dict:
    """Train on examples whose label windows end by the cut-off (as_of − horizon), score the
    accounts paying at the cut-off, compare with who churned in the horizon after it. The same
    is repeated at EARLIER_CUTOFFS earlier cut-offs (each with its own model) under
    `earlier_cutoffs`, with the spread of AUC and lift across all of them under `stability`:
    one cut-off's few dozen churners make a noisy AUC, and a manager should see how much."""
    cutoff = as_of - dt.timedelta(days=horizon_days)
    model, report = _backtest_at(examples, labels, dates, cutoff=cutoff, horizon_days=horizon_days)
    if model is None:
        return report
    predictor, predicted, test = model
    report.update(
        _lead_time(
            predictor=predictor,
            scored=examples.loc[test, "account_id"].to_numpy(),
            predicted=predicted,
            cutoff=cutoff,
            as_of=as_of,
        )
    )
    earlier = [
        _backtest_at(
            examples,
            labels,
            dates,
            cutoff=cutoff - dt.timedelta(days=k * EARLIER_CUTOFF_SPACING_DAYS),
            horizon_days=horizon_days,
        )[1]
        for k in range(1, EARLIER_CUTOFFS + 1)
    ]
    report["earlier_cutoffs"] = [_summary(r) for r in earlier]
    report["stability"] = metrics.stability([report, *earlier])
    return report


def _backtest_at(
    examples: pd.DataFrame,
    labels: pd.Series,
    dates: pd.Series,
    *,
    cutoff: dt.date,
    horizon_days: int,
) -> tuple[tuple | None, dict]:
    """((model, predictions, test mask) or None, report) of one cut-off."""
    obs = pd.to_datetime(examples["obs_date"])
    train = (obs + pd.Timedelta(days=horizon_days) <= pd.Timestamp(cutoff)).to_numpy()
    test = (obs == pd.Timestamp(cutoff)).to_numpy()
    base = {"cutoff": cutoff.isoformat(), "horizon_days": horizon_days}
    churns = dataset.churn_count(examples[train], labels[train], dates[train])
    need = churn_min_churns()
    if churns < need or not test.any() or labels[train].nunique() < 2:
        reason = f"not enough churn history before the cut-off: {churns} churns, need {need}"
        return None, {**base, "available": False, "reason": reason}
    frame = examples.drop(columns=["account_id", "obs_date"])
    predictor, _ = select_and_fit(
        frame[train],
        labels[train].to_numpy(),
        examples.loc[train, "obs_date"],
        horizon_days=horizon_days,
    )
    predicted = predictor.predict(frame[test])
    report = metrics.backtest_report(labels[test].to_numpy(), predicted)
    report.update(base)
    report.update(available=True, algorithm=predictor.algorithm, training_examples=int(train.sum()))
    report["training_churns"] = churns
    return (predictor, predicted, test), report


def _summary(report: dict) -> dict:
    keys = ["cutoff", "available", "reason", "auc", "lift", "brier"]
    return {k: report[k] for k in [*keys, "scored_accounts", "churned_accounts"] if k in report}


def _lead_time(
    *,
    predictor: ChurnPredictor,
    scored: np.ndarray,
    predicted: np.ndarray,
    cutoff: dt.date,
    as_of: dt.date,
) -> dict:
    """Median days between an account first being flagged (risk at or above the cut-off's
    top-decile threshold in weekly re-scorings, or a red health grade) and its churn."""
    threshold = metrics.top_decile_threshold(predicted)
    flagged = {
        int(a): pd.Timestamp(cutoff)
        for a, p in zip(scored, predicted, strict=True)
        if p >= threshold
    }
    periods = _subscription_periods(as_of)
    day = cutoff + dt.timedelta(days=LEAD_TIME_STEP_DAYS)
    while day < as_of:
        frame = churn_feature_frame(as_of=day, account_ids=list(scored))
        if len(frame):
            risk = predictor.predict(frame)
            for account_id in frame.index[risk >= threshold]:
                flagged.setdefault(int(account_id), pd.Timestamp(day))
        day += dt.timedelta(days=LEAD_TIME_STEP_DAYS)
    spells = dataset.paying_spells(periods, known_at=as_of)
    at_cutoff = pd.DataFrame({"account_id": scored, "obs_date": cutoff})
    ends = dataset.churn_dates(at_cutoff, spells)
    window_end = pd.Timestamp(as_of)
    churn = pd.Series(ends.to_numpy(), index=scored)
    churn = churn[churn.notna() & (churn <= window_end)]
    by_risk = pd.Series(flagged, dtype="datetime64[ns]")
    red = _first_red(list(churn.index), cutoff, as_of)
    combined = pd.concat([by_risk, red], axis=1).min(axis=1) if len(red) else by_risk
    return {
        "lead_time_days": metrics.median_lead_time(combined, churn),
        "lead_time_days_risk_only": metrics.median_lead_time(by_risk, churn),
        "flag_threshold": round(threshold, 4),
        "flagged_churners": int(len(metrics.lead_times(combined, churn))),
        "red_grade_history": bool(len(red)),
    }


def _first_red(account_ids: list[int], cutoff: dt.date, as_of: dt.date) -> pd.Series:
    rows = (
        HealthScore.objects.filter(
            account_id__in=account_ids, as_of__gte=cutoff, as_of__lte=as_of, grade="red"
        )
        .values("account_id")
        .order_by()
        .annotate(first=Min("as_of"))
        .values_list("account_id", "first")
    )
    data = dict(rows)
    return pd.Series({k: pd.Timestamp(v) for k, v in data.items()}, dtype="datetime64[ns]")


@dataclass
class ChurnScores:
    """What a chunk's churn scoring wrote, for the current-health row."""

    model: ChurnModel
    account_ids: list[int]
    risk: list[float]
    gone: list[int]


def churn_risk_score(
    *, as_of: dt.date, account_ids: list[int], frame: pd.DataFrame | None = None
) -> int:
    """Score these accounts with the latest trained model usable at as_of; store predictions
    (replacing that date's) and the current churn risk on AccountHealth. Without a usable model
    nothing is written and 0 is returned."""
    scores = churn_risk_compute(as_of=as_of, account_ids=account_ids, frame=frame)
    if scores is None:
        return 0
    _account_health_update(as_of=as_of, scores=scores)
    return len(scores.account_ids)


def churn_risk_compute(
    *, as_of: dt.date, account_ids: list[int], frame: pd.DataFrame | None = None
) -> ChurnScores | None:
    """The predictions part of churn_risk_score, leaving AccountHealth to the caller (a
    recompute chunk writes it once, with the health score). `frame` is the accounts'
    account_feature_frame(usage_baseline=True) when the caller already built it. None without
    a usable model."""
    model = usable_model(as_of=as_of)
    if model is None or not account_ids:
        return None
    predictor = _artifact_load(model)
    if predictor is None:
        return None
    ids = sorted({int(a) for a in account_ids})
    if frame is None:
        frame = churn_feature_frame(as_of=as_of, account_ids=ids)
    elif BASELINE_COLUMN not in frame:
        raise ValueError("churn risk needs account_feature_frame(..., usage_baseline=True)")
    else:
        frame = _with_usage_baseline(frame.loc[frame.index.isin(ids)])
    scored = [int(a) for a in frame.index]
    risk = predictor.predict(frame) if scored else []
    risk = np.clip(np.asarray(risk, dtype=float), 0.0, 1.0).tolist()
    with transaction.atomic():
        gone = sorted(set(ids) - set(scored))
        if gone:
            ChurnPrediction.objects.filter(account_id__in=gone, as_of=as_of).delete()
        rows_upsert(
            model=ChurnPrediction,
            columns={
                "account": scored,
                "probability": risk,
                "inputs": model_inputs(predictor, frame),
            },
            same={"as_of": as_of, "model": model.pk, "computed_at": timezone.now()},
            unique=["account", "as_of"],
            update=["probability", "model", "inputs", "computed_at"],
        )
    return ChurnScores(model=model, account_ids=scored, risk=risk, gone=gone)


def model_inputs(predictor: ChurnPredictor, frame: pd.DataFrame) -> list[list]:
    """Per row, the values of the model's features (None where there is none)."""
    values = frame.reindex(columns=predictor.encoder.features).astype(object)
    return values.where(values.notna(), None).to_numpy().tolist()


def prediction_drivers(prediction: ChurnPrediction, *, top: int = 5) -> list[dict]:
    """The features that raise or lower this prediction's risk most, in words, from the inputs
    the model scored. Empty when there are none or the model can no longer be loaded."""
    if not prediction.inputs:
        return []
    predictor = _artifact_load(prediction.model)
    if predictor is None or len(prediction.inputs) != len(predictor.encoder.features):
        return []
    row = pd.DataFrame([prediction.inputs], columns=predictor.encoder.features)
    return explain(predictor, row, top=top)[0]


def usable_model(*, as_of: dt.date) -> ChurnModel | None:
    """The trained model with the newest as_of not after the scoring date (newest version wins a
    tie), so replaying history never uses a model that saw the future."""
    return (
        ChurnModel.objects.filter(status=ChurnModelStatus.TRAINED, as_of__lte=as_of)
        .order_by("-as_of", "-version")
        .first()
    )


def _account_health_update(*, as_of: dt.date, scores: ChurnScores) -> None:
    """Existing AccountHealth rows only (the scoring service creates them); like the health score
    it only moves forward, so a backfill never replaces a newer current value. One UPDATE for the
    chunk (bulk_update's CASE WHEN per row took about 1 s per 1,000 accounts)."""
    rows_update(
        model=AccountHealth,
        key="account",
        columns={
            "account": [*scores.account_ids, *scores.gone],
            "churn_risk": [*scores.risk, *([None] * len(scores.gone))],
            "churn_model_version": [scores.model.version] * len(scores.account_ids)
            + [None] * len(scores.gone),
        },
        where="t.as_of <= %s",
        params=[as_of],
    )


def _history_start(as_of: dt.date) -> dt.date | None:
    first_start = Subscription.objects.filter(start_date__lte=as_of).aggregate(d=Min("start_date"))
    first_usage = DailyUsage.objects.filter(day__lte=as_of).aggregate(d=Min("day"))
    if first_start["d"] is None:
        return None
    if first_usage["d"] is None:
        return first_start["d"]
    return max(first_start["d"], first_usage["d"] + dt.timedelta(days=USAGE_WARMUP_DAYS))


def _training_sample(as_of: dt.date) -> list[int] | None:
    """All accounts, or a fixed random subset when there are more than CHURN_MAX_TRAINING_ACCOUNTS
    (training cost grows with accounts × observation dates; a few tens of thousands suffice)."""
    limit = settings.CHURN_MAX_TRAINING_ACCOUNTS
    ids = np.array(
        Subscription.objects.filter(start_date__lte=as_of)
        .order_by("account_id")
        .values_list("account_id", flat=True)
        .distinct()
    )
    if len(ids) <= limit:
        return None
    return sorted(int(i) for i in np.random.default_rng(0).choice(ids, size=limit, replace=False))


def churn_feature_frame(*, as_of: dt.date, account_ids: list[int] | None) -> pd.DataFrame:
    """The shared account feature frame plus usage against the account's own usual level."""
    frame = account_feature_frame(as_of=as_of, account_ids=account_ids, usage_baseline=True)
    return _with_usage_baseline(frame)


def _with_usage_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    baseline = frame[[BASELINE_COLUMN]].rename(columns={BASELINE_COLUMN: "events"})
    return dataset.with_baseline_ratios(frame.drop(columns=BASELINE_COLUMN), baseline)


def _dated_frame(day: dt.date, account_ids: list[int] | None) -> pd.DataFrame:
    frame = churn_feature_frame(as_of=day, account_ids=account_ids)
    frame = frame.reset_index()
    frame.insert(1, "obs_date", pd.Timestamp(day))
    return frame


def _subscription_periods(as_of: dt.date, account_ids: list[int] | None = None) -> pd.DataFrame:
    rows = Subscription.objects.filter(start_date__lte=as_of)
    if account_ids is not None:
        rows = rows.filter(account_id__in=account_ids)
    return pd.DataFrame.from_records(
        list(rows.values_list("account_id", "start_date", "end_date", "billing_period_months")),
        columns=["account_id", "start_date", "end_date", "billing_period_months"],
    )


def _model_save(**fields) -> ChurnModel:
    for _ in range(3):  # two trainings at once may pick the same next version
        try:
            with transaction.atomic():
                last = ChurnModel.objects.aggregate(v=Max("version"))["v"] or 0
                return ChurnModel.objects.create(version=last + 1, **fields)
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a churn model version")


def _sign(artifact: bytes) -> str:
    return salted_hmac(ARTIFACT_SALT, artifact, algorithm="sha256").hexdigest()


def _artifact_dump(predictor: ChurnPredictor) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(predictor, buffer, compress=3)
    return buffer.getvalue()


_loaded: dict[tuple[int, str], ChurnPredictor] = {}


def _artifact_load(model: ChurnModel) -> ChurnPredictor | None:
    """Unpickle only what this app wrote: the signature must match under this SECRET_KEY."""
    key = (model.pk, model.artifact_signature)
    if key in _loaded:
        return _loaded[key]
    artifact = bytes(model.artifact or b"")
    if not artifact or not constant_time_compare(_sign(artifact), model.artifact_signature):
        logger.error("churn model v%s: artifact missing or signature mismatch", model.version)
        return None
    predictor = joblib.load(io.BytesIO(artifact))
    _loaded.clear()  # one model in memory per process is enough
    _loaded[key] = predictor
    return predictor
