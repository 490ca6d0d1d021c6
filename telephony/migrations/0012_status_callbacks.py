from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telephony", "0011_events_delivery_index_trim")]

    operations: list = []
