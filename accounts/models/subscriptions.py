from django.db import models

from .customers import Account


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled"


class Subscription(models.Model):
    """One period of what an account pays for. A plan or seat change ends one row and starts the
    next, so MRR at any date is the sum over rows whose period covers it."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="subscriptions")
    external_id = models.CharField(max_length=255, unique=True)
    plan = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1, help_text="Seats")
    mrr = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    billing_period_months = models.PositiveSmallIntegerField(default=12)
    start_date = models.DateField()
    renewal_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True, help_text="Empty while active")
    status = models.CharField(
        max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    churn_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_date"]
        indexes = [
            models.Index(fields=["account", "start_date"]),
            models.Index(fields=["renewal_date"]),
            models.Index(fields=["end_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.plan} ({self.external_id})"
