"""Writes for health scoring: publishing scorecard versions, CSM sentiment overrides, and
computing and storing the daily health snapshots in bulk."""

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from accounts.models import Account
from health.features import account_feature_frame, account_rows_filter
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
from health.services.bulk import rows_upsert

if TYPE_CHECKING:
    from health.services.churn import ChurnScores

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
            account_rows_filter(sorted(account_ids)), created_at__lt=end, expires_on__gt=as_of
        )
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gte=end))
        .order_by("account_id", "created_at", "pk")
        .values_list("account_id", "grade", "points")
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["account_id", "grade", "points"])
    frame = frame[frame["account_id"].isin(account_ids)]
    frame = frame.drop_duplicates("account_id", keep="last").set_index("account_id")
    frame["points"] = frame["points"].astype(float)
    return frame


def health_scores_compute(
    *,
    as_of: dt.date,
    account_ids: Sequence[int],
    frame: pd.DataFrame | None = None,
    churn: "ChurnScores | None" = None,
) -> int:
    """Compute and store (replacing) the snapshot of these accounts at as_of and move their
    current health forward. Accounts not paying at as_of get no snapshot for that date.
    `frame` is their account_feature_frame when the caller already built it, and `churn` what
    churn_risk_compute wrote for them: a recompute chunk shares one frame between the two and
    writes the current row (AccountHealth) once, with both. Returns the number of snapshots
    written; running it twice gives the same rows."""
    ids = sorted(set(account_ids))
    if frame is not None:
        return _compute_chunk(as_of, ids, frame.loc[frame.index.isin(ids)], churn)
    if churn is not None:
        raise ValueError("churn scores come with the frame they were computed on")
    written = 0
    for start in range(0, len(ids), MAX_ACCOUNTS_PER_WRITE):
        written += _compute_chunk(as_of, ids[start : start + MAX_ACCOUNTS_PER_WRITE])
    return written


def _compute_chunk(
    as_of: dt.date,
    ids: list[int],
    features: pd.DataFrame | None = None,
    churn: "ChurnScores | None" = None,
) -> int:
    if features is None:
        features = account_feature_frame(as_of=as_of, account_ids=ids)
    versions = current_scorecard_versions()
    chosen = assign_scorecards(features, [v.definition for v in versions])
    if len(chosen) < len(features):
        logger.warning("%d accounts match no scorecard (no default?)", len(features) - len(chosen))
    overrides = active_overrides(as_of=as_of, account_ids=chosen.index.tolist())
    snapshots = {"account": [], "score": [], "grade": [], "parts": [], "scorecard_version": []}
    for position, members in chosen.groupby(chosen):
        version = versions[position]
        scored = score_frame(features.loc[members.index], version.definition, overrides)
        account_ids = scored.totals.index.tolist()
        snapshots["account"] += account_ids
        snapshots["score"] += [None if pd.isna(s) else s for s in scored.totals["score"].tolist()]
        snapshots["grade"] += scored.totals["grade"].tolist()
        snapshots["parts"] += scored.parts()
        snapshots["scorecard_version"] += [version.pk] * len(account_ids)
    _store(as_of, ids, snapshots, churn)
    return len(snapshots["account"])


@transaction.atomic
def _store(
    as_of: dt.date, ids: list[int], snapshots: dict[str, list], churn: "ChurnScores | None"
) -> None:
    """Snapshots given column by column (account, score, grade, parts, scorecard_version)."""
    scored_ids = set(snapshots["account"])
    # A re-run after the data changed (a subscription corrected) drops snapshots that no longer
    # apply, so the date's set of snapshots is exactly what this run computed.
    stale = [i for i in ids if i not in scored_ids]
    if stale:
        HealthScore.objects.filter(as_of=as_of, account_id__in=stale).delete()
    now = timezone.now()
    columns, same = dict(snapshots), {"as_of": as_of, "computed_at": now}
    update = ["score", "grade", "parts", "scorecard_version", "computed_at"]
    risk = None
    if churn is not None:
        # The churn risk goes into the same snapshot rows, aligned with them.
        by_account = dict(
            zip(churn.account_ids, zip(churn.risk, churn.inputs, strict=True), strict=True)
        )
        scored = [by_account.get(a, (None, [])) for a in snapshots["account"]]
        risk = columns["churn_risk"] = [r for r, _ in scored]
        columns["churn_inputs"] = [i for _, i in scored]
        same["churn_model"] = churn.model.pk
        update += ["churn_risk", "churn_inputs", "churn_model"]
    else:
        # Health alone: a new snapshot has no risk yet; an existing one keeps the day's risk.
        same["churn_inputs"] = []
    rows_upsert(
        model=HealthScore,
        columns=columns,
        same=same,
        unique=["account", "as_of"],
        update=update,
    )
    model_version = churn.model.version if churn is not None else None
    _account_health_update(as_of, stale, snapshots, now, risk, model_version)


def _account_health_update(
    as_of: dt.date,
    gone: list[int],
    snapshots: dict[str, list],
    now: dt.datetime,
    risk: list[float | None] | None,
    model_version: int | None,
) -> None:
    """Only move forward: accounts whose current health is newer than as_of keep it. With
    `risk` (aligned with the snapshots), the churn risk is written in the same statement (else
    it is left as it was)."""
    if gone:
        # No longer paying (or no scorecard applies): a stale "current" value would mislead lists.
        AccountHealth.objects.filter(account_id__in=gone, as_of__lte=as_of).delete()
    columns = {c: snapshots[c] for c in ["account", "score", "grade", "scorecard_version"]}
    if risk is not None:
        columns["churn_risk"] = risk
        columns["churn_model_version"] = [None if r is None else model_version for r in risk]
    rows_upsert(
        model=AccountHealth,
        columns=columns,
        same={"as_of": as_of, "updated_at": now},
        unique=["account"],
        update=[*(c for c in columns if c != "account"), "as_of", "updated_at"],
        only_if="t.as_of <= excluded.as_of",
    )
