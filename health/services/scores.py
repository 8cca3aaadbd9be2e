"""Writes for health scoring: publishing scorecard versions, CSM sentiment overrides, and
computing and storing the daily health snapshots in bulk."""

import datetime as dt
import importlib
import importlib.util
import logging
import time
from collections.abc import Sequence

import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from accounts.models import Account
from health.features import account_feature_frame, paying_account_ids
from health.models import (
    AccountHealth,
    HealthScore,
    Scorecard,
    ScorecardVersion,
    SentimentOverride,
)
from health.scoring.definition import definition_errors
from health.scoring.engine import score_frame
from health.scoring.matching import assign_scorecards

logger = logging.getLogger(__name__)

# Each call writes at most this many accounts per transaction; keeps IN lists and locks short.
MAX_ACCOUNTS_PER_WRITE = 5000


def scorecard_definition(*, scorecard: Scorecard) -> dict:
    """The scorecard's current rows as a definition (see health.scoring.definition)."""
    measures = [
        {
            "name": m.name,
            "label": m.label or m.name,
            "feature": m.feature,
            "weight": m.weight,
            "mapping": m.mapping,
            "direction": m.direction,
            "low": m.low,
            "high": m.high,
            "thresholds": m.thresholds or [],
        }
        for m in scorecard.measures.order_by("position", "pk")
    ]
    return {
        "scorecard_id": scorecard.pk,
        "scorecard": scorecard.name,
        "priority": scorecard.priority,
        "is_default": scorecard.is_default,
        "match": {"segment": _split(scorecard.segments), "tier": _split(scorecard.tiers)},
        "grades": {"green": scorecard.green_threshold, "yellow": scorecard.yellow_threshold},
        "sentiment_weight": scorecard.sentiment_weight,
        "measures": measures,
    }


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@transaction.atomic
def scorecard_publish(*, scorecard: Scorecard, user=None) -> ScorecardVersion:
    """Freeze the scorecard's current definition as a new version (or return the latest one if
    nothing changed). Raises ValidationError when the definition cannot be scored."""
    Scorecard.objects.select_for_update().filter(pk=scorecard.pk).first()
    definition = scorecard_definition(scorecard=scorecard)
    problems = definition_errors(definition)
    if problems:
        raise ValidationError(problems)
    latest = scorecard.versions.order_by("-number").first()
    if latest is not None:
        previous = {k: v for k, v in latest.definition.items() if k != "version"}
        if previous == definition:
            return latest
    number = (latest.number if latest else 0) + 1
    return ScorecardVersion.objects.create(
        scorecard=scorecard,
        number=number,
        definition={**definition, "version": number},
        created_by=user if getattr(user, "pk", None) else None,
    )


def sentiment_override_errors(
    *, grade: str, points: float | None, reason: str, expires_on: dt.date | None
) -> dict[str, list[str]]:
    """Field -> reasons why this override cannot be added; empty when it can."""
    errors = {}
    if bool(grade) == (points is not None):
        errors["grade"] = ["Give either a grade (green, yellow, red) or points, not both."]
    elif grade and grade not in ("green", "yellow", "red"):
        errors["grade"] = ["Grade must be green, yellow or red."]
    elif points is not None and not 0 <= points <= 100:
        errors["points"] = ["Points must be between 0 and 100."]
    if not (reason or "").strip():
        errors["reason"] = ["Say why: the reason is shown with the score."]
    if expires_on is None or expires_on <= timezone.now().date():
        errors["expires_on"] = ["The expiry date must be in the future."]
    return errors


@transaction.atomic
def sentiment_override_add(
    *,
    account: Account,
    author,
    reason: str,
    expires_on: dt.date,
    grade: str = "",
    points: float | None = None,
) -> SentimentOverride:
    """Record a CSM's judgement. It counts from now until (not including) expires_on."""
    errors = sentiment_override_errors(
        grade=grade, points=points, reason=reason, expires_on=expires_on
    )
    if errors:
        raise ValidationError(errors)
    return SentimentOverride.objects.create(
        account=account,
        author=author if getattr(author, "pk", None) else None,
        grade=grade or "",
        points=points,
        reason=reason.strip(),
        expires_on=expires_on,
        created_at=timezone.now(),
    )


@transaction.atomic
def sentiment_override_revoke(*, override: SentimentOverride, user) -> SentimentOverride:
    if override.revoked_at is None:
        override.revoked_at = timezone.now()
        override.revoked_by = user if getattr(user, "pk", None) else None
        override.save(update_fields=["revoked_at", "revoked_by"])
    return override


def current_scorecard_versions() -> list[ScorecardVersion]:
    """The latest version of every active scorecard."""
    return list(
        ScorecardVersion.objects.filter(scorecard__is_active=True)
        .annotate(latest=Max("scorecard__versions__number"))
        .filter(number=F("latest"))
    )


def active_overrides(*, as_of: dt.date, account_ids: Sequence[int]) -> pd.DataFrame:
    """The override in force at the end of as_of per account (the newest if several)."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    rows = (
        SentimentOverride.objects.filter(
            account_id__in=account_ids, created_at__lt=end, expires_on__gt=as_of
        )
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gte=end))
        .order_by("account_id", "created_at", "pk")
        .values_list("account_id", "grade", "points")
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["account_id", "grade", "points"])
    frame = frame.drop_duplicates("account_id", keep="last").set_index("account_id")
    frame["points"] = frame["points"].astype(float)
    return frame


def health_scores_compute(*, as_of: dt.date, account_ids: Sequence[int]) -> int:
    """Compute and store (replacing) the snapshot of these accounts at as_of and move their
    current health forward. Accounts not paying at as_of get no snapshot for that date.
    Returns the number of snapshots written; running it twice gives the same rows."""
    ids = sorted(set(account_ids))
    written = 0
    for start in range(0, len(ids), MAX_ACCOUNTS_PER_WRITE):
        written += _compute_chunk(as_of, ids[start : start + MAX_ACCOUNTS_PER_WRITE])
    return written


def _compute_chunk(as_of: dt.date, ids: list[int]) -> int:
    features = account_feature_frame(as_of=as_of, account_ids=ids)
    versions = current_scorecard_versions()
    definitions = [v.definition for v in versions]
    chosen = assign_scorecards(features, definitions)
    if len(chosen) < len(features):
        logger.warning("%d accounts match no scorecard (no default?)", len(features) - len(chosen))
    overrides = active_overrides(as_of=as_of, account_ids=chosen.index.tolist())
    computed_at = timezone.now()
    snapshots = []
    for position, members in chosen.groupby(chosen):
        version = versions[position]
        scored = score_frame(features.loc[members.index], version.definition, overrides)
        explained = scored.measures_by_account()
        for account_id, score, grade in zip(
            scored.totals.index.tolist(),
            scored.totals["score"].tolist(),
            scored.totals["grade"].tolist(),
            strict=True,
        ):
            snapshots.append(
                HealthScore(
                    account_id=account_id,
                    as_of=as_of,
                    score=None if pd.isna(score) else score,
                    grade=grade,
                    measures=explained[account_id],
                    scorecard_version_id=version.pk,
                    computed_at=computed_at,
                )
            )
    _store(as_of, ids, snapshots)
    return len(snapshots)


@transaction.atomic
def _store(as_of: dt.date, ids: list[int], snapshots: list[HealthScore]) -> None:
    scored_ids = {s.account_id for s in snapshots}
    # A re-run after the data changed (a subscription corrected) drops snapshots that no longer
    # apply, so the date's set of snapshots is exactly what this run computed.
    stale = [i for i in ids if i not in scored_ids]
    if stale:
        HealthScore.objects.filter(as_of=as_of, account_id__in=stale).delete()
    HealthScore.objects.bulk_create(
        snapshots,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["account", "as_of"],
        update_fields=["score", "grade", "measures", "scorecard_version", "computed_at"],
    )
    _account_health_update(as_of, ids, snapshots)


def _account_health_update(as_of: dt.date, ids: list[int], snapshots: list[HealthScore]) -> None:
    """Only move forward: accounts whose current health is newer than as_of keep it."""
    newer = set(
        AccountHealth.objects.filter(account_id__in=ids, as_of__gt=as_of).values_list(
            "account_id", flat=True
        )
    )
    rows = [
        AccountHealth(
            account_id=s.account_id,
            as_of=as_of,
            score=s.score,
            grade=s.grade,
            scorecard_version_id=s.scorecard_version_id,
        )
        for s in snapshots
        if s.account_id not in newer
    ]
    scored_ids = {s.account_id for s in snapshots}
    gone = [i for i in ids if i not in scored_ids and i not in newer]
    if gone:
        # No longer paying (or no scorecard applies): a stale "current" value would mislead lists.
        AccountHealth.objects.filter(account_id__in=gone).delete()
    AccountHealth.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["account"],
        update_fields=["as_of", "score", "grade", "scorecard_version", "updated_at"],
    )


def _churn_scorer():
    """health.services.churn.churn_risk_score when the churn part is installed, else None."""
    if importlib.util.find_spec("health.services.churn") is None:
        return None
    return getattr(importlib.import_module("health.services.churn"), "churn_risk_score", None)


def health_compute_all(*, as_of: dt.date, chunk_size: int = 2000, progress=None) -> dict:
    """Health (and churn risk, when a model exists) of every account paying at as_of, chunk by
    chunk. `progress(done, total)` is called after each chunk."""
    started = time.monotonic()
    ids = paying_account_ids(as_of=as_of)
    churn_risk_score = _churn_scorer()
    scores = predictions = 0
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        scores += health_scores_compute(as_of=as_of, account_ids=chunk)
        if churn_risk_score is not None:
            predictions += churn_risk_score(as_of=as_of, account_ids=chunk)
        if progress is not None:
            progress(min(start + chunk_size, len(ids)), len(ids))
    return {
        "as_of": as_of.isoformat(),
        "accounts": len(ids),
        "health_scores": scores,
        "churn_predictions": predictions,
        "seconds": round(time.monotonic() - started, 2),
    }
