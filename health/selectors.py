"""Reads for health: an account's current health, its history, what changed, churn drivers."""

import datetime as dt

from accounts.models import Account
from health.models import AccountHealth, HealthScore, SentimentOverride
from health.scoring.changes import snapshot_changes


def _snapshot_dict(snapshot: HealthScore) -> dict:
    return {
        "as_of": snapshot.as_of.isoformat(),
        "score": snapshot.score,
        "grade": snapshot.grade,
        "measures": snapshot.measures,
    }


def latest_health_score(
    *, account: Account, on_or_before: dt.date | None = None
) -> HealthScore | None:
    scores = HealthScore.objects.filter(account=account).select_related(
        "scorecard_version__scorecard"
    )
    if on_or_before is not None:
        scores = scores.filter(as_of__lte=on_or_before)
    return scores.order_by("-as_of").first()


def health_history(
    *, account: Account, from_date: dt.date | None = None, to_date: dt.date | None = None
) -> list[dict]:
    """Daily (date, score, grade) of the account, oldest first."""
    scores = HealthScore.objects.filter(account=account)
    if from_date is not None:
        scores = scores.filter(as_of__gte=from_date)
    if to_date is not None:
        scores = scores.filter(as_of__lte=to_date)
    return [
        {"date": as_of.isoformat(), "score": score, "grade": grade}
        for as_of, score, grade in scores.order_by("as_of").values_list("as_of", "score", "grade")
    ]


def health_changes(*, account: Account, from_date: dt.date, to_date: dt.date) -> dict | None:
    """Compare the snapshots in force on two dates (the latest on or before each), measure by
    measure; None when either date has no snapshot."""
    before = latest_health_score(account=account, on_or_before=from_date)
    after = latest_health_score(account=account, on_or_before=to_date)
    if before is None or after is None:
        return None
    return snapshot_changes(_snapshot_dict(before), _snapshot_dict(after))


def health_changes_since_previous(*, account: Account, snapshot: HealthScore) -> dict | None:
    previous = (
        HealthScore.objects.filter(account=account, as_of__lt=snapshot.as_of)
        .select_related("scorecard_version")
        .order_by("-as_of")
        .first()
    )
    if previous is None:
        return None
    return snapshot_changes(_snapshot_dict(previous), _snapshot_dict(snapshot))


def churn_prediction_latest(*, account: Account) -> HealthScore | None:
    """The account's newest snapshot that carries a churn risk."""
    return (
        HealthScore.objects.filter(account=account, churn_risk__isnull=False)
        .select_related("churn_model")
        .order_by("-as_of")
        .first()
    )


def account_health_current(*, account: Account) -> AccountHealth | None:
    return AccountHealth.objects.filter(account=account).first()


def sentiment_overrides_for(*, account: Account) -> list[SentimentOverride]:
    return list(account.sentiment_overrides.select_related("author").order_by("-created_at"))
