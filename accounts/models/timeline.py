from django.conf import settings
from django.db import models
from django.utils import timezone

from .customers import Account


class TimelineKind(models.TextChoices):
    NOTE = "note", "CSM note"
    SYSTEM = "system", "System"
    MEETING = "meeting"
    EMAIL = "email"


class TimelineEntry(models.Model):
    """What happened on an account, by whom and when: CSM notes and system entries."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=10, choices=TimelineKind.choices, default=TimelineKind.NOTE)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]
        verbose_name_plural = "timeline entries"
        indexes = [models.Index(fields=["account", "-occurred_at"])]

    def __str__(self) -> str:
        return self.title or self.body[:60]
