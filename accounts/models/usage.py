from django.db import models

from .customers import Account

# Why the rollup tables (DailyUsage, DailyUser) have no database foreign-key constraint on
# account (Django still cascades deletes):
# rows are written only by ingestion (accounts.services.ingest_sql), in the transaction that
# inserts the events they count, and UsageEvent keeps its constraint. That check locks the
# account (FOR KEY SHARE) until commit, so an account deleted concurrently either fails on the
# new events or makes the whole batch, rollups included, roll back: no orphan rollup row can be
# committed. The per-row constraint triggers on the rollups cost ~6 ms of PostgreSQL CPU per
# 1,000-event batch (measured, bench/README.md). Any other writer of these tables must keep the
# same invariant (write rollups only with events of the same account).


class UsageEvent(models.Model):
    """A raw product-usage event. Append-only; (account, event_id) is the idempotency key."""

    # No separate FK index: the idempotency constraint leads with account and serves those lookups.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="usage_events", db_index=False
    )
    event_id = models.CharField(max_length=255)
    user_id = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "event_id"], name="usage_event_idempotency")
        ]
        indexes = [models.Index(fields=["account", "-occurred_at"], name="usage_event_newest")]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class DailyUsage(models.Model):
    """Per account, UTC day and event name: the rollup that scoring reads instead of raw events.

    On PostgreSQL the table has fillfactor 70 (migration 0002): ingestion updates each touched
    row once per batch, and the free space lets those be HOT updates (no index writes)."""

    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="daily_usage",
        db_index=False,
        db_constraint=False,  # see the note at the top of this module
    )
    day = models.DateField()
    event_name = models.CharField(max_length=100)
    event_count = models.PositiveIntegerField(default=0)
    value_sum = models.FloatField(default=0)
    active_users = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "event_name"], name="daily_usage_per_event"
            )
        ]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.event_name} on {self.day}: {self.event_count}"


class DailyUser(models.Model):
    """Which product users did which event on a day: the set behind DailyUsage.active_users, and
    behind distinct active users over any window (COUNT DISTINCT user_id)."""

    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # see the note at the top of this module
    )
    day = models.DateField()
    event_name = models.CharField(max_length=100)
    user_id = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "event_name", "user_id"], name="daily_user_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} did {self.event_name} on {self.day}"
