from django.db import models

from .customers import Account


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
    """Per account, UTC day and event name: the rollup that scoring reads instead of raw events."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="daily_usage", db_index=False
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


class DailyUser(models.Model):
    """Which product users did which event on a day: the set behind DailyUsage.active_users, and
    behind distinct active users over any window (COUNT DISTINCT user_id)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    event_name = models.CharField(max_length=100)
    user_id = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "event_name", "user_id"], name="daily_user_once"
            )
        ]
