"""Messaging compliance: opt-outs get a public id (GET /api/v1/opt-outs/{id}) and a list index; brands and
campaigns share one review base, which gives the campaign's review note the brand's help text."""

from __future__ import annotations

import uuid

from django.db import migrations, models


def fill_public_ids(apps, schema_editor):
    # A column default is evaluated once for existing rows: each opt-out needs its own id before the unique index.
    OptOut = apps.get_model("telephony", "OptOut")
    if schema_editor.connection.vendor == "postgresql":
        # One statement: the AddField holds the table's exclusive lock until commit, and every send reads the
        # opt-outs, so a row-by-row fill (about 1.4 ms a row) would stall all sending for minutes.
        schema_editor.execute("UPDATE telephony_optout SET public_id = gen_random_uuid() WHERE public_id IS NULL")
        return
    for pk in OptOut.objects.filter(public_id__isnull=True).values_list("pk", flat=True).iterator():
        OptOut.objects.filter(pk=pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("telephony", "0017_delivery_attempt_details")]

    operations = [
        migrations.AddField(model_name="optout", name="public_id", field=models.UUIDField(null=True, editable=False)),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="optout",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="review_note",
            field=models.CharField(blank=True, help_text="Why it was rejected, for the customer.", max_length=500),
        ),
        migrations.AddIndex(
            model_name="optout",
            index=models.Index(fields=["account", "-created_at", "-id"], name="telephony_optout_log"),
        ),
    ]
