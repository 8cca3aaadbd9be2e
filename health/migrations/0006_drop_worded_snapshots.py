"""Second step of 0005, in its own transaction: the worded columns go (PostgreSQL refuses to
alter a table with row changes pending deferred constraint checks in the same transaction)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("health", "0005_compact_snapshots")]

    operations = [
        migrations.RemoveField(model_name="healthscore", name="measures"),
        migrations.RemoveField(model_name="churnprediction", name="drivers"),
        migrations.AddField(
            model_name="churnprediction",
            name="inputs",
            field=models.JSONField(
                default=list,
                help_text="The feature values the model scored, in the model's feature order",
            ),
        ),
    ]
