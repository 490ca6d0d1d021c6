from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telephony", "0015_bulk_calls_and_hooks")]

    operations: list = []
