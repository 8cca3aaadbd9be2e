"""Training churn models from the business's own history and scoring accounts with them.

The numbers live in health.churn (plain pandas/scikit-learn); the training data is read in
churn_data and the backtest run in churn_backtest; this module trains, stores signed model
versions, scores accounts in bulk and explains a prediction's drivers.
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
from django.db.models import Max
from django.utils.crypto import constant_time_compare, salted_hmac

from health.churn import dataset
from health.churn.drivers import explain
from health.churn.models import ChurnPredictor, select_and_fit
from health.features import BASELINE_COLUMN
from health.models import AccountHealth, ChurnModel, HealthScore
from health.models.churn import ChurnModelStatus
from health.services.bulk import rows_update
from health.services.churn_backtest import churn_backtest
from health.services.churn_data import (
    OBSERVATION_STEP_DAYS,
    churn_feature_frame,
    churn_min_churns,
    training_examples,
    with_usage_baseline,
)

logger = logging.getLogger(__name__)

ARTIFACT_SALT = "health.churn.artifact"


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


@dataclass
class ChurnScores:
    """A chunk's churn risk, for its daily snapshots and current-health rows."""

    model: ChurnModel
    account_ids: list[int]
    risk: list[float]
    inputs: list[list]
    gone: list[int]


def churn_risk_score(
    *, as_of: dt.date, account_ids: list[int], frame: pd.DataFrame | None = None
) -> int:
    """Score these accounts with the latest trained model usable at as_of and store the risk on
    their snapshots of that date (the health score writes those; accounts without one get none)
    and on AccountHealth. A recompute chunk instead passes churn_risk_compute's result to
    health_scores_compute, which writes both at once. Without a usable model nothing is
    written and 0 is returned."""
    scores = churn_risk_compute(as_of=as_of, account_ids=account_ids, frame=frame)
    if scores is None:
        return 0
    with transaction.atomic():
        rows_update(
            model=HealthScore,
            key="account",
            columns={
                "account": [*scores.account_ids, *scores.gone],
                "churn_risk": [*scores.risk, *([None] * len(scores.gone))],
                "churn_model": [scores.model.pk] * len(scores.account_ids)
                + [None] * len(scores.gone),
                "churn_inputs": [*scores.inputs, *([[]] * len(scores.gone))],
            },
            where="t.as_of = %s",
            params=[as_of],
        )
        _account_health_update(as_of=as_of, scores=scores)
    return len(scores.account_ids)


def churn_risk_compute(
    *, as_of: dt.date, account_ids: list[int], frame: pd.DataFrame | None = None
) -> ChurnScores | None:
    """Churn risk of these accounts as of a date, with the model inputs behind it; nothing is
    written. `frame` is the accounts' account_feature_frame(usage_baseline=True) when the caller
    already built it. None without a usable model."""
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
        frame = with_usage_baseline(frame.loc[frame.index.isin(ids)])
    scored = [int(a) for a in frame.index]
    risk = predictor.predict(frame) if scored else []
    return ChurnScores(
        model=model,
        account_ids=scored,
        risk=np.clip(np.asarray(risk, dtype=float), 0.0, 1.0).tolist(),
        inputs=model_inputs(predictor, frame),
        gone=sorted(set(ids) - set(scored)),
    )


def model_inputs(predictor: ChurnPredictor, frame: pd.DataFrame) -> list[list]:
    """Per row, the values of the model's features (None where there is none)."""
    values = frame.reindex(columns=predictor.encoder.features).astype(object)
    return values.where(values.notna(), None).to_numpy().tolist()


def prediction_drivers(snapshot: HealthScore, *, top: int = 5) -> list[dict]:
    """The features that raise or lower a snapshot's churn risk most, in words, from the inputs
    the model scored. Empty when there are none or the model can no longer be loaded."""
    inputs = snapshot.churn_inputs
    if not inputs or snapshot.churn_model_id is None:
        return []
    predictor = _artifact_load(snapshot.churn_model)
    if predictor is None or len(inputs) != len(predictor.encoder.features):
        return []
    row = pd.DataFrame([inputs], columns=predictor.encoder.features)
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
