"""The pg_trgm index behind `contains` and leading-wildcard `pattern` searches of available numbers.

PostgreSQL only: the extension and GIN indexes do not exist elsewhere (SQLite scans, which is fine for
development-sized stock). Partial on status='available' because searches never look at anything else.
"""

from django.db import migrations

INDEX = "telephony_stock_avail_digits_trgm"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON telephony_stocknumber "
        "USING gin (digits gin_trgm_ops) WHERE status = 'available'"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("telephony", "0003_numbers_search_indexes"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
