from __future__ import annotations

from django.db import migrations

# The SQL lives with the code that explains it (telephony/edge/schema.py); `kamailio_config` re-creates the
# view from the same function when PLATFORM_SIP_DOMAIN changes.
from telephony.edge.schema import DROP_SQL, LOCATION_TABLE_SQL, credentials_view_sql


def create_edge_objects(apps, schema_editor):
    # Kamailio speaks PostgreSQL here; on SQLite (tests without services, quick demos) there is no edge.
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in [credentials_view_sql(), *LOCATION_TABLE_SQL.split(";")]:
        if statement.strip():
            schema_editor.execute(statement, params=None)


def drop_edge_objects(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in DROP_SQL.split(";"):
        if statement.strip():
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("telephony", "0015_bulk_calls_and_hooks")]

    operations = [migrations.RunPython(create_edge_objects, drop_edge_objects, elidable=False)]
