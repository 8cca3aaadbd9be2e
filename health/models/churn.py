"""Churn risk: trained model versions (with their backtest) and per-account predictions."""

from django.db import models

from accounts.models import Account

__all__ = ["ChurnModel", "ChurnModelStatus", "ChurnPrediction"]


class ChurnModelStatus(models.TextChoices):
    TRAINED = "trained"
    # Too few churns to learn from: CSP shows health only and never presents a probability.
    INSUFFICIENT_HISTORY = "insufficient_history", "Not enough churn history"


class ChurnModel(models.Model):
    """One training run. `artifact` holds the fitted predictor, pickled by this app only and
    signed (`artifact_signature`) so nothing else written into the column is ever unpickled."""

    version = models.PositiveIntegerField(unique=True)
    as_of = models.DateField()
    horizon_days = models.PositiveIntegerField(default=90)
    status = models.CharField(max_length=24, choices=ChurnModelStatus.choices)
    message = models.CharField(max_length=255, blank=True)
    algorithm = models.CharField(max_length=50, blank=True)
    features = models.JSONField(default=list, blank=True)
    training_examples = models.PositiveIntegerField(default=0)
    training_accounts = models.PositiveIntegerField(default=0)
    churn_count = models.PositiveIntegerField(default=0)
    backtest = models.JSONField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_signature = models.CharField(max_length=128, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        indexes = [models.Index(fields=["status", "as_of"])]

    def __str__(self) -> str:
        return f"churn model v{self.version} ({self.status}, as of {self.as_of})"


# SNAPSHOT_FK. The daily snapshots (HealthScore, ChurnPrediction) keep Django's on_delete
# (CASCADE and PROTECT are carried out by Django, not the database) but have no database foreign
# key constraints. Only the recompute writes them, in bulk, for accounts it has just read in the
# same transaction; a constraint made PostgreSQL lock each referenced account row (FOR KEY
# SHARE) for every snapshot row written, and those locks were 22% of a recompute chunk's WAL.
# The price: an account deleted while a chunk is computing it can leave that day's snapshot
# behind, unreachable (every read goes through the account).


class ChurnPrediction(models.Model):
    """An account's churn risk as of a date; a recompute of the same date replaces it. `inputs`
    are the feature values the model scored (in the order of the model's `features`), so the
    drivers of this number are explained when read (health.services.churn.prediction_drivers),
    exactly as the model saw the account, without storing sentences for every account daily."""

    # Served by the (account, as_of) unique index; a separate FK index would cost every
    # recompute one more write per account. SNAPSHOT_FK: no database constraint.
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="churn_predictions",
        db_index=False,
        db_constraint=False,
    )
    as_of = models.DateField()
    probability = models.FloatField()
    # Deleting a model (rare, by staff) may scan; an index would cost every recompute a write.
    model = models.ForeignKey(
        ChurnModel,
        on_delete=models.CASCADE,
        related_name="predictions",
        db_index=False,
        db_constraint=False,
    )
    inputs = models.JSONField(
        default=list,
        help_text="The feature values the model scored, in the model's feature order",
    )
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["account", "as_of"], name="churn_prediction_per_day"),
            models.CheckConstraint(
                condition=models.Q(probability__gte=0, probability__lte=1),
                name="churn_probability_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.as_of}: {self.probability:.2f}"
