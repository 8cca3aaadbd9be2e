"""Every install starts with a default scorecard (and its version 1), so health scores work before
anyone opens the admin. The numbers are sensible starting points an admin edits, not tuned to any
data set. The definition is written out here, frozen, as migrations must not depend on code that
changes later."""

from django.db import migrations

MEASURES = [
    # name, label, feature, weight, direction, low, high
    ("usage_frequency", "Usage frequency (active days, last 30)", "active_days_30", 20, "higher", 0, 20),
    ("utilisation", "Active users vs seats", "utilisation", 15, "higher", 0.2, 0.9),
    ("breadth", "Breadth (distinct key events, last 30 days)", "breadth_30", 15, "higher", 1, 6),
    ("usage_trend", "Usage trend (last 30 days vs the 30 before)", "usage_trend", 15, "higher", -0.5, 0.2),
    ("recency", "Days since last activity", "days_since_last_activity", 15, "lower", 0, 30),
    ("nps", "NPS of the account's contacts (last 180 days)", "nps_180", 20, "higher", -50, 50),
]


def create_default_scorecard(apps, schema_editor):
    Scorecard = apps.get_model("health", "Scorecard")
    ScorecardMeasure = apps.get_model("health", "ScorecardMeasure")
    ScorecardVersion = apps.get_model("health", "ScorecardVersion")
    if Scorecard.objects.filter(is_default=True).exists():
        return
    scorecard = Scorecard.objects.create(
        name="Default",
        description="Applies to every account no other scorecard matches.",
        priority=1000,
        is_default=True,
        green_threshold=70,
        yellow_threshold=40,
        sentiment_weight=25,
    )
    measures = []
    for position, (name, label, feature, weight, direction, low, high) in enumerate(MEASURES):
        ScorecardMeasure.objects.create(
            scorecard=scorecard, name=name, label=label, feature=feature, weight=weight,
            mapping="linear", direction=direction, low=low, high=high, thresholds=[],
            position=position,
        )
        measures.append({
            "name": name, "label": label, "feature": feature, "weight": float(weight),
            "mapping": "linear", "direction": direction, "low": float(low), "high": float(high),
            "thresholds": [],
        })
    ScorecardVersion.objects.create(
        scorecard=scorecard,
        number=1,
        definition={
            "scorecard_id": scorecard.pk,
            "scorecard": scorecard.name,
            "version": 1,
            "priority": 1000,
            "is_default": True,
            "match": {"segment": [], "tier": []},
            "grades": {"green": 70.0, "yellow": 40.0},
            "sentiment_weight": 25.0,
            "measures": measures,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("health", "0001_initial")]

    operations = [migrations.RunPython(create_default_scorecard, migrations.RunPython.noop)]
