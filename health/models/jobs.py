"""Background jobs (recomputes, retraining) that a person or the beat schedule starts and polls.

Progress is counted from JobChunk rows, one per finished chunk with a unique (job, index): a chunk
that a worker runs twice (acks_late re-delivery, a retry after a lost connection) adds no second
row, so progress and the moment of success stay exact when several workers finish at once.
"""

import uuid

from django.conf import settings
from django.db import models

__all__ = ["Job", "JobChunk", "JobKind", "JobStatus"]


class JobKind(models.TextChoices):
    RECOMPUTE = "recompute", "Health and churn-risk recompute"
    RECOMPUTE_INCREMENTAL = "recompute_incremental", "Incremental recompute"
    CHURN_TRAIN = "churn_train", "Churn model training"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, choices=JobKind.choices)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    chunks_total = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} ({self.id})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobChunk(models.Model):
    """One finished chunk of a job, with what it wrote."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    accounts = models.PositiveIntegerField(default=0)
    health_scores = models.PositiveIntegerField(default=0)
    churn_predictions = models.PositiveIntegerField(default=0)
    elapsed_seconds = models.FloatField(default=0)
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="job_chunk_once"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.job_id}"
