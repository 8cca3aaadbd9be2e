"""Second step of 0009, in its own transaction: ChurnPrediction goes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("health", "0009_churn_risk_in_snapshot")]

    operations = [
        migrations.DeleteModel(name="ChurnPrediction"),
    ]
