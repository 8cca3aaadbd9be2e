"""Churn risk: trained model versions (with their backtest) and per-account predictions."""

from django.db import models

__all__ = ["ChurnModel", "ChurnModelStatus"]


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
