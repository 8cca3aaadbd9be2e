"""Snapshots store numbers, not words: HealthScore.measures (about 1.1 kB of repeated names and
labels per account per day) becomes `parts`, [raw value, points, weight, contribution] per measure
in the scorecard version's order; ChurnPrediction.drivers (sentences) becomes `inputs`, the
feature values the model scored, from which the drivers are explained when read. Existing
snapshots are converted; existing predictions lose their stored sentences (the next recompute
writes inputs for them)."""

from django.db import migrations, models

BATCH = 2000


def measures_to_parts(apps, schema_editor):
    HealthScore = apps.get_model("health", "HealthScore")
    rows = HealthScore.objects.only("pk", "measures").order_by("pk")
    batch = []
    for score in rows.iterator(chunk_size=BATCH):
        score.parts = [
            [m.get("raw_value"), m.get("points"), m.get("weight"), m.get("contribution")]
            for m in score.measures or []
        ]
        batch.append(score)
        if len(batch) == BATCH:
            HealthScore.objects.bulk_update(batch, ["parts"])
            batch = []
    if batch:
        HealthScore.objects.bulk_update(batch, ["parts"])


class Migration(migrations.Migration):
    dependencies = [("health", "0004_redundant_fk_indexes")]

    operations = [
        migrations.AddField(
            model_name="healthscore",
            name="parts",
            field=models.JSONField(
                default=list, help_text="Per measure: [raw value, points, weight, contribution]"
            ),
        ),
        migrations.RunPython(measures_to_parts, migrations.RunPython.noop, elidable=True),
    ]
