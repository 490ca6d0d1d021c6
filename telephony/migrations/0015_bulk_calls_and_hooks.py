from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("telephony", "0014_outbound_calls")]

    operations: list = []
