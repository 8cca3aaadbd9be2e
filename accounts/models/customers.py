from django.conf import settings
from django.db import models
from django.db.models import Q


class LifecycleStage(models.TextChoices):
    ONBOARDING = "onboarding"
    ADOPTION = "adoption"
    EXPANSION = "expansion"
    RENEWAL = "renewal"
    CHURNED = "churned"


class AccountStatus(models.TextChoices):
    PROSPECT = "prospect", "Not paying yet"
    ACTIVE = "active"
    CHURNED = "churned"


class AccountQuerySet(models.QuerySet):
    def visible_to(self, user) -> "AccountQuerySet":
        """The one place that decides whose accounts a user sees: managers and staff see the whole
        book, a CSM sees the accounts they own."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff or user.is_superuser or user.groups.filter(name="Manager").exists():
            return self
        return self.filter(owner=user)


class Account(models.Model):
    external_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    domain = models.CharField(max_length=255, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    segment = models.CharField(max_length=100, blank=True, db_index=True)
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.ONBOARDING
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_accounts",
    )
    attributes = models.JSONField(default=dict, blank=True)

    # Derived from subscriptions by accounts.services.account_revenue_refresh; never typed.
    status = models.CharField(
        max_length=10, choices=AccountStatus.choices, default=AccountStatus.PROSPECT
    )
    mrr = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    customer_since = models.DateField(null=True, blank=True)
    churned_on = models.DateField(null=True, blank=True)
    churn_reason = models.CharField(max_length=255, blank=True)
    # Set by event ingestion (at most about once a minute per account) so that the incremental
    # recompute can find the accounts that received events since its last run.
    last_event_received_at = models.DateTimeField(null=True, blank=True, db_index=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["status", "owner"]),
            models.Index(fields=["lifecycle_stage"]),
            models.Index(fields=["mrr"]),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def arr(self):
        return self.mrr * 12


class ContactRole(models.TextChoices):
    CHAMPION = "champion"
    DECISION_MAKER = "decision_maker", "Decision maker"
    USER = "user"
    BILLING = "billing"


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    external_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=255, blank=True)
    role = models.CharField(max_length=20, choices=ContactRole.choices, default=ContactRole.USER)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "email"],
                condition=~Q(email=""),
                name="contact_email_per_account",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or str(self.external_id)
