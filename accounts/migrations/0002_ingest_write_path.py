"""The ingestion write path (accounts.services.ingest_sql), measured with bench/ingest.py.

1. DailyUsage gets fillfactor 70 (PostgreSQL only): ingestion updates each touched (account,
   day, event) row once per batch, and the free space in each page lets those be HOT updates
   (the new row version stays on the page and none of the table's three indexes is written).
   Applies to pages written from now on; an existing large table keeps its packed pages until
   it is rewritten (VACUUM FULL or pg_repack in a maintenance window). SQLite has no such knob.
2. DailyUsage.account and DailyUser.account lose their database foreign-key constraint; why
   that cannot leave orphan rollups is explained at the top of accounts/models/usage.py.
"""

import django.db.models.deletion
from django.db import migrations, models

FILLFACTOR = 70


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE accounts_dailyusage SET (fillfactor = {FILLFACTOR})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE accounts_dailyusage RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False),
        migrations.AlterField(
            model_name="dailyusage",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="daily_usage",
                to="accounts.account",
            ),
        ),
        migrations.AlterField(
            model_name="dailyuser",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.account",
            ),
        ),
    ]
