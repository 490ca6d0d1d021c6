"""The SIP edge's reconcile sweep asks every few seconds which edge calls are still live: a small partial index.

Raw SQL (partial indexes with WHERE on plain columns read the same on PostgreSQL and SQLite), kept out of the
model's Meta because only this sweep uses it.

An answered Dial's action URL is a callback delivery of its own kind (`dial_action`). The IP trunks' addresses,
which Kamailio's flood limit spares, are the view sip_edge_trusted (telephony/edge/schema.py).
"""

from __future__ import annotations

from django.db import migrations, models

from telephony.edge.schema import TRUSTED_DROP_SQL, TRUSTED_VIEW_SQL


def create_trusted_view(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # the only database Kamailio reads (see 0016)
        schema_editor.execute(TRUSTED_VIEW_SQL, params=None)


def drop_trusted_view(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRUSTED_DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("telephony", "0018_messaging_compliance")]

    operations: list = [
        migrations.RunSQL(
            "CREATE INDEX telephony_call_edge_live ON telephony_call (created_at) WHERE source = 'kamailio' "
            "AND parent_id IS NULL AND status IN ('queued', 'initiated', 'ringing', 'in-progress')",
            "DROP INDEX telephony_call_edge_live",
        ),
        # An answered Dial's action URL is a callback delivery (telephony.services.sip_edge_lifecycle).
        migrations.AlterField(
            model_name="delivery",
            name="kind",
            field=models.CharField(
                choices=[
                    ("event", "Event"),
                    ("test", "Test send"),
                    ("status_callback", "Status callback"),
                    ("extension_hook", "Extension event hook"),
                    ("message_callback", "Message callback"),
                    ("dial_action", "Dial action"),
                ],
                default="event",
                max_length=16,
            ),
        ),
        migrations.RunPython(create_trusted_view, drop_trusted_view, elidable=False),
    ]
