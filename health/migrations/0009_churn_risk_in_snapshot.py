"""Churn risk moves into the daily snapshot: HealthScore gains churn_risk, churn_model and
churn_inputs, filled from ChurnPrediction; the next migration drops ChurnPrediction. One row per
account per day instead of two: the daily recompute writes one fewer row per account."""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 2000


def predictions_to_snapshots(apps, schema_editor):
    HealthScore = apps.get_model("health", "HealthScore")
    ChurnPrediction = apps.get_model("health", "ChurnPrediction")
    predictions = ChurnPrediction.objects.order_by("pk").values_list(
        "account_id", "as_of", "probability", "model_id", "inputs"
    )
    by_key = {}
    for account_id, as_of, probability, model_id, inputs in predictions.iterator(chunk_size=BATCH):
        by_key[(account_id, as_of)] = (probability, model_id, inputs)
        if len(by_key) == BATCH:
            _apply(HealthScore, by_key)
            by_key = {}
    _apply(HealthScore, by_key)


def _apply(HealthScore, by_key):
    if not by_key:
        return
    accounts = {account_id for account_id, _ in by_key}
    days = {as_of for _, as_of in by_key}
    snapshots = list(HealthScore.objects.filter(account_id__in=accounts, as_of__in=days))
    changed = []
    for snapshot in snapshots:
        found = by_key.get((snapshot.account_id, snapshot.as_of))
        if found:
            snapshot.churn_risk, snapshot.churn_model_id, snapshot.churn_inputs = found
            changed.append(snapshot)
    HealthScore.objects.bulk_update(changed, ["churn_risk", "churn_model", "churn_inputs"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_prospect_label"),
        ("health", "0008_unread_health_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name='healthscore',
            name='churn_inputs',
            field=models.JSONField(blank=True, default=list, help_text="The feature values the churn model scored, in the model's feature order"),
        ),
        migrations.AddField(
            model_name='healthscore',
            name='churn_model',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='health.churnmodel'),
        ),
        migrations.AddField(
            model_name='healthscore',
            name='churn_risk',
            field=models.FloatField(blank=True, help_text="Probability of churning within the model's horizon", null=True),
        ),
        migrations.AddConstraint(
            model_name='healthscore',
            constraint=models.CheckConstraint(condition=models.Q(('churn_risk__isnull', True), models.Q(('churn_risk__gte', 0), ('churn_risk__lte', 1)), _connector='OR'), name='churn_risk_range'),
        ),
        migrations.RunPython(predictions_to_snapshots, migrations.RunPython.noop, elidable=True),
    ]
