from django.db import models

from .customers import Account, Contact


class SurveyKind(models.TextChoices):
    NPS = "nps", "NPS (0-10)"
    CSAT = "csat", "CSAT (1-5)"


class SurveyResponse(models.Model):
    """An NPS or CSAT answer: the voice of the customer."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="survey_responses")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="survey_responses"
    )
    external_id = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=4, choices=SurveyKind.choices, default=SurveyKind.NPS)
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    responded_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-responded_at"]
        indexes = [models.Index(fields=["account", "kind", "responded_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.score}"
