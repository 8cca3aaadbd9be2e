"""Health scores: scorecards (edited by admins, versioned on every edit), the daily snapshot per
account, the current health row per account, and CSM sentiment overrides."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Account
from health.scoring.engine import measures_render

__all__ = [
    "AccountHealth",
    "Grade",
    "HealthScore",
    "MeasureDirection",
    "MeasureMapping",
    "Scorecard",
    "ScorecardMeasure",
    "ScorecardVersion",
    "SentimentOverride",
]


class Grade(models.TextChoices):
    GREEN = "green", "Green (healthy)"
    YELLOW = "yellow", "Yellow (watch)"
    RED = "red", "Red (at risk)"
    # Every measure was missing: CSP shows no number rather than a made-up one.
    NONE = "none", "Not enough data"


class MeasureMapping(models.TextChoices):
    LINEAR = "linear", "Linear range"
    THRESHOLDS = "thresholds", "Thresholds"


class MeasureDirection(models.TextChoices):
    HIGHER = "higher", "Higher is better"
    LOWER = "lower", "Lower is better"


class Scorecard(models.Model):
    """A list of measures and grade thresholds that applies to the accounts its conditions match.
    Scorecards are tried by priority (lowest first); the default catches every other account."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    priority = models.PositiveIntegerField(default=100, help_text="Lower numbers are tried first")
    is_default = models.BooleanField(
        default=False, help_text="Applies to accounts no other scorecard matches"
    )
    is_active = models.BooleanField(default=True)
    segments = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated segments; empty matches any"
    )
    tiers = models.CharField(
        max_length=200, blank=True, help_text="Comma-separated touch tiers; empty matches any"
    )
    green_threshold = models.FloatField(default=70, help_text="Scores at or above are green")
    yellow_threshold = models.FloatField(default=40, help_text="Scores at or above are yellow")
    sentiment_weight = models.FloatField(
        default=25,
        help_text="Weight of an active CSM sentiment override, relative to the measures' weights",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_scorecard"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ScorecardMeasure(models.Model):
    """One measure: a column of the account feature frame mapped to 0-100 points, with a weight."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="measures")
    name = models.SlugField(max_length=100)
    label = models.CharField(max_length=200, blank=True)
    feature = models.CharField(
        max_length=200,
        help_text="Feature column, e.g. active_days_30, utilisation or attr_<custom attribute>",
    )
    weight = models.FloatField(default=1)
    mapping = models.CharField(
        max_length=12, choices=MeasureMapping.choices, default=MeasureMapping.LINEAR
    )
    direction = models.CharField(
        max_length=6, choices=MeasureDirection.choices, default=MeasureDirection.HIGHER
    )
    low = models.FloatField(null=True, blank=True, help_text="Linear: value worth 0 points")
    high = models.FloatField(null=True, blank=True, help_text="Linear: value worth 100 points")
    thresholds = models.JSONField(
        default=list, blank=True, help_text="Thresholds: [[bound, points], ...] ascending by bound"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["scorecard", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["scorecard", "name"], name="measure_name_per_scorecard")
        ]

    def __str__(self) -> str:
        return self.label or self.name


class ScorecardVersion(models.Model):
    """An immutable copy of a scorecard's whole definition. Every edit publishes a new one and
    scores point at the version they were computed with."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["scorecard", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["scorecard", "number"], name="scorecard_version_once")
        ]

    def __str__(self) -> str:
        return f"{self.scorecard.name} v{self.number}"


# SNAPSHOT_FK. The daily snapshot keeps Django's on_delete (CASCADE and PROTECT are carried out
# by Django, not the database) but has no database foreign key constraints. Only the recompute
# writes it, in bulk, for accounts it has just read in the same transaction; a constraint made
# PostgreSQL lock each referenced account row (FOR KEY SHARE) for every snapshot row written,
# and those locks were 22% of a recompute chunk's WAL. The price: an account deleted while a
# chunk is computing it can leave that day's snapshot behind, unreachable (every read goes
# through the account).


class HealthScore(models.Model):
    """The daily snapshot: one row per account per as-of date, with its health explaining itself
    measure by measure and, when a churn model was usable, its churn risk. `parts` holds each
    measure's numbers compactly (see ScoredFrame.parts); `measures` spells them out with names
    and labels from the scorecard version the score was computed with. `churn_inputs` are the
    feature values the churn model scored (in the order of its `features`), from which the
    drivers of the risk are explained when read (health.services.churn.prediction_drivers).
    Compact, and one row, because every daily recompute writes one per paying account."""

    # No separate FK indexes: (account, as_of) is unique and leads with account, and versions
    # are never deleted (PROTECT); each index costs every daily recompute one write per account.
    # No database FK constraints either (SNAPSHOT_FK above).
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="health_scores",
        db_index=False,
        db_constraint=False,
    )
    as_of = models.DateField()
    score = models.FloatField(null=True, blank=True)
    grade = models.CharField(max_length=6, choices=Grade.choices)
    parts = models.JSONField(
        default=list, help_text="Per measure: [raw value, points, weight, contribution]"
    )
    scorecard_version = models.ForeignKey(
        ScorecardVersion,
        on_delete=models.PROTECT,
        related_name="scores",
        db_index=False,
        db_constraint=False,
    )
    churn_risk = models.FloatField(
        null=True, blank=True, help_text="Probability of churning within the model's horizon"
    )
    churn_model = models.ForeignKey(
        "health.ChurnModel",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    churn_inputs = models.JSONField(
        default=list,
        blank=True,
        help_text="The feature values the churn model scored, in the model's feature order",
    )
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["account", "-as_of"]
        # The only index: an account's history. Reports across accounts by date add what they
        # read; each index costs every daily recompute one write per account.
        constraints = [
            models.UniqueConstraint(fields=["account", "as_of"], name="health_score_per_day"),
            models.CheckConstraint(
                condition=Q(churn_risk__isnull=True) | Q(churn_risk__gte=0, churn_risk__lte=1),
                name="churn_risk_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.as_of}: {self.score} ({self.grade})"

    @property
    def measures(self) -> list[dict]:
        """[{name, label, raw_value, points, weight, base_weight, contribution, missing}]"""
        return measures_render(self.scorecard_version.definition, self.parts)


class AccountHealth(models.Model):
    """The current health of an account (its latest snapshot) and churn risk, for lists and
    sorting. Only moves forward: a backfill of an older date never replaces a newer value."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.CASCADE, related_name="health"
    )
    as_of = models.DateField()
    score = models.FloatField(null=True, blank=True)
    grade = models.CharField(max_length=6, choices=Grade.choices)
    scorecard_version = models.ForeignKey(
        ScorecardVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    churn_risk = models.FloatField(null=True, blank=True)
    churn_model_version = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "account health"
        # For sorting lists by score or risk. Not by grade: three values, and every index here
        # costs each recompute a write per account (score changes make updates non-HOT).
        indexes = [
            models.Index(fields=["score"]),
            models.Index(fields=["churn_risk"]),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.score} ({self.grade})"


class SentimentOverride(models.Model):
    """A CSM's judgement of an account, with a reason and an expiry date. It enters the score as
    its own measure while active (created on or before the as-of date, expiring after it, not
    revoked by then); recomputes never touch it."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="sentiment_overrides"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grade = models.CharField(
        max_length=6,
        blank=True,
        choices=[(g.value, g.label) for g in (Grade.GREEN, Grade.YELLOW, Grade.RED)],
    )
    points = models.FloatField(null=True, blank=True, help_text="0-100; used instead of grade")
    reason = models.TextField()
    expires_on = models.DateField()
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["account", "-created_at"]
        indexes = [models.Index(fields=["account", "expires_on"])]
        constraints = [
            models.CheckConstraint(
                condition=(Q(points__isnull=False) & Q(grade=""))
                | (Q(points__isnull=True) & ~Q(grade="")),
                name="sentiment_grade_or_points",
            ),
            models.CheckConstraint(
                condition=Q(points__isnull=True) | Q(points__gte=0, points__lte=100),
                name="sentiment_points_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.grade or self.points} until {self.expires_on}"
